--[[
sockit.serve — servers on the event loop (SPEC §3 "Event loop and servers").

serve(network, address, handler, opts) listens (stream networks) or binds
(datagram networks) and spawns one accept task. For a stream network each
accepted connection gets its own task running handler(conn, peer); the
conn is closed when the handler returns or raises. For a datagram network
the receive task calls handler(data, peer, endpoint) for each datagram, in
turn (a handler that blocks delays the next datagram, as a Go read loop);
it takes them in batches, and sends the replies in batches (see below).

opts: what listen/bind take, plus
  max_connections  at the limit, stop accepting until a connection ends
                   (new clients wait in the kernel's backlog)
  timeout          seconds a connection may be idle: every read or write
                   call that has not finished by then fails with
                   "ETIMEDOUT" (one deadline per call, so a peer that
                   trickles a line a byte at a time is cut too: slowloris)
  on_error(err, peer)  called when a handler raises (default: stderr)
  max_datagram     datagram servers: the longest datagram taken whole
                   (default 65536; a longer one is reported and dropped)
  workers          1 (or nil): SPEC §4's n processes are not built yet,
                   and any other value raises instead of being ignored
]]

local M = {}

local loop = require "sockit.loop"
local addr = require "sockit.addr"
local dgram = require "sockit.dgram"
local open = require "sockit.open"
local wait = require "sockit.wait"

local traceback = debug.traceback
local xpcall, pcall, type, tostring, setmetatable, getmetatable, rawget, error =
  xpcall, pcall, type, tostring, setmetatable, getmetatable, rawget, error
local io_stderr = io.stderr
local math_min, math_max = math.min, math.max
local move = table.move
local match, sub = string.match, string.sub

local Server = {}
Server.__index = Server
Server.__name = "sockit.server"

-- whether the server is closed: by server:close(), or its listener
-- (endpoint) closed directly (server.listener:close(), a datagram
-- handler's endpoint:close())
local function isclosed (server)
  if server.closed then return true end
  local obj = server.listener or server.endpoint
  return obj._closed
end

function Server:__tostring ()
  return ("sockit.server{%s %s%s, %d active}"):format(self.network,
    isclosed(self) and "closed" or self:addr(), self.max and
    ("/" .. self.max) or "", self.active)
end

-- the bound address as a string (the real port after ":0")
function Server:addr ()
  local obj = self.listener or self.endpoint
  return obj:addr()
end

--[[
server:close() stops accepting (or receiving) and returns true.
Connections already accepted go on until their handlers end.
]]
function Server:close ()
  if self.closed then return true end
  self.closed = true
  if self.endpoint then self:flush() end   -- replies queued before the close
  local obj = self.listener or self.endpoint
  obj:close()   -- wakes the accept task, which then ends
  if self.waiting then loop.resume(self.waiting) end
  return true
end

Server.__close = Server.close

local describe = loop.describe

local function report (server, err, peer)
  local on_error = server.on_error
  if on_error then
    local ok, e = pcall(on_error, err, peer)
    if ok then return end
    err = describe(err) .. "\n(and on_error raised: " .. describe(e) .. ")"
  end
  if peer == "" then peer = "(an unnamed peer)" end
  io_stderr:write("sockit.serve ", server.network, " ", describe(peer),
                  ": ", describe(err), "\n")
  io_stderr:flush()
end

--[[
A handler that raised because a wait of its conn timed out (conn:lines()
raises "recv: timed out" when the idle timeout expires, and so does
assert(conn:read())) ends as an idle connection does, quietly: closing
it is the server's timeout at work, not a failure to report. conn.lua
marks a conn whose latest wait said ETIMEDOUT with the message it
returned ('_expired', cleared when the conn waits again); the first line
of 'err' (before the traceback) ending in that message says that this
timeout is what was raised.
]]
local function idle_expiry (conn, err)
  local said = conn._expired
  if not said or type(err) ~= "string" then return false end
  local line = match(err, "^[^\n]*")
  return sub(line, -#said) == said
end

-- a connection's handler has returned (ok) or raised err: close it, and
-- let the accept task take the next when max_connections held it back
local function finish (server, conn, ok, err)
  conn:close()
  server.active = server.active - 1
  local w = server.waiting
  if w and server.active < server.max then loop.resume(w) end
  return not ok and not idle_expiry(conn, err)   -- whether to report err
end

--[[
One connection's task is the handler itself (loop.spawn_ended): no frame
of serve's under it, so that its stack keeps Lua's first 40 slots
(loop.lua, spawn). The loop calls the server's 'ended' when it returns or
raises; the report runs in a task of its own, as on_error may wait,
started at once (loop.spawn_now), as the handler's task would have.
]]
local function ended_of (server)
  return function (task, ok, err)
    local conn, peer = task[2], task[3]
    if finish(server, conn, ok, err) then
      loop.spawn_now(report, server, err, peer)
    end
  end
end

-- a connection's task when the handler is a callable object (coroutines
-- run functions only)
local function handle (server, handler, conn, peer)
  local ok, err = xpcall(handler, traceback, conn, peer)
  if finish(server, conn, ok, err) then report(server, err, peer) end
end

-- accept errors that say nothing about the listener: try again at once
local transient = {
  ECONNABORTED = true, EPROTO = true, EPERM = true, EINTR = true,
  ENETDOWN = true, ENOPROTOOPT = true, EHOSTDOWN = true, ENONET = true,
  EHOSTUNREACH = true, EOPNOTSUPP = true, ENETUNREACH = true,
}
-- out of descriptors or memory: back off, the server stays up
local exhausted = {
  EMFILE = true, ENFILE = true, ENOBUFS = true, ENOMEM = true,
}

local function accept_loop (server, handler)
  local listener = server.listener
  local timeout = server.timeout
  local backoff = 0
  while not isclosed(server) do
    if server.max and server.active >= server.max then
      server.waiting = loop.current()
      loop.suspend()
      server.waiting = nil
    else
      -- (on failure 'peer' is the message, which names the call:
      -- "accept: Too many open files")
      local conn, peer, code = listener:accept()
      if conn then
        backoff = 0
        server.active = server.active + 1
        server.accepted = server.accepted + 1
        if timeout then conn:settimeout(timeout) end
        loop.enroll(conn.socket)
        if type(handler) == "function" then
          loop.spawn_ended(server.ended, handler, conn, peer)
        else
          loop.spawn(handle, server, handler, conn, peer)
        end
      elseif isclosed(server) or code == "EBADF" then
        break
      elseif transient[code] then   -- luacheck: ignore 542
        -- the next connection may be fine
      elseif exhausted[code] then
        -- no descriptor for a new connection: the backlog keeps clients
        -- waiting; retry with a growing pause instead of spinning
        backoff = math_min(math_max(backoff * 2, 0.005), 0.5)
        if not server.exhausted_reported then
          server.exhausted_reported = true
          report(server, tostring(peer) ..
                 " (backing off until descriptors free up)", "-")
        end
        loop.sleep(backoff)
      else
        report(server, tostring(peer), "-")
        loop.sleep(0.1)
      end
    end
  end
end

--[[ {=====================================================
Datagram servers, in batches

The receive task takes up to BATCH datagrams per system call (recvmany)
and calls the handler for each, in order. The handler's endpoint is a
proxy of the server's: its sendto, called by the handler during a batch,
queues the reply (and returns #data: a queued send cannot know better),
and the queue goes out in one sendmany

  * when the batch is done, and
  * just before the receive task waits for anything (loop.before_park):
    a handler that sleeps or waits does not hold back earlier replies.

Replies keep their order. A reply that fails is reported (on_error or
stderr) with the peer it was for; the others still go. A sendto from any
other task, or outside a batch, is the endpoint's own, sent at once.
Every other method of the proxy is the endpoint's. The peers of the
batch keep the host and port the kernel gave, so the usual reply to the
sender is not parsed back from its address string.
====================================================== ]]

local BATCH = 64

--[[
server:flush(): send the queued replies now; failures are reported.
The queue is taken first, so replies queued meanwhile (while this waits
for room) go out with the next flush.
]]
function Server:flush ()
  local queue, n = self.queue, self.nqueued
  if not n or n == 0 then return end       -- nothing queued (a stream server)
  self.queue, self.nqueued = {}, 0
  local ep = self.endpoint
  if ep._closed then
    report(self, "sendmany: the endpoint was closed with " .. n ..
           " replies unsent", "-")
    return
  end
  local paced = ep._family == "unix"       -- to addresses: see dgram.lua
  local first = 1
  while first <= n do
    local part = first == 1 and queue or move(queue, first, n, 1, {})
    local ok, msg, _, sent = dgram.sendbatch(ep, part, nil, nil, paced)
    if ok then break end
    local bad = part[sent + 1]             -- the reply that failed: skip it
    report(self, msg, addr.format(ep._family, bad[2], bad[3]))
    first = first + sent + 1
  end
end

-- the endpoint the handler gets: sendto queues during a batch
local function proxy (server, ep)
  local p = {socket = ep.socket}
  function p.sendto (self, data, address)
    if not server.batching or loop.current() ~= server.task
       or ep._closed then                  -- (the endpoint's sendto raises)
      if self == p then self = ep end
      return ep.sendto(self, data, address)
    end
    if type(data) == "number" then data = tostring(data)
    elseif type(data) ~= "string" then
      addr.argerror(1, "sendto", "string expected, got " .. type(data), 2)
    end
    local host, port
    local e = server.peers[address]
    if e then host, port = e[2], e[3]
    else
      host, port = dgram.destination(ep, address, 2, "sendto", 3)
      -- a name: looked up without holding up the loop (dgram.numeric)
      local msg, code
      host, msg, code = dgram.numeric(ep, host, port,
                                      wait.deadline(ep._timeout), "sendto")
      if not host then return nil, msg, code end
    end
    local n = server.nqueued + 1
    server.queue[n] = {data, host, port}
    server.nqueued = n
    return #data
  end
  -- closing the endpoint ends the server (it has nothing to receive
  -- on): the queued replies go first, and the receive task ends quietly
  function p.close ()
    return server:close()
  end
  return setmetatable(p, {
    -- any other method: the endpoint's own, called on the endpoint
    __index = function (_, k)
      local v = ep[k]
      if type(v) ~= "function" then return v end
      local f = function (self, ...)
        if self == p then self = ep end
        return v(self, ...)
      end
      p[k] = f
      return f
    end,
    __tostring = function () return tostring(ep) end,
    __name = "sockit.endpoint",
  })
end

local function receive_loop (server, handler)
  local ep = server.endpoint
  local family = ep._family
  local max = server.max_datagram
  local reply = proxy(server, ep)
  loop.before_park(function () server:flush() end)
  while not isclosed(server) do
    local list, msg, code = dgram.recvbatch(ep, BATCH, max)
    if list then
      local peers = {}
      server.peers, server.batching = peers, true
      for i = 1, #list do
        local e = list[i]
        local peer = addr.format(family, e[2], e[3])
        if e[1] then
          peers[peer] = e
          local ok, err = xpcall(handler, traceback, e[1], peer, reply)
          if not ok then report(server, err, peer) end
        else
          report(server, e.message, peer)  -- longer than max_datagram
        end
        if isclosed(server) then break end
      end
      server.batching = false
      server:flush()
    elseif isclosed(server) or code == "EBADF" then
      break
    elseif code ~= "ECONNREFUSED" and code ~= "EAGAIN" then
      -- (an ICMP error from an earlier send says nothing of this server)
      report(server, msg, "-")
    end
  end
  loop.before_park(nil)
end

--[[ }===================================================== ]]

-- a function, or an object with __call (what pcall can call)
local function callable (v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

--[[
M.serve(sockit, network, address, handler, opts) -> server | nil, msg, code
'sockit' is the module (for listen and bind). sockit.serve tail-calls
this, so the user's call is level 2 here (spec/serve_spec.lua checks it).
]]
function M.serve (sockit, network, address, handler, opts)
  if not callable(handler) then   -- (a callable object too, as on_error)
    error(("bad argument #3 to 'serve' (function expected, got %s)")
          :format(type(handler)), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #4 to 'serve' (table expected, got %s)")
          :format(type(opts)), 2)
  end
  local net = addr.network(network, 1, "serve", 3)   -- (levels seen from network)
  addr.parse(net, address, 2, "serve", 3)            -- misuse raises as serve's
  opts = opts or {}
  -- the options listen (bind) takes, checked here: misuse raises at the
  -- user's line, as serve's (not as 'listen' at serve.lua's line)
  open.checkopts(opts, net.type == "dgram" and "bind" or "listen", 4,
                 "serve", 3)
  local max = opts.max_connections
  -- (an integer, or a float with an integer value: 2.0 counts, as for
  -- backlog and max_datagram, and as luaL_checkinteger takes it)
  if max ~= nil then max = math.type(max) and math.tointeger(max) or 0 end
  if max ~= nil and max < 1 then
    error("bad argument #4 to 'serve' (max_connections must be a " ..
          "positive integer)", 2)
  end
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0
                         or timeout ~= timeout) then   -- (NaN)
    error("bad argument #4 to 'serve' (timeout must be a positive number)", 2)
  end
  local on_error = opts.on_error
  if on_error ~= nil and not callable(on_error) then
    error("bad argument #4 to 'serve' (on_error must be a function)", 2)
  end
  -- SPEC §4's workers (n processes) belong to a later issue: one process
  -- is what serve runs, so more raises rather than quietly serve alone
  local workers = opts.workers
  if workers ~= nil and workers ~= 1 then
    error("bad argument #4 to 'serve' (workers: one process only for now; "
          .. "run several with reuseport = true to share the port)", 2)
  end
  local maxd = opts.max_datagram
  if maxd ~= nil then maxd = math.type(maxd) and math.tointeger(maxd) or 0 end
  if maxd ~= nil and maxd < 1 then
    error("bad argument #4 to 'serve' (max_datagram must be a positive "
          .. "integer)", 2)
  end
  local server = setmetatable({
    network = network, active = 0, accepted = 0, max = max,
    timeout = timeout, on_error = opts.on_error, closed = false,
    max_datagram = maxd,
  }, Server)
  if net.type == "dgram" then
    local ep, msg, code = sockit.bind(network, address, opts)
    if not ep then return nil, msg, code end
    server.endpoint = ep
    -- the reply queue exists before the task runs: close() flushes it,
    -- and a server closed before sockit.run() raised there
    server.queue, server.nqueued = {}, 0
    server.task = loop.spawn(receive_loop, server, handler)
  else
    local l, msg, code = sockit.listen(network, address, opts)
    if not l then return nil, msg, code end
    server.listener = l
    server.ended = ended_of(server)
    server.task = loop.spawn(accept_loop, server, handler)
  end
  return server
end

return M
