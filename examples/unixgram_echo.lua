-- unixgram_echo.lua — datagrams over unix sockets, echoed back in capitals.
--
--   lua5.4 examples/unixgram_echo.lua
--
-- A unix datagram can only be answered if its sender has an address, so a
-- client either binds a path of its own (and its endpoint removes that file
-- when closed), or connects: sockit.connect("unixgram", ...) autobinds the
-- client to an abstract name such as "@0001f" for the replies.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"

local dir = assert(io.popen("mktemp -d")):read("l")   -- a private temp dir

local server = assert(sockit.serve("unixgram", dir .. "/server.sock",
                                   function (data, peer, ep)
  print(("server: %q from %s"):format(data, peer))
  ep:sendto(data:upper(), peer)
end))
local address = server:addr()
print("server: bound to " .. address)

local function client ()
  -- 1. bind a path of our own, then sendto/recvfrom
  local ep = assert(sockit.bind("unixgram", dir .. "/client.sock"))
  ep:settimeout(2)
  assert(ep:sendto("hello from a bound client", address))
  local data, from = assert(ep:recvfrom())
  print(("bound client: got %q from %s"):format(data, from))
  ep:close()

  -- 2. connect: autobound, then send/recv
  local c = assert(sockit.connect("unixgram", address, {timeout = 2}))
  assert(c:send("hello from a connected client"))
  print(("connected client %s: got %q"):format(c:addr(), assert(c:recv())))
  c:close()
end

sockit.spawn(function ()
  local ok, err = pcall(client)    -- a failure ends the program (the loop
  if not ok then io.stderr:write(err, "\n"); os.exit(1) end  -- would go on)
  server:close()
end)

sockit.run()
assert(os.remove(dir))             -- empty: both socket files were removed
print("done")
