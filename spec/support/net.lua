-- spec/support/net.lua — socket fixtures for the core specs.
--
--   local N = require "support.net"
--
-- One description per address family, so that a spec can run the same
-- test on inet, inet6, unix (a path in a temp dir) and unix abstract:
--   fam.name      "inet", "inet6", "unix", "abstract"
--   fam.family    what core.socket takes
--   fam.addr(dir) -> the arguments for bind (host, 0 / path)
--   fam.show(...) -> the address as messages print it
--   fam.skip      nil, or why this machine cannot run it (IPv6 missing)

local core = require "sockit.core"
local H = require "support.helpers"

local N = {}

local seq = 0
local function unique(prefix)
  seq = seq + 1
  return string.format("%s-%d-%d", prefix, H.pid(), seq)
end

local v6, v6why = H.have_ipv6()

N.families = {
  {
    name = "inet", family = "inet", host = "127.0.0.1",
    addr = function() return "127.0.0.1", 0 end,
    show = function(host, port) return host .. ":" .. port end,
  },
  {
    name = "inet6", family = "inet6", host = "::1",
    addr = function() return "::1", 0 end,
    show = function(host, port) return "[" .. host .. "]:" .. port end,
    skip = (not v6) and ("IPv6: " .. tostring(v6why)) or nil,
  },
  {
    name = "unix", family = "unix",
    addr = function(dir) return dir .. "/" .. unique("s") end,
    show = function(path) return path end,
  },
  {
    name = "abstract", family = "unix",
    addr = function() return "\0" .. unique("sockit-spec") end,
    show = function(path) return "@" .. path:sub(2) end,
  },
}

N.by_name = {}
for _, f in ipairs(N.families) do N.by_name[f.name] = f end

N.inet_families = { N.by_name.inet, N.by_name.inet6 }
N.unix_families = { N.by_name.unix, N.by_name.abstract }

-- a listening socket of fam/type, bound to a fresh address in dir.
-- Returns the listener and its address as a table {host, port} / {path}.
function N.listener(fam, type_, dir, backlog)
  local l = assert(core.socket(fam.family, type_ or "stream"))
  if fam.family ~= "unix" then assert(l:setoption("reuseaddr", true)) end
  assert(l:bind(fam.addr(dir)))
  assert(l:listen(backlog))
  return l, table.pack(l:getsockname())
end

-- a connected pair over a real listener: client, server side, listener,
-- listener address table. Bounded: accept and connect time out after 5 s.
function N.stream_pair(fam, dir, type_)
  local l, addr = N.listener(fam, type_ or "stream", dir)
  l:settimeout(5)
  local c = assert(core.socket(fam.family, type_ or "stream"))
  c:settimeout(5)
  assert(c:connect(table.unpack(addr, 1, addr.n)))
  local a, err = l:accept()
  assert(a, err)
  a:settimeout(5)
  return c, a, l, addr
end

-- two bound datagram sockets of fam: a, b, and their addresses
function N.dgram_pair(fam, dir)
  local a = assert(core.socket(fam.family, "dgram"))
  local b = assert(core.socket(fam.family, "dgram"))
  assert(a:bind(fam.addr(dir)))
  assert(b:bind(fam.addr(dir)))
  a:settimeout(5)
  b:settimeout(5)
  return a, b, table.pack(a:getsockname()), table.pack(b:getsockname())
end

-- a closed port on the loopback of fam (bound, then closed)
function N.closed_port(fam)
  local s = assert(core.socket(fam.family, "stream"))
  assert(s:bind(fam.host, 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- receive exactly n bytes from a stream socket (bounded by its timeout
-- and by n receives)
function N.recv_exactly(s, n)
  local parts, got = {}, 0
  for _ = 1, n do
    if got >= n then break end
    local d, msg, code = s:recv(n - got)
    if not d then return nil, msg, code, table.concat(parts) end
    parts[#parts + 1] = d
    got = got + #d
  end
  return table.concat(parts)
end

-- send all of data on a stream socket (bounded by its timeout and by
-- #data sends)
function N.send_all(s, data)
  local i = 1
  for _ = 1, #data + 1 do
    if i > #data then return true end
    local n, msg, code = s:send(data, i)
    if not n then return nil, msg, code, i - 1 end
    i = i + n
  end
  return i > #data
end

-- send all of data on a stream socket while receiving what comes back
-- (an echo), without either side's buffers filling up: the socket is
-- switched to timeout 0 and waited on with s:wait. Stops after `want`
-- bytes came back (default #data) or the peer ended the stream, or after
-- `limit` seconds (default 10). Returns what came back (and the error
-- that stopped it, if any).
function N.exchange(s, data, want, limit)
  want = want or #data
  local deadline = core.now() + (limit or 10)
  local saved = s:gettimeout()
  s:settimeout(0)
  local sent, got, received = 0, {}, 0
  local stop
  for _ = 1, 1000000 do
    if received >= want or core.now() > deadline then break end
    local ev = (sent < #data) and "rw" or "r"
    local ready = s:wait(ev, math.max(0, deadline - core.now()))
    if not ready then break end
    if sent < #data and ready:find("w", 1, true) then
      local n, msg, code = s:send(data, sent + 1)
      if n then sent = sent + n
      elseif code ~= "EAGAIN" then stop = { msg, code }; break end
    end
    if ready:find("r", 1, true) then
      local d, msg, code = s:recv()
      if d then got[#got + 1] = d; received = received + #d
      elseif code ~= "EAGAIN" then stop = { msg, code }; break end
    end
  end
  s:settimeout(saved)
  if stop then return table.concat(got), stop[1], stop[2] end
  return table.concat(got)
end

-- strerror texts of glibc, for the codes the specs meet
N.strerror = {
  ECONNREFUSED = "Connection refused",
  EADDRINUSE = "Address already in use",
  ENOENT = "No such file or directory",
  EACCES = "Permission denied",
  EPIPE = "Broken pipe",
  ECONNRESET = "Connection reset by peer",
  ENAMETOOLONG = "File name too long",
  EAGAIN = "Resource temporarily unavailable",
  EINPROGRESS = "Operation now in progress",
  EALREADY = "Operation already in progress",
  ENOPROTOOPT = "Protocol not available",
  EOPNOTSUPP = "Operation not supported",
  ENOTSUP = "Operation not supported",
  ENOTCONN = "Transport endpoint is not connected",
  EISCONN = "Transport endpoint is already connected",
  EINVAL = "Invalid argument",
  ESOCKTNOSUPPORT = "Socket type not supported",
  EPROTONOSUPPORT = "Protocol not supported",
  EAFNOSUPPORT = "Address family not supported by protocol",
  EADDRNOTAVAIL = "Cannot assign requested address",
  EAI_NONAME = "Name or service not known",
  EAI_AGAIN = "Temporary failure in name resolution",
  EAI_FAIL = "Non-recoverable failure in name resolution",
  EAI_NODATA = "No address associated with hostname",
  EAI_ADDRFAMILY = "Address family for hostname not supported",
}

-- keep(...) -> ...: remember the sockets among the values, and close them
-- all after each test (busted's after_each, passed in: this module is not
-- a spec file). Returns keep.
function N.keeper(after_each)
  local open = {}
  after_each(function()
    for _, s in ipairs(open) do s:close() end
    open = {}
  end)
  return function(...)
    for i = 1, select("#", ...) do
      local s = select(i, ...)
      if type(s) == "userdata" then open[#open + 1] = s end
    end
    return ...
  end
end

return N
