-- Refresh rotation churn: each wrk thread (run with -t N -c N: one connection per thread) owns one session
-- family and presents its live refresh token, taking the successor from each response.
-- Needs DIR/refresh-<thread>.txt from prepare.py; set DIR with the environment variable TOKENS_DIR.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("index", threads)
end

function init(args)
  local file = assert(io.open(os.getenv("TOKENS_DIR") .. "/refresh-" .. index .. ".txt"))
  token = file:read("*l")
  file:close()
  failures = 0
end

function request()
  return wrk.format("POST", "/v1/auth/refresh", { ["Content-Type"] = "application/json" },
    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    token = body:match('"refresh_token":"([^"]+)"')
  else
    failures = failures + 1
  end
end
