-- The event loop's timers and deadlines, by a randomized property test
-- (SPEC §3 "Event loop and servers": sleep and timeouts inside tasks,
-- ETIMEDOUT, suspending only their task; stop and run again).
--
-- The test itself is spec/support/timers_prop.lua, run in a child lua5.4
-- once per part, on the epoll core and on the poll(2) fallback
-- (build/poll): it checks the wake order of thousands of sleepers against
-- a model (their deadlines, sorted), that each wakes once and never early,
-- that waits woken early (data, end of stream, close) take their timers
-- out of the middle of the heap without disturbing the rest, that a
-- result is data or ETIMEDOUT and never loses data, that stop() and run()
-- again lose and repeat nothing, and that no finished task stays alive.
--
-- Seeds are fixed, so a failure repeats; SOCKIT_SEED=n tries others. A
-- failure names its part, backend and seed; to repeat it by hand:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='./?.so;;' \
--     lua5.4 spec/support/timers_prop.lua PART SEED [SLOW]
-- (LUA_CPATH='build/poll/?.so;;' for the poll(2) fallback).

local H = require "support.helpers"

local script = assert(H.read_file(H.root .. "/spec/support/timers_prop.lua"))
local base = tonumber(os.getenv("SOCKIT_SEED")) or 7301

local parts = {
  {"order", "2,000 sleepers, spawned up front and from running tasks in "
            .. "rounds, wake once, never early, in deadline order"},
  {"stop", "the same with sockit.stop() from random tasks and run() again: "
           .. "none lost, none twice"},
  {"io", "deadlines of reads, accepts, recvfroms and writes woken early by "
         .. "data or close among 3,000 sleepers; serve's idle timeout"},
  {"race", "data arriving within 2 ms of the deadline: data or ETIMEDOUT, "
           .. "never both, never lost"},
  {"iostop", "deadlines and readiness with sockit.stop() from random tasks"},
}

describe("the event loop's timers (randomized, seeded)", function()
  for b, backend in ipairs({"epoll", "poll"}) do
    for p, part in ipairs(parts) do
      local seed = base + 10 * b + p
      it(("%s on %s: %s (seed %d)"):format(part[1], backend, part[2], seed), function()
        local out, status, err = H.run_lua_on(backend, script, {
          args = {part[1], seed, H.slow}, timeout = math.ceil(60 * H.slow)})
        assert.are.equal(0, status, "seed " .. seed .. ": " .. err .. out)
        -- (the child really ran on that backend)
        assert.matches("^ok " .. part[1] .. " on " .. backend .. ":", out)
      end)
    end
  end
end)
