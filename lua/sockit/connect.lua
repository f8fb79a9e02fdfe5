--[[
sockit.connect — sockit.connect(network, address [, opts]).

Returns a conn (tcp*, unix), or an endpoint (udp*, unixgram: connected,
with send/recv; unixpacket: records, see dgram.lua); nil, msg, code on
failure. opts:
  timeout    seconds: ONE deadline for everything connect does (name
             resolution and every address tried), then the default
             timeout of each later call on the result
  nodelay    TCP_NODELAY
  bind       the local address, in the network's syntax ("127.0.0.1:0",
             ":5000", "/tmp/client.sock", "@client")
  max_line   the conn's max_line (default 64 KiB)

A name is resolved and each address tried in the resolver's order until
one connects. Under a timeout each address gets an equal share of the
time left, but at least 2 s (or all that is left), as Go does: a dead
first address cannot eat the whole budget, and the clock never restarts.
":port" (no host) is this machine: 127.0.0.1 then ::1.

A unixgram client with no opts.bind is autobound (Linux gives it an
abstract name such as "@0001f"), so that the server can answer it.
]]

local M = {}

local addr = require "sockit.addr"
local conn = require "sockit.conn"
local core = require "sockit.core"
local dgram = require "sockit.dgram"
local open = require "sockit.open"
local wait = require "sockit.wait"

local type = type
local now = core.now
local argerror, format = addr.argerror, addr.format
local waitfor, pause = wait.wait, wait.pause

local SANE_MINIMUM = 2     -- seconds: the least share of one address


-- the addresses of this machine, for ":port"
local function loopbacks (net, port)
  if net.family == "inet" then return {{family = "inet", host = "127.0.0.1", port = port}} end
  if net.family == "inet6" then return {{family = "inet6", host = "::1", port = port}} end
  return {{family = "inet", host = "127.0.0.1", port = port},
          {family = "inet6", host = "::1", port = port}}
end


-- the deadline of one of 'left' addresses still to try (Go's partialDeadline)
local function partial (deadline, left)
  if not deadline then return nil end
  local t = now()
  local remaining = deadline - t
  if remaining <= 0 then return t end
  local share = remaining / left
  if share < SANE_MINIMUM then
    share = remaining < SANE_MINIMUM and remaining or SANE_MINIMUM
  end
  return t + share
end


-- finish a connect that is in progress (EINPROGRESS, EALREADY) or would
-- block (EAGAIN: a unix listener's full backlog, nothing to poll for)
local function finish (sock, ok, msg, code, deadline, text, ...)
  local delay = 0.001
  while not ok do
    local w, wmsg, wcode
    if code == "EINPROGRESS" or code == "EALREADY" then
      w, wmsg, wcode = waitfor(sock, "w", deadline)
    elseif code == "EAGAIN" then
      w, wmsg, wcode = pause(deadline, delay)
      if delay < 0.05 then delay = delay * 2 end
    else
      return nil, msg, code
    end
    if not w then return nil, "connect " .. text .. ": " .. wmsg, wcode end
    ok, msg, code = sock:connect(...)
  end
  return true
end


local function dial_unix (net, path, lpath, deadline, opts)
  local sock, msg, code = open.socket("unix", net.type)
  if not sock then return nil, msg, code end
  local ok, made, fileid
  if lpath then
    ok, msg, code = open.bindunix(sock, lpath)
    made = ok and open.isfile(lpath) and lpath or nil
    fileid = ok and msg
  elseif net.type == "dgram" then
    ok, msg, code = sock:bind("")            -- autobind: replies can come
  else
    ok = true
  end
  if ok then
    local text = format("unix", path)
    ok, msg, code = sock:connect(path)
    ok, msg, code = finish(sock, ok, msg, code, deadline, text, path)
    if ok then
      local o = {timeout = opts.timeout, peer = text, path = made,
                 fileid = fileid, max_line = opts.max_line}
      if net.type == "stream" then return conn.new(sock, o) end
      return dgram.new(sock, net, o)
    end
  end
  sock:close()
  if made then open.unlink(made, fileid) end
  return nil, msg, code
end


-- one address: a socket, bound if asked, connected by the deadline
local function dial_inet (net, c, lbind, deadline)
  local sock, msg, code = open.socket(c.family, net.type)
  if not sock then return nil, msg, code end
  local ok = true
  if lbind then ok, msg, code = sock:bind(lbind.host, lbind.port) end
  if ok then
    local text = format(c.family, c.host, c.port)
    ok, msg, code = sock:connect(c.host, c.port)
    ok, msg, code = finish(sock, ok, msg, code, deadline, text, c.host, c.port)
    if ok then return sock end
  end
  sock:close()
  return nil, msg, code
end


-- the local address of opts.bind for a socket of 'family', or nil, msg, code
local function localfor (llist, lport, family, text)
  if llist == true then return {port = lport} end  -- ":port": any interface
  for i = 1, #llist do
    if llist[i].family == family then return llist[i] end
  end
  return nil, "connect " .. text .. ": opts.bind has no " .. family
              .. " address", "EADDRNOTAVAIL"
end


function M.connect (network, address, opts)
  local net = addr.network(network, 1, "connect", 3)
  local host, port = addr.parse(net, address, 2, "connect", 3)
  opts = addr.checkopts(opts, 3, "connect", 3)
  local timeout = addr.opttimeout(opts, "timeout", 3, "connect", 3)
  addr.optfield(opts, "nodelay", "boolean", 3, "connect", 3)
  addr.optsize(opts, "max_line", 3, "connect", 3)
  local bind, lhost, lport = opts.bind, nil, nil
  if bind ~= nil then
    if type(bind) ~= "string" then
      argerror(3, "connect", "opts.bind must be an address string, got "
                             .. type(bind), 2)
    end
    lhost, lport = addr.parse(net, bind, 3, "connect", 3)
  end
  local deadline = timeout and now() + timeout
  if net.unix then return dial_unix(net, host, lhost, deadline, opts) end

  local list, msg, code
  if host == nil then
    list = loopbacks(net, port)
  else
    list, msg, code = wait.resolve(host, port, net.family, net.type, "connect",
                                   deadline)
    if not list then return nil, msg, code end
  end
  local llist = lhost == nil and bind and true or nil
  if lhost then
    llist, msg, code = wait.resolve(lhost, lport, net.family, net.type, "bind",
                                    deadline)
    if not llist then return nil, msg, code end
  end
  local fmsg, fcode
  for i = 1, #list do
    local c = list[i]
    local text = format(c.family, c.host, c.port)
    if deadline and now() >= deadline then
      return nil, "connect " .. text .. ": timed out", "ETIMEDOUT"
    end
    local lbind, sock = nil, nil
    if llist then lbind, msg, code = localfor(llist, lport, c.family, text) end
    if lbind or not llist then
      sock, msg, code = dial_inet(net, c, lbind, partial(deadline, #list - i + 1))
    end
    if sock then
      local peer = format(c.family, c.host, c.port)
      if net.type == "dgram" then
        return dgram.new(sock, net, {timeout = timeout, peer = peer})
      end
      if opts.nodelay then sock:setoption("nodelay", true) end
      return conn.new(sock, {timeout = timeout, peer = peer,
                             max_line = opts.max_line})
    end
    if code == "ETIMEDOUT" and deadline and now() >= deadline then
      return nil, msg, code                   -- the whole budget is spent
    end
    if not fcode then fmsg, fcode = msg, code end
  end
  if not fcode then
    return nil, "connect " .. address .. ": no address of the network's "
                .. "family", "EADDRNOTAVAIL"
  end
  return nil, fmsg, fcode
end

return M
