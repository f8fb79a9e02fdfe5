-- pass_fd.lua — a parent hands its listening socket to a child process,
-- which then serves on it; the parent stops listening.
--
--   lua5.4 examples/pass_fd.lua
--
-- The two talk over a unix socketpair. The child's end is made
-- 'inheritable' (every sockit descriptor is close-on-exec otherwise), so
-- the child started with io.popen gets it; its number is the child's
-- argument, and sockit.core.fromfd makes a socket of it again. The
-- listener then goes over that pair with sendfds (SCM_RIGHTS): the kernel
-- gives the child its own descriptor for the same listening socket.
-- Clients connect to the same address as before and are served by the
-- child. This is how a server hands work to a new version of itself
-- without closing its port.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"
local core = sockit.core

local function mypid ()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

if arg[1] == "--child" then
  -- {=====  the child: blocking style, plain core sockets  =====
  local pair = assert(core.fromfd(tonumber(arg[2])))
  pair:settimeout(10)
  print(("child %d: the other end of my pair was made by pid %d"):format(mypid(),
        (pair:getpeercred())))
  local what, fds = assert(pair:recvfds())
  local listener = assert(core.fromfd(fds[1]))
  print(("child: got %q and %s"):format(what, tostring(listener)))
  listener:settimeout(10)
  for _ = 1, 3 do                  -- serve three clients, then end
    local c, host, port = assert(listener:accept())
    c:settimeout(10)
    local line = assert(c:recv())
    assert(c:send(("child %d answers %s:%d: %s"):format(mypid(), host, port, line)))
    c:close()
  end
  listener:close()
  assert(pair:send("served 3"))
  return
  -- }=====
end

-- {=====  the parent  =====
local listener = assert(sockit.listen("tcp", "127.0.0.1:0"))
local address = listener:addr()
print(("parent %d: listening on %s"):format(mypid(), address))

local mine, theirs = core.socketpair()
assert(theirs:setoption("inheritable", true))   -- survives exec: the child's
local lua = arg[-1] or "lua5.4"
local child = assert(io.popen(("exec %s %s --child %d"):format(lua, arg[0],
                                                              theirs:fileno())))
theirs:close()                     -- the child has its own copy
mine:settimeout(10)

assert(mine:sendfds("here is my listener", listener.socket))
listener:close()                   -- from now on only the child listens
print("parent: sent the listener and closed mine")

for i = 1, 3 do
  local c = assert(sockit.connect("tcp", address, {timeout = 5}))
  assert(c:write("hello " .. i .. "\n"))
  print("parent's client " .. i .. ": " .. assert(c:read("l")))
  c:close()
end
print("parent: the child says " .. assert(mine:recv()))
mine:close()

io.write(child:read("a"))          -- what the child printed
assert(child:close(), "the child failed")
local c, msg = sockit.connect("tcp", address, {timeout = 5})
assert(not c, "still listening?")
print("after the child ended: " .. msg)
print("done")
-- }=====
