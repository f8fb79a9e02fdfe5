-- spec/support/argfuzz.lua — one receiver kind of spec/api_argfuzz_spec.lua,
-- run in a child lua5.4:
--
--     lua5.4 spec/support/argfuzz.lua KIND DIR
--
-- Every public function of that kind (a module's functions; an object's
-- methods, found through its metatable's __index chain) is called with
-- the usual arguments (BASE), with fewer of them, and with each argument
-- position (the receiver too, and one past the last) set to each of
-- VALUES in turn; each call on a fresh receiver. What a call may do
-- (SPEC §1, docs/API.md "What raises and what returns"): work, return
-- nil, msg, CODE, or raise "bad argument ..." or another documented
-- message. Never an internal error ("attempt to index ...").
--
-- Output (stdout), one line each, tab-separated:
--     V  kind  method  position  value  what      a violation
--     CALLS  n                                    at the end
-- Before each call, "call kind method position value" goes to stderr
-- (unbuffered), so a crash or a hang names the call it died in.
-- Sockets: loopback and DIR only. Every blocking call has timeout 0 or
-- a watchdog.

local sockit = require "sockit"
local loop = require "sockit.loop"
local core = sockit.core

local KIND, DIR = assert(arg[1], "kind"), assert(arg[2], "dir")
local pack, unpack = table.pack, table.unpack

-- {====================================================== the values

local closed = core.socket("unix", "dgram"); closed:close()
-- another family than most; timeout 0, as it is a receiver too (#0)
local other = core.socket("inet6", "dgram"); other:settimeout(0)

local VALUES = {
  {"nil", nil}, {"false", false}, {"true", true}, {"0", 0}, {"-1", -1},
  {"1.5", 1.5}, {"2^53", 2^53}, {"huge", math.huge}, {"-huge", -math.huge},
  {"nan", 0/0}, {"minint", math.mininteger}, {"maxint", math.maxinteger},
  {'""', ""}, {'"x"', "x"}, {'"80"', "80"}, {'("x"):rep(5000)', ("x"):rep(5000)},
  {'"\\0"', "\0"}, {"{}", {}},
  {"{__tostring=error}", setmetatable({}, {__tostring = error})},
  {"print", print}, {"coroutine", coroutine.create(print)},
  {"io.stdout", io.stdout}, {"closed socket", closed},
  {"inet6 socket", other},   -- (VALUES[24]: renewed when a call closes it)
  -- for setoption's multicast options (tables elsewhere)
  {'{"239.1.2.3"}', {"239.1.2.3"}}, {'{"239.1.2.3", "lo"}', {"239.1.2.3", "lo"}},
  {'{"ff02::1", 1}', {"ff02::1", 1}}, {"{nan, nan}", {0/0, 0/0}},
}

-- other:close() is one of the calls made (the receiver position)
local function renew_other()
  if tostring(other):find("closed", 1, true) then
    other = core.socket("inet6", "dgram"); other:settimeout(0)
    assert(VALUES[24][1] == "inet6 socket")
    VALUES[24][2] = other
  end
end

-- }======================================================


-- {====================================================== receivers

-- what a call on a fresh receiver set up, closed after it (last first)
local owned = {}
local function own(x) owned[#owned + 1] = x; return x end
local function release()
  for i = #owned, 1, -1 do
    local x = owned[i]
    owned[i] = nil
    if type(x) == "function" then pcall(x) else pcall(x.close, x) end
  end
end

local seq = 0
local function path()   -- a fresh unix path in DIR, removed after the call
  seq = seq + 1
  local p = DIR .. "/s" .. seq
  own(function() os.remove(p) end)
  return p
end

local FILE = DIR .. "/file"
do local f = assert(io.open(FILE, "wb")); f:write("0123456789"); f:close() end
local file = assert(io.open(FILE, "rb"))

local function tcp_pair()
  local l = own(assert(core.socket("inet", "stream")))
  assert(l:bind("127.0.0.1", 0)); assert(l:listen())
  local c = own(assert(core.socket("inet", "stream")))
  assert(c:connect(l:getsockname()))
  return c, own(assert(l:accept())), l
end

-- a descriptor no sockit object owns (for fromfd, closefd)
local function raw_fd()
  local a, b = core.socketpair()
  own(a); own(b)
  local x = core.socket("unix", "dgram")
  assert(a:sendfds("x", x)); x:close()
  local _, fds = assert(b:recvfds())
  own(function() core.closefd(fds[1]) end)
  return fds[1]
end

-- a conn of the Lua layer with two lines waiting
local function conn(net)
  local l = own(sockit.listen(net, net == "unix" and path() or "127.0.0.1:0"))
  local c = own(assert(sockit.connect(net, l:addr(), {timeout = 1})))
  local s = own(assert(l:accept()))
  assert(s:write("line1\nline2\n"))
  c:settimeout(0)
  return c, {addr = l:addr(), peer = s}
end

-- an endpoint of the Lua layer with a datagram waiting
local function endpoint(net, connected)
  local f = own(sockit.bind(net, net == "udp" and "127.0.0.1:0" or path()))
  local e
  if connected then e = own(sockit.connect(net, f:addr()))
  else e = own(sockit.bind(net, net == "udp" and "127.0.0.1:0" or path())) end
  assert(f:sendto("dgram", e:addr()))
  e:settimeout(0)
  return e, {addr = f:addr(), peer = f}
end

--[[
The receiver kinds: group (which BASE applies) and make(), which returns
a fresh receiver and what its base arguments need (ctx). Objects that
could block have timeout 0 (EAGAIN rather than a wait) and, where a read
is tried, something to read.
]]
local KINDS = {
  ["core"] = {group = "core", make = function() return core, {} end},
  ["sockit"] = {group = "sockit", make = function()
    local l = own(sockit.listen("tcp", "127.0.0.1:0"))
    return sockit, {addr = l:addr()}
  end},
  ["sock.tcp"] = {group = "sock", make = function()   -- connected, data waiting
    local c, s, l = tcp_pair()
    assert(s:send("hello\nworld\n")); c:settimeout(0)
    return c, {host = "127.0.0.1", port = select(2, l:getsockname())}
  end},
  ["sock.tcpfresh"] = {group = "sock", make = function()   -- not connected
    local s = own(core.socket("inet", "stream")); s:settimeout(0)
    local l = own(core.socket("inet", "stream"))
    assert(l:bind("127.0.0.1", 0)); assert(l:listen())
    return s, {host = "127.0.0.1", port = select(2, l:getsockname())}
  end},
  ["sock.listen6"] = {group = "sock", make = function()   -- a client waiting
    local l = own(core.socket("inet6", "stream"))
    assert(l:bind("::1", 0)); assert(l:listen()); l:settimeout(0)
    local port = select(2, l:getsockname())
    own(core.socket("inet6", "stream")):connect("::1", port)
    return l, {host = "::1", port = port, listening = true}
  end},
  ["sock.udp"] = {group = "sock", make = function()
    local u = own(core.socket("inet", "dgram")); assert(u:bind("127.0.0.1", 0))
    local v = own(core.socket("inet", "dgram")); assert(v:bind("127.0.0.1", 0))
    assert(v:sendto("dgram", u:getsockname())); u:settimeout(0)
    return u, {host = "127.0.0.1", port = select(2, v:getsockname())}
  end},
  ["sock.unix"] = {group = "sock", make = function()
    local a, b = core.socketpair("stream"); own(a); own(b)
    assert(b:send("hi\n")); a:settimeout(0)
    local p = path()
    local l = own(core.socket("unix", "stream")); assert(l:bind(p)); assert(l:listen())
    return a, {path = p}
  end},
  ["sock.seqpacket"] = {group = "sock", make = function()
    local a, b = core.socketpair("seqpacket"); own(a); own(b)
    assert(b:send("rec")); a:settimeout(0)
    return a, {path = path()}
  end},
  ["sock.unixgram"] = {group = "sock", make = function()
    local a = own(core.socket("unix", "dgram")); local p = path(); assert(a:bind(p))
    local b = own(core.socket("unix", "dgram")); local q = path(); assert(b:bind(q))
    assert(b:sendto("dg", p)); a:settimeout(0)
    return a, {path = q}
  end},
  ["sock.closed"] = {group = "sock", make = function()
    local s = core.socket("inet", "stream"); s:close()
    return s, {host = "127.0.0.1", port = 1, path = path()}
  end},
  ["poller"] = {group = "poller", make = function()
    local p = own(core.poller())
    local a, b = core.socketpair(); own(a); own(b)
    assert(p:add(a, "r")); assert(b:send("x"))   -- a wait returns at once
    return p, {a = a, b = b}
  end},
  ["conn.tcp"] = {group = "lua", make = function() return conn("tcp") end},
  ["conn.unix"] = {group = "lua", make = function() return conn("unix") end},
  ["listener.tcp"] = {group = "lua", make = function()
    local l = own(sockit.listen("tcp", "127.0.0.1:0")); l:settimeout(0)
    return l, {}
  end},
  ["listener.unix"] = {group = "lua", make = function()
    local l = own(sockit.listen("unix", path())); l:settimeout(0)
    return l, {}
  end},
  ["endpoint.udp"] = {group = "lua", make = function() return endpoint("udp") end},
  ["endpoint.udpconn"] = {group = "lua", make = function() return endpoint("udp", true) end},
  ["endpoint.unixgram"] = {group = "lua", make = function()
    return endpoint("unixgram", true)
  end},
  ["endpoint.unixpacket"] = {group = "lua", make = function()
    local l = own(sockit.listen("unixpacket", path()))
    local e = own(assert(sockit.connect("unixpacket", l:addr()))); e:settimeout(0)
    local s = own(assert(l:accept())); assert(s:send("rec"))
    return e, {addr = l:addr(), peer = s}
  end},
  ["server.tcp"] = {group = "lua", make = function()
    return own(sockit.serve("tcp", "127.0.0.1:0", function() end)), {}
  end},
  ["server.udp"] = {group = "lua", make = function()
    return own(sockit.serve("udp", "127.0.0.1:0", function() end)), {}
  end},
}

-- }======================================================


-- {====================================================== base arguments

-- BASE[group][name](ctx): arguments that work (or fail as documented)
local function inet(ctx) return ctx.host ~= nil end
local BASE = {}
BASE.core = {
  socket = function() return {"inet", "stream", 0} end,
  socketpair = function() return {"stream"} end,
  getaddrinfo = function() return {"localhost", 80, "inet", "stream"} end,
  fromfd = function() return {raw_fd()} end,
  closefd = function() return {raw_fd()} end,
  chmod = function() return {FILE, 420} end,
  fileid = function() return {FILE} end,
  now = function() return {} end,
  poller = function() return {} end,
}
BASE.sockit = {
  connect = function(ctx) return {"tcp", ctx.addr, {timeout = 0.5}} end,
  listen = function() return {"tcp", "127.0.0.1:0", {}} end,
  bind = function() return {"udp", "127.0.0.1:0", {}} end,
  serve = function() return {"tcp", "127.0.0.1:0", function() end, {}} end,
  spawn = function() return {function() end} end,
  run = function() return {} end,      -- with a watchdog task (call())
  stop = function() return {} end,
  sleep = function() return {0.001} end,  -- in a task, with a watchdog
  now = function() return {} end,
}
BASE.sock = {
  accept = function() return {} end,
  bind = function(ctx) return inet(ctx) and {ctx.host, 0} or {path()} end,
  close = function() return {} end,
  connect = function(ctx) return inet(ctx) and {ctx.host, ctx.port} or {ctx.path} end,
  family = function() return {} end,
  type = function() return {} end,
  fileno = function() return {} end,
  gettimeout = function() return {} end,
  getpeername = function() return {} end,
  getsockname = function() return {} end,
  getpeercred = function() return {} end,
  getoption = function() return {"reuseaddr"} end,
  setoption = function() return {"reuseaddr", true} end,
  listen = function() return {5} end,
  recv = function() return {10} end,
  recvfds = function() return {10, 2} end,
  recvfrom = function() return {10} end,
  recvmany = function() return {4, 100} end,
  send = function() return {"abc", 1, 2} end,
  sendfds = function() return {"x", other} end,
  sendfile = function() return {file, 0, 3} end,
  sendmany = function(ctx)
    return inet(ctx) and {{"a", "b"}, ctx.host, ctx.port} or {{"a", "b"}, ctx.path}
  end,
  sendto = function(ctx)
    return inet(ctx) and {"x", ctx.host, ctx.port} or {"x", ctx.path}
  end,
  sendv = function() return {{"a", "b"}, 0} end,
  settimeout = function() return {0} end,
  shutdown = function() return {"w"} end,
  -- ready at once: a listener has a client waiting, the others can write
  wait = function(ctx) return {ctx.listening and "r" or "w", 0} end,
}
BASE.poller = {
  add = function(ctx) return {ctx.b, "r", false} end,
  modify = function(ctx) return {ctx.a, "w", false} end,
  remove = function(ctx) return {ctx.a} end,
  wait = function() return {0} end,
  backend = function() return {} end,
  fileno = function() return {} end,
  close = function() return {} end,
}
BASE.lua = {   -- conns, listeners, endpoints, servers
  read = function() return {"l"} end,
  recv = function() return {10} end,
  write = function() return {"x"} end,
  lines = function() return {"l"} end,
  settimeout = function() return {0} end,
  gettimeout = function() return {} end,
  shutdown = function() return {"w"} end,
  peer = function() return {} end,
  addr = function() return {} end,
  close = function() return {} end,
  sendfile = function() return {file, 0, 3} end,
  sendfds = function() return {"x", other} end,
  recvfds = function() return {10, 2} end,
  peercred = function() return {} end,
  accept = function() return {} end,
  sendto = function(ctx) return {"x", ctx.addr} end,
  recvfrom = function() return {100} end,
  send = function() return {"x"} end,
  sendmany = function(ctx) return {{"a", "b"}, ctx.addr} end,
  recvmany = function() return {4, 100} end,
  flush = function() return {} end,
}

-- calls that work as designed but would damage the child: descriptor 0 is
-- its stdin, which closefd(0) closes and fromfd(0) adopts (if a socket)
local SKIP = {["core.closefd #1 0"] = true, ["core.fromfd #1 0"] = true}

-- setoption(name, v) for every option name and value, on the sock kinds
local OPTIONS = {"reuseaddr", "reuseport", "keepalive", "nodelay", "broadcast",
  "linger", "rcvbuf", "sndbuf", "v6only", "error", "inheritable",
  "multicast_loop", "multicast_ttl", "multicast_if", "add_membership",
  "drop_membership", "bogus"}

-- }======================================================


-- {====================================================== verdicts

-- raised messages that are documented (besides "bad argument ...")
local DOCUMENTED = {
  "^attempt to use a closed socket$", "^attempt to use a closed poller$",
  "^sockit%.run: ",
}

--[[
THE ACCEPTED EXCEPTION: a Lua-layer method called with a `self` that is
not the object (conn.read("l") for conn:read("l")) raises Lua's own
"attempt to index a nil value (local 'self')". Those methods are plain
Lua functions; checking self in each would cost every call, and Lua's
message already names the mistake. So for the Lua layer the receiver
position gets only the values that cannot be indexed (nil, booleans,
numbers, functions, coroutines; a table, string or userdata would get
past the first index and fail further in, on a field), and exactly that
message is accepted there. Core methods (C) check their receiver.
]]
local function unindexable(v)
  local t = type(v)
  return t ~= "table" and t ~= "string" and t ~= "userdata"
end
local function accepted_self_error(msg, v)
  return msg == "attempt to index a " .. type(v) .. " value (local 'self')"
end

-- nil if the outcome is allowed, else what is wrong with it
-- (lua_self: the Lua layer's receiver position, its value in a table)
local function verdict(ok, r, lua_self)
  if not ok then
    local e = r[1]
    if type(e) ~= "string" then return "raised a " .. type(e) .. " value" end
    local where, msg = e:match("^([^\n]-:%d+): (.*)$")
    local line = (msg or e):match("^[^\n]*")
    if lua_self and accepted_self_error(line, lua_self.value) then return nil end
    if line:find("^bad argument") then
      if where and where:find("lua/sockit/", 1, true) then
        return "raised at " .. where .. " (not the caller's line): " .. line
      end
      return nil
    end
    for _, p in ipairs(DOCUMENTED) do
      if line:find(p) then return nil end
    end
    return "raised: " .. e:sub(1, 300)
  end
  if r.n > 0 and r[1] == nil then
    local msg, code = r[2], r[3]
    if type(msg) ~= "string" or type(code) ~= "string"
       or not (code:match("^E[%u%d_]+$") or code == "EOF") then
      return "returned nil, " .. tostring(msg) .. ", " .. tostring(code)
    end
  end
  return nil
end

-- }======================================================


-- {====================================================== calling

local function count_tasks() return loop.count() end

-- run the loop until done() or 'tries' ms have passed, bounded
local function run_watched(done, tries)
  sockit.spawn(function()
    for _ = 1, tries do
      if done() then break end
      sockit.sleep(0.001)
    end
    sockit.stop()
  end)
  pcall(sockit.run)
end

-- let tasks a call started (serve's accept task, spawn) end, bounded
local function drain()
  if count_tasks() == 0 then return end
  run_watched(function() return count_tasks() <= 1 end, 50)
end

-- objects a call returned: close them (not the ones we passed in)
local function close_results(r)
  for i = 1, r.n do
    local v = r[i]
    local mt = getmetatable(v)
    if (type(v) == "userdata" or type(v) == "table") and v ~= other and v ~= closed
       and v ~= file and v ~= io.stdout and mt and mt.__name then
      pcall(v.close, v)
    end
  end
end

-- call f(args) as the kind's method or function needs; ok, results
local function call(kind, name, f, args, n)
  if kind == "sockit" and name == "sleep" then   -- in a task, watched
    local res
    local task = sockit.spawn(function() res = pack(pcall(f, unpack(args, 1, n))) end)
    local function watch() run_watched(function() return res ~= nil end, 20) end
    watch()
    if not res then loop.resume(task); watch() end   -- a long sleep: wake it
    if not res then return false, pack("sleep: still asleep after a resume") end
    return res[1], pack(unpack(res, 2, res.n))
  end
  if kind == "sockit" and name == "run" then
    sockit.spawn(function() sockit.sleep(0.001); sockit.stop() end)   -- watchdog
  end
  local res = pack(pcall(f, unpack(args, 1, n)))
  return res[1], pack(unpack(res, 2, res.n))
end

local calls = 0
local function report(kind, name, label, vname, what)
  io.stdout:write(table.concat({"V", kind, name, label, vname,
                                (what:gsub("[\t\n]", " "))}, "\t"), "\n")
end

--[[
One call: a fresh receiver, its base arguments, `edit` applied
(edit(args) -> args, n, the receiver's value or nil), the verdict; then
everything closed, tasks drained.
]]
local function one(kind, name, label, vname, edit, selfv)
  if SKIP[kind .. "." .. name .. " " .. label .. " " .. vname] then return end
  calls = calls + 1
  io.stderr:write("call ", kind, " ", name, " ", label, " ", vname, "\n")
  local K = KINDS[kind]
  local recv, ctx = K.make()
  local base = BASE[K.group][name](ctx)
  local args, n = edit(base)
  local f
  if K.group == "core" or K.group == "sockit" then
    f = recv[name]
  else
    f = recv[name]
    table.insert(args, 1, recv)
    n = n + 1
    if selfv then args[1] = selfv.value end
  end
  local ok, r = call(kind, name, f, args, n)
  local what = verdict(ok, r, K.group == "lua" and selfv)
  if ok and name == "lines" and type(r[1]) == "function" then
    -- the iterator raises what read would return (docs/API.md, Errors):
    -- a message, never an internal error
    local iok, ir = pcall(r[1])
    if not iok then
      local line = tostring(ir):match("^[^\n]*")
      if type(ir) ~= "string" or line:find("attempt to ")
         and not line:find("^attempt to use a closed ") then
        what = "the iterator raised: " .. tostring(ir):sub(1, 300)
      end
    end
  end
  if ok then close_results(r) end
  release()
  drain()
  renew_other()
  if what then report(kind, name, label, vname, what) end
end

-- the public names: a module's functions, an object's methods
local function names_of(recv, group)
  local names, seen = {}, {}
  local function add(t)
    for k, v in pairs(t) do
      if type(k) == "string" and type(v) == "function" and not k:find("^_")
         and not seen[k] then
        seen[k] = true; names[#names + 1] = k
      end
    end
  end
  if group == "core" or group == "sockit" then
    add(recv)
  else
    local mt, depth = getmetatable(recv), 0
    local idx = mt and mt.__index
    while type(idx) == "table" and depth < 5 do
      add(idx)
      mt = getmetatable(idx); idx = mt and mt.__index; depth = depth + 1
    end
  end
  table.sort(names)
  return names
end

-- }======================================================


-- {====================================================== the loop

local pid = assert(io.open("/proc/self/stat")):read("n")
local function fds()
  local p = assert(io.popen("find /proc/" .. pid .. "/fd -mindepth 1 -maxdepth 1"
                            .. " -printf '%f %l\\n' 2>/dev/null"))
  local t, n = {}, 0
  for fd, target in p:read("a"):gmatch("(%d+) ([^\n]*)") do
    if not target:find("^pipe:") then t[fd] = target; n = n + 1 end  -- ours (popen)
  end
  p:close()
  return t, n
end

-- set-up done before counting: the loop's poller, the resolver, a server
sockit.spawn(function() sockit.sleep(0.001) end); sockit.run()
do local e = sockit.bind("udp", "127.0.0.1:0"); e:sendto("x", "localhost:9"); e:close() end
do local s = sockit.serve("tcp", "127.0.0.1:0", function() end); s:close(); drain() end
collectgarbage(); collectgarbage()
local before, nbefore = fds()

local K = assert(KINDS[KIND], "no such kind")
local recv = K.make(); release()
for _, name in ipairs(names_of(recv, K.group)) do
  local basef = BASE[K.group][name]
  if not basef then
    report(KIND, name, "-", "-", "no base arguments: add " .. name .. " to BASE." .. K.group)
  else
    local nbase = #basef(select(2, K.make())); release()
    one(KIND, name, "base", "-", function(b) return b, #b end)
    for k = 0, nbase - 1 do   -- fewer arguments
      one(KIND, name, "first " .. k, "-", function(b) return b, k end)
    end
    local first = (K.group == "core" or K.group == "sockit") and 1 or 0
    for pos = first, nbase + 1 do
      for _, v in ipairs(VALUES) do
        if pos == 0 then
          if K.group ~= "lua" or unindexable(v[2]) then
            one(KIND, name, "#0", v[1], function(b) return b, #b end, {value = v[2]})
          end
        else
          one(KIND, name, "#" .. pos, v[1], function(b)
            b[pos] = v[2]
            return b, math.max(#b, pos)
          end)
        end
      end
    end
  end
end
if K.group == "sock" then
  for _, opt in ipairs(OPTIONS) do
    one(KIND, "getoption", opt, "-", function() return {opt}, 1 end)
    for _, v in ipairs(VALUES) do
      one(KIND, "setoption", opt, v[1], function() return {opt, v[2]}, 2 end)
    end
  end
end

release(); drain()
collectgarbage(); collectgarbage()
local after, nafter = fds()
if nafter ~= nbefore then
  local new, gone = {}, {}
  for fd, target in pairs(after) do
    if before[fd] ~= target then new[#new + 1] = fd .. " " .. target end
  end
  for fd, target in pairs(before) do
    if after[fd] ~= target then gone[#gone + 1] = fd .. " " .. target end
  end
  table.sort(new); table.sort(gone)
  report(KIND, "-", "-", "-",
         ("descriptors: %d after set-up, %d at the end (new: %s; gone: %s)")
         :format(nbefore, nafter, table.concat(new, ", "), table.concat(gone, ", ")))
end
io.stdout:write("CALLS\t", calls, "\n")
