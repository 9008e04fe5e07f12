#include "wal.hh"

#include <cinttypes>
#include <cstring>

#include "engine/log.hh"
#include "engine/reactor.hh"
#include "services/storage/crc32c.hh"

namespace pharos::storage {
using namespace engine;

namespace {

constexpr char segment_magic[8] = {'P', 'H', 'R', 'S', 'W', 'A', 'L', '1'};

void put32(std::string& o, uint32_t v) {
    char b[4];
    std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, aarch64)
    o.append(b, 4);
}
void put64(std::string& o, uint64_t v) {
    char b[8];
    std::memcpy(b, &v, 8);
    o.append(b, 8);
}
uint32_t get32(const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
uint64_t get64(const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

struct parsed {
    const char* bad = nullptr;  // why the record is not valid, or null
    wal_record rec;
    size_t size = 0;  // header + payload
};

parsed parse_at(std::string_view seg, size_t off) {
    parsed p;
    size_t left = seg.size() - off;
    if (left < wal_record_header) {
        p.bad = "short record header";
        return p;
    }
    const char* h = seg.data() + off;
    uint32_t len = get32(h);
    if (len > left - wal_record_header) {
        p.bad = "record runs past the end of the file";
        return p;
    }
    uint32_t want = get32(h + 4);
    uint32_t crc = crc32c(std::string_view(h, 4));
    crc = crc32c(std::string_view(h + 8, wal_record_header - 8 + len), crc);
    if (crc != want) {
        p.bad = "checksum mismatch";
        return p;
    }
    p.rec.index = get64(h + 8);
    p.rec.term = get64(h + 16);
    p.rec.type = uint8_t(h[24]);
    p.rec.payload = std::string_view(h + wal_record_header, len);
    p.size = wal_record_header + len;
    return p;
}

// After a bad record at `off`: is there a valid record later in the segment
// (a plausible index after `prev` and a good checksum)? Then it is not a torn tail.
std::optional<size_t> valid_record_after(std::string_view seg, size_t off, uint64_t prev) {
    uint64_t max_more = (seg.size() - off) / wal_record_header + 1;
    for (size_t p = off + 1; p + wal_record_header <= seg.size(); ++p) {
        uint64_t idx = get64(seg.data() + p + 8);
        if (idx <= prev || idx > prev + max_more) continue;
        parsed r = parse_at(seg, p);
        if (!r.bad) return p;
    }
    return std::nullopt;
}

bool parse_segment_name(const std::string& n, uint64_t& first) {
    if (n.size() != 4 + 20 + 4 || n.compare(0, 4, "wal-") != 0 || n.compare(24, 4, ".log") != 0) return false;
    first = 0;
    for (size_t i = 4; i < 24; ++i) {
        if (n[i] < '0' || n[i] > '9') return false;
        first = first * 10 + uint64_t(n[i] - '0');
    }
    return true;
}

}  // namespace

void encode_wal_record(std::string& out, uint64_t index, uint64_t term, uint8_t type, std::string_view payload) {
    size_t at = out.size();
    put32(out, uint32_t(payload.size()));
    put32(out, 0);
    put64(out, index);
    put64(out, term);
    out.push_back(char(type));
    out.append(payload);
    uint32_t crc = crc32c(std::string_view(out.data() + at, 4));
    crc = crc32c(std::string_view(out.data() + at + 8, wal_record_header - 8 + payload.size()), crc);
    std::memcpy(out.data() + at + 4, &crc, 4);
}

std::string wal_segment_name(uint64_t first_index) {
    char b[40];
    std::snprintf(b, sizeof b, "wal-%020" PRIu64 ".log", first_index);
    return b;
}

std::string wal_segment_header_bytes(uint64_t first_index) {
    std::string h(segment_magic, 8);
    put64(h, first_index);
    return h;
}

task<wal::opened> wal::open(fs& dir, wal_options opt, uint64_t after, replay_fn replay) {
    opened out;
    std::unique_ptr<wal> w(new wal(dir, opt));
    auto names = dir.list();
    if (!names) {
        out.error = "cannot list " + dir.where() + ": " + names.error().message();
        co_return out;
    }
    std::vector<segment> segs;
    for (auto& n : *names) {
        uint64_t first;
        if (parse_segment_name(n, first)) segs.push_back(segment{n, first});
    }
    uint64_t prev = 0, prev_term = 0;  // last good record
    std::unique_ptr<file> last_file;
    for (size_t si = 0; si < segs.size(); ++si) {
        const segment& sg = segs[si];
        bool is_last = si + 1 == segs.size();
        std::string where = dir.where() + "/" + sg.name;
        auto f = dir.open(sg.name, false);
        if (!f) {
            out.error = "cannot open " + where + ": " + f.error().message();
            co_return out;
        }
        auto rd = co_await (*f)->read(0, size_t((*f)->size()), no_deadline);
        if (!rd) {
            out.error = "cannot read " + where + ": " + rd.error().message();
            co_return out;
        }
        std::string_view bytes = *rd;
        if (bytes.size() < wal_segment_header) {
            if (!is_last) {
                out.error = "WAL segment " + where + " is truncated (" + std::to_string(bytes.size()) +
                            " bytes) but is not the last segment: refusing to start";
                co_return out;
            }
            log(log_level::warn, "wal: dropping torn segment %s (%zu bytes, no complete header)", where.c_str(),
                bytes.size());
            auto rm = dir.remove(sg.name);
            if (!rm) {
                out.error = "cannot remove torn segment " + where + ": " + rm.error().message();
                co_return out;
            }
            break;
        }
        if (bytes.substr(0, wal_segment_header) != wal_segment_header_bytes(sg.first)) {
            out.error = "WAL segment " + where + " has a bad header: refusing to start";
            co_return out;
        }
        if (prev != 0 && sg.first != prev + 1) {
            out.error = "WAL segment " + where + " starts at index " + std::to_string(sg.first) + " but the previous " +
                        "segment ends at " + std::to_string(prev) + ": refusing to start";
            co_return out;
        }
        if (prev == 0 && sg.first > after + 1) {
            out.error = "WAL starts at index " + std::to_string(sg.first) + " (" + where + ") but the snapshot ends at " +
                        std::to_string(after) + ": records are missing, refusing to start";
            co_return out;
        }
        if (prev == 0) prev = sg.first - 1;
        size_t off = wal_segment_header;
        while (off < bytes.size()) {
            parsed p = parse_at(bytes, off);
            if (p.bad) {
                std::string at = where + " at offset " + std::to_string(off) + " (after index " + std::to_string(prev) +
                                 "): " + p.bad;
                if (!is_last) {
                    out.error = "WAL corrupt in " + at + ", in a segment that is not the last: refusing to start";
                    co_return out;
                }
                if (auto later = valid_record_after(bytes, off, prev)) {
                    out.error = "WAL corrupt in " + at + ", followed by a valid record at offset " +
                                std::to_string(*later) + ": refusing to start (this is not a torn tail)";
                    co_return out;
                }
                log(log_level::warn, "wal: dropping torn tail of %zu bytes in %s", bytes.size() - off, at.c_str());
                auto t = (*f)->truncate(off);
                if (!t) {
                    out.error = "cannot truncate the torn tail of " + where + ": " + t.error().message();
                    co_return out;
                }
                break;
            }
            if (p.rec.index != prev + 1 || p.rec.term < prev_term) {
                out.error = "WAL corrupt in " + where + " at offset " + std::to_string(off) + ": record index " +
                            std::to_string(p.rec.index) + " term " + std::to_string(p.rec.term) + " after index " +
                            std::to_string(prev) + " term " + std::to_string(prev_term) + ": refusing to start";
                co_return out;
            }
            if (p.rec.index > after) {
                if (auto err = replay(p.rec)) {
                    out.error = "WAL record " + std::to_string(p.rec.index) + " in " + where + " cannot be applied: " +
                                *err + ": refusing to start";
                    co_return out;
                }
            }
            prev = p.rec.index;
            prev_term = p.rec.term;
            off += p.size;
        }
        w->segments_.push_back(sg);
        if (is_last) last_file = std::move(*f);
    }
    w->active_ = std::move(last_file);
    w->last_ = w->durable_ = std::max(prev, after);
    if (prev < after) w->roll_ = true;  // the snapshot is ahead of the log: start a fresh segment
    out.log = std::move(w);
    co_return out;
}

wal::~wal() = default;

bool wal::append(uint64_t index, uint64_t term, uint8_t type, std::string_view payload) {
    if (failed_ || gate_.closing() || index != last_ + 1) return false;
    if (pending_.empty()) pending_first_ = index;
    std::string rec;
    encode_wal_record(rec, index, term, type, payload);
    pending_.append(rec);
    last_ = index;
    start_flusher();
    return true;
}

void wal::start_flusher() {
    if (flushing_ || failed_ || pending_.empty()) return;
    gate::holder h(gate_);
    if (!h) return;
    flushing_ = true;
    this_reactor().spawn(flush_loop(std::move(h)));
}

task<void> wal::flush_loop(gate::holder g) {
    while (!failed_ && !pending_.empty()) {
        buffer batch = std::move(pending_);
        pending_ = buffer();
        uint64_t first = pending_first_, last = last_;
        if (on_cut) on_cut(last);
        auto t0 = clock::now();
        auto r = co_await write_batch(std::move(batch), first);
        ++batches_;
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count();
        if (took >= 1000)
            log(log_level::warn, "wal: writing and syncing records %" PRIu64 "..%" PRIu64 " took %lld ms", first, last,
                (long long)took);
        if (!r) {
            fail("writing records " + std::to_string(first) + ".." + std::to_string(last) + ": " + r.error().message());
            break;
        }
        durable_ = last;
        if (on_done) on_done(last, true);
        wake(last, 1);
    }
    flushing_ = false;
}

task<result<void>> wal::write_batch(buffer batch, uint64_t first) {
    std::vector<buffer> bufs;
    bool fresh = !active_ || roll_ || active_->size() >= opt_.segment_bytes;
    if (!fresh) {
        bufs.push_back(std::move(batch));
        auto w = co_await active_->append(std::move(bufs), no_deadline);
        if (!w) co_return w;
        co_return co_await active_->sync(no_deadline);
    }
    // A new segment: its header and the batch, synced, then its directory entry.
    std::string name = wal_segment_name(first);
    auto f = dir_.open(name, true);
    if (!f) co_return f.error();
    bufs.push_back(buffer::copy_of(wal_segment_header_bytes(first)));
    bufs.push_back(std::move(batch));
    auto w = co_await (*f)->append(std::move(bufs), no_deadline);
    if (!w) co_return w;
    auto s = co_await (*f)->sync(no_deadline);
    if (!s) co_return s;
    auto d = co_await dir_.sync_dir(no_deadline);
    if (!d) co_return d;
    active_ = std::move(*f);
    segments_.push_back(segment{name, first});
    roll_ = false;
    co_return result<void>{};
}

void wal::fail(std::string why) {
    failed_ = true;
    failure_ = std::move(why);
    pending_ = buffer();
    log(log_level::error,
        "wal: %s; records after index %" PRIu64 " are failed, and the log refuses writes until restart",
        failure_.c_str(), durable_);
    if (on_done) on_done(last_, false);
    wake(UINT64_MAX, -1);
}

void wal::wake(uint64_t upto, int state) {
    while (!waiters_.empty() && waiters_.begin()->first <= upto) {
        waiter* w = waiters_.begin()->second;
        waiters_.erase(waiters_.begin());
        w->state = state;
        w->slot.notify();
    }
}

task<result<void>> wal::wait_durable(uint64_t index, deadline dl) {
    if (index <= durable_) co_return result<void>{};
    if (failed_ || index > last_) co_return std::error_code(EIO, std::system_category());
    waiter w{index};
    auto it = waiters_.emplace(index, &w);
    auto aw = w.slot.wait(dl);
    int r = co_await aw;
    if (w.state == 0) {  // deadline, cancel or shutdown: stop waiting
        waiters_.erase(it);
        co_return from_errno(r < 0 ? r : -EIO);
    }
    if (w.state < 0) co_return std::error_code(EIO, std::system_category());
    co_return result<void>{};
}

result<void> wal::remove_through(uint64_t index) {
    while (segments_.size() > 1 && segments_[1].first <= index + 1) {
        auto r = dir_.remove(segments_[0].name);
        if (!r) return r;
        segments_.erase(segments_.begin());
    }
    return {};
}

task<void> wal::close() {
    auto r = co_await gate_.close();
    (void)r;
    wake(UINT64_MAX, -1);  // nothing is left to flush: a waiter here had its record refused
    active_.reset();
}

}  // namespace pharos::storage
