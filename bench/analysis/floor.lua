--[[
bench/analysis/floor.lua — the floor for `make bench`'s Lua servers: an
echo server on sockit.core and its poller alone, level-triggered, with
callbacks and no coroutines (luv's model). Not part of the table: it
shows what the core costs without the Lua layer.

  lua5.4 bench/analysis/floor.lua echo tcp HOST:PORT
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
poller:add(l, "r")
local LFD = l
-- the poller does not keep sockets alive: this table does
local conns = {}  -- luacheck: ignore 241
while true do
  local n, objs = poller:wait()
  for i = 1, n do
    local s = objs[i]
    if s == LFD then
      while true do
        local c = l:accept()
        if not c then break end
        c:settimeout(0)
        poller:add(c, "r"); conns[c] = true
      end
    else
      local data = s:recv()
      if data then s:send(data) else poller:remove(s); conns[s] = nil; s:close() end
    end
  end
end
