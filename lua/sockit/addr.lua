--[[
sockit.addr — network names and one-string addresses.

Networks use Go's names (SPEC §3). Each maps to a core family and type;
"tcp" and "udp" (no digit) leave the family open, so that both IPv4 and
IPv6 addresses are allowed.

Addresses are one string:
  "host:port"    a name or an IPv4 literal, and a decimal port 0..65535
  "[v6]:port"    an IPv6 literal (with an optional zone: "[fe80::1%eth0]:80")
  ":port"        no host: every interface for listen/bind, this machine
                 (the loopback) for connect and sendto, as in Go
  "path"         a unix path; a leading "@" means Linux's abstract
                 namespace ("\0" in core terms, which is accepted too)

Misuse raises with the usual "bad argument #n to 'f' (...)" text. Every
function that may raise takes 'level': the level of the user's call as
seen from that function (for error()), so the position points at the
user's line, not at sockit's.
]]

local M = {}

local error, pairs, setmetatable, tonumber, tostring, type =
  error, pairs, setmetatable, tonumber, tostring, type
local find, format, match, sub, byte =
  string.find, string.format, string.match, string.sub, string.byte
local math_type, tointeger = math.type, math.tointeger


--[[ Network names ]]

-- family nil: both inet and inet6 are allowed
local NETWORKS = {
  tcp        = {family = nil,     type = "stream"},
  tcp4       = {family = "inet",  type = "stream"},
  tcp6       = {family = "inet6", type = "stream"},
  udp        = {family = nil,     type = "dgram"},
  udp4       = {family = "inet",  type = "dgram"},
  udp6       = {family = "inet6", type = "dgram"},
  unix       = {family = "unix",  type = "stream"},
  unixgram   = {family = "unix",  type = "dgram"},
  unixpacket = {family = "unix",  type = "seqpacket"},
}
for name, net in pairs(NETWORKS) do
  net.name = name
  net.unix = (net.family == "unix")
end


-- raise "bad argument #n to 'fname' (msg)"; 'level' is the user's level
-- as seen from the caller of argerror
function M.argerror (n, fname, msg, level)
  error(format("bad argument #%d to '%s' (%s)", n, fname, msg), level + 1)
end
local argerror = M.argerror


-- raise unless v is of type t (or nil when 'opt')
function M.checktype (v, t, n, fname, level, opt)
  if type(v) ~= t and not (opt and v == nil) then
    argerror(n, fname, format("%s expected, got %s", t, type(v)),
             level)
  end
  return v
end


--[[
M.network(name, n, fname, level) -> net
net = {name=, family= "inet"|"inet6"|"unix"|nil, type=, unix=}.
'want' ("stream" or "datagram") restricts the kinds: listen takes stream
networks (and unixpacket), bind takes datagram networks.
]]
function M.network (name, n, fname, level, want)
  M.checktype(name, "string", n, fname, level + 1)
  local net = NETWORKS[name]
  if not net then
    argerror(n, fname, format("unknown network '%s'", name), level)
  end
  if want == "stream" and net.type == "dgram" then
    argerror(n, fname, format("'%s' is a datagram network (use sockit.bind)",
                              name), level)
  elseif want == "dgram" and net.type ~= "dgram" then
    argerror(n, fname, format("'%s' is not a datagram network", name),
             level)
  end
  return net
end


--[[
M.parse(net, address, n, fname, level) -> host, port   (inet networks)
                                        -> path         (unix networks)
host is nil for ":port". A unix path "@name" becomes "\0name".
]]
function M.parse (net, address, n, fname, level)
  M.checktype(address, "string", n, fname, level + 1)
  if net.unix then
    if byte(address, 1) == 64 then            -- "@": abstract namespace
      address = "\0" .. sub(address, 2)
    end
    if find(address, "\0", 2, true) then
      argerror(n, fname, "unix path contains a zero byte", level)
    end
    return address
  end
  local host, port
  if byte(address, 1) == 91 then              -- "[v6]:port"
    host, port = match(address, "^%[([^%]]*)%]:(.*)$")
    if not host then
      if find(address, "]", 1, true) and not find(address, "]:", 1, true) then
        argerror(n, fname, format("missing port in address '%s'", address),
                 level)
      end
      argerror(n, fname, format("invalid address '%s'", address), level)
    end
    -- (as Go's SplitHostPort: "[[::1]:80" would give the host "[::1",
    -- which no address string can give back)
    if find(host, "[", 1, true) then
      argerror(n, fname, format("unexpected '[' in address '%s'", address),
               level)
    end
  else
    host, port = match(address, "^(.*):([^:]*)$")
    if not host then
      argerror(n, fname, format("missing port in address '%s'", address),
               level)
    end
    if find(host, ":", 1, true) then
      argerror(n, fname, format("too many colons in address '%s' "
                                .. "(an IPv6 host goes in brackets)", address),
               level)
    end
    local bracket = match(host, "[%[%]]")
    if bracket then
      argerror(n, fname, format("unexpected '%s' in address '%s'", bracket,
                                address), level)
    end
  end
  if not match(port, "^%d+$") then
    argerror(n, fname, format("invalid port in address '%s'", address),
             level)
  end
  if find(host, "\0", 1, true) then   -- (C would see the name cut there)
    argerror(n, fname, "host contains a zero byte", level)
  end
  local p = tonumber(port)
  if math_type(p) ~= "integer" or p > 65535 then
    argerror(n, fname, format("port out of range in address '%s'", address),
             level)
  end
  if host == "" then host = nil end
  return host, p
end


--[[
M.format(family, host, port) -> address string
The inverse of parse: "127.0.0.1:80", "[::1]:80", "/tmp/s", "@name", and
"" for an unnamed unix socket. An IPv4-mapped IPv6 address (a v4 client of
a dual-stack socket) is shown as plain IPv4, as Go does.
]]
function M.format (family, host, port)
  if family == "unix" then
    if byte(host, 1) == 0 then return "@" .. sub(host, 2) end
    return host
  end
  if family == "inet6" then
    local v4 = match(host, "^::ffff:(%d+%.%d+%.%d+%.%d+)$")
    if v4 then return v4 .. ":" .. tostring(port) end
    return "[" .. host .. "]:" .. tostring(port)
  end
  return host .. ":" .. tostring(port)
end


-- the "host:port" text for messages about a host that is a name
function M.join (host, port)
  if host and find(host, ":", 1, true) then
    return "[" .. host .. "]:" .. tostring(port)
  end
  return (host or "") .. ":" .. tostring(port)
end


--[[ Options tables ]]

-- opts must be nil or a table; returns a table (an empty one for nil)
local EMPTY = setmetatable({}, {__newindex = function ()
  error("sockit: internal error: write to the shared empty options", 2)
end})

function M.checkopts (opts, n, fname, level)
  if opts == nil then return EMPTY end
  M.checktype(opts, "table", n, fname, level + 1)
  return opts
end


-- what a wrong option value was, for messages: the number, or its type
local function what (v)
  return type(v) == "number" and tostring(v) or type(v)
end


-- opts[key] must be nil or a non-negative number (a timeout, in seconds;
-- a size such as max_line: math.huge is no limit)
function M.opttimeout (opts, key, n, fname, level)
  local t = opts[key]
  if t ~= nil and (type(t) ~= "number" or t < 0 or t ~= t) then
    argerror(n, fname, format("opts.%s must be a non-negative number, got %s",
                              key, what(t)), level)
  end
  return t
end
M.optsize = M.opttimeout


--[[
opts[key] must be nil or an integer from lo to hi; a float with an exact
integer value (5.0) counts, as luaL_checkinteger takes it, a string does
not. Returns it as an integer (or nil).
]]
function M.optinteger (opts, key, lo, hi, n, fname, level)
  local v = opts[key]
  if v == nil then return nil end
  local i = math_type(v) and tointeger(v)
  if not i or i < lo or i > hi then
    argerror(n, fname, format("opts.%s must be an integer from %d to %d, "
                              .. "got %s", key, lo, hi, what(v)), level)
  end
  return i
end


-- opts[key] must be nil or of type t
function M.optfield (opts, key, t, n, fname, level)
  local v = opts[key]
  if v ~= nil and type(v) ~= t then
    argerror(n, fname, format("opts.%s must be a %s, got %s", key, t,
                              type(v)), level)
  end
  return v
end

return M
