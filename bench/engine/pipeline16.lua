-- pipeline16.lua: wrk script that pipelines 16 "GET /" requests per write.
-- wrk parses the returned string once, sees 16 requests in it, and counts each
-- response separately (a new batch is written only after all 16 answers).
-- Usage: wrk -t1 -c64 -d10s -s bench/engine/pipeline16.lua http://127.0.0.1:18081/

local depth = 16
local batch

init = function(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   batch = table.concat(r)
end

request = function()
   return batch
end
