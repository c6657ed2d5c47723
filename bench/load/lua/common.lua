-- Shared by the scenario scripts (wrk runs each script once per thread, plus once for
-- setup/done): reading the fixture files the harness writes, counting responses per status
-- and printing one summary line the harness parses (wrk's own output has no p95 and no
-- per-status counts).
local common = {}
local threads = {}

-- Lines of a tab-separated file, each split into its fields.
function common.rows(path)
  local rows = {}
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if line ~= "" then
      local fields = {}
      for field in string.gmatch(line, "[^\t]+") do
        table.insert(fields, field)
      end
      table.insert(rows, fields)
    end
  end
  file:close()
  return rows
end

-- This thread's share of ``rows``: every rows[k] with k % count == index, so two threads
-- never send the same write.
function common.share(rows, index, count)
  local mine = {}
  for k, row in ipairs(rows) do
    if (k - 1) % count == index then
      table.insert(mine, row)
    end
  end
  return mine
end

-- The proposal request for one row of the pairs file: project id, token, price, currency.
function common.proposal(pair)
  local body = string.format(
    '{"cover_letter": "Load test proposal: I have shipped this kind of work before.", '
      .. '"price": {"amount": "%s", "currency": "%s"}, "estimated_days": 21}',
    pair[3], pair[4])
  return wrk.format("POST", "/api/v2/projects/" .. pair[1] .. "/proposals", {
    Authorization = "Bearer " .. pair[2],
    ["Content-Type"] = "application/json",
  }, body)
end

function common.setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

statuses = {}

function common.response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function common.done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH-SUMMARY {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, '
      .. '"timeout": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, errors.connect, errors.read, errors.write,
    errors.timeout, table.concat(parts, ", ")))
end

return common
