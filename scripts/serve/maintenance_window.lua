-- Hooks for `lcmcoord serve`: let VNFCs be replaced only inside a daily maintenance window
-- (UTC); outside it the VNFM is told to come back when the window opens (503 + Retry-After)
-- (docs/serve.md, "Hook examples").
--
-- Settings (environment of the serve process): LCMCOORD_WINDOW="HH:MM-HH:MM" in UTC (it may
-- span midnight, e.g. 22:00-04:00); LCMCOORD_WINDOW_MAX_WAIT: the longest Retry-After sent,
-- seconds (default 3600: the VNFM asks again at least hourly).
local WINDOW = assert(os.getenv("LCMCOORD_WINDOW"), "set LCMCOORD_WINDOW=HH:MM-HH:MM (UTC)")
local MAX_WAIT = tonumber(os.getenv("LCMCOORD_WINDOW_MAX_WAIT") or "3600")

local h1, m1, h2, m2 = WINDOW:match("^(%d%d):(%d%d)%-(%d%d):(%d%d)$")
assert(h1, "LCMCOORD_WINDOW must look like 22:00-04:00, not " .. WINDOW)
local OPEN = tonumber(h1) * 3600 + tonumber(m1) * 60
local CLOSE = tonumber(h2) * 3600 + tonumber(m2) * 60
local DAY = 86400

-- Seconds since midnight UTC, now.
local function now_of_day()
  local t = os.time()
  return t % DAY
end

local function inside(s)
  if OPEN <= CLOSE then return s >= OPEN and s < CLOSE end
  return s >= OPEN or s < CLOSE -- spans midnight
end

return {
  decide = function(req, ctx)
    local s = now_of_day()
    if inside(s) then return {result = "CONTINUE"} end
    local wait = (OPEN - s) % DAY
    ctx.log(("outside the window %s; it opens in %d s"):format(WINDOW, wait))
    return {busy = math.max(1, math.min(wait, MAX_WAIT))}
  end,
}
