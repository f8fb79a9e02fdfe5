-- tcp_echo.lua — a TCP echo server and two clients, all tasks of one loop.
--
--   lua5.4 examples/tcp_echo.lua
--
-- sockit.serve runs the handler in a task of its own for each connection;
-- sockit.spawn starts the two client tasks; sockit.run drives them all and
-- returns once the server is closed and every task has ended.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"

-- the handler: one line in, the same line out, until the client hangs up
local server = assert(sockit.serve("tcp", "127.0.0.1:0", function (conn, peer)
  print("server: " .. peer .. " connected")
  for line in conn:lines() do
    assert(conn:write(line, "\n"))
  end
  print("server: " .. peer .. " hung up")
end))
local address = server:addr()      -- port 0 asked the kernel for a free port
print("server: listening on " .. address)

local finished = 0
local function client (name)
  local conn = assert(sockit.connect("tcp", address, {timeout = 5}))
  for i = 1, 3 do
    local text = ("%s says hello #%d"):format(name, i)
    assert(conn:write(text, "\n"))
    print(("%s: sent %q, got back %q"):format(name, text,
                                             assert(conn:read("l"))))
    sockit.sleep(0.01)             -- let the other client have a turn
  end
  conn:close()
  finished = finished + 1
  if finished == 2 then server:close() end     -- then run() returns
end

-- two clients at once, to show that one waiting task does not stop others.
-- The loop only reports a task that raises and goes on (the server would
-- keep waiting): here a failure ends the program.
for _, name in ipairs{"ann", "bob"} do
  sockit.spawn(function ()
    local ok, err = pcall(client, name)
    if not ok then io.stderr:write(err, "\n"); os.exit(1) end
  end)
end

sockit.run()
print("done")
