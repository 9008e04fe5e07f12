-- wrk script for bench/kv/locks: MODE=set|cas|lock (env), SESSION for lock.
-- set: PUT /v1/kv/bench/set/<n>; cas: PUT ?cas=0 on a new key each time (a
-- create-only CAS that succeeds); lock: alternate ?acquire= and ?release= of
-- one key per connection by the same session (each answers true).
local mode = os.getenv("MODE") or "set"
local session = os.getenv("SESSION") or ""
local n = 0
local thread_id = 0
function setup(thread) thread_id = thread_id + 1; thread:set("tid", thread_id) end
function request()
    n = n + 1
    if mode == "cas" then
        return wrk.format("PUT", "/v1/kv/bench/cas/" .. tid .. "/" .. n .. "?cas=0", nil, "v")
    elseif mode == "lock" then
        local key = "/v1/kv/bench/lock/" .. tid .. "/" .. (n % 64)
        if math.floor(n / 64) % 2 == 0 then
            return wrk.format("PUT", key .. "?acquire=" .. session, nil, "v")
        end
        return wrk.format("PUT", key .. "?release=" .. session, nil, "v")
    end
    return wrk.format("PUT", "/v1/kv/bench/set/" .. tid .. "/" .. (n % 1000), nil, "v")
end
