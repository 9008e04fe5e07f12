-- b64.lua: tiny base64 encoder (wrk embeds LuaJIT, which provides the bit library); perf-anchors.md §6.4
local bit, chars = require("bit"), 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function b64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = bit.bor(bit.lshift(a, 16), bit.lshift(b or 0, 8), c or 0)
    local function ch(s) local k = bit.band(bit.rshift(n, s), 63) + 1; return chars:sub(k, k) end
    out[#out + 1] = ch(18) .. ch(12) .. (b and ch(6) or '=') .. (c and ch(0) or '=')
  end
  return table.concat(out)
end
