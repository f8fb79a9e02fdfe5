-- spec/faults_spec.lua — the Lua layer under injected faults (issue 5).
--
-- A child lua5.4 loads the fault-injection build of the core
-- (src/faults.c: make build/faults/sockit/core.so) and runs
-- spec/support/faults_run.lua: conn:read("l"/"L"/"a"/n/0, several
-- formats in one call), recv, lines, write (thousands of arguments,
-- megabytes in one call), listener:accept, sockit.connect, sendto/
-- recvfrom/send/recv of datagram endpoints and a serve echo server, over
-- tcp and unix, checking every byte. Each run names the rules
-- ("op:kind:n": every n-th call of op is cut short, or fails with EINTR
-- or EAGAIN before reaching the kernel) and must
--   * pass every scenario, and
--   * show that every rule really fired (its count of injected faults).
--
-- Modes: "loop" (tasks on the event loop), "blocking" (no tasks; waits
-- are poll(2) on the one socket). An injected EAGAIN is a lie the kernel
-- never tells an edge-triggered epoll loop (it would wait for an edge
-- that has already come), so the loop meets EAGAIN on the poll(2)
-- backend (build/faults-poll), whose waits are level-triggered.
--
-- make sanitize points SOCKIT_FAULTS_CORE / SOCKIT_FAULTS_POLL_CORE at
-- fault-injection builds with ASan and UBSan.

local H = require "support.helpers"

local EPOLL = os.getenv("SOCKIT_FAULTS_CORE") or (H.root .. "/build/faults")
local POLL = os.getenv("SOCKIT_FAULTS_POLL_CORE") or (H.root .. "/build/faults-poll")
local SLOW = tonumber(os.getenv("SOCKIT_SLOW") or "") or 1
local SCALE = SLOW > 1 and 0.05 or 1       -- valgrind: smaller payloads

local ALL = "send:eintr:4,send:short:2,send:eagain:7,recv:eagain:5,recv:short:3,"
  .. "recv:eintr:7,accept:eintr:2,accept:eagain:3,connect:eagain:3,connect:eintr:5"

local RUNS = {
  -- the epoll loop: short transfers and EINTR everywhere
  {"loop", EPOLL, "send:short:2"},
  {"loop", EPOLL, "recv:short:2"},
  {"loop", EPOLL, "send:eintr:2,recv:eintr:2,accept:eintr:2"},
  {"loop", EPOLL, "connect:eintr:2"},
  {"loop", EPOLL, "connect:eagain:2"},
  {"loop", EPOLL, "send:eintr:4,send:short:2,recv:eintr:5,recv:short:3,"
                  .. "accept:eintr:2,connect:eagain:3,connect:eintr:7"},
  -- the level-triggered loop: EAGAIN as well
  {"loop", POLL, "send:eagain:2"},
  {"loop", POLL, "recv:eagain:2"},
  {"loop", POLL, "accept:eagain:2"},
  {"loop", POLL, ALL},
  -- no loop: blocking calls
  {"blocking", EPOLL, "send:short:2,recv:short:2"},
  {"blocking", EPOLL, "send:eagain:2,recv:eagain:3,accept:eagain:2,connect:eagain:2"},
  {"blocking", EPOLL, "send:eintr:3,recv:eintr:3,accept:eintr:3,connect:eintr:3"},
  {"blocking", EPOLL, ALL},
}

describe("the Lua layer under injected faults", function()
  local total, runs = 0, 0
  local t0 = H.now()

  teardown(function()
    io.stderr:write(("\nfaults: %d faults injected over %d runs in %.1f s, every byte delivered\n")
      :format(total, runs, H.now() - t0))
  end)

  it("has the fault-injection builds (make test builds them)", function()
    assert.is_true(H.exists(EPOLL .. "/sockit/core.so"), "make build/faults/sockit/core.so")
    assert.is_true(H.exists(POLL .. "/sockit/core.so"), "make build/faults-poll/sockit/core.so")
  end)

  for i, run in ipairs(RUNS) do
    local mode, core_dir, rules = run[1], run[2], run[3]
    local backend = core_dir == POLL and "poll" or "epoll"
    it(("delivers every byte: %s (%s, %s)"):format(rules == ALL and "every fault at once" or rules,
                                                   mode, backend), function()
      local dir = H.tmpdir()
      local code = "package.cpath = " .. ("%q"):format(core_dir .. "/?.so;") .. " .. package.cpath\n"
        .. "assert(loadfile(" .. ("%q"):format(H.root .. "/spec/support/faults_run.lua") .. "))(...)"
      local out, status, err = H.run_lua(code, {
        args = {rules, mode, tostring(1000 + i), dir, tostring(SCALE)},
        timeout = 60 * SLOW,
      })
      H.rmdir(dir)
      local scenarios, failed = 0, {}
      for name in out:gmatch("ok ([^\n]+)") do scenarios = scenarios + 1; assert(name) end
      for line in out:gmatch("FAIL [^\n]+") do failed[#failed + 1] = line end
      assert.are.same({}, failed)
      assert.are.equal(0, status, out .. err)
      assert.is_true(scenarios >= 6, out)
      -- every rule fired
      local n = 0
      for rule in rules:gmatch("[^,]+") do
        local count = tonumber(out:match("\nrule " .. H.pat(rule) .. " (%d+)"))
        assert.is_truthy(count, "no count for " .. rule .. ":\n" .. out)
        assert.is_true(count > 0, rule .. " never fired")
        n = n + 1
      end
      local injected = tonumber(out:match("\ninjected (%d+)"))
      assert.is_true(injected >= n)
      total = total + injected
      runs = runs + 1
    end)
  end
end)
