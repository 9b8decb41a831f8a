-- wrk script: posts pre-built InvocationRequest bodies to spawn-proxy, round-robin over actors.
--
--   wrk -c64 -t1 -d10s -s bench/wrk_invoke.lua http://127.0.0.1:PORT -- FILE
--
-- FILE comes from `spawn-bench-requests invocations`: records of (4-byte big-endian length, path,
-- 4-byte big-endian length, protobuf body). Every request is formatted once in init(); request()
-- only picks the next. Each wrk thread starts at a different record so threads do not queue on
-- the same actors. done() prints one machine-readable line, WRK_RESULT key=value..., with the
-- request count, the rate, latency percentiles (microseconds) and every error count.

local requests = {}
local next_index = 1
local thread_id = 0
local thread_count = 0

local function u32(data, at)
  local a, b, c, d = data:byte(at, at + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  local file = assert(io.open(args[1], "rb"), "cannot open " .. tostring(args[1]))
  local data = file:read("*a")
  file:close()
  local headers = {
    ["Content-Type"] = "application/octet-stream",
    ["Accept"] = "application/octet-stream",
  }
  local at = 1
  while at <= #data do
    local path_length = u32(data, at)
    local path = data:sub(at + 4, at + 3 + path_length)
    at = at + 4 + path_length
    local body_length = u32(data, at)
    local body = data:sub(at + 4, at + 3 + body_length)
    at = at + 4 + body_length
    requests[#requests + 1] = wrk.format("POST", path, headers, body)
  end
  assert(#requests > 0, "no requests in " .. args[1])
  next_index = ((thread_id or 0) * 7919) % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index + 1
  if next_index > #requests then
    next_index = 1
  end
  return r
end

function done(summary, latency, _)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_s=%.3f rps=%.0f p50_us=%d p90_us=%d p99_us=%d p999_us=%d "
      .. "max_us=%d mean_us=%.0f connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
