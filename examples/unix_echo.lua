-- unix_echo.lua — an echo server on a unix stream socket.
--
--   lua5.4 examples/unix_echo.lua
--
-- The address of the "unix" network is a path. The listener makes the
-- socket file and removes it when closed; a stale file left by a crashed
-- server is replaced. On Linux a name starting with "@" lives in the
-- abstract namespace instead: no file at all, gone with the last socket.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"

local dir = assert(io.popen("mktemp -d")):read("l")   -- a private temp dir

local function echo (conn)
  for line in conn:lines() do assert(conn:write(line, "\n")) end
end

local function client (address, text)
  local conn = assert(sockit.connect("unix", address, {timeout = 5}))
  assert(conn:write(text, "\n"))
  print(("client of %s: sent %q, got back %q"):format(address, text,
                                                     assert(conn:read("l"))))
  conn:close()
end

local path = dir .. "/echo.sock"
local abstract = "@sockit-example-" .. dir:match("[^/]+$")
local servers = {}
for _, address in ipairs{path, abstract} do
  local server = assert(sockit.serve("unix", address, echo))
  print("server: listening on " .. server:addr())
  servers[#servers + 1] = server
end

sockit.spawn(function ()
  local ok, err = pcall(function ()
    client(path, "through a file")
    client(abstract, "through the abstract namespace")
  end)                             -- a failure ends the program (the loop
  if not ok then io.stderr:write(err, "\n"); os.exit(1) end  -- would go on)
  for _, server in ipairs(servers) do server:close() end
end)

sockit.run()
-- rmdir succeeds only on an empty directory: close() removed echo.sock
assert(os.remove(dir))
print("removed " .. dir .. " (empty: the listener removed its socket file)")
print("done")
