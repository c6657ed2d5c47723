-- Realistic traffic: 80 % public reads (directory lists and expert details, half each),
-- 15 % authenticated reads (GET /api/v2/auth/me), 5 % writes (proposals, as in
-- auth_write.lua).
-- args: directory paths file, expert detail paths file, tokens file, pairs file, wrk's
-- thread count.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, response, done = common.setup, common.response, common.done

local lists, details, tokens, pairs_, next_pair

local function column(path)
  local values = {}
  for _, row in ipairs(common.rows(path)) do
    table.insert(values, row[1])
  end
  return values
end

function init(args)
  lists = column(args[1])
  details = column(args[2])
  tokens = column(args[3])
  pairs_ = common.share(common.rows(args[4]), thread_index or 0, tonumber(args[5]))
  next_pair = 0
  math.randomseed(1000 + (thread_index or 0))
end

function request()
  local draw = math.random()
  if draw < 0.40 then
    return wrk.format("GET", lists[math.random(#lists)])
  elseif draw < 0.80 then
    return wrk.format("GET", details[math.random(#details)])
  elseif draw < 0.95 then
    local token = tokens[math.random(#tokens)]
    return wrk.format("GET", "/api/v2/auth/me", { Authorization = "Bearer " .. token })
  end
  next_pair = next_pair % #pairs_ + 1
  return common.proposal(pairs_[next_pair])
end
