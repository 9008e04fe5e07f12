#include "fs.hh"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "engine/file.hh"
#include "engine/reactor.hh"

namespace pharos::storage {
namespace {

std::error_code errno_code(int e = errno) { return {e, std::system_category()}; }

// --- disk ---
class disk_file final : public file {
public:
    disk_file(engine::file f, uint64_t size) : f_(std::move(f)), size_(size) {}
    task<result<void>> append(std::vector<engine::buffer> bufs, deadline dl) override {
        size_t n = 0;
        for (auto& b : bufs) n += b.size();
        auto r = co_await f_.writev_at(size_, std::move(bufs), dl);
        if (!r) {
            auto s = f_.size();  // some of it may have landed
            if (s) size_ = *s;
            co_return r.error();
        }
        size_ += n;
        co_return result<void>{};
    }
    task<result<void>> sync(deadline dl) override { return f_.datasync(dl); }
    task<result<std::string>> read(uint64_t offset, size_t n, deadline dl) override {
        auto r = co_await f_.read_at(offset, n, dl);
        if (!r) co_return r.error();
        co_return std::string(r->view());
    }
    uint64_t size() const noexcept override { return size_; }
    result<void> truncate(uint64_t n) override {
        auto r = f_.truncate(n);
        if (r) size_ = n;
        return r;
    }

private:
    engine::file f_;
    uint64_t size_;
};

class disk_fs final : public fs {
public:
    explicit disk_fs(std::string dir) : dir_(std::move(dir)) {
        if (::mkdir(dir_.c_str(), 0750) < 0 && errno != EEXIST)
            throw std::system_error(errno_code(), "cannot create data directory " + dir_);
    }
    result<std::unique_ptr<file>> open(std::string_view name, bool create) override {
        int flags = O_RDWR | (create ? O_CREAT | O_TRUNC : 0);
        auto f = engine::file::open(path(name), flags, 0640);
        if (!f) return f.error();
        auto sz = f->size();
        if (!sz) return sz.error();
        std::unique_ptr<file> out = std::make_unique<disk_file>(std::move(*f), *sz);
        return out;
    }
    result<std::vector<std::string>> list() override {
        DIR* d = ::opendir(dir_.c_str());
        if (!d) return errno_code();
        std::vector<std::string> names;
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") names.push_back(std::move(n));
        }
        ::closedir(d);
        std::sort(names.begin(), names.end());
        return names;
    }
    result<void> remove(std::string_view name) override {
        if (::unlink(path(name).c_str()) < 0) return errno_code();
        return {};
    }
    result<void> rename(std::string_view from, std::string_view to) override {
        if (::rename(path(from).c_str(), path(to).c_str()) < 0) return errno_code();
        return {};
    }
    task<result<void>> sync_dir(deadline dl) override {
        auto d = engine::file::open(dir_, O_RDONLY | O_DIRECTORY);
        if (!d) co_return d.error();
        co_return co_await d->sync(dl);
    }
    std::string where() const override { return dir_; }

private:
    std::string path(std::string_view name) const { return dir_ + "/" + std::string(name); }
    std::string dir_;
};

}  // namespace

std::unique_ptr<fs> make_disk_fs(const std::string& dir) { return std::make_unique<disk_fs>(dir); }

// --- memory ---
class memory_file final : public file {
public:
    memory_file(memory_fs* fs, std::shared_ptr<memory_fs::inode> n) : fs_(fs), n_(std::move(n)), gen_(fs->generation_) {}
    task<result<void>> append(std::vector<engine::buffer> bufs, deadline dl) override {
        if (gen_ != fs_->generation_) co_return errno_code(EIO);
        ++fs_->appends_;
        std::string all;
        for (auto& b : bufs) all.append(b.view());
        if (int e = std::exchange(fs_->append_err_, 0)) {
            n_->data.append(all.substr(0, std::min(all.size(), std::exchange(fs_->append_keep_, 0))));
            co_return errno_code(e);
        }
        n_->data.append(all);
        co_return result<void>{};
    }
    task<result<void>> sync(deadline dl) override {
        if (gen_ != fs_->generation_) co_return errno_code(EIO);
        ++fs_->syncs_;
        if (fs_->sync_delay_.count() > 0) co_await engine::sleep_for(fs_->sync_delay_);
        if (gen_ != fs_->generation_) co_return errno_code(EIO);
        if (int e = std::exchange(fs_->sync_err_, 0)) co_return errno_code(e);
        n_->durable = n_->data;
        co_return result<void>{};
    }
    task<result<std::string>> read(uint64_t offset, size_t n, deadline dl) override {
        if (gen_ != fs_->generation_) co_return errno_code(EIO);
        if (offset >= n_->data.size()) co_return std::string();
        co_return n_->data.substr(size_t(offset), n);
    }
    uint64_t size() const noexcept override { return n_->data.size(); }
    result<void> truncate(uint64_t n) override {
        if (gen_ != fs_->generation_) return errno_code(EIO);
        n_->data.resize(size_t(n));
        return {};
    }

private:
    memory_fs* fs_;
    std::shared_ptr<memory_fs::inode> n_;
    uint64_t gen_;
};

result<std::unique_ptr<file>> memory_fs::open(std::string_view name, bool create) {
    auto it = dir_.find(name);
    if (it == dir_.end()) {
        if (!create) return errno_code(ENOENT);
        it = dir_.emplace(std::string(name), std::make_shared<inode>()).first;
    } else if (create) {
        it->second->data.clear();
    }
    std::unique_ptr<file> f = std::make_unique<memory_file>(this, it->second);
    return f;
}

result<std::vector<std::string>> memory_fs::list() {
    std::vector<std::string> names;
    for (auto& [n, _] : dir_) names.push_back(n);
    return names;
}

result<void> memory_fs::remove(std::string_view name) {
    auto it = dir_.find(name);
    if (it == dir_.end()) return errno_code(ENOENT);
    dir_.erase(it);
    return {};
}

result<void> memory_fs::rename(std::string_view from, std::string_view to) {
    auto it = dir_.find(from);
    if (it == dir_.end()) return errno_code(ENOENT);
    auto n = it->second;
    dir_.erase(it);
    dir_[std::string(to)] = std::move(n);
    return {};
}

task<result<void>> memory_fs::sync_dir(deadline dl) {
    durable_dir_ = dir_;
    co_return result<void>{};
}

void memory_fs::crash(crash_mode m) {
    ++generation_;
    if (m == crash_mode::keep_unsynced) durable_dir_ = dir_;  // the kernel survives a killed process
    dir_ = durable_dir_;
    for (auto& [name, n] : dir_) {
        std::string kept = n->durable;
        if (n->data.size() > n->durable.size() && n->data.compare(0, n->durable.size(), n->durable) == 0) {
            size_t extra = n->data.size() - n->durable.size();
            if (m == crash_mode::keep_unsynced) kept = n->data;
            if (m == crash_mode::keep_half) kept = n->data.substr(0, n->durable.size() + extra / 2);
        } else if (m == crash_mode::keep_unsynced) {
            kept = n->data;  // truncated or rewritten since the sync: the page cache has the new bytes
        }
        n->data = n->durable = kept;
    }
}

std::string memory_fs::contents(std::string_view name) const {
    auto it = dir_.find(name);
    return it == dir_.end() ? std::string() : it->second->data;
}

void memory_fs::set_contents(std::string_view name, std::string bytes) {
    auto it = dir_.find(name);
    if (it == dir_.end()) it = dir_.emplace(std::string(name), std::make_shared<inode>()).first;
    it->second->data = it->second->durable = std::move(bytes);
    durable_dir_[std::string(name)] = it->second;
}

}  // namespace pharos::storage
