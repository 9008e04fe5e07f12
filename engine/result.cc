#include "result.hh"

#include <string>

namespace pharos::engine {
namespace {
struct category final : std::error_category {
    const char* name() const noexcept override { return "engine"; }
    std::string message(int c) const override {
        switch (errc(c)) {
        case errc::cancelled: return "operation cancelled";
        case errc::timed_out: return "deadline exceeded";
        case errc::queue_full: return "queue full";
        }
        return "unknown engine error";
    }
};
}  // namespace
const std::error_category& engine_category() noexcept {
    static category c;
    return c;
}
}  // namespace pharos::engine
