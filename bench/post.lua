-- wrk script: POST one GraphQL request, again and again, check every response against the one
-- captured before the load, and report machine-readable results.
--   WRK_BODY_FILE      file holding the JSON body ({"query": ..., "variables": ...})
--   WRK_AUTHORIZATION  Authorization header value (e.g. "Bearer pos_..." or "PortOne ...");
--                      unset or empty: no header (anonymous)
--   WRK_EXPECT_FILE    file holding the expected response body, byte for byte (captured with
--                      the same request before the load); every response must be exactly it,
--                      with status 200. Unset: responses are not checked (checked stays 0).
--   WRK_MISMATCH_FILE  where the first response that differs is written (status, then body)
-- done() prints one line "WRK_JSON {...}" with latencies in microseconds and the counts of
-- checked and mismatched responses.
--
-- Lua interns every string, so `body == expected` compares the whole body (same length and
-- same bytes) for the price of a pointer comparison: checking costs wrk almost nothing.

local function read_file(name)
  local file = assert(io.open(name, "rb"), "cannot open " .. name)
  local text = file:read("*a")
  file:close()
  return text
end

wrk.method = "POST"
wrk.body = read_file(os.getenv("WRK_BODY_FILE"))
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local authorization = os.getenv("WRK_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

-- Each wrk thread runs this script in a Lua state of its own: the counts below are per thread,
-- and done() (in the main state) reads them through the thread objects setup() kept.
local expect_file = os.getenv("WRK_EXPECT_FILE")
local expected = nil
if expect_file ~= nil and expect_file ~= "" then
  expected = read_file(expect_file)
end
local mismatch_file = os.getenv("WRK_MISMATCH_FILE")
checked = 0
mismatched = 0

if expected ~= nil then
  function response(status, headers, body)
    checked = checked + 1
    if status ~= 200 or body ~= expected then
      mismatched = mismatched + 1
      if mismatched == 1 and mismatch_file ~= nil and mismatch_file ~= "" then
        local out = io.open(mismatch_file, "wb")
        if out ~= nil then
          out:write(string.format("HTTP %d, %d bytes (expected %d)\n", status, #body, #expected))
          out:write(body)
          out:close()
        end
      end
    end
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total_checked, total_mismatched = 0, 0
  for _, thread in ipairs(threads) do
    total_checked = total_checked + (thread:get("checked") or 0)
    total_mismatched = total_mismatched + (thread:get("mismatched") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, '
      .. '"checked": %d, "mismatched": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, total_checked, total_mismatched))
end
