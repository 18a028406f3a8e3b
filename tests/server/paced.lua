-- wrk, closed loop, arriving evenly: each connection's first request is an undelayed /health, and its next
-- one is held back by its share of the delay (connection i of n waits i/n of it), so that n connections
-- whose answers take the delay send n/delay requests a second spread evenly, not in waves of n at once
-- (a wave waits in the kernel before the server reads it, which no server-side clock can see).
--
--   wrk -t2 -c200 -d12s -s paced.lua <base> -- <connections per thread> <delay ms> <path>
--
-- done() prints `sent <n>` (delayed requests written, answered or not) and `delayed-p99-us <n>`: the exact
-- 99th percentile of the delayed requests' latencies, from wrk's microsecond histogram less the /health ones.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  per_thread, spread, path = tonumber(args[1]), tonumber(args[2]), args[3]
  firsts, staggered, sent = 0, 0, 0
end

function request()
  if firsts < per_thread then
    firsts = firsts + 1
    return wrk.format("GET", "/health")
  end
  sent = sent + 1
  return wrk.format("GET", path)
end

function delay()
  if staggered < per_thread then
    staggered = staggered + 1
    return staggered * spread / per_thread
  end
  return 0
end

function done(summary, latency, requests)
  local sent_total, firsts_total = 0, 0
  for _, thread in ipairs(threads) do
    sent_total = sent_total + thread:get("sent")
    firsts_total = firsts_total + thread:get("firsts")
  end
  -- The /health answers are the fastest latencies: the delayed p99 is the total's at that rank.
  local delayed = summary.requests - firsts_total
  local p = 100 * (firsts_total + 0.99 * delayed) / summary.requests
  io.write(string.format("sent %d\nanswered %d\ndelayed-p99-us %d\n", sent_total, delayed, latency:percentile(p)))
end
