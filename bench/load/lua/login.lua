-- POST /api/v2/auth/login with the correct passwords of demo accounts, in turn (a wrong one
-- would count towards the brute-force lockout).
-- args: a file of "email <tab> password" rows.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, response, done = common.setup, common.response, common.done

local bodies, next_body

function init(args)
  bodies = {}
  for _, row in ipairs(common.rows(args[1])) do
    table.insert(bodies, string.format('{"email": "%s", "password": "%s"}', row[1], row[2]))
  end
  next_body = (thread_index or 0) % #bodies
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/api/v2/auth/login", { ["Content-Type"] = "application/json" },
    bodies[next_body])
end
