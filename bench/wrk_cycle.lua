-- wrk script for bench/server_bench.py: request the paths listed in a file, one a line,
-- in turn (each thread starting at a different place), and print one machine-readable
-- RESULT line when the run ends.
--
--   wrk -t1 -c2 -d10s -s bench/wrk_cycle.lua http://127.0.0.1:8000 -- paths.txt

local paths = {}
local next_index = 1
local thread_count = 0

function setup(thread)
  -- Spread the threads' starting points over the list, so they do not ask in lockstep.
  thread:set("start", thread_count * 7919)
  thread_count = thread_count + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  next_index = ((start or 0) % #paths) + 1
end

function request()
  local path = paths[next_index]
  next_index = (next_index % #paths) + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p95_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests,
    summary.duration,
    latency:percentile(50),
    latency:percentile(95),
    errors.status,
    errors.connect + errors.read + errors.write + errors.timeout
  ))
end
