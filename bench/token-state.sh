#!/usr/bin/env bash
# Token requests per second with and without SIMULATOR_STATE_URL (a redis-server on loopback), twice each in
# one run: 2 workers, wrk 64 connections, bench/token.lua. Needs redis-server, wrk and `make venv`.
set -euo pipefail
cd "$(dirname "$0")/.."
redis_port=${REDIS_PORT:-6390} port=${PORT:-9300}
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
redis=$!
trap 'kill $redis' EXIT
sleep 0.5
for mode in none redis none redis; do
  state=()
  [[ $mode == redis ]] && state=(SIMULATOR_STATE_URL="redis://127.0.0.1:$redis_port/0")
  env SIMULATOR_PORT="$port" SIMULATOR_WORKERS=2 SIMULATOR_PLUGINS=apim_oauth SIMULATOR_ACCESS_LOG=off \
    "${state[@]}" .venv/bin/simulator serve >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 50); do curl -fso /dev/null "localhost:$port/_simulator/plugins" && break; sleep 0.1; done
  wrk -t2 -c64 -d3s -s bench/token.lua "http://127.0.0.1:$port" >/dev/null  # warm-up
  echo "$mode: $(wrk -t2 -c64 -d10s -s bench/token.lua "http://127.0.0.1:$port" | grep -E 'Requests/sec|Non-2xx')"
  kill -INT $server
  wait $server || true
done
