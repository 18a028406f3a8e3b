-- wrk script: whole NHS login sign-ins, as a browser and an app make them: GET /authorize (302 with a code),
-- then POST /token with that code and a structurally valid client assertion. Each thread queues the codes
-- its redirects bring and spends them on its next requests; done() prints the completed sign-ins (token
-- answers with status 200). The signature of the assertion is filler (structural validation does not check
-- it).
local function b64url(s)
  local b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  return ((s:gsub(".", function(x)
    local r, byte = "", x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b:sub(c + 1, c + 1)
  end))
end

local redirect = "https://app.example/cb"
local authorize = "/authorize?response_type=code&client_id=bench&scope=openid%20profile&state=s"
  .. "&redirect_uri=" .. redirect:gsub(":", "%%3A"):gsub("/", "%%2F")
local assertion
local codes = {}
tokens = 0  -- a global, so done() can read each thread's count
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

init = function(args)
  local root = wrk.scheme .. "://" .. wrk.host .. ":" .. wrk.port
  local claims = string.format(
    '{"iss":"bench","sub":"bench","aud":["%s","%s/token"],"jti":"bench","exp":%d}', root, root, os.time() + 3000)
  assertion = b64url('{"alg":"RS512"}') .. "." .. b64url(claims) .. ".c2lnbmF0dXJl"
end

request = function()
  local code = table.remove(codes)
  if code == nil then
    return wrk.format("GET", authorize)
  end
  local body = "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect
    .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    .. "&client_assertion=" .. assertion
  return wrk.format("POST", "/token", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

response = function(status, headers, body)
  local location = headers["location"] or headers["Location"]
  if status == 302 and location then
    table.insert(codes, location:match("[?&]code=([^&]+)"))
  elseif status == 200 then
    tokens = tokens + 1
  end
end

-- latency.lua, appended after this script, defines done() and calls this from it.
report_extra = function()
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("tokens") end
  io.write(string.format("signins %d\n", total))
end
