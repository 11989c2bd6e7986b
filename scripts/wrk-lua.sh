# wrk scripts shared by the HTTP benchmarks (sourced by bench-http.sh and bench-pg.sh):
#   eligibility_lua FIRST_ID   every request a new return (and a new, unrated buyer);
#                              WRK_DELAY_MS paces each connection
#   advance_lua FIRST_ID       eligibility for a new return, then its tracking number
#   rated_buyer_lua BUYER      the eligibility-service check's load: one rated buyer,
#                              a random new return id each request, seeded per run
# Each wrk thread takes its own range of return ids from FIRST_ID on.

# What both share: the headers, a range of return ids per wrk thread starting at $1,
# and the eligibility request of a new return (of a new, unrated buyer unless one is
# given).
lua_common() {
  cat <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("FASTREFUND_API_TOKEN")
local thread_no = 0
function setup(thread)
  thread_no = thread_no + 1
  thread:set("base", $1 + thread_no * 1000000000)
end
function eligibility(id, buyer)
  local body = string.format('{"return_id":%d,"buyer_id":%d,"order_id":%d,"merchant_id":1,"category":"shoes","amount":"59.90","reason":"no_reason","delivered_at":"2026-06-30T02:00:00Z","requested_at":"2026-07-01T02:00:00Z"}', id, buyer or id, id)
  return wrk.format(nil, "/v1/eligibility", nil, body)
end
EOF
}

eligibility_lua() {
  echo "-- Every request a new return (and a new, unrated buyer: the default star applies)."
  lua_common "$1"
  cat <<'EOF'
local n = 0
function request()
  n = n + 1
  return eligibility(base + n)
end
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pause > 0 then
  function delay() return pause end
end
EOF
}

advance_lua() {
  cat <<'EOF'
-- One connection per thread, so requests and responses alternate: ask eligibility for
-- a new return, and once it is answered post its tracking number (advanced).
-- (wrk calls request() once more than it sends, to check the script: the toggle is
-- driven by responses so that this does not shift the pairs.)
EOF
  lua_common "$1"
  cat <<'EOF'
local n = 0
local tracking_next = false
function request()
  if tracking_next then
    return wrk.format(nil, string.format("/v1/returns/%d/tracking", base + n), nil, string.format('{"tracking_number":"SF%d"}', base + n))
  end
  n = n + 1
  return eligibility(base + n)
end
function response(status, headers, body)
  if status ~= 200 then io.stderr:write("HTTP " .. status .. ": " .. body .. "\n") end
  tracking_next = not tracking_next
end
EOF
}

rated_buyer_lua() {
  echo "-- One rated buyer ($1), a random new return id on every request (as the"
  echo "-- eligibility-service check), seeded anew on every run: wrk's Lua otherwise starts"
  echo "-- from the same seed, and a second run would replay the first one's return ids."
  lua_common 0
  cat <<EOF
math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6))
local counter = 0
function request()
  counter = counter + 1
  return eligibility(math.random(1, 1000000000) * 1000 + counter % 1000, $1)
end
EOF
}
