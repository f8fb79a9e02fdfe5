-- A socket that is closed or collected leaves every poller that holds it
-- (core.poller, SPEC §2), on the epoll backend and on the poll(2)
-- fallback (build/poll/sockit/core.so).
--
-- What went wrong: epoll's interest list holds the open file, not the
-- descriptor, so a registered socket whose file lived on elsewhere (a dup,
-- a child from io.popen, a copy sent with SCM_RIGHTS) stayed registered
-- after close: p:wait returned the closed object at once, forever (a CPU
-- spin), p:remove(obj) raised, p:remove(oldfd) said ENOENT. The poll(2)
-- backend was worse: every wait returned 0 at once (POLLNVAL), a closed
-- object was reported, and a new socket on the same descriptor number
-- could not be added (EEXIST).

local H = require "support.helpers"

-- the checks, as a chunk that runs under either backend; it raises on the
-- first broken promise and prints "ok <backend>"
local CHUNK = [==[
local core = require "sockit.core"
local function check(c, what) if not c then error(what, 2) end end
local function show(n, objs, evs)
  local t = {}
  for i = 1, n or 0 do t[i] = tostring(objs[i]) .. "=" .. tostring(evs[i]) end
  return tostring(n) .. " {" .. table.concat(t, " ") .. "}"
end
-- p:wait(t) returns 0 having waited its whole timeout
local function idle(p, t, what)
  local t0 = core.now()
  local n, objs, evs = p:wait(t)
  local took = core.now() - t0
  check(n == 0, what .. ": " .. show(n, objs, evs))
  check(took >= t * 0.9, what .. ": returned after " .. took .. " s")
end
-- a copy of s's open file in another descriptor (SCM_RIGHTS), as a dup,
-- a fork or a child process would hold it
local x, y = core.socketpair()
local function share(s)
  assert(x:sendfds("d", s))
  local _, fds = assert(y:recvfds())
  return fds[1]
end

local p = assert(core.poller())
local backend = p:backend()

-- closed while its file is shared: gone from the poller
local a, b = core.socketpair()
local oldfd = b:fileno()
assert(p:add(b, "r"))
local copy = share(b)
b:close()
a:send("data")
idle(p, 0.2, "closed socket, file shared")
local ok, _, code = p:remove(oldfd)
check(ok == nil and (code == "ENOENT" or code == "EBADF"), "remove oldfd: " .. tostring(code))
-- a new socket on the same number is added and reported as itself
local c, d = core.socketpair()
local new = (c:fileno() == oldfd) and c or d
check(new:fileno() == oldfd, "the descriptor number is reused")
check(p:add(new, "r") == true, "add a new socket on the old number")
local peer = (new == c) and d or c
peer:send("x")
local n, objs, evs = p:wait(1)
check(n == 1 and objs[1] == new and evs[1] == "r", "the new socket: " .. show(n, objs, evs))
check(p:remove(new) == true, "remove the new socket")
core.closefd(copy)

-- collected while its file is shared: gone too
do
  local e, f = core.socketpair()
  assert(p:add(f, "r"))
  copy = share(f)
  e:send("data")
end
collectgarbage(); collectgarbage()
idle(p, 0.2, "collected socket, file shared")
core.closefd(copy)

-- closed with no copy: the poll(2) backend saw POLLNVAL at once, forever
local g, h = core.socketpair()
assert(p:add(h, "r"))
h:close()
g:send("data")
idle(p, 0.2, "closed socket")

-- in two pollers: close takes it out of both
local q = assert(core.poller())
local i1, i2 = core.socketpair()
assert(p:add(i2, "r")); assert(q:add(i2, "r"))
copy = share(i2)
i2:close()
i1:send("data")
idle(p, 0.1, "two pollers, p")
idle(q, 0.1, "two pollers, q")
core.closefd(copy)

-- a closed poller: the socket closes as usual, and joins another poller
local j1, j2 = core.socketpair()
assert(q:add(j2, "r"))
q:close()
assert(p:add(j2, "r"))
copy = share(j2)
check(j2:close() == true, "close after its poller was closed")
j1:send("data")
idle(p, 0.1, "after a closed poller")
core.closefd(copy)

-- removed (by object or by number) before close: nothing more to do
local k1, k2 = core.socketpair()
assert(p:add(k2, "r")); assert(p:remove(k2:fileno()))
assert(p:add(k2, "w")); assert(p:remove(k2))
check(k2:close() == true, "close after remove")

-- descriptors added as integers are the caller's: untouched
local m1, m2 = core.socketpair()
assert(p:add(m2:fileno(), "r"))
local o1, o2 = core.socketpair()
assert(p:add(o2, "r"))
o2:close()
m1:send("data")
n, objs, evs = p:wait(1)
check(n == 1 and objs[1] == m2:fileno() and evs[1] == "r", "integer entry: " .. show(n, objs, evs))
check(p:remove(m2:fileno()) == true, "remove the integer")

-- an entry whose object became garbage, seen by a wait before that
-- object's __gc has run (the registry's weak value is already gone): it
-- was skipped and the wait returned 0 at once, however long its timeout
local seen = {}
do
  local r1, r2 = core.socketpair()
  assert(p:add(r2, "r"))
  r1:send("data")
  -- finalizers run in the reverse order of creation: this one first
  setmetatable({}, {__gc = function ()
    local t0 = core.now()
    seen.n = p:wait(0.2)
    seen.took = core.now() - t0
  end})
end
collectgarbage(); collectgarbage()
check(seen.n == 0 and seen.took >= 0.18, "collected, not finalized yet: "
      .. tostring(seen.n) .. " after " .. tostring(seen.took))
idle(p, 0.1, "after that __gc")

p:close()
print("ok " .. backend)
]==]

-- pollers and their sockets collected in either order, and at lua_close
local GC = [==[
local core = require "sockit.core"
-- sockets first, then the poller (made first: finalized last)
do
  local p = core.poller()
  local keep = {}
  for i = 1, 4 do
    local a, b = core.socketpair()
    keep[#keep + 1] = a; keep[#keep + 1] = b
    assert(p:add(b, "r"))
  end
end
collectgarbage(); collectgarbage()
-- the poller first (made last: finalized first)
do
  local keep = {}
  for i = 1, 4 do keep[i] = {core.socketpair()} end
  local p = core.poller()
  for i = 1, 4 do assert(p:add(keep[i][2], "rw")) end
end
collectgarbage(); collectgarbage()
-- the poller goes, the sockets live on and close later
local a, b = core.socketpair()
do local p = core.poller(); assert(p:add(b, "r")) end
collectgarbage(); collectgarbage()
assert(b:close() and a:close())
-- left to lua_close: both orders at once
P1 = core.poller()
S1 = {core.socketpair()}
assert(P1:add(S1[1], "r"))
S2 = {core.socketpair()}
P2 = core.poller()
assert(P2:add(S2[2], "w")); assert(P1:add(S2[2], "r"))
print("ok")
]==]

describe("a socket closed or collected while in a poller", function()
  for _, backend in ipairs{"epoll", "poll"} do
    it("closed-socket-stays-registered: leaves it (" .. backend .. ")", function()
      local out, status, err = H.run_lua_on(backend, CHUNK)
      assert.are.equal(0, status, err)
      assert.are.equal("ok " .. backend .. "\n", out)
    end)

    it("no dangling link in either order of collection, nor at lua_close ("
       .. backend .. ")", function()
      local out, status, err = H.run_lua_on(backend, GC)
      assert.are.equal(0, status, err)
      assert.are.equal("ok\n", out)
      assert.are.equal("", err)
    end)
  end

  it("the listener a child inherited leaves the poller on close (s45)", function()
    local out, status, err = H.run_lua [[
      local core = require "sockit.core"
      local p = core.poller()
      local l = core.socket("inet", "stream")
      assert(l:bind("127.0.0.1", 0)); assert(l:listen())
      local host, port = l:getsockname()
      assert(p:add(l, "r"))
      assert(l:setoption("inheritable", true))
      local child = io.popen("sleep 0.5")   -- holds a copy of the listener
      l:close()
      local c = core.socket("inet", "stream"); c:settimeout(1)
      assert(c:connect(host, port))          -- the child's copy listens
      local t0 = core.now()
      local n, objs = p:wait(0.3)
      print(n, objs[1], core.now() - t0 >= 0.25)
      child:close()
    ]]
    assert.are.equal(0, status, err)
    assert.are.equal("0\tnil\ttrue\n", out)
  end)
end)
