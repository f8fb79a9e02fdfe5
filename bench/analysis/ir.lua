--[[
bench/analysis/ir.lua — instructions per round trip of the event loop:
an echo task and a client task over a unix socket pair, M round trips.
Run it twice under callgrind and divide the difference by the difference
in M, so that start-up cancels out:

  valgrind --tool=callgrind --callgrind-out-file=/dev/null lua5.4 bench/analysis/ir.lua 2000
  valgrind --tool=callgrind --callgrind-out-file=/dev/null lua5.4 bench/analysis/ir.lua 12000
]]
local sockit = require "sockit"
local core = require "sockit.core"
local M = tonumber(arg[1]) or 20000
local x, y = core.socketpair()
x:settimeout(0) y:settimeout(0)
local conn = require "sockit.conn"
local cx, cy = conn.new(x, {}), conn.new(y, {})
local msg = ("x"):rep(64)
sockit.spawn(function ()
  for _ = 1, M do local d = cx:recv(); cx:write(d) end
end)
sockit.spawn(function ()
  for _ = 1, M do cy:write(msg); cy:recv() end
end)
sockit.run()
