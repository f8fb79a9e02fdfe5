-- udp_echo.lua — a UDP echo server and two kinds of client.
--
--   lua5.4 examples/udp_echo.lua
--
-- serve("udp", ...) calls handler(data, peer, endpoint) for each datagram.
-- A client either binds an endpoint of its own and uses sendto/recvfrom
-- with explicit addresses, or connects one: send/recv, one peer only.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"

local server = assert(sockit.serve("udp", "127.0.0.1:0", function (data, peer, ep)
  print(("server: %d bytes from %s"):format(#data, peer))
  ep:sendto(data, peer)            -- the reply goes where the datagram came from
end))
local address = server:addr()
print("server: bound to " .. address)

local function client ()
  -- 1. an unconnected endpoint: say where each datagram goes
  local ep = assert(sockit.bind("udp", "127.0.0.1:0"))
  ep:settimeout(2)                 -- UDP may lose datagrams: never wait forever
  for _, text in ipairs{"ping", "pong"} do
    assert(ep:sendto(text, address))
    local data, from = assert(ep:recvfrom())
    print(("sendto/recvfrom: %q came back from %s"):format(data, from))
  end
  ep:close()

  -- 2. a connected endpoint: send and recv talk to that one peer
  local c = assert(sockit.connect("udp", address, {timeout = 2}))
  assert(c:send("connected hello"))
  print(("send/recv: %q came back from %s"):format(assert(c:recv()), c:peer()))
  c:close()
end

sockit.spawn(function ()
  local ok, err = pcall(client)    -- a failure ends the program (the loop
  if not ok then io.stderr:write(err, "\n"); os.exit(1) end  -- would go on)
  server:close()
end)

sockit.run()
print("done")
