-- Experts propose on open projects: POST /api/v2/projects/{id}/proposals. Each (expert,
-- project) pair is sent once; a thread that has used all of its pairs starts over, and those
-- repeats get 409 (one active proposal per expert and project), which the harness reports
-- apart from errors.
-- args: a file of "project id <tab> token <tab> price <tab> currency" rows, wrk's thread count.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, response, done = common.setup, common.response, common.done

local pairs_, next_pair

function init(args)
  pairs_ = common.share(common.rows(args[1]), thread_index or 0, tonumber(args[2]))
  next_pair = 0
end

function request()
  next_pair = next_pair % #pairs_ + 1
  return common.proposal(pairs_[next_pair])
end
