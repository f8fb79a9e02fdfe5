--[[
sockit.fdpass — what only unix sockets do, for the Lua layer (SPEC §4):
pass descriptors (SCM_RIGHTS) and ask who the peer is (SO_PEERCRED).

conn.lua and dgram.lua build their unix classes from these. Each
function takes the object (conn or endpoint) after its own checks: the
core socket has timeout 0, so every call here is "try, and on EAGAIN
wait through sockit.wait", as everywhere else in the Lua layer.

On a byte stream the kernel attaches the descriptors to the first byte
that sendmsg takes. A short send therefore still delivered them; the rest
of the data follows as plain bytes, under the same deadline.
]]

local M = {}

local addr = require "sockit.addr"
local core = require "sockit.core"
local wait = require "sockit.wait"

local error, getmetatable, pcall, select, type =
  error, getmetatable, pcall, select, type
local io_type = io.type
local tointeger = math.tointeger
local unpack = table.unpack
local argerror = addr.argerror
local deadline_of, waitfor = wait.deadline, wait.wait
local expired = wait.expired   -- (marks a timeout for serve)
local SOCKET_METHODS = core.methods     -- every core socket's __index
local c_fileno = core.methods.fileno

local MAXFDS = 253         -- the kernel's SCM_MAX_FD (fdpass.c)
local MAXFD = 0x7fffffff   -- INT_MAX


--[[
The arguments are checked here rather than by the core: an error the
core raises is placed at the line that called it, which is in this file,
and misuse must point at the user's line (SPEC §1, docs/API.md). 'level'
is as addr.argerror takes it: the user's call as seen from the caller of
the function given it; 'fname' the method the user called.
]]

-- a core socket (the userdata of sockit.core), open or closed
local function is_socket (v)
  if type(v) ~= "userdata" then return false end
  local mt = getmetatable(v)
  return mt ~= nil and mt.__index == SOCKET_METHODS
end

-- the descriptor of an open core socket, or raise "attempt to use a
-- closed socket" at 'level'
local function socket_fd (sock, level)
  local ok, fd = pcall(c_fileno, sock)
  if not ok then error("attempt to use a closed socket", level + 1) end
  return fd
end

--[[
checkfd(v, n, fname, level) -> the descriptor argument #n as the core
takes it: an integer, a Lua file (io.open), a core socket, or an object
of this layer that holds one in .socket (conn, listener, endpoint); a
socket or an object becomes its descriptor number.
]]
local function checkfd (v, n, fname, level)
  local t = type(v)
  if t == "number" then
    local fd = tointeger(v)
    if not fd then argerror(n, fname, "number has no integer representation", level + 1) end
    if fd < 0 or fd > MAXFD then argerror(n, fname, "invalid descriptor", level + 1) end
    return fd
  end
  local ft = io_type(v)
  if ft == "file" then return v end
  if ft == "closed file" then
    argerror(n, fname, "attempt to use a closed file", level + 1)
  end
  -- (not tail calls: socket_fd's level counts this frame)
  local sock = is_socket(v) and v or t == "table" and is_socket(v.socket) and v.socket
  if sock then
    local fd = socket_fd(sock, level + 1)
    return fd
  end
  local mt = getmetatable(v)
  local name = type(mt) == "table" and type(mt.__name) == "string" and mt.__name or t
  argerror(n, fname, "socket, file or integer descriptor expected, got " .. name, level + 1)
end

--[[
M.checkfds(fname, level, ...) -> {fd, ..., n = count}: the descriptors
of sendfds (arguments #2 and on: #1 is the data), checked by checkfd.
]]
function M.checkfds (fname, level, ...)
  local n = select("#", ...)
  if n < 1 then argerror(2, fname, "at least one descriptor expected", level + 1) end
  if n > MAXFDS then
    argerror(2 + MAXFDS, fname, "too many descriptors (at most 253)", level + 1)
  end
  local fds = {n = n, ...}
  for i = 1, n do fds[i] = checkfd(fds[i], i + 1, fname, level + 1) end
  return fds
end

-- M.checkmaxfds(maxfds, fname, level) -> maxfds (nil: the core's default)
function M.checkmaxfds (maxfds, fname, level)
  if maxfds == nil then return nil end
  local k = tointeger(maxfds)
  if not k or k < 1 or k > MAXFDS then
    argerror(2, fname, "maxfds must be an integer from 1 to 253", level + 1)
  end
  return k
end

--[[
M.checkfile(v, fname, level) -> what sendfile takes as argument #1: a
Lua file open for reading (any open file: the kernel says the rest) or
an integer descriptor.
]]
function M.checkfile (v, fname, level)
  if type(v) == "number" then
    local fd = tointeger(v)
    if not fd then argerror(1, fname, "number has no integer representation", level + 1) end
    if fd < 0 or fd > MAXFD then argerror(1, fname, "invalid descriptor", level + 1) end
    return fd
  end
  local ft = io_type(v)
  if ft == "file" then return v end
  if ft == "closed file" then
    argerror(1, fname, "attempt to use a closed file", level + 1)
  end
  local mt = getmetatable(v)
  local name = type(mt) == "table" and type(mt.__name) == "string" and mt.__name
               or type(v)
  argerror(1, fname, "file or integer descriptor expected, got " .. name, level + 1)
end


--[[
M.send(obj, data, fds) -> n, deadline | nil, msg, code, 0
One sendmsg of 'data' with the descriptors ('fds', as M.checkfds gives
them), waiting for room: 'n' the bytes it took.
A record or datagram goes whole; a stream may take part, and the caller
(conn.lua, UnixConn:sendfds) sends the rest as plain bytes under the
same 'deadline' (true while no wait has computed it, as conn.lua's
waits take it).
]]
function M.send (obj, data, fds)
  local sock = obj.socket
  local deadline = true
  while true do
    local n, msg, code = sock:sendfds(data, unpack(fds, 1, fds.n))
    if n then return n, deadline end
    if code ~= "EAGAIN" then return nil, msg, code, 0 end
    if deadline == true then deadline = deadline_of(obj._timeout) end
    obj._expired = nil
    local ok, wmsg, wcode = waitfor(sock, "w", deadline)
    if not ok then return nil, expired(obj, "sendfds: " .. wmsg, wcode), wcode, 0 end
  end
end


--[[
M.recv(obj, max, maxfds) -> data, {fd, ...} | nil, msg, code
One receive (a record on dgram/seqpacket, 1..max bytes on a stream)
with the descriptors that came with it, as integers (close-on-exec,
the caller's to close or to adopt with core.fromfd). More descriptors
than maxfds: "EMSGSIZE", and the core has closed those that came.
]]
function M.recv (obj, max, maxfds)
  local sock = obj.socket
  local deadline = true     -- computed by the first wait
  while true do
    local data, fds, code = sock:recvfds(max, maxfds)
    if data then return data, fds end
    if code ~= "EAGAIN" then return nil, fds, code end
    if deadline == true then deadline = deadline_of(obj._timeout) end
    obj._expired = nil
    local ok, wmsg, wcode = waitfor(sock, "r", deadline)
    if not ok then return nil, expired(obj, "recvfds: " .. wmsg, wcode), wcode end
  end
end


--[[
M.cred(obj) -> pid, uid, gid | nil, msg, code
Linux records the peer's credentials when a stream or seqpacket socket
connects, and for socketpair(); a unix datagram socket connected with
connect(2), or one not connected, has none: the core answers "ENOTCONN"
then, rather than the kernel's pid 0 and uid -1.
]]
function M.cred (obj)
  return obj.socket:getpeercred()
end

return M
