--[[
sockit.dgram — datagram and record endpoints.

sockit.bind(network, address [, opts]) -> endpoint | nil, msg, code
Networks udp, udp4, udp6, unixgram. opts: reuseaddr, reuseport, v6only
(as for listen; reuseaddr is off by default here). A unix path is handled as by
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

SPEC §4 adds, by kind (a method that does not apply is absent, so
`if ep.sendmany then` tells the kinds apart):
  udp*, unixgram       ep:sendmany(list [, address]) -> count sent
                       ep:recvmany(n [, max]) -> {{data, peer}, ...}
  unixgram, unixpacket ep:sendfds(data, fd...), ep:recvfds(max, maxfds),
                       ep:peercred()
]]

local M = {}

local addr = require "sockit.addr"
local conn = require "sockit.conn"
local fdpass = require "sockit.fdpass"
local open = require "sockit.open"
local wait = require "sockit.wait"

local error, pairs, select, setmetatable, tonumber, tostring, type =
  error, pairs, select, setmetatable, tonumber, tostring, type
local find, match, sformat = string.find, string.match, string.format
local move = table.move
local tointeger = math.tointeger
local argerror, format = addr.argerror, addr.format
local deadline_of, waitfor, pause = wait.deadline, wait.wait, wait.pause
-- what a wait says when another task closed the endpoint meanwhile
local CLOSED = "socket closed while waiting"

local expired = wait.expired   -- (marks a timeout for serve)


local Endpoint = {__name = "sockit.endpoint"}
Endpoint.__index = Endpoint
M.Endpoint = Endpoint      -- the methods every endpoint has
-- Endpoint plus: batches (udp*); batches and descriptors (unixgram);
-- descriptors (unixpacket). Made at the end of this file.
local DgramEndpoint, UnixgramEndpoint, PacketEndpoint


--[[
M.new(sock, net, opts) -> endpoint
opts: timeout, peer (address string of a connected endpoint), path (a
socket file to remove when closed, if it still names the file 'fileid').
]]
function M.new (sock, net, opts)
  local class = net.type == "seqpacket" and PacketEndpoint
                or net.unix and UnixgramEndpoint or DgramEndpoint
  return setmetatable({
    socket = sock,
    _net = net,
    _family = sock:family(),
    _timeout = opts.timeout,
    _peer = opts.peer,
    _path = opts.path,
    _fileid = opts.fileid,
    _closed = false,
  }, class)
end


function M.bind (network, address, opts)
  local net = addr.network(network, 1, "bind", 3, "dgram")
  local host, port = addr.parse(net, address, 2, "bind", 3)
  opts = addr.checkopts(opts, 3, "bind", 3)
  open.checkopts(opts, "bind", 3, "bind", 3)
  local sock, msg, code = open.bind(net, host, port, opts)
  if not sock then return nil, msg, code end
  return M.new(sock, net, {path = net.unix and open.isfile(host) and host
                                  or nil, fileid = msg})
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


local function checkmax (max, fname, arg)
  if max == nil then return 65536 end
  local n = tointeger(max)
  if not n or n <= 0 then
    argerror(arg or 1, fname, "max must be a positive integer", 3)
  end
  return n
end


--[[
Send with waiting. A unix datagram socket that is not connected cannot
tell when the receiver's queue has room (poll says writable at once), so
there the wait is a short pause that grows, up to 50 ms.
]]
local function sendloop (self, op, data, host, port, deadline, started)
  local sock = self.socket
  local unix = self._family == "unix"
  local delay = 0.001
  while true do
    local n, msg, code
    if op == "send" then n, msg, code = sock:send(data)
    elseif unix then n, msg, code = sock:sendto(data, host)
    else n, msg, code = sock:sendto(data, host, port) end
    if n then return n end
    if code ~= "EAGAIN" then return nil, msg, code end
    if not started then deadline, started = deadline_of(self._timeout), true end
    local ok, wmsg, wcode
    self._expired = nil
    if unix and op == "sendto" then
      ok, wmsg, wcode = pause(deadline, delay)
      if delay < 0.05 then delay = delay * 2 end
    else
      ok, wmsg, wcode = waitfor(sock, "w", deadline, true)
    end
    if ok and self._closed then ok, wmsg, wcode = nil, CLOSED, "EBADF" end
    if not ok then
      if op == "sendto" then
        op = "sendto " .. (unix and format("unix", host) or addr.join(host, port))
      end
      return nil, expired(self, op .. ": " .. wmsg, wcode), wcode
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
    self._expired = nil
    local ok, wmsg, wcode = waitfor(sock, "r", deadline, true)
    if ok and self._closed then ok, wmsg, wcode = nil, CLOSED, "EBADF" end
    if not ok then return nil, expired(self, op .. ": " .. wmsg, wcode), wcode end
  end
end


--[[
The host, port (or path) of a destination address string; ":port" is
this machine. 'level': the user's call as seen from here.
]]
local function destination (self, address, n, fname, level)
  local net = self._net
  local host, port = addr.parse(net, address, n, fname, level + 1)
  if host == nil and not net.unix then       -- ":port" is this machine
    host = self._family == "inet6" and "::1" or "127.0.0.1"
  end
  return host, port
end
M.destination = destination


-- a host the core takes without asking a resolver: an IPv4 dotted quad
-- or an IPv6 literal (with no zone, which could be a name's lookup)
local function literal (host)
  if find(host, ":", 1, true) then return not find(host, "%", 1, true) end
  local a, b, c, d = match(host, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  return a ~= nil and tonumber(a) < 256 and tonumber(b) < 256
         and tonumber(c) < 256 and tonumber(d) < 256
end

-- whether 'host' is a name that an inet endpoint must look up first
local function isname (self, host)
  return self._family ~= "unix" and not literal(host)
end

-- M.numeric for a host that isname says is a name
local function lookup (self, host, port, deadline, op)
  local family = self._family
  local list, msg, code = wait.resolve(host, port,
    family == "inet" and "inet" or nil, "dgram", op, deadline or nil)
  if not list then return nil, expired(self, msg, code), code end
  local v4
  for i = 1, #list do
    local e = list[i]
    if e.family == family then return e.host end
    v4 = v4 or (e.family == "inet" and e.host)
  end
  if v4 then return "::ffff:" .. v4 end
  return nil, op .. " " .. addr.join(host, port) .. ": no " .. family
              .. " address", "EADDRNOTAVAIL"
end

--[[
M.numeric(ep, host, port, deadline, op) -> host | nil, msg, code
The address the core's sendto would resolve 'host' to (an inet
endpoint), found as connect finds its addresses: a name is looked up on
a worker thread (wait.resolve), so that inside a task only that task
waits, and within 'deadline' ("<op> host:port: timed out"). Left to the
core's sendto, getaddrinfo ran in the caller: a slow resolver froze the
whole loop, whatever the endpoint's timeout. A literal (and a unix path)
comes back as it is. For an inet6 socket an IPv4-only name gives the
IPv4-mapped address, as the core's AI_V4MAPPED does. 'deadline' false
(timeout 0) does not bound the lookup, which has no non-blocking form
(as before: the core's sendto blocked for it).
]]
function M.numeric (self, host, port, deadline, op)
  if not isname(self, host) then return host end
  return lookup(self, host, port, deadline, op)
end


-- ep:sendto(data, address) -> bytes sent | nil, msg, code
function Endpoint:sendto (data, address)
  checkopen(self)
  data = checkdata(data, "sendto")
  local host, port = destination(self, address, 2, "sendto", 3)
  local deadline, started = nil, false
  if isname(self, host) then
    -- one deadline for the lookup and the send
    deadline, started = deadline_of(self._timeout), true
    local msg, code
    host, msg, code = lookup(self, host, port, deadline, "sendto")
    if not host then return nil, msg, code end
  end
  local n, msg, code = sendloop(self, "sendto", data, host, port, deadline,
                                started)
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
  local n, msg, code = sendloop(self, "send", data, nil, nil, nil, false)
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



Endpoint.close = conn.close      -- (conn.lua: M.close)

Endpoint.__close = Endpoint.close

function Endpoint:__tostring ()
  return conn.describe("endpoint", self)
end


--[[ {=====================================================
Batches of datagrams (SPEC §4): sendmmsg / recvmmsg
====================================================== ]]

local BATCH_MAX = 1024     -- the most one core call takes (UIO_MAXIOV)

--[[
M.recvbatch(ep, n, max) -> list | nil, msg, code
The core's recvmany with waiting: up to n datagrams, at least one, as
the core gives them ({data, host, port} / {data, path}; an oversized one
is {false, host, port, code = "EMSGSIZE", message = ...}). serve uses
this directly, to answer with the host and port it already has.
]]
function M.recvbatch (self, n, max)
  local sock = self.socket
  local deadline, started = nil, false
  while true do
    local list, msg, code = sock:recvmany(n, max)
    if list then return list end
    if code ~= "EAGAIN" then return nil, msg, code end
    if not started then deadline, started = deadline_of(self._timeout), true end
    local ok, wmsg, wcode = waitfor(sock, "r", deadline, true)
    if ok and self._closed then ok, wmsg, wcode = nil, CLOSED, "EBADF" end
    if not ok then return nil, "recvmany: " .. wmsg, wcode end
  end
end


-- items[i..] as one core call takes them: at most BATCH_MAX, from 1
local function slice (items, i, total)
  local j = i + BATCH_MAX - 1
  if j > total then j = total end
  if i == 1 and j == total then return items end
  return move(items, i, j, 1, {})
end

--[[
M.sendbatch(ep, items, host, port, paced [, deadline, started])
  -> #items | nil, msg, code, sent
The core's sendmany with waiting, for any number of items (1024 per
call). 'items' as the core takes them: strings (to host, port or path,
or to the connected peer) and {data, host, port} / {data, path} tables.
The kernel may take part of a batch (a full socket buffer): the next
call goes on from the first datagram not sent. On failure, 'sent' is the
count that went, so items[sent + 1] is the one that failed. 'paced': a
unix datagram socket sending to addresses cannot poll for room (see
sendloop), so it pauses instead. 'started' true: 'deadline' is the
call's already (its lookups began it); otherwise the first wait sets it.
]]
function M.sendbatch (self, items, host, port, paced, deadline, started)
  local sock = self.socket
  local total, sent = #items, 0
  local part, first = nil, 0
  local delay = 0.001
  while sent < total do
    if first ~= sent + 1 then part, first = slice(items, sent + 1, total), sent + 1 end
    local n, msg, code = sock:sendmany(part, host, port)
    if n then
      sent = sent + n
      delay = 0.001                        -- progress: the next pause is short
    elseif code == "EAGAIN" then
      if not started then deadline, started = deadline_of(self._timeout), true end
      local ok, wmsg, wcode
      if paced then
        ok, wmsg, wcode = pause(deadline, delay)
        if delay < 0.05 then delay = delay * 2 end
      else
        ok, wmsg, wcode = waitfor(sock, "w", deadline, true)
      end
      if ok and self._closed then ok, wmsg, wcode = nil, CLOSED, "EBADF" end
      if not ok then return nil, "sendmany: " .. wmsg, wcode, sent end
    else
      -- the core names the common address (or none): name the item's own
      local bad = items[sent + 1]
      if type(bad) == "table" then
        local where = format(self._family, bad[2], bad[3])
        -- ("" is an unnamed unix peer: no address to name, as sendto)
        msg = "sendmany" .. (where == "" and "" or " " .. where) .. ": "
              .. (match(msg, "^sendmany: (.*)$") or match(msg, "^sendmany .-: (.*)$")
                  or msg)
      end
      return nil, msg, code, sent
    end
  end
  return total
end


local Batch = {}           -- the methods of udp* and unixgram endpoints

--[[
ep:recvmany(n [, max]) -> {{data, peer}, ...} | nil, msg, code
Waits (per the timeout) for one datagram, then takes every one that is
queued, up to n (1..1024), in one system call; 'peer' is the sender's
address string, as recvfrom gives it. A datagram longer than max
(default 65536) is not cut: its entry is {false, peer, code =
"EMSGSIZE", message = "recvmany: datagram of N bytes is longer than max
M"}, and the others are still there.
]]
function Batch:recvmany (n, max)
  checkopen(self)
  local k = tointeger(n)
  if not k or k < 1 or k > BATCH_MAX then
    argerror(1, "recvmany", "n must be an integer from 1 to 1024", 2)
  end
  max = checkmax(max, "recvmany", 2)
  local list, msg, code = M.recvbatch(self, k, max)
  if not list then return nil, msg, code end
  local family = self._family
  for i = 1, #list do
    local e = list[i]
    e[2], e[3] = format(family, e[2], e[3]), nil
  end
  return list
end


-- the core skips an item {false}: what every error entry becomes
local SKIP = {false}

--[[
ep:sendmany(list [, address]) -> #list | nil, msg, code, sent
Sends the datagrams of 'list' in order, 1024 per system call. An item
is a string (or number), sent to 'address' or, without one, to the
connected peer; or a table {data, address} with its own destination
({data} alone: as a string). A table whose data is false (recvmany's
entry for a datagram too long) is skipped, and counted as done, so
ep:sendmany(ep:recvmany(n)) echoes. The count is #list once all went;
on failure 'sent' says how many were done (list[sent + 1] is the one
that failed). Addresses are parsed once per call, however many items
share one.
]]
function Batch:sendmany (list, address)
  checkopen(self)
  if type(list) ~= "table" then
    argerror(1, "sendmany", "table expected, got " .. type(list), 2)
  end
  local host, port
  if address ~= nil then host, port = destination(self, address, 2, "sendmany", 3) end
  local items, parsed, addressed = list, nil, host ~= nil
  -- names are looked up as sendto's are (M.numeric), under one deadline
  -- for the lookups and the sends; an item whose name fails ends the
  -- list there: the ones before it are sent, and it is the one that failed
  local deadline, started, failed = nil, false, nil
  if host ~= nil and isname(self, host) then
    deadline, started = deadline_of(self._timeout), true
    local msg, code
    host, msg, code = lookup(self, host, port, deadline, "sendmany")
    if not host then return nil, msg, code, 0 end
  end
  for i = 1, #list do
    local v = list[i]
    local t = type(v)
    if t ~= "string" then
      if items == list then items = move(list, 1, i - 1, 1, {}) end
      if t == "number" then
        v = tostring(v)
      elseif t == "table" then
        local data, a = v[1], v[2]
        if data == false then
          v = SKIP           -- recvmany's entry for a datagram too long
        else
          if type(data) == "number" then data = tostring(data)
          elseif type(data) ~= "string" then
            argerror(1, "sendmany", sformat("item %d: string expected at [1], got %s",
                                            i, type(data)), 2)
          end
          if a == nil then
            v = data
          else
            parsed = parsed or {}
            local d = parsed[a]
            if not d then
              d = {destination(self, a, 1, "sendmany", 3)}
              if isname(self, d[1]) then
                if not started then
                  deadline, started = deadline_of(self._timeout), true
                end
                local h, msg, code = lookup(self, d[1], d[2], deadline, "sendmany")
                if h then d[1] = h else d = {false, msg, code} end
              end
              parsed[a] = d
            end
            if d[1] == false then
              failed = failed or {i, d[2], d[3]}
            end
            v = {data, d[1], d[2]}
            addressed = true
          end
        end
      else
        argerror(1, "sendmany", sformat("item %d: string or table expected, got %s",
                                        i, t), 2)
      end
    end
    if items ~= list then items[i] = v end
  end
  if failed then   -- (every item is still checked for misuse first)
    local i = failed[1]
    local ok, msg, code, sent = true, nil, nil, nil
    if i > 1 then
      ok, msg, code, sent = M.sendbatch(self, move(items, 1, i - 1, 1, {}),
        host, port, self._family == "unix" and addressed, deadline, started)
    end
    if not ok then return nil, msg, code, sent end
    return nil, failed[2], failed[3], i - 1
  end
  return M.sendbatch(self, items, host, port,
                     self._family == "unix" and addressed, deadline, started)
end

--[[ }===================================================== ]]


--[[ {=====================================================
Descriptors and credentials (SPEC §4), for unixgram and unixpacket.
A unixgram endpoint sends descriptors only to its connected peer
(sockit.connect("unixgram", path)); one made by sockit.bind receives them.
====================================================== ]]

local Fds = {}

-- ep:sendfds(data, fd1 [, ...]) -> #data: one datagram or record with them
-- (descriptors as conn:sendfds takes them)
function Fds:sendfds (data, ...)
  checkopen(self)
  data = checkdata(data, "sendfds")
  local fds = fdpass.checkfds("sendfds", 2, ...)
  local n, msg, code, sent = fdpass.send(self, data, fds)
  if not n then return nil, msg, code, sent end
  return n          -- a datagram or record goes whole
end

-- ep:recvfds(max, maxfds) -> data, {fd, ...}: one datagram or record
function Fds:recvfds (max, maxfds)
  checkopen(self)
  max = checkmax(max, "recvfds")
  maxfds = fdpass.checkmaxfds(maxfds, "recvfds", 2)
  return fdpass.recv(self, max, maxfds)
end

-- ep:peercred() -> pid, uid, gid (unixpacket; "ENOTCONN" for unixgram)
function Fds:peercred ()
  checkopen(self)
  return fdpass.cred(self)
end

--[[ }===================================================== ]]


local function class (...)
  local c = conn.derive(Endpoint)
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...))) do c[k] = v end
  end
  return c
end

DgramEndpoint = class(Batch)
UnixgramEndpoint = class(Batch, Fds)
PacketEndpoint = class(Fds)
M.DgramEndpoint, M.UnixgramEndpoint, M.PacketEndpoint =
  DgramEndpoint, UnixgramEndpoint, PacketEndpoint

-- the same for every object holding a core socket: conn.lua's
Endpoint.peer, Endpoint.addr, Endpoint.settimeout, Endpoint.gettimeout,
  Endpoint.shutdown =
  conn.peer, conn.addr, conn.settimeout, conn.gettimeout, conn.shutdown

return M
