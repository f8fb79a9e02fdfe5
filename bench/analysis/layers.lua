--[[
bench/analysis/layers.lua — the bench echo server with fewer of sockit's
layers, to tell what each costs per round trip (cachegrind.sh IMPL
loop-raw, loop-conn; bench/README.md). Not part of the table.

  lua5.4 bench/analysis/layers.lua raw|conn echo tcp HOST:PORT

raw: sockit's loop and tasks (sockit.spawn, sockit.run), one task per
connection on plain core sockets, parking through the loop's read hook.
conn: the same with sockit.conn objects (conn:recv, conn:write), as serve
gives its handlers, but without serve.
]]
local sockit = require "sockit"
local core = require "sockit.core"
local wait = require "sockit.wait"
local conn = require "sockit.conn"

local layer, _, _, where = ...
local host, port = where:match("^(.*):(%d+)$")
local l = core.socket("inet", "stream")
l:setoption("reuseaddr", true)
assert(l:bind(host, tonumber(port)))
assert(l:listen())
l:settimeout(0)
local h, p = l:getsockname()
print(h .. ":" .. p)
io.stdout:flush()

local function echo_raw (s)
  local hook = wait.recvhook
  while true do
    local data, _, code = s:recv()
    if not data and code == "EAGAIN" then data = hook(s, 65536) end
    if not data then s:close() return end
    s:send(data)
  end
end

local function echo_conn (c)
  while true do
    local data = c:recv()
    if not data or not c:write(data) then return c:close() end
  end
end

sockit.spawn(function ()
  while true do
    local c, _, code = l:accept()
    if c then
      c:settimeout(0)
      if layer == "raw" then sockit.spawn(echo_raw, c)
      else sockit.spawn(echo_conn, conn.new(c, {})) end
    elseif code == "EAGAIN" then
      wait.wait(l, "r")
    end
  end
end)
sockit.run()
