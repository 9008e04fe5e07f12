#include "snapshot_store.hh"

#include <algorithm>
#include <cinttypes>
#include <cstring>

#include "engine/log.hh"
#include "services/storage/crc32c.hh"

namespace pharos::storage {
using namespace engine;

namespace {
constexpr char magic[8] = {'P', 'H', 'R', 'S', 'S', 'N', 'P', '1'};
constexpr size_t header_size = 40;

void put(std::string& o, const void* p, size_t n) { o.append(static_cast<const char*>(p), n); }

bool parse_name(const std::string& n, uint64_t& index) {
    if (n.size() != 9 + 20 + 5 || n.compare(0, 9, "snapshot-") != 0 || n.compare(29, 5, ".snap") != 0) return false;
    index = 0;
    for (size_t i = 9; i < 29; ++i) {
        if (n[i] < '0' || n[i] > '9') return false;
        index = index * 10 + uint64_t(n[i] - '0');
    }
    return true;
}
}  // namespace

std::string snapshot_name(uint64_t index) {
    char b[48];
    std::snprintf(b, sizeof b, "snapshot-%020" PRIu64 ".snap", index);
    return b;
}

task<result<void>> save_snapshot(fs& dir, uint64_t index, uint64_t term, std::string body, size_t keep) {
    std::string h(magic, 8);
    uint64_t len = body.size();
    uint32_t body_crc = crc32c(body);
    put(h, &index, 8);
    put(h, &term, 8);
    put(h, &len, 8);
    put(h, &body_crc, 4);
    uint32_t head_crc = crc32c(h);
    put(h, &head_crc, 4);

    std::string name = snapshot_name(index);
    std::string tmp = name + ".tmp";
    auto f = dir.open(tmp, true);
    if (!f) co_return f.error();
    std::vector<buffer> bufs;
    bufs.push_back(buffer::copy_of(h));
    bufs.push_back(buffer::copy_of(body));
    body = std::string();
    auto w = co_await (*f)->append(std::move(bufs), no_deadline);
    if (!w) co_return w;
    auto s = co_await (*f)->sync(no_deadline);
    if (!s) co_return s;
    f->reset();
    auto rn = dir.rename(tmp, name);
    if (!rn) co_return rn;
    auto d = co_await dir.sync_dir(no_deadline);
    if (!d) co_return d;

    auto names = dir.list();
    if (!names) co_return names.error();
    std::vector<uint64_t> have;
    for (auto& n : *names) {
        uint64_t i;
        if (parse_name(n, i)) have.push_back(i);
    }
    std::sort(have.begin(), have.end());
    for (size_t i = 0; i + keep < have.size(); ++i) {
        auto r = dir.remove(snapshot_name(have[i]));
        if (!r) co_return r;
    }
    co_return result<void>{};
}

task<std::optional<snapshot_file>> load_newest_snapshot(fs& dir, std::string* error) {
    auto names = dir.list();
    if (!names) {
        *error = "cannot list " + dir.where() + ": " + names.error().message();
        co_return std::nullopt;
    }
    std::vector<uint64_t> have;
    for (auto& n : *names) {
        uint64_t i;
        if (parse_name(n, i)) have.push_back(i);
        else if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0 && n.rfind("snapshot-", 0) == 0)
            (void)dir.remove(n);  // an interrupted save
    }
    std::sort(have.rbegin(), have.rend());
    for (uint64_t idx : have) {
        std::string name = snapshot_name(idx);
        auto f = dir.open(name, false);
        if (!f) {
            *error = "cannot open " + dir.where() + "/" + name + ": " + f.error().message();
            co_return std::nullopt;
        }
        auto rd = co_await (*f)->read(0, size_t((*f)->size()), no_deadline);
        if (!rd) {
            *error = "cannot read " + dir.where() + "/" + name + ": " + rd.error().message();
            co_return std::nullopt;
        }
        const std::string& b = *rd;
        const char* why = nullptr;
        snapshot_file out;
        if (b.size() < header_size || std::memcmp(b.data(), magic, 8) != 0) {
            why = "bad header";
        } else {
            uint32_t head_crc;
            std::memcpy(&head_crc, b.data() + 36, 4);
            uint64_t len;
            uint32_t body_crc;
            std::memcpy(&out.index, b.data() + 8, 8);
            std::memcpy(&out.term, b.data() + 16, 8);
            std::memcpy(&len, b.data() + 24, 8);
            std::memcpy(&body_crc, b.data() + 32, 4);
            if (crc32c(std::string_view(b.data(), 36)) != head_crc) why = "header checksum mismatch";
            else if (out.index != idx) why = "index does not match the file name";
            else if (len != b.size() - header_size) why = "body length mismatch";
            else if (crc32c(std::string_view(b.data() + header_size, len)) != body_crc) why = "body checksum mismatch";
            else out.body.assign(b.data() + header_size, len);
        }
        if (why) {
            log(log_level::warn, "snapshot: skipping damaged %s/%s: %s", dir.where().c_str(), name.c_str(), why);
            continue;
        }
        co_return out;
    }
    co_return std::nullopt;
}

}  // namespace pharos::storage
