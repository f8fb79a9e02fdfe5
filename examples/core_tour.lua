-- core_tour.lua — sockit.core, the thin binding of the socket calls.
--
--   lua5.4 examples/core_tour.lua
--
-- Blocking sockets, one process, nothing but loopback. Every failure is
-- the triple nil, message, code; misuse raises.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local core = require "sockit.core"

local function show (what, ...)   -- print a call's results, nil included
  local out = table.pack(...)
  for i = 1, out.n do
    local v = out[i]
    out[i] = type(v) == "string" and ("%q"):format(v):gsub("\\\n", "\\n")
             or tostring(v)
  end
  print(("%-28s -> %s"):format(what, table.concat(out, ", ")))
end

print(core._VERSION)

-- {===== a TCP connection: socket, bind, listen, connect, accept =====
local server <close> = assert(core.socket("inet", "stream"))
assert(server:setoption("reuseaddr", true))
assert(server:bind("127.0.0.1", 0))          -- port 0: the kernel picks one
assert(server:listen())
local host, port = server:getsockname()
print("listening: " .. tostring(server))

local client <close> = assert(core.socket("inet", "stream"))
assert(client:connect(host, port))           -- completes in the backlog
local conn <close>, peer_host, peer_port = assert(server:accept())
print(("accepted %s:%d: %s"):format(peer_host, peer_port, tostring(conn)))

show("client:send(\"hello\\n\")", client:send("hello\n"))
show("conn:recv()", conn:recv())             -- what has arrived, up to 65536
show("client:sendv({...})", client:sendv({"a", "b", 42}))  -- one writev
show("conn:recv(2)", conn:recv(2))           -- at most 2 bytes
show("conn:recv()", conn:recv())
client:shutdown("w")                         -- no more data from the client
show("conn:recv() at the end", conn:recv())  -- nil, msg, "EOF"
-- }=====

-- {===== timeouts: nil blocks, 0 never waits, t > 0 bounds each call =====
client:settimeout(0)
show("client recv, timeout 0", client:recv())         -- EAGAIN
client:settimeout(0.1)
show("client recv, timeout 0.1", client:recv())       -- ETIMEDOUT
show("client:gettimeout()", client:gettimeout())

local nb <close> = assert(core.socket("inet", "stream"))
nb:settimeout(0)
show("connect, timeout 0", nb:connect(host, port))    -- EINPROGRESS
nb:settimeout(1)
show("connect again: finish it", nb:connect(host, port))
-- }=====

-- {===== the error triple: nil, message, code =====
local s <close> = assert(core.socket("inet", "stream"))
show("connect to a closed port", s:connect("127.0.0.1", 1))
local s2 <close> = assert(core.socket("inet", "stream"))
show("bind a port in use", s2:bind(host, port))
show("getaddrinfo a bad name", core.getaddrinfo("nosuch.invalid", 80))
local u <close> = assert(core.socket("unix", "stream"))
show("connect to no file", u:connect("/nonexistent/sockit.sock"))
show("bind a 120-byte path", u:bind("/tmp/" .. ("x"):rep(115)))

local _, _, code = s:connect("127.0.0.1", 1)
if code == "ECONNREFUSED" then print("programs compare the code: nobody listens there") end
-- }=====

-- {===== misuse raises =====
show("pcall: port 70000", pcall(function () return s2:bind(host, 70000) end))
show("pcall: family 'ipx'", pcall(function () return core.socket("ipx", "stream") end))
local gone = core.socket("inet", "dgram")
gone:close()
show("pcall: a closed socket", pcall(gone.send, gone, "x"))
show("close() twice", gone:close())
-- }=====

-- {===== names, options, datagrams, a socketpair =====
for _, e in ipairs(assert(core.getaddrinfo("localhost", 80, nil, "stream"))) do
  print(("getaddrinfo localhost: %s %s %s %d"):format(e.family, e.type, e.host, e.port))
end
show("getoption nodelay", conn:getoption("nodelay"))
show("setoption nodelay", conn:setoption("nodelay", true))
show("getoption nodelay", conn:getoption("nodelay"))
show("getoption linger", conn:getoption("linger"))
show("getoption error (SO_ERROR)", conn:getoption("error"))

local a <close> = assert(core.socket("inet", "dgram"))
local b <close> = assert(core.socket("inet", "dgram"))
assert(a:bind("127.0.0.1", 0))
local ahost, aport = a:getsockname()
show("b:sendto(...)", b:sendto("datagram", ahost, aport))
show("a:recvfrom()", a:recvfrom())          -- data, host, port
b:sendto(("x"):rep(100), ahost, aport)
show("a:recvfrom(10)", a:recvfrom(10))      -- never cut silently: EMSGSIZE

local p1, p2 = core.socketpair()           -- (one <close> per local statement)
p1:send("over a socketpair")
show("p2:recv()", p2:recv())
-- }=====

-- {===== a poller: wait on many sockets at once =====
local poller <close> = assert(core.poller())
assert(poller:add(a, "r"))
assert(poller:add(p2, "r"))
p1:send("ready")
local n, objs, evs = poller:wait(1)         -- n, then who and what
for i = 1, n do print(("poller: %s ready for %q"):format(tostring(objs[i]), evs[i])) end
assert(p2:recv())                           -- take it, or it stays ready
show("poller:wait(0.05), nothing", (poller:wait(0.05)))
-- }=====

print("done")
