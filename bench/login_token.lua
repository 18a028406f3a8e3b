-- wrk script: POST /token to the NHS login fake, the original fake's shortcut (code = an NHS number), with a
-- client assertion that passes structural validation (RS512 header, iss = sub, aud [issuer, token URL], exp
-- within the hour). The signature is filler: structural validation does not check it. Every answer signs an
-- ID token and an access token (RS512), which is what this measures.
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

local patients = {"9657933617", "9658218989", "9658220142", "9686368906", "9735548852", "9450114080"}
local bodies = {}
local counter = 0

init = function(args)
  local root = wrk.scheme .. "://" .. wrk.host .. ":" .. wrk.port
  local claims = string.format(
    '{"iss":"bench","sub":"bench","aud":["%s","%s/token"],"jti":"bench","exp":%d}', root, root, os.time() + 3000)
  local assertion = b64url('{"alg":"RS512"}') .. "." .. b64url(claims) .. ".c2lnbmF0dXJl"
  for i, number in ipairs(patients) do
    bodies[i] = "grant_type=authorization_code&code=" .. number
      .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
      .. "&client_assertion=" .. assertion
  end
end

request = function()
  counter = counter + 1
  return wrk.format("POST", "/token", {["Content-Type"] = "application/x-www-form-urlencoded"},
    bodies[counter % #bodies + 1])
end
