-- GET /api/v2/auth/me with the bearer tokens of several demo accounts, in turn.
-- args: a file of tokens (one a line).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, response, done = common.setup, common.response, common.done

local tokens, next_token

function init(args)
  tokens = {}
  for _, row in ipairs(common.rows(args[1])) do
    table.insert(tokens, row[1])
  end
  next_token = (thread_index or 0) % #tokens
end

function request()
  next_token = next_token % #tokens + 1
  return wrk.format("GET", "/api/v2/auth/me", { Authorization = "Bearer " .. tokens[next_token] })
end
