// go-msgpack compatible subset; see msgpack.hh.
#include "protocols/gossip/msgpack.hh"

namespace pharos::gossip::msgpack {

namespace {
void put_be(std::string& out, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out.push_back(char((v >> (8 * i)) & 0xff));
}
}  // namespace

void writer::map(uint32_t n) {
    if (n < 16) {
        out_.push_back(char(0x80 | n));
    } else if (n <= 0xffff) {
        out_.push_back(char(0xde));
        put_be(out_, n, 2);
    } else {
        out_.push_back(char(0xdf));
        put_be(out_, n, 4);
    }
}

void writer::array(uint32_t n) {
    if (n < 16) {
        out_.push_back(char(0x90 | n));
    } else if (n <= 0xffff) {
        out_.push_back(char(0xdc));
        put_be(out_, n, 2);
    } else {
        out_.push_back(char(0xdd));
        put_be(out_, n, 4);
    }
}

void writer::str(std::string_view s) {
    if (s.size() < 32) {
        out_.push_back(char(0xa0 | s.size()));
    } else if (s.size() <= 0xffff) {
        out_.push_back(char(0xda));
        put_be(out_, s.size(), 2);
    } else {
        out_.push_back(char(0xdb));
        put_be(out_, s.size(), 4);
    }
    out_.append(s);
}

void writer::bytes(std::string_view b) {
    if (b.empty()) return nil();
    str(b);
}

void writer::uint(uint64_t v) {
    if (v <= 0x7f) {
        out_.push_back(char(v));
    } else if (v <= 0xff) {
        out_.push_back(char(0xcc));
        put_be(out_, v, 1);
    } else if (v <= 0xffff) {
        out_.push_back(char(0xcd));
        put_be(out_, v, 2);
    } else if (v <= 0xffffffffu) {
        out_.push_back(char(0xce));
        put_be(out_, v, 4);
    } else {
        out_.push_back(char(0xcf));
        put_be(out_, v, 8);
    }
}

void writer::sint(int64_t v) {
    if (v >= 0) return uint(uint64_t(v));
    if (v >= -32) {
        out_.push_back(char(int8_t(v)));
    } else if (v >= INT8_MIN) {
        out_.push_back(char(0xd0));
        put_be(out_, uint64_t(v), 1);
    } else if (v >= INT16_MIN) {
        out_.push_back(char(0xd1));
        put_be(out_, uint64_t(v), 2);
    } else if (v >= INT32_MIN) {
        out_.push_back(char(0xd2));
        put_be(out_, uint64_t(v), 4);
    } else {
        out_.push_back(char(0xd3));
        put_be(out_, uint64_t(v), 8);
    }
}

void writer::go_int(int64_t v) {
    if (v < 0 || v <= 0x7f) return sint(v);
    if (v <= INT16_MAX) {
        out_.push_back(char(0xd1));
        put_be(out_, uint64_t(v), 2);
    } else if (v <= INT32_MAX) {
        out_.push_back(char(0xd2));
        put_be(out_, uint64_t(v), 4);
    } else {
        out_.push_back(char(0xd3));
        put_be(out_, uint64_t(v), 8);
    }
}

bool reader::array(uint32_t& n) {
    if (!need(1)) return false;
    uint8_t b = *p_;
    if ((b & 0xf0) == 0x90) {
        ++p_;
        n = b & 0x0f;
        return true;
    }
    if (b == 0xc0) {
        ++p_;
        n = 0;
        return true;
    }
    if (b == 0xdc) {
        if (!need(3)) return false;
        ++p_;
        n = uint32_t(be(2));
        return true;
    }
    if (b == 0xdd) {
        if (!need(5)) return false;
        ++p_;
        n = uint32_t(be(4));
        return true;
    }
    return fail(status::malformed);
}

bool reader::map(uint32_t& n) {
    if (!need(1)) return false;
    uint8_t b = *p_;
    if ((b & 0xf0) == 0x80) {
        ++p_;
        n = b & 0x0f;
        return true;
    }
    if (b == 0xde) {
        if (!need(3)) return false;
        ++p_;
        n = uint32_t(be(2));
        return true;
    }
    if (b == 0xdf) {
        if (!need(5)) return false;
        ++p_;
        n = uint32_t(be(4));
        return true;
    }
    return fail(status::malformed);
}

bool reader::str(std::string& s) {
    if (!need(1)) return false;
    uint8_t b = *p_;
    size_t len, hdr;
    if ((b & 0xe0) == 0xa0) {
        len = b & 0x1f;
        hdr = 1;
    } else if (b == 0xc0) {
        ++p_;
        s.clear();
        return true;
    } else if (b == 0xd9 || b == 0xc4) {
        if (!need(2)) return false;
        len = p_[1];
        hdr = 2;
    } else if (b == 0xda || b == 0xc5) {
        if (!need(3)) return false;
        len = (size_t(p_[1]) << 8) | p_[2];
        hdr = 3;
    } else if (b == 0xdb || b == 0xc6) {
        if (!need(5)) return false;
        len = (size_t(p_[1]) << 24) | (size_t(p_[2]) << 16) | (size_t(p_[3]) << 8) | p_[4];
        hdr = 5;
    } else {
        return fail(status::malformed);
    }
    if (!need(hdr + len)) return false;
    s.assign(reinterpret_cast<const char*>(p_ + hdr), len);
    p_ += hdr + len;
    return true;
}

bool reader::i64(int64_t& v) {
    if (!need(1)) return false;
    uint8_t b = *p_;
    if (b <= 0x7f) {
        ++p_;
        v = b;
        return true;
    }
    if (b >= 0xe0) {
        ++p_;
        v = int8_t(b);
        return true;
    }
    int n;
    bool sign;
    switch (b) {
    case 0xcc: n = 1; sign = false; break;
    case 0xcd: n = 2; sign = false; break;
    case 0xce: n = 4; sign = false; break;
    case 0xcf: n = 8; sign = false; break;
    case 0xd0: n = 1; sign = true; break;
    case 0xd1: n = 2; sign = true; break;
    case 0xd2: n = 4; sign = true; break;
    case 0xd3: n = 8; sign = true; break;
    default: return fail(status::malformed);
    }
    if (!need(1 + size_t(n))) return false;
    ++p_;
    uint64_t x = be(n);
    if (sign) {
        if (n < 8) {
            uint64_t m = uint64_t(1) << (8 * n - 1);
            x = (x ^ m) - m;  // sign-extend
        }
        v = int64_t(x);
    } else {
        if (n == 8 && x > uint64_t(INT64_MAX)) return fail(status::malformed);
        v = int64_t(x);
    }
    return true;
}

bool reader::u64(uint64_t& v) {
    int64_t x;
    if (!i64(x)) return false;
    if (x < 0) return fail(status::malformed);
    v = uint64_t(x);
    return true;
}

bool reader::boolean(bool& b) {
    if (!need(1)) return false;
    if (*p_ == 0xc2 || *p_ == 0xc3) {
        b = *p_++ == 0xc3;
        return true;
    }
    return fail(status::malformed);
}

bool reader::skip(int depth) {
    if (depth > 32) return fail(status::malformed);
    if (!need(1)) return false;
    uint8_t b = *p_;
    auto skip_n = [&](size_t hdr, size_t n) {
        if (!need(hdr + n)) return false;
        p_ += hdr + n;
        return true;
    };
    auto items = [&](size_t hdr, uint64_t count) {
        if (!need(hdr)) return false;
        p_ += hdr;
        for (uint64_t i = 0; i < count; ++i)
            if (!skip(depth + 1)) return false;
        return true;
    };
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return skip_n(1, 0);
    if ((b & 0xe0) == 0xa0) return skip_n(1, b & 0x1f);
    if ((b & 0xf0) == 0x80) return items(1, uint64_t(b & 0x0f) * 2);
    if ((b & 0xf0) == 0x90) return items(1, b & 0x0f);
    auto len_at = [&](int n) -> uint64_t {
        uint64_t v = 0;
        for (int i = 0; i < n; ++i) v = (v << 8) | p_[1 + i];
        return v;
    };
    switch (b) {
    case 0xcc: case 0xd0: return skip_n(1, 1);
    case 0xcd: case 0xd1: return skip_n(1, 2);
    case 0xce: case 0xd2: case 0xca: return skip_n(1, 4);
    case 0xcf: case 0xd3: case 0xcb: return skip_n(1, 8);
    case 0xd4: return skip_n(1, 2);
    case 0xd5: return skip_n(1, 3);
    case 0xd6: return skip_n(1, 5);
    case 0xd7: return skip_n(1, 9);
    case 0xd8: return skip_n(1, 17);
    case 0xc4: case 0xd9: return need(2) && skip_n(2, len_at(1));
    case 0xc5: case 0xda: return need(3) && skip_n(3, len_at(2));
    case 0xc6: case 0xdb: return need(5) && skip_n(5, len_at(4));
    case 0xc7: return need(3) && skip_n(3, len_at(1));
    case 0xc8: return need(4) && skip_n(4, len_at(2));
    case 0xc9: return need(6) && skip_n(6, len_at(4));
    case 0xdc: return need(3) && items(3, len_at(2));
    case 0xdd: return need(5) && items(5, len_at(4));
    case 0xde: return need(3) && items(3, len_at(2) * 2);
    case 0xdf: return need(5) && items(5, len_at(4) * 2);
    default: return fail(status::malformed);
    }
}

}  // namespace pharos::gossip::msgpack
