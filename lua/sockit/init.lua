--[[
sockit — BSD sockets for Lua 5.4: the Lua layer (SPEC §3).

    local sockit = require "sockit"
    local c = assert(sockit.connect("tcp", "example.org:80", {timeout = 5}))
    c:write("HEAD / HTTP/1.0\r\nHost: example.org\r\n\r\n")
    print(c:read("l"))
    c:close()

The files, one idea each:
  addr.lua      network names, "host:port" strings both ways, misuse
  wait.lua      the one place that blocks, and the hooks for the loop
  open.lua      making and binding sockets (dual stack, stale unix files)
  connect.lua   sockit.connect: resolve, try each address, one deadline
  conn.lua      the buffered stream conn
  listener.lua  sockit.listen and listener:accept
  dgram.lua     sockit.bind, datagram and record endpoints
  loop.lua      tasks, timers, the poller: spawn, run, stop, sleep
  serve.lua     sockit.serve: a task per connection (or per datagram)
]]

local M = {}

local core = require "sockit.core"

M.core = core
M._VERSION = core._VERSION
M.now = core.now

M.connect = require("sockit.connect").connect
M.listen = require("sockit.listener").listen
M.bind = require("sockit.dgram").bind

--[[ {=====================================================
The event loop and servers. Requiring sockit.loop installs the hooks of
sockit.wait, so every blocking call above suspends only the running task
when it is made inside one, and blocks as before outside.
====================================================== ]]
local loop = require "sockit.loop"
local serve = require "sockit.serve"

M.spawn = loop.spawn
M.run = loop.run
M.stop = loop.stop
M.sleep = loop.sleep

-- a tail call on purpose: errors raised in serve.serve point at the
-- user's line with level 2
function M.serve (network, address, handler, opts)
  return serve.serve(M, network, address, handler, opts)
end

return M
