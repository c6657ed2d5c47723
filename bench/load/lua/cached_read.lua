-- Public directory reads, cached after warm-up: a handful of realistic query variants,
-- one after another, each thread starting at a different one.
-- args: a file of request paths (one a line).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, response, done = common.setup, common.response, common.done

local paths, next_path

function init(args)
  paths = {}
  for _, row in ipairs(common.rows(args[1])) do
    table.insert(paths, row[1])
  end
  next_path = (thread_index or 0) % #paths
end

function request()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end
