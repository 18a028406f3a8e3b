-- wrk script: GET patient-check for a random valid NHS number (Modulus 11) on every request.
local weights = {10, 9, 8, 7, 6, 5, 4, 3, 2}
math.randomseed(os.time() + math.floor(os.clock() * 1e6))

local function nhs_number()
  while true do
    local digits, total = {}, 0
    for i = 1, 9 do
      local d = (i == 1) and math.random(1, 9) or math.random(0, 9)
      digits[i] = d
      total = total + d * weights[i]
    end
    local check = 11 - (total % 11)
    if check == 11 then check = 0 end
    if check ~= 10 then return table.concat(digits) .. check end
  end
end

request = function()
  return wrk.format("GET", "/eligibility-signposting-api/patient-check/" .. nhs_number())
end
