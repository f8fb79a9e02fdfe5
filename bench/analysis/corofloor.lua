--[[
bench/analysis/corofloor.lua — one coroutine per connection on
sockit.core and its poller (edge-triggered), with the smallest loop that
works: what a coroutine switch per round trip costs on top of floor.lua,
without sockit's loop, serve, wait and conn layers. Not part of the table.

  lua5.4 bench/analysis/corofloor.lua echo tcp HOST:PORT
]]
local core = require "sockit.core"
local _, _, where = ...
local host, port = where:match("^(.*):(%d+)$")
local l = core.socket("inet", "stream")
l:setoption("reuseaddr", true)
assert(l:bind(host, tonumber(port))); assert(l:listen())
l:settimeout(0)
local h, p = l:getsockname()
print(h .. ":" .. p); io.stdout:flush()
local poller = core.poller()
local yield, resume = coroutine.yield, coroutine.resume
local waiting = {}       -- fd -> coroutine parked for reading
local function echo (s, fd)
  while true do
    local data, _, code = s:recv()
    if data then
      s:send(data)
    elseif code == "EAGAIN" then
      waiting[fd] = coroutine.running()
      yield()
    else
      poller:remove(fd); s:close(); return
    end
  end
end
local LFD = l:fileno()
poller:add(LFD, "r")
while true do
  local n, objs = poller:wait()
  for i = 1, n do
    local fd = objs[i]
    if fd == LFD then
      while true do
        local c = l:accept()
        if not c then break end
        c:settimeout(0)
        local cfd = c:fileno()
        poller:add(cfd, "rw", true)
        resume(coroutine.create(echo), c, cfd)
      end
    else
      local co = waiting[fd]
      if co then waiting[fd] = nil; resume(co) end
    end
  end
end
