--[[
sockit.serve — servers on the event loop (SPEC §3 "Event loop and servers").

serve(network, address, handler, opts) listens (stream networks) or binds
(datagram networks) and spawns one accept task. For a stream network each
accepted connection gets its own task running handler(conn, peer); the
conn is closed when the handler returns or raises. For a datagram network
the receive task calls handler(data, peer, endpoint) for each datagram, in
turn (a handler that blocks delays the next datagram, as a Go read loop).

opts: what listen/bind take, plus
  max_connections  at the limit, stop accepting until a connection ends
                   (new clients wait in the kernel's backlog)
  timeout          seconds a connection may be idle: every read or write
                   that waits longer fails with "ETIMEDOUT"
  on_error(err, peer)  called when a handler raises (default: stderr)
]]

local M = {}

local loop = require "sockit.loop"
local addr = require "sockit.addr"

local traceback = debug.traceback
local xpcall, pcall, type, tostring, setmetatable, error =
  xpcall, pcall, type, tostring, setmetatable, error
local io_stderr = io.stderr
local math_min, math_max = math.min, math.max

local Server = {}
Server.__index = Server
Server.__name = "sockit.server"

function Server:__tostring ()
  return ("sockit.server{%s %s%s, %d active}"):format(self.network,
    self.closed and "closed" or self:addr(), self.max and
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
  local obj = self.listener or self.endpoint
  obj:close()   -- wakes the accept task, which then ends
  if self.waiting then loop.resume(self.waiting) end
  return true
end

Server.__close = Server.close

local function report (server, err, peer)
  local on_error = server.on_error
  if on_error then
    local ok, e = pcall(on_error, err, peer)
    if ok then return end
    err = tostring(err) .. "\n(and on_error raised: " .. tostring(e) .. ")"
  end
  io_stderr:write("sockit.serve ", server.network, " ", tostring(peer),
                  ": ", tostring(err), "\n")
  io_stderr:flush()
end

-- one connection's task
local function handle (server, handler, conn, peer)
  local ok, err = xpcall(handler, traceback, conn, peer)
  conn:close()
  server.active = server.active - 1
  if not ok then report(server, err, peer) end
  local w = server.waiting
  if w and server.active < server.max then loop.resume(w) end
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
  while not server.closed do
    if server.max and server.active >= server.max then
      server.waiting = loop.current()
      loop.suspend()
      server.waiting = nil
    else
      local conn, peer, code = listener:accept()
      if conn then
        backoff = 0
        server.active = server.active + 1
        server.accepted = server.accepted + 1
        if timeout then conn:settimeout(timeout) end
        loop.spawn(handle, server, handler, conn, peer)
      elseif server.closed or code == "EBADF" then
        break
      elseif transient[code] then   -- luacheck: ignore 542
        -- the next connection may be fine
      elseif exhausted[code] then
        -- no descriptor for a new connection: the backlog keeps clients
        -- waiting; retry with a growing pause instead of spinning
        backoff = math_min(math_max(backoff * 2, 0.005), 0.5)
        if not server.exhausted_reported then
          server.exhausted_reported = true
          report(server, "accept: " .. tostring(peer) ..
                 " (backing off until descriptors free up)", "-")
        end
        loop.sleep(backoff)
      else
        report(server, "accept: " .. tostring(peer), "-")
        loop.sleep(0.1)
      end
    end
  end
end

local function receive_loop (server, handler)
  local ep = server.endpoint
  local max = server.max_datagram
  while not server.closed do
    local data, peer, code = ep:recvfrom(max)
    if data then
      local ok, err = xpcall(handler, traceback, data, peer, ep)
      if not ok then report(server, err, peer) end
    elseif server.closed or code == "EBADF" then
      break
    elseif code ~= "ECONNREFUSED" and code ~= "EAGAIN" then
      -- (an ICMP error from an earlier send says nothing of this server)
      report(server, "recvfrom: " .. tostring(peer), "-")
    end
  end
end

--[[
M.serve(sockit, network, address, handler, opts) -> server | nil, msg, code
'sockit' is the module (for listen and bind).
]]
function M.serve (sockit, network, address, handler, opts)
  if type(handler) ~= "function" then
    error(("bad argument #3 to 'serve' (function expected, got %s)")
          :format(type(handler)), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #4 to 'serve' (table expected, got %s)")
          :format(type(opts)), 3)
  end
  local net = addr.network(network, 1, "serve", 3)
  opts = opts or {}
  local max = opts.max_connections
  if max ~= nil and (math.type(max) ~= "integer" or max < 1) then
    error("bad argument #4 to 'serve' (max_connections must be a " ..
          "positive integer)", 3)
  end
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
    error("bad argument #4 to 'serve' (timeout must be a positive number)", 3)
  end
  local server = setmetatable({
    network = network, active = 0, accepted = 0, max = max,
    timeout = timeout, on_error = opts.on_error, closed = false,
    max_datagram = opts.max_datagram,
  }, Server)
  if net.type == "dgram" then
    local ep, msg, code = sockit.bind(network, address, opts)
    if not ep then return nil, msg, code end
    server.endpoint = ep
    server.task = loop.spawn(receive_loop, server, handler)
  else
    local l, msg, code = sockit.listen(network, address, opts)
    if not l then return nil, msg, code end
    server.listener = l
    server.task = loop.spawn(accept_loop, server, handler)
  end
  return server
end

return M
