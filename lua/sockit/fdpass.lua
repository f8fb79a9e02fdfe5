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

local wait = require "sockit.wait"

local deadline_of, waitfor = wait.deadline, wait.wait
local expired = wait.expired   -- (marks a timeout for serve)


--[[
M.send(obj, data, ...) -> n, deadline | nil, msg, code, 0
One sendmsg of 'data' with the descriptors ('...': sockets, Lua files,
integers, checked by the core), waiting for room: 'n' the bytes it took.
A record or datagram goes whole; a stream may take part, and the caller
(conn.lua, UnixConn:sendfds) sends the rest as plain bytes under the
same 'deadline' (true while no wait has computed it, as conn.lua's
waits take it).
]]
function M.send (obj, data, ...)
  local sock = obj.socket
  local deadline = true
  while true do
    local n, msg, code = sock:sendfds(data, ...)
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
