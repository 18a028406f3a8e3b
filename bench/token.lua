-- wrk script: POST /oauth2/token with a fresh client assertion per request (structural validation checks the
-- JWT's header and claims and refuses a reused jti, but not the signature, so the signature is filler).
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local sym = {}
for i = 1, 64 do sym[i - 1] = alphabet:sub(i, i) end

-- base64url without padding, three bytes at a time with arithmetic (wrk's LuaJIT has no bit ops in 5.1
-- syntax, but integer division is exact here): the load generator's cost must stay small next to the server's.
local function b64url(data)
  local out, n = {}, #data
  for i = 1, n - 2, 3 do
    local a, b, c = data:byte(i, i + 2)
    local v = a * 65536 + b * 256 + c
    out[#out + 1] = sym[math.floor(v / 262144)] .. sym[math.floor(v / 4096) % 64]
      .. sym[math.floor(v / 64) % 64] .. sym[v % 64]
  end
  local rest = n % 3
  if rest == 1 then
    local v = data:byte(n) * 65536
    out[#out + 1] = sym[math.floor(v / 262144)] .. sym[math.floor(v / 4096) % 64]
  elseif rest == 2 then
    local a, b = data:byte(n - 1, n)
    local v = a * 65536 + b * 256
    out[#out + 1] = sym[math.floor(v / 262144)] .. sym[math.floor(v / 4096) % 64] .. sym[math.floor(v / 64) % 64]
  end
  return table.concat(out)
end

local header = b64url('{"alg":"RS512","typ":"JWT","kid":"bench-1"}')
local counter = 0
thread_id = "0"  -- a global: setup() overrides it per thread with thread:set
local threads = 0

-- Every thread has its own Lua state with the same random seed: number them so jtis never collide.
setup = function(thread)
  threads = threads + 1
  thread:set("thread_id", tostring(threads) .. "-" .. tostring(os.time()))
end

request = function()
  counter = counter + 1
  local claims = string.format(
    '{"iss":"bench","sub":"bench","aud":"http://127.0.0.1/oauth2/token","jti":"%s-%d","exp":%d}',
    thread_id, counter, os.time() + 240)
  local jwt = header .. "." .. b64url(claims) .. ".c2lnbmF0dXJl"
  local body = "grant_type=client_credentials"
    .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    .. "&client_assertion=" .. jwt
  return wrk.format("POST", "/oauth2/token", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
