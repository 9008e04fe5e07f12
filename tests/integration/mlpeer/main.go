// mlpeer: a reference HashiCorp memberlist node (Debian's 0.2.2) for pharos's
// interop tests. It prints one JSON line per event on stdout (join, leave,
// update, user_msg, remote_state, members) as memberlist-peer.md §4 describes.
// Build: GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go build.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"math/rand"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	start = time.Now()
	name  string
	outMu sync.Mutex
)

func emit(fields map[string]interface{}) {
	fields["t_ms"] = time.Now().UnixNano() / 1e6
	fields["up_ms"] = time.Since(start).Milliseconds()
	fields["self"] = name
	b, _ := json.Marshal(fields)
	outMu.Lock()
	fmt.Println(string(b))
	outMu.Unlock()
}

func nodeFields(event string, n *memberlist.Node) map[string]interface{} {
	vsn := []int{int(n.PMin), int(n.PMax), int(n.PCur), int(n.DMin), int(n.DMax), int(n.DCur)}
	return map[string]interface{}{"event": event, "name": n.Name, "addr": n.Addr.String(), "port": n.Port,
		"meta": string(n.Meta), "vsn": vsn}
}

type events struct{}

func (events) NotifyJoin(n *memberlist.Node)   { emit(nodeFields("join", n)) }
func (events) NotifyLeave(n *memberlist.Node)  { emit(nodeFields("leave", n)) }
func (events) NotifyUpdate(n *memberlist.Node) { emit(nodeFields("update", n)) }

type delegate struct {
	meta, state string
}

func (d delegate) NodeMeta(limit int) []byte { return []byte(d.meta) }
func (d delegate) NotifyMsg(b []byte) {
	emit(map[string]interface{}{"event": "user_msg", "hex": hex.EncodeToString(b)})
}
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d delegate) LocalState(join bool) []byte                { return []byte(d.state) }
func (d delegate) MergeRemoteState(buf []byte, join bool) {
	emit(map[string]interface{}{"event": "remote_state", "hex": hex.EncodeToString(buf), "join": join})
}

func main() {
	// Go 1.19 does not seed math/rand, which memberlist uses for its probe order and
	// random offsets: unseeded, every run would repeat the same schedule.
	rand.Seed(time.Now().UnixNano())
	flag.StringVar(&name, "name", "", "node name")
	bind := flag.String("bind", "127.0.0.1", "bind address")
	port := flag.Int("port", 7946, "port (UDP and TCP)")
	join := flag.String("join", "", "h:p[,h:p...] to join")
	duration := flag.Int("duration", 60, "seconds to run")
	profile := flag.String("profile", "lan", "lan|local|wan")
	proto := flag.Int("proto", 2, "protocol version")
	compress := flag.Bool("compress", true, "EnableCompression")
	noTCPPing := flag.Bool("no-tcp-ping", false, "DisableTcpPings")
	key := flag.String("key", "", "base64 key (16, 24 or 32 bytes); k1,k2,...: a keyring, k1 primary")
	meta := flag.String("meta", "", "node meta")
	state := flag.String("state", "", "push/pull user state")
	leave := flag.Bool("leave", false, "Leave() before shutdown")
	quiet := flag.Bool("quiet-members", false, "no members lines")
	sendUser := flag.String("send-user", "", "name:payload: after joining, send payload to name by UDP and TCP")
	flag.Parse()

	var c *memberlist.Config
	switch *profile {
	case "local":
		c = memberlist.DefaultLocalConfig()
	case "wan":
		c = memberlist.DefaultWANConfig()
	default:
		c = memberlist.DefaultLANConfig()
	}
	c.Name = name
	c.BindAddr = *bind
	c.BindPort = *port
	c.AdvertiseAddr = *bind
	c.AdvertisePort = *port
	c.ProtocolVersion = uint8(*proto)
	c.EnableCompression = *compress
	c.DisableTcpPings = *noTCPPing
	c.Events = events{}
	c.Delegate = delegate{meta: *meta, state: *state}
	c.LogOutput = os.Stderr
	if *key != "" {
		// "k1,k2,...": a keyring whose primary is k1 (one key: as before).
		var keys [][]byte
		for _, s := range strings.Split(*key, ",") {
			k, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				log.Fatal(err)
			}
			keys = append(keys, k)
		}
		ring, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			log.Fatal(err)
		}
		c.Keyring = ring
	}
	m, err := memberlist.Create(c)
	if err != nil {
		log.Fatal(err)
	}
	emit(map[string]interface{}{"event": "started"})
	if *join != "" {
		n, err := m.Join(strings.Split(*join, ","))
		emit(map[string]interface{}{"event": "joined", "n": n, "error": fmt.Sprint(err)})
	}
	if *sendUser != "" {
		parts := strings.SplitN(*sendUser, ":", 2)
		go func() {
			for i := 0; i < 50; i++ {
				for _, n := range m.Members() {
					if n.Name == parts[0] {
						m.SendBestEffort(n, []byte(parts[1]+"-udp"))
						m.SendReliable(n, []byte(parts[1]+"-tcp"))
						return
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	if !*quiet {
		go func() {
			for range time.Tick(time.Second) {
				var names []string
				for _, n := range m.Members() {
					names = append(names, fmt.Sprintf("%s@%s:%d", n.Name, n.Addr, n.Port))
				}
				emit(map[string]interface{}{"event": "members", "members": names, "n": len(names),
					"health": m.GetHealthScore()})
			}
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(time.Duration(*duration) * time.Second):
	}
	if *leave {
		m.Leave(5 * time.Second)
	}
	m.Shutdown()
	_ = ioutil.Discard
}
