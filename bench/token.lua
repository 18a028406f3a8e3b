-- wrk script: POST /oauth2/token with a fresh client assertion per request (structural validation checks the
-- JWT's header and claims and refuses a reused jti, but not the signature, so the signature is filler).
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function b64url(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end))
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
