-- wrk script: print one machine-readable line at the end of a run (benchmarks/run parses it).
-- Latency percentiles are in microseconds; errors are socket errors and timeouts, non2xx are
-- answers with a status >= 400 (wrk counts 3xx as fine; none of our URLs redirect).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d bytes=%d duration_us=%d errors=%d non2xx=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
