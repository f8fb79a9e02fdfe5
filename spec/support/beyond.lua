-- spec/support/beyond.lua — what the SPEC §4 specs (spec/beyond_*) share.
--
--   local B = require "support.beyond"

local B = {}

local ENOENT = 2

--[[
B.count_fds() -> how many descriptors this process has open, once
garbage (an unclosed popen handle, a dropped socket) has been collected.
Counted here, by probing /proc/self/fd/N (ENOENT: not open; a probe that
opens one closes it before the next), rather than through a child as
H.count_fds does: a child may list the write end of its own popen pipe
before this process has closed it, and count one too many.
]]
function B.count_fds()
  collectgarbage()
  collectgarbage()
  local n = 0
  for fd = 0, 4095 do
    local f, _, errno = io.open("/proc/self/fd/" .. fd, "r")
    if f then f:close() end
    if f or errno ~= ENOENT then n = n + 1 end
  end
  return n
end

--[[
B.warm_loop(): the event loop keeps one epoll descriptor for the life of
the process; make it now, before a spec counts descriptors.
]]
function B.warm_loop()
  local sockit = require "sockit"
  local ep = assert(sockit.bind("udp4", "127.0.0.1:0"))
  ep:settimeout(0.01)
  sockit.spawn(function() ep:recvfrom() end)
  sockit.run()
  ep:close()
end

-- B.sha256(path) -> the hex digest of a file (sha256sum)
function B.sha256(path)
  local p = assert(io.popen("sha256sum " .. "'" .. path:gsub("'", "'\\''") .. "'"))
  local out = p:read("a")
  p:close()
  return (out:match("^(%x+)"))
end

return B
