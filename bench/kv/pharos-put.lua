-- pharos-put.lua: PUT /v1/kv/k0000000.. with a VALUE_BYTES-byte value (default 100), the same key
-- stream as etcd-put.lua. CAS=1: PUT ?cas=0 (create only) on keys never used before, so every CAS succeeds.
local KEYSPACE = tonumber(os.getenv("KEYSPACE") or "100000")
local VAL = string.rep("v", tonumber(os.getenv("VALUE_BYTES") or "100"))
local CAS = os.getenv("CAS") == "1"
local threads_n, n = 0, 0
function setup(thread) thread:set("tid", threads_n); threads_n = threads_n + 1 end
function init(args) n = (tid or 0) * 7919 end
function request()
  n = n + 1
  if CAS then
    return wrk.format("PUT", string.format("/v1/kv/cas/t%d/k%09d?cas=0", tid or 0, n), nil, VAL)
  end
  return wrk.format("PUT", string.format("/v1/kv/k%07d", n % KEYSPACE), nil, VAL)
end
