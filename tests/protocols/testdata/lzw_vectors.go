// Generates the Go compress/lzw vectors of gossip_wire_test.cc (lzw_matches_go_on_large_inputs):
// GO111MODULE=off go run tests/protocols/testdata/lzw_vectors.go (Go 1.19, Debian golang-go).
package main

import (
	"bytes"
	"compress/lzw"
	"fmt"
	"hash/crc32"
)

func gen(n int, entropy uint64, seed uint64) []byte {
	x := seed
	out := make([]byte, n)
	for i := range out {
		x = x*6364136223846793005 + 1442695040888963407
		out[i] = byte((x >> 33) % entropy)
	}
	return out
}

func main() {
	for _, c := range []struct {
		n       int
		entropy uint64
	}{{60000, 4}, {20000, 256}, {300000, 16}, {100000, 2}} {
		var b bytes.Buffer
		w := lzw.NewWriter(&b, lzw.LSB, 8)
		w.Write(gen(c.n, c.entropy, 1))
		w.Close()
		fmt.Printf("{%d, %d, %d, 0x%08x},\n", c.n, c.entropy, b.Len(), crc32.ChecksumIEEE(b.Bytes()))
	}
}
