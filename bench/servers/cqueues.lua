--[[
bench/servers/cqueues.lua — the cqueues echo / HTTP hello server of
`make bench`: one controller, one coroutine per connection.

  lua5.4 cqueues.lua echo|http tcp HOST:PORT | unix PATH

Prints the bound address, then serves until killed.
]]

local cqueues = require "cqueues"
local socket = require "cqueues.socket"

local mode, family, where = ...
local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
                 "Content-Length: 13\r\n\r\nHello, World!"

local server
if family == "unix" then
  server = socket.listen{path = where, unlink = true, backlog = 4096}
else
  local host, port = where:match("^(.*):(%d+)$")
  server = socket.listen{host = host, port = tonumber(port), backlog = 4096}
end
assert(server:listen())

local function echo (con)
  while true do
    local data = con:read(-65536)     -- whatever has arrived, up to 64 KiB
    if not data then return end
    con:write(data)
  end
end

local function hello (con)
  while true do
    local line = con:read("*l")
    if not line then return end
    if line == "" or line == "\r" then con:write(RESPONSE) end
  end
end

local handler = mode == "http" and hello or echo
local cq = cqueues.new()
cq:wrap(function ()
  for con in server:clients() do
    cq:wrap(function ()
      con:setmode("b", "bn")          -- binary, writes unbuffered
      pcall(handler, con)
      con:close()
    end)
  end
end)

if family == "unix" then
  print(where)
else
  local _, host, port = server:localname()
  print(host .. ":" .. port)
end
io.stdout:flush()
assert(cq:loop())
