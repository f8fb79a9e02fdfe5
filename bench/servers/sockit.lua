--[[
bench/servers/sockit.lua — the sockit echo / HTTP hello server of
`make bench`: plain `sockit.serve`, one task per connection.

  lua5.4 sockit.lua echo|http tcp HOST:PORT | unix PATH

Prints the bound address, then serves until killed.
]]

local sockit = require "sockit"

local mode, network, address = ...
local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
                 "Content-Length: 13\r\n\r\nHello, World!"

-- echo: send back whatever arrives
local function echo (conn)
  while true do
    local data = conn:recv()
    if not data or not conn:write(data) then return end
  end
end

-- HTTP/1.1 keep-alive: a fixed answer to each request head
local function hello (conn)
  while true do
    local line = conn:read("l")
    if not line then return end
    if line == "" and not conn:write(RESPONSE) then return end
  end
end

local server = assert(sockit.serve(network, address,
                                   mode == "http" and hello or echo))
print(server:addr())
io.stdout:flush()
sockit.run()
