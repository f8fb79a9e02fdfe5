-- Signals and waits (SPEC §1: "a syscall interrupted by a signal (EINTR)
-- is retried"): a wait that a signal cuts short waits again, and Ctrl-C
-- still stops the program. The standalone lua turns SIGINT into a hook
-- that raises "interrupted!" at the next Lua instruction; a wait that
-- retried on EINTR forever kept it from ever running, so Ctrl-C did
-- nothing to a blocking accept, a read or a server in sockit.run().

local H = require "support.helpers"

-- the child's first line: its own pid, then "ready" just before it waits
local PRELUDE = [[
  local sockit = require "sockit"
  local core = require "sockit.core"
  io.write("pid ", io.open("/proc/self/stat"):read("n"), "\n")
  local function ready() io.write("ready\n"); io.flush() end
]]

local BLOCKERS = {
  {"a core accept", [[
    local s = core.socket("inet", "stream")
    assert(s:bind("127.0.0.1", 0)); assert(s:listen())
    ready(); print(s:accept())]]},
  {"listener:accept()", [[
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    ready(); print(l:accept())]]},
  {"conn:read() from a silent peer", [[
    local a, b = core.socketpair()
    local conn = require("sockit.conn").new(a, {})
    ready(); print(conn:read("l"), b)]]},
  {"sockit.sleep outside a task", [[
    ready(); sockit.sleep(60)]]},
  {"sockit.run() serving", [[
    local server = assert(sockit.serve("tcp", "127.0.0.1:0", function() end))
    ready(); sockit.run(); print(server)]]},
  {"poller:wait()", [[
    local p = core.poller()
    ready(); print(p:wait())]]},
}

-- a unix connect to a full backlog is one blocking connect(2) (there is
-- nothing to poll for): with no timeout and with one, Ctrl-C stops it too
for _, t in ipairs({"nil", "60", "math.huge"}) do
  BLOCKERS[#BLOCKERS + 1] = {"a core unix connect to a full backlog, timeout " .. t, [[
    local name = "\0sockit-interrupt-" .. math.random(1 << 30)
    local l = core.socket("unix", "stream")
    assert(l:bind(name)); assert(l:listen(0))
    local held = {}
    for _ = 1, 16 do   -- fill the backlog
      local c = core.socket("unix", "stream"); c:settimeout(0)
      if not c:connect(name) then break end
      held[#held + 1] = c
    end
    local c = core.socket("unix", "stream"); c:settimeout(]] .. t .. [[)
    ready(); print(c:connect(name))]]}
end

describe("signals and waits", function()
  for _, case in ipairs(BLOCKERS) do
    it("Ctrl-C (SIGINT) stops " .. case[1] .. " in the standalone lua", function()
      local h = H.spawn_lua(PRELUDE .. case[2], {timeout = 20})
      H.interrupts(h, 0.2)
    end)
  end

  it("waits again after a signal that is not an interrupt (EINTR injected by strace)", function()
    assert.is_true(H.have("strace"), "strace is needed (tools/deps.sh installs it)")
    -- the first three poll and epoll_wait calls fail with EINTR: every
    -- wait still lasts its whole time and ends as it would have
    local out, status, err = H.run_lua([[
      local sockit = require "sockit"
      local core = require "sockit.core"
      local now = sockit.now
      local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
      l:settimeout(0.3)
      local t0 = now()
      local c, _, code = l:accept()
      print("accept", c, code, now() - t0 >= 0.29)
      local p = core.poller()
      t0 = now()
      print("poller", (p:wait(0.3)), now() - t0 >= 0.29)
      local woke
      sockit.spawn(function() sockit.sleep(0.3); woke = now() end)
      t0 = now()
      sockit.run()
      print("run", woke and woke - t0 >= 0.29)
    ]], {prefix = "strace -f -o /dev/null -e trace=poll,ppoll,epoll_wait,epoll_pwait"
                  .. " -e inject=poll,ppoll,epoll_wait,epoll_pwait:error=EINTR:when=1..3"})
    assert.are.equal(0, status, err)
    assert.matches("accept\tnil\tETIMEDOUT\ttrue\n", out, nil, true)
    assert.matches("poller\t0\ttrue\n", out, nil, true)
    assert.matches("run\ttrue\n", out, nil, true)
  end)
end)
