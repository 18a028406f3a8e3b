-- Appended to every wrk script the benchmark runs: exact latency figures, in microseconds, at the end.
-- wrk's own --latency table prints seconds with two decimals (10 ms steps): too coarse for delay overshoot.
done = function(summary, latency, requests)
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("exact-p%s-us %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("exact-min-us %d\nexact-max-us %d\n", latency.min, latency.max))
  if report_extra then report_extra() end  -- a scenario's own figures (signin.lua: completed sign-ins)
end
