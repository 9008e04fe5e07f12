-- etcd-put.lua: POST /v3/kv/put, 8-byte keys k0000000.., VALUE_BYTES-byte value (default 100)
dofile("b64.lua")
local KEYSPACE = tonumber(os.getenv("KEYSPACE") or "100000")
local VAL = b64(string.rep("v", tonumber(os.getenv("VALUE_BYTES") or "100")))
local threads_n, n = 0, 0
function setup(thread) thread:set("tid", threads_n); threads_n = threads_n + 1 end
function init(args) n = (tid or 0) * 7919 end
function request()
  n = n + 1
  local body = '{"key":"' .. b64(string.format("k%07d", n % KEYSPACE)) .. '","value":"' .. VAL .. '"}'
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
end
