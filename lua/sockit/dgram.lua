--[[
sockit.dgram — datagram and record endpoints.

sockit.bind(network, address [, opts]) -> endpoint | nil, msg, code
Networks udp, udp4, udp6, unixgram. opts: reuseaddr, reuseport (as for
listen; reuseaddr is off by default here). A unix path is handled as by
listen: a stale socket file is replaced, and close() removes the file.

An endpoint has
  ep:sendto(data, address) -> bytes sent
  ep:recvfrom([max])       -> data, sender's address ("" for an unnamed
                              unix sender, which cannot be answered)
  ep:send(data), ep:recv([max]), ep:peer()   once connected
  ep:addr(), ep:settimeout(t), ep:gettimeout(), ep:shutdown([how]),
  ep:close(), ep.socket
max defaults to 65536; a datagram longer than max is
nil, msg, "EMSGSIZE" (and is gone: the kernel drops the rest).

The same object is the connected endpoint of sockit.connect("udp"|
"unixgram", ...) and both ends of a "unixpacket" connection: records
(SOCK_SEQPACKET) keep their boundaries, so they get send/recv rather than
the byte-stream reads of a conn; recv at the end of the connection is
nil, msg, "EOF" (an empty record looks the same to the kernel).
]]

local M = {}

local addr = require "sockit.addr"
local conn = require "sockit.conn"
local open = require "sockit.open"
local wait = require "sockit.wait"

local error, setmetatable, tostring, type =
  error, setmetatable, tostring, type
local tointeger = math.tointeger
local os_remove = os.remove
local argerror, format = addr.argerror, addr.format
local deadline_of, waitfor, pause = wait.deadline, wait.wait, wait.pause


local Endpoint = {__name = "sockit.endpoint"}
Endpoint.__index = Endpoint
M.Endpoint = Endpoint


--[[
M.new(sock, net, opts) -> endpoint
opts: timeout, peer (address string of a connected endpoint), path (a
socket file to remove when closed).
]]
function M.new (sock, net, opts)
  return setmetatable({
    socket = sock,
    _net = net,
    _family = sock:family(),
    _timeout = opts.timeout,
    _peer = opts.peer,
    _path = opts.path,
    _closed = false,
  }, Endpoint)
end


function M.bind (network, address, opts)
  local net = addr.network(network, 1, "bind", 3, "dgram")
  local host, port = addr.parse(net, address, 2, "bind", 3)
  opts = addr.checkopts(opts, 3, "bind", 3)
  local sock, msg, code = open.bind(net, host, port, opts)
  if not sock then return nil, msg, code end
  return M.new(sock, net, {path = net.unix and open.isfile(host) and host
                                  or nil})
end


local function checkopen (self)
  if self._closed then error("attempt to use a closed socket", 3) end
end


local function checkdata (data, fname)
  if type(data) == "number" then return tostring(data) end
  if type(data) ~= "string" then
    argerror(1, fname, "string expected, got " .. type(data), 3)
  end
  return data
end


local function checkmax (max, fname)
  if max == nil then return 65536 end
  local n = tointeger(max)
  if not n or n <= 0 then
    argerror(1, fname, "max must be a positive integer", 3)
  end
  return n
end


--[[
Send with waiting. A unix datagram socket that is not connected cannot
tell when the receiver's queue has room (poll says writable at once), so
there the wait is a short pause that grows, up to 50 ms.
]]
local function sendloop (self, op, data, host, port)
  local sock = self.socket
  local unix = self._family == "unix"
  local deadline, started, delay = nil, false, 0.001
  while true do
    local n, msg, code
    if op == "send" then n, msg, code = sock:send(data)
    elseif unix then n, msg, code = sock:sendto(data, host)
    else n, msg, code = sock:sendto(data, host, port) end
    if n then return n end
    if code ~= "EAGAIN" then return nil, msg, code end
    if not started then deadline, started = deadline_of(self._timeout), true end
    local ok, wmsg, wcode
    if unix and op == "sendto" then
      ok, wmsg, wcode = pause(deadline, delay)
      if delay < 0.05 then delay = delay * 2 end
    else
      ok, wmsg, wcode = waitfor(sock, "w", deadline)
    end
    if not ok then
      if op == "sendto" then
        op = "sendto " .. (unix and format("unix", host) or addr.join(host, port))
      end
      return nil, op .. ": " .. wmsg, wcode
    end
  end
end


-- receive with waiting; returns data, a, b as the core call does
local function recvloop (self, op, max)
  local sock = self.socket
  local deadline, started = nil, false
  while true do
    local data, a, b
    if op == "recv" then data, a, b = sock:recv(max)
    else data, a, b = sock:recvfrom(max) end
    if data then return data, a, b end
    if b ~= "EAGAIN" then return nil, a, b end
    if not started then deadline, started = deadline_of(self._timeout), true end
    local ok, wmsg, wcode = waitfor(sock, "r", deadline)
    if not ok then return nil, op .. ": " .. wmsg, wcode end
  end
end


-- ep:sendto(data, address) -> bytes sent | nil, msg, code
function Endpoint:sendto (data, address)
  checkopen(self)
  data = checkdata(data, "sendto")
  local net = self._net
  local host, port = addr.parse(net, address, 2, "sendto", 3)
  if host == nil and not net.unix then       -- ":port" is this machine
    host = self._family == "inet6" and "::1" or "127.0.0.1"
  end
  local n, msg, code = sendloop(self, "sendto", data, host, port)
  if not n then return nil, msg, code end
  return n
end


-- ep:recvfrom([max]) -> data, address string | nil, msg, code
function Endpoint:recvfrom (max)
  checkopen(self)
  max = checkmax(max, "recvfrom")
  local data, a, b = recvloop(self, "recvfrom", max)
  if not data then return nil, a, b end
  return data, format(self._family, a, b)
end


-- ep:send(data) -> bytes sent (connected endpoints)
function Endpoint:send (data)
  checkopen(self)
  data = checkdata(data, "send")
  local n, msg, code = sendloop(self, "send", data)
  if not n then return nil, msg, code end
  return n
end


-- ep:recv([max]) -> data (connected endpoints)
function Endpoint:recv (max)
  checkopen(self)
  max = checkmax(max, "recv")
  local data, msg, code = recvloop(self, "recv", max)
  if not data then return nil, msg, code end
  return data
end


function Endpoint:peer ()
  checkopen(self)
  local p = self._peer
  if p then return p end
  local msg, code
  p, msg, code = conn.name(self.socket, self._family, true)
  if not p then return nil, msg, code end
  self._peer = p
  return p
end


function Endpoint:addr ()
  checkopen(self)
  local a, msg, code = conn.name(self.socket, self._family, false)
  if not a then return nil, msg, code end
  return a
end


function Endpoint:settimeout (t)
  checkopen(self)
  conn.checktimeout(t, "settimeout")
  self._timeout = t
  return true
end

function Endpoint:gettimeout ()
  return self._timeout
end


local HOWS = {r = true, w = true, rw = true}

function Endpoint:shutdown (how)
  checkopen(self)
  if how == nil then how = "rw" end
  if not HOWS[how] then
    argerror(1, "shutdown", "invalid option '" .. tostring(how) .. "'", 2)
  end
  local ok, msg, code = self.socket:shutdown(how)
  if not ok then return nil, msg, code end
  return ok
end


function Endpoint:close ()
  if not self._closed then
    self._closed = true
    wait.close(self.socket)
    if self._path then os_remove(self._path) end
  end
  return true
end

Endpoint.__close = Endpoint.close

function Endpoint:__tostring ()
  return conn.describe("endpoint", self)
end

return M
