// agent::serf_queries and Serf's key manager: Serf's queries over one
// memberlist, and the internal key queries that rotate the gossip keyring.
//
// - serf_queries: sans-I/O (no clock, no sockets of its own; it sends through
//   the memberlist's user-message API and is handed `now`), so the agent
//   drives it on real sockets and tests on the simulated network. A query is
//   handled locally at once and gossiped (memberlist broadcast_user); every
//   member handles each (LTime, ID) once (Serf's 512-slot query buffer), relays
//   it unless query_flag_no_broadcast, checks its filters (node names; a tag
//   regex, ECMAScript here where Go uses RE2), acks at once if asked
//   (query_flag_ack), and sends its answer in a messageQueryResponse over UDP
//   to the query's Addr:Port (the originator itself short-cuts the network).
//   The originator collects one answer and one ack per node until close().
//   Not done: relayed responses (RelayFactor, messageRelay), Serf's conflict
//   query, queryMinTime. The query clock goes in Serf's push/pull (lan_gossip).
// - Key queries (_serf_install-key, _serf_use-key, _serf_remove-key,
//   _serf_list-keys): handle_key_query() applies one to a keyring with
//   memberlist's rules and Serf's messages and persists the ring through a
//   callback; summarize() aggregates the answers as Serf's KeyManager
//   (KeyResponse: Keys/PrimaryKeys counts, per-node Messages, "n/N nodes
//   reported failure").
// - Keyring files: Consul's serf/local.keyring, a JSON list of base64 keys,
//   primary first.
//
// Everything lives on the gossip shard; plain data otherwise.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/clock.hh"
#include "protocols/gossip/keyring.hh"
#include "protocols/gossip/serf.hh"
#include "services/membership/memberlist.hh"

namespace pharos::agent {

class serf_queries {
public:
    using time_point = engine::clock::time_point;
    using duration = engine::clock::duration;

    // A query this node started. Answers and acks are kept in arrival order, one per node.
    struct pending {
        uint64_t ltime = 0;
        uint32_t id = 0;
        time_point deadline{};
        size_t num_nodes = 0;  // memberlist's NumMembers when it was sent
        std::vector<std::pair<std::string, std::string>> responses;  // (From, Payload)
        std::set<std::string> responded, acks;
        std::function<void()> on_change;  // after each new answer or ack
        bool closed = false;
        bool finished(time_point now) const { return closed || now > deadline; }
    };
    // Answers one query that passed the filters: the answer's payload, or nullopt for none.
    using handler = std::function<std::optional<std::string>(const gossip::serf::query&)>;

    serf_queries(membership::memberlist& ml, std::string self, gossip::serf::tags tags, uint64_t seed);

    void set_handler(handler h) { handler_ = std::move(h); }
    // A memberlist user message: true if it was a query or a query response (and handled here).
    bool on_user_msg(std::string_view msg, time_point now);
    // Serf's DefaultQueryTimeout: GossipInterval * QueryTimeoutMult (16) * ceil(log10(N + 1)).
    duration default_timeout() const;
    // Starts a query; it stays registered (collecting answers) until close(). timeout <= 0: the default.
    std::shared_ptr<pending> start(std::string name, std::string payload, time_point now, duration timeout = {},
                                   uint32_t flags = 0, std::vector<std::string> filters = {});
    void close(const std::shared_ptr<pending>& p);
    void close_all();  // shutdown: every running query is closed and its on_change called
    uint64_t clock() const { return clock_; }
    void witness(uint64_t lt) {  // Serf's LamportClock.Witness
        if (lt >= clock_) clock_ = lt + 1;
    }

private:
    struct seen {
        uint64_t ltime = 0;
        std::vector<uint32_t> ids;
    };
    // Serf's handleQuery: false if old or already seen (no relay).
    bool handle_query(const gossip::serf::query& q, std::string_view raw);
    bool passes_filters(const std::vector<std::string>& filters) const;
    void respond(const gossip::serf::query& q, gossip::serf::query_response r);
    void on_response(const gossip::serf::query_response& r, time_point now);

    membership::memberlist& ml_;
    std::string self_;
    gossip::serf::tags tags_;
    handler handler_;
    std::mt19937 rng_;
    uint64_t clock_ = 0;
    std::vector<seen> buffer_;
    std::map<uint64_t, std::shared_ptr<pending>> running_;  // by LTime
};

constexpr size_t query_response_size_limit = 1024;  // Serf's QueryResponseSizeLimit

// Serf's internal key query names.
constexpr const char* install_key_query = "_serf_install-key";
constexpr const char* use_key_query = "_serf_use-key";
constexpr const char* remove_key_query = "_serf_remove-key";
constexpr const char* list_keys_query = "_serf_list-keys";

// Persists the ring after a change: nullopt, or an error text (the answer then fails with it).
using keyring_saver = std::function<std::optional<std::string>(const gossip::keyring&)>;

// Handles a query if it is one of the four key queries: the answer's payload (a nodeKeyResponse), else
// nullopt. `ring` is the memberlist's keyring (empty: encryption not enabled); `save` may be empty.
std::optional<std::string> handle_key_query(const gossip::serf::query& q, gossip::keyring& ring,
                                            const keyring_saver& save);

// Serf's KeyResponse, as Consul's KeyringResponse reports it.
struct key_response {
    std::map<std::string, std::string> messages;  // node → message
    int num_nodes = 0, num_resp = 0, num_err = 0;
    std::map<std::string, int> keys, primary_keys;  // base64 key → nodes
    std::string error;                              // "" when every node answered with success
};
// The answers of a key query, counted as Serf's streamKeyResp does (stopping at num_nodes answers).
key_response summarize(const serf_queries::pending& p);

// Keyring files (Consul's <data_dir>/serf/local.keyring).
std::string encode_keyring_file(const std::vector<std::string>& raw_keys);  // JSON, base64, primary first
// The raw keys, or an error text in `err`.
std::optional<std::vector<std::string>> decode_keyring_file(std::string_view text, std::string& err);
// Writes atomically (temp file + rename), creating the directory; nullopt or an error text. Blocking I/O
// of a few hundred bytes on the gossip shard, as Serf writes it inline.
std::optional<std::string> write_keyring_file(const std::string& path, const std::vector<std::string>& raw_keys);
// nullopt if the file does not exist; an error text in `err` if it cannot be read or parsed.
std::optional<std::vector<std::string>> read_keyring_file(const std::string& path, std::string& err);

}  // namespace pharos::agent
