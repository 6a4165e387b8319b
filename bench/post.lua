-- wrk script: POST one GraphQL request, again and again, and report machine-readable results.
--   WRK_BODY_FILE      file holding the JSON body ({"query": ..., "variables": ...})
--   WRK_AUTHORIZATION  Authorization header value (e.g. "Bearer pos_..." or "PortOne ...");
--                      unset or empty: no header (anonymous)
-- done() prints one line "WRK_JSON {...}" with latencies in microseconds.

local body_file = os.getenv("WRK_BODY_FILE")
local file = assert(io.open(body_file, "rb"), "cannot open WRK_BODY_FILE")
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local authorization = os.getenv("WRK_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
