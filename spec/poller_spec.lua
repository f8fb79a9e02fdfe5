-- core.poller(): SPEC §2, on the epoll backend here and on the poll(2)
-- fallback in a child process (build/poll/sockit/core.so, built by make test).

local H = require "support.helpers"
local core = require "sockit.core"

-- the whole poller contract, as a chunk that runs under either backend;
-- it raises on the first broken promise and prints "ok <backend>"
local CONTRACT = [==[
local core = require "sockit.core"
local function check(c, what) if not c then error(what, 2) end end
local p = assert(core.poller())
local backend = p:backend()
local a, b = core.socketpair()
local c, d = core.socketpair()

-- nothing ready: 0 after the timeout, which is honoured
local t0 = core.now()
local n, objs, evs = p:wait(0.05)
check(n == 0, "empty poller: " .. tostring(n))
check(core.now() - t0 >= 0.045, "returned before its timeout")

check(p:add(a, "r") == true, "add socket")
check(p:add(d:fileno(), "w") == true, "add integer")
n, objs, evs = p:wait(1)
check(n == 1, "only d is writable: " .. n)
check(objs[1] == d:fileno() and evs[1] == "w", "integer comes back as added")
local objs1, evs1 = objs, evs

b:send("x")
n, objs, evs = p:wait(1)
check(n == 2, "a readable and d writable: " .. n)
check(objs == objs1 and evs == evs1, "result tables are reused")
local seen = {}
for i = 1, n do seen[objs[i]] = evs[i] end
check(seen[a] == "r", "the socket object comes back as added")
check(seen[d:fileno()] == "w", "d still writable")

-- modify to rw: a is readable and writable
check(p:modify(a, "rw") == true, "modify")
check(p:remove(d:fileno()) == true, "remove")
n, objs, evs = p:wait(1)
check(n == 1 and objs[1] == a and evs[1] == "rw", "rw after modify: " .. tostring(evs[1]))
check(objs[2] == nil and evs[2] == nil, "the last wait's tail is cleared")

-- errors are nil, msg, code
local ok, msg, code = p:add(a, "r")
check(ok == nil and code == "EEXIST" and msg:find("poller add fd %d+: File exists"), "EEXIST: " .. tostring(msg))
ok, msg, code = p:remove(c:fileno())
check(ok == nil and code == "ENOENT", "remove unregistered: " .. tostring(code))

-- hang-up is ready for what was asked
check(p:add(c, "r") == true, "add c")
d:close()
n, objs, evs = p:wait(1)
local hup
for i = 1, n do if objs[i] == c then hup = evs[i] end end
check(hup == "r", "hang-up reported as r: " .. tostring(hup))

-- misuse raises
check(not pcall(p.add, p, a, "x"), "bad events raise")
check(not pcall(p.add, p, {}, "r"), "bad object raises")
local okn, errn = pcall(p.wait, p, 0/0)
check(not okn and errn:find("timeout is NaN", 1, true), "a NaN timeout raises: " .. tostring(errn))
check(not pcall(p.wait, p, -1), "a negative timeout raises")
p:close()
check(p:close() == true, "close is idempotent")
local okc, err = pcall(p.wait, p)
check(not okc and err:find("closed poller"), "use after close raises")
print("ok " .. backend)
]==]

describe("core.poller", function()
  for _, backend in ipairs{"epoll", "poll"} do
    it("keeps its contract on the " .. backend .. " backend", function()
      local out, status, err = H.run_lua_on(backend, CONTRACT)
      assert.are.equal(0, status, err)
      assert.are.equal("ok " .. backend .. "\n", out)
    end)
  end

  it("costs O(ready): 5,000 idle registrations do not slow a busy wait much", function()
    -- the ratio of one busy descriptor's wait rate with 5,000 idle ones
    -- registered to its rate alone; epoll keeps it near 1 (poll(2) would
    -- be far below). Measured side by side, so machine noise cancels.
    local function rate(nidle)
      local p = core.poller()
      local idle = {}
      for i = 1, nidle do
        local x, y = core.socketpair()
        idle[i] = {x, y}
        assert(p:add(x, "r"))
      end
      local a, b = core.socketpair()
      b:send("x")
      assert(p:add(a, "r"))
      local t0, k = core.now(), 0
      while core.now() - t0 < 0.2 and k < 1e6 do
        local n = p:wait(0)
        assert(n == 1)
        k = k + 1
      end
      local r = k / (core.now() - t0)
      p:close()
      for _, pair in ipairs(idle) do pair[1]:close(); pair[2]:close() end
      a:close(); b:close()
      return r
    end
    local alone, crowded = rate(0), rate(5000)
    assert.is_true(crowded > alone * 0.5,
      ("rate with 5,000 idle = %.0f/s, alone = %.0f/s"):format(crowded, alone))
  end)

  it("allocates nothing per wait in a steady loop", function()
    local p = core.poller()
    local a, b = core.socketpair()
    b:send("x")
    p:add(a, "r")
    p:wait(0) -- warm up: result tables sized
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    for _ = 1, 10000 do p:wait(0) end
    local grown = collectgarbage("count") - before
    collectgarbage("restart")
    p:close(); a:close(); b:close()
    assert.is_true(grown < 1, ("grew %.2f KiB over 10,000 waits"):format(grown))
  end)

  it("has no FD_SETSIZE limit: descriptors above 1024 work", function()
    local p = core.poller()
    local keep = {}
    for i = 1, 1100 do keep[i] = core.socket("unix", "dgram") end
    local a, b = core.socketpair()
    assert.is_true(a:fileno() > 1024)
    assert(p:add(a, "r"))
    b:send("x")
    local n, objs = p:wait(1)
    assert.are.equal(1, n)
    assert.are.equal(a, objs[1])
    p:close()
    for _, s in ipairs(keep) do s:close() end
    a:close(); b:close()
  end)
end)
