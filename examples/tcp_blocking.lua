-- tcp_blocking.lua — the same echo in plain blocking style, no event loop.
--
--   lua5.4 examples/tcp_blocking.lua
--
-- Outside a task every sockit call simply blocks, like LuaSocket or
-- Python's socket module. The client is this same file run again in a
-- child process ("--client ADDRESS"), so the two ends really are apart.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"

if arg[1] == "--client" then
  -- the child: connect, send three lines, print what comes back
  local conn = assert(sockit.connect("tcp", arg[2], {timeout = 5}))
  for _, text in ipairs{"one", "two", "three"} do
    assert(conn:write(text, "\n"))
    print("client: sent " .. text .. ", got back " .. assert(conn:read("l")))
  end
  conn:close()
  return
end

local listener = assert(sockit.listen("tcp", "127.0.0.1:0"))
local address = listener:addr()
print("server: listening on " .. address)

-- start the client; its output comes back through the pipe
-- (the listening socket is close-on-exec: the child does not inherit it)
local lua = arg[-1] or "lua5.4"
local child = assert(io.popen(("%s %s --client %s"):format(lua, arg[0], address)))

listener:settimeout(10)            -- never wait forever for the child
local conn, peer = assert(listener:accept())   -- blocks until it connects
print("server: accepted " .. peer)
conn:settimeout(10)
while true do
  local line, msg, code = conn:read("l")        -- blocks for each line
  if not line then
    print("server: read ended: " .. msg .. " (" .. code .. ")")   -- EOF
    break
  end
  assert(conn:write(line, "\n"))
end
conn:close()
listener:close()

for line in child:lines() do print("  " .. line) end
assert(child:close(), "the client failed")
print("done")
