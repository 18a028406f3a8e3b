-- wrk script: the simulator's load-test targets, written in by `simulator targets --format wrk`.
--
--   simulator targets --format wrk --base-url http://localhost:9123 > targets.lua
--   wrk -t2 -c8 -d30s --latency -s targets.lua http://localhost:9123
--
-- The targets' paths go to the host of wrk's URL (its own path is not used); each request is the next
-- target, over and over. No two threads send the same target within a round (a token target's jti is
-- accepted once): each takes every n-th one, n being wrk's -t (read from /proc/self/cmdline on Linux;
-- elsewhere each thread starts at its own target). Generate at least as many token targets as the test sends.
-- wrk prints "Non-2xx or 3xx responses: N" when any answer was an error.

local targets = {}
local function add(chunk)
  for _, target in ipairs(chunk()) do targets[#targets + 1] = target end
end

-- simulator targets: the targets go here

-- wrk's thread count (-t N, -tN, --threads N, --threads=N; 2 when not given), or nil where unknown.
local function wrk_threads()
  local file = io.open("/proc/self/cmdline", "rb")
  if not file then return nil end
  local argv = {}
  for word in file:read("*a"):gmatch("([^%z]*)%z") do argv[#argv + 1] = word end
  file:close()
  for i, word in ipairs(argv) do
    if word == "--" then break end
    local value = word:match("^%-t(%d+)$") or word:match("^%-%-threads=(%d+)$")
    if word == "-t" or word == "--threads" then value = argv[i + 1] end
    if value then return tonumber(value) end
  end
  return 2
end

local stride = wrk_threads()
local started = 0
first = 1  -- this thread's number, from 1: setup() sets it in each thread's own Lua state

setup = function(thread)
  started = started + 1
  thread:set("first", started)
end

local requests = {}
local position = 0

init = function(args)
  if #targets == 0 then
    io.stderr:write("targets.lua: no targets\n")
    os.exit(2)
  end
  -- Each thread formats its share once: wrk.format on every request would cost the load generator more.
  local from, step = first, stride
  if step == nil or first > #targets then  -- unknown thread count, or more threads than targets
    from, step = 1, 1
    position = (first - 1) % #targets
  end
  for i = from, #targets, step do
    local t = targets[i]
    requests[#requests + 1] = wrk.format(t[1], t[2], t[3], t[4])
  end
end

request = function()
  position = position % #requests + 1
  return requests[position]
end
