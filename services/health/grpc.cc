#include "services/health/probe.hh"

namespace pharos::health {
using namespace engine;

task<probe_result> probe_grpc(std::string target, bool use_tls, std::string tls_server_name, bool skip_verify,
                              deadline dl) {
    probe_result r;
    r.output = "gRPC check " + target + ": gRPC probes are not implemented yet";
    co_return r;
}

}  // namespace pharos::health
