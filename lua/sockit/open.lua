--[[
sockit.open — making core sockets for the Lua layer and binding them.

Shared by listen, bind and connect's opts.bind:
  * every socket is created with timeout 0 (wait.lua does the waiting);
  * an inet address without a host on "tcp"/"udp" binds the dual-stack
    wildcard [::] (IPv4 clients too), or 0.0.0.0 where there is no IPv6
    (only then: [::] in use is EADDRINUSE), as Go does; "tcp6"/"udp6" sockets are IPv6 only (v6only), other IPv6
    sockets of "tcp"/"udp" are dual stack ("[::]:80" hears IPv4 too),
    whatever the system's default (net.ipv6.bindv6only); opts.v6only
    (true/false), when given, decides instead for every IPv6 socket;
  * a name is resolved and each address tried until one binds;
  * a unix socket file that no socket is bound to any more (its owner
    closed it or died) is replaced; one still bound, listening or not,
    is EADDRINUSE (see stale);
    opts.mode sets the permissions of the socket file a bind makes, and
    M.unlink removes that file only while it is still the one made.
]]

local M = {}

local addr = require "sockit.addr"
local core = require "sockit.core"
local wait = require "sockit.wait"

local byte = string.byte
local io_open, os_remove = io.open, os.remove
local math_type = math.type
local core_fileid, core_chmod = core.fileid, core.chmod


-- M.socket(family, type) -> sock | nil, msg, code   (timeout 0)
function M.socket (family, socktype)
  local sock, msg, code = core.socket(family, socktype)
  if not sock then return nil, msg, code end
  sock:settimeout(0)
  return sock
end


-- a filesystem path (not abstract, not unnamed): a file the bind makes
function M.isfile (path)
  return path ~= "" and byte(path, 1) ~= 0
end


local ENXIO = 6   -- the same number on Linux, the BSDs and macOS

--[[
Is the file at 'path' a unix socket that no socket is bound to any more?
"Live" is any open socket bound to the path, listening or not (a
listener, an endpoint, a client bound with opts.bind): bind(2) itself
says EADDRINUSE for all of them, and so do we.
  1. connect a DATAGRAM socket to it. The kernel (Linux's unix_find_bsd,
     the BSDs' unp_connect) first looks up the socket bound to the file:
     none is ECONNREFUSED; one of another type (stream, seqpacket) is
     EPROTOTYPE, before any connection exists, so a live listener sees
     nothing; a datagram socket is connected to (or EPERM when it is
     connected elsewhere), which it does not see either. Every answer but
     ECONNREFUSED means alive. (A probe of the listener's own type
     queued a connection that the listener then accepted, an empty one:
     regression spec in sockit_listen_spec.lua. /proc/net/unix is no
     help: its Inode column is the socket's, not the file's, it lists
     only this network namespace, and paths as they were given to bind.)
  2. ECONNREFUSED comes for a path that is not a socket at all too (a
     regular file, a directory, a FIFO: Linux checks S_ISSOCK after
     setting that error), so that alone would delete user files. open(2)
     it: only a socket file fails with ENXIO. "r+" (O_RDWR) neither
     truncates nor blocks on a FIFO (Linux), and fails on a directory; a
     file we may not open is left alone.
]]
local function stale (path)
  local probe = M.socket("unix", "dgram")
  if not probe then return false end
  local _, _, code = probe:connect(path)
  probe:close()
  if code ~= "ECONNREFUSED" then return false end
  local f, _, errno = io_open(path, "r+")
  if f then
    f:close()
    return false
  end
  return errno == ENXIO
end


-- the id of the socket file at 'path' (core.fileid), or nil
local function socketid (path)
  local id, kind = core_fileid(path)
  if id and kind == "socket" then return id end
  return nil
end


--[[
M.unlink(path, id): remove the socket file at 'path' only if it is still
the one whose id bindunix returned. Whatever is there instead — another
process's socket, bound after ours was removed, or any other file — is
left alone. (Between the check and the removal another process could
still swap the file: no system call removes a path only if it names a
given inode. The id holds the change time too, so a new file that got
the same inode number again is not taken for ours.)
]]
function M.unlink (path, id)
  if id and socketid(path) == id then os_remove(path) end
end


--[[
M.bindunix(sock, path [, mode]) -> true, id | nil, msg, code
bind, replacing a stale socket file at 'path'. A live socket (any socket
still bound there, listening or not), or a path that is not a socket, is
EADDRINUSE and left untouched. For a file path
(not abstract, not unnamed) 'id' names the socket file the bind made,
for M.unlink; 'mode' (an integer such as tonumber("660", 8)), when
given, becomes its permissions — before listen, so that nobody connects
while the file has the umask's permissions.
]]
function M.bindunix (sock, path, mode)
  local ok, msg, code = sock:bind(path)
  if not ok and code == "EADDRINUSE" and M.isfile(path) then
    -- only a socket file itself (lstat: a symbolic link to a stale one
    -- is the user's link, left alone), still the same after the probe
    local id = socketid(path)
    if id and stale(path) and socketid(path) == id then
      os_remove(path)
      ok, msg, code = sock:bind(path)
    end
  end
  if not ok then return nil, msg, code end
  if not M.isfile(path) then return true end
  if mode then
    ok, msg, code = core_chmod(path, mode)
    if not ok then
      M.unlink(path, socketid(path))
      return nil, msg, code
    end
  end
  return true, socketid(path)
end


--[[
M.optmode(opts, n, fname, level) -> opts.mode: nil or an integer
permission mode, 0 to 0o7777 (misuse raises, as for every option)
]]
function M.optmode (opts, n, fname, level)
  local mode = opts.mode
  if mode ~= nil and (math_type(mode) ~= "integer" or mode < 0
                      or mode > 4095) then
    addr.argerror(n, fname, "opts.mode must be an integer permission mode "
                  .. "from 0 to 0o7777 (tonumber(\"660\", 8))", level)
  end
  return mode
end


local INT_MAX = 2147483647      -- listen(2)'s backlog is a C int

--[[
M.checkopts(opts, kind, n, fname, level) -> backlog (an integer or nil)
Every documented option of listen (kind "listen") or bind ("bind"): a
known key of the wrong type, or out of range, raises "bad argument #n
to 'fname' (...)" at the user's line (SPEC §1), before any socket or
file exists. serve checks its opts with this too.
]]
function M.checkopts (opts, kind, n, fname, level)
  level = level + 1
  local optfield = addr.optfield
  optfield(opts, "reuseaddr", "boolean", n, fname, level)
  optfield(opts, "reuseport", "boolean", n, fname, level)
  optfield(opts, "v6only", "boolean", n, fname, level)
  M.optmode(opts, n, fname, level)
  if kind == "listen" then
    optfield(opts, "nodelay", "boolean", n, fname, level)
    addr.optsize(opts, "max_line", n, fname, level)
    -- (not a tail call: 'level' counts this frame)
    local backlog = addr.optinteger(opts, "backlog", 0, INT_MAX, n, fname,
                                    level)
    return backlog
  end
  return nil
end


-- errors that only say "this family is not here": a later one is better,
-- and only these let ":port" fall back from [::] to 0.0.0.0
local WEAK = {EAFNOSUPPORT = true, EADDRNOTAVAIL = true, EPROTONOSUPPORT = true}

--[[
M.candidates(net, host, port) -> list | nil, msg, code
The local addresses to try for an inet bind: {family=, host=, port=,
dual=} entries.
]]
function M.candidates (net, host, port)
  if host == nil then
    if net.family then return {{family = net.family, port = port}} end
    return {{family = "inet6", port = port, dual = true},
            {family = "inet", port = port}}
  end
  -- (listen and bind have no timeout: no deadline)
  return wait.resolve(host, port, net.family, net.type, "bind", nil)
end


-- set the options of a socket about to be bound; true or nil, msg, code
local function setup (sock, net, c, opts)
  local ok, msg, code = true, nil, nil
  local reuseaddr = opts.reuseaddr
  if reuseaddr == nil then reuseaddr = (net.type == "stream") end
  if reuseaddr then ok, msg, code = sock:setoption("reuseaddr", true) end
  if ok and opts.reuseport then
    ok, msg, code = sock:setoption("reuseport", true)
  end
  if ok and c.family == "inet6" then
    local v6only = opts.v6only
    if v6only == nil then v6only = (net.family == "inet6") and not c.dual end
    ok, msg, code = sock:setoption("v6only", v6only)
  end
  return ok, msg, code
end


--[[
M.bind(net, host, port, opts) -> sock | nil, msg, code     (inet)
M.bind(net, path, nil, opts)  -> sock, id | nil, msg, code (unix)
A new socket of the network, bound. opts: reuseaddr (default true for
stream), reuseport, v6only; mode for a unix socket file. 'id' names the
socket file made (see bindunix), nil for an abstract name.
]]
function M.bind (net, host, port, opts)
  if net.unix then
    local sock, msg, code = M.socket("unix", net.type)
    if not sock then return nil, msg, code end
    local ok, id
    ok, id, code = M.bindunix(sock, host, opts.mode)
    if not ok then
      sock:close()
      return nil, id, code
    end
    return sock, id
  end
  local list, msg, code = M.candidates(net, host, port)
  if not list then return nil, msg, code end
  local fmsg, fcode
  for i = 1, #list do
    local c = list[i]
    local sock, ok
    sock, msg, code = M.socket(c.family, net.type)
    if sock then
      ok, msg, code = setup(sock, net, c, opts)
      if ok then ok, msg, code = sock:bind(c.host, c.port) end
      if ok then return sock end
      sock:close()
    end
    -- the dual-stack [::] of ":port" gives way to 0.0.0.0 only where there
    -- is no IPv6; any other failure (EADDRINUSE: [::1]:port is taken,
    -- EACCES) is the answer, as Go's net.Listen gives it
    if c.dual and not WEAK[code] then return nil, msg, code end
    if not fcode or (WEAK[fcode] and not WEAK[code]) then
      fmsg, fcode = msg, code
    end
  end
  if not fcode then
    return nil, "bind " .. addr.join(host, port) .. ": no address of the "
                .. "network's family", "EADDRNOTAVAIL"
  end
  return nil, fmsg, fcode
end

return M
