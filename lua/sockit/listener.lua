--[[
sockit.listener — sockit.listen and the listener it returns.

sockit.listen(network, address [, opts]) -> listener | nil, msg, code
Stream networks: tcp, tcp4, tcp6, unix, and unixpacket (whose accepted
connections are record endpoints, see dgram.lua). opts:
  backlog     listen(2)'s backlog (default SOMAXCONN)
  reuseaddr   SO_REUSEADDR before bind (default true for tcp)
  reuseport   SO_REUSEPORT before bind
  v6only      IPV6_V6ONLY of an IPv6 socket (default: true for tcp6,
              false for tcp: "[::]:port" hears IPv4 clients too)
  nodelay     TCP_NODELAY on every accepted conn
  max_line    opts.max_line of every accepted conn
  mode        unix: the socket file's permissions (tonumber("660", 8)),
              set before listen(2)
For unix paths: a stale socket file (nobody bound to it) is replaced, a
live one or a file that is not a socket is EADDRINUSE and left alone;
close() removes the file the listener made, if the path still names it
(not on garbage collection: by then another listener may own the path).
]]

local M = {}

local addr = require "sockit.addr"
local conn = require "sockit.conn"
local dgram = require "sockit.dgram"
local open = require "sockit.open"
local wait = require "sockit.wait"

local error, setmetatable = error, setmetatable
local deadline_of, waitfor = wait.deadline, wait.wait


local Listener = {__name = "sockit.listener"}
Listener.__index = Listener
M.Listener = Listener


local function checkopen (self)
  if self._closed then error("attempt to use a closed socket", 3) end
end


function M.listen (network, address, opts)
  local net = addr.network(network, 1, "listen", 3, "stream")
  local host, port = addr.parse(net, address, 2, "listen", 3)
  opts = addr.checkopts(opts, 3, "listen", 3)
  -- every option, before a socket exists (a backlog out of range raised
  -- from listen(2)'s call after the bind: the port stayed held until
  -- garbage collection, and a unix socket file was left behind)
  local backlog = open.checkopts(opts, "listen", 3, "listen", 3)
  local sock, msg, code = open.bind(net, host, port, opts)
  if not sock then return nil, msg, code end
  local path, fileid = net.unix and open.isfile(host) and host or nil, msg
  local ok
  ok, msg, code = sock:listen(backlog)
  if not ok then
    sock:close()
    if path then open.unlink(path, fileid) end
    return nil, msg, code
  end
  return setmetatable({
    socket = sock,
    _net = net,
    _family = sock:family(),
    _nodelay = opts.nodelay and net.family ~= "unix",
    _max_line = opts.max_line,
    _path = path,
    _fileid = fileid,
    _timeout = nil,
    _closed = false,
  }, Listener)
end


--[[
listener:accept() -> conn, peer address | nil, msg, code
The peer of an unnamed unix client is "". Waits at most the listener's
timeout (settimeout), "ETIMEDOUT" then.
]]
function Listener:accept ()
  checkopen(self)
  local sock = self.socket
  local deadline, started = nil, false
  while true do
    local c, host, port = sock:accept()
    if c then
      c:settimeout(0)
      local family = self._family
      local peer = addr.format(family, host, port)
      if self._nodelay then c:setoption("nodelay", true) end
      if self._net.type == "seqpacket" then
        return dgram.new(c, self._net, {peer = peer}), peer
      end
      return conn.new(c, {peer = peer, max_line = self._max_line}), peer
    end
    local code = port
    if code ~= "EAGAIN" then return nil, host, code end
    if not started then deadline, started = deadline_of(self._timeout), true end
    -- (shared: several tasks may accept on one listener)
    local ok, wmsg, wcode = waitfor(sock, "r", deadline, true)
    if not ok then return nil, "accept: " .. wmsg, wcode end
    if self._closed then return nil, "accept: socket closed while waiting", "EBADF" end
  end
end


-- listener:close() -> true (idempotent); removes the socket file it made
-- (only if the path still names it: see open.unlink)
Listener.close = conn.close      -- (conn.lua: M.close)

Listener.__close = Listener.close

function Listener:__tostring ()
  return conn.describe("listener", self)
end

-- the same for every object holding a core socket: conn.lua's
Listener.addr, Listener.settimeout, Listener.gettimeout =
  conn.addr, conn.settimeout, conn.gettimeout

return M
