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

-- HTTP/1.1 keep-alive: a fixed answer to each complete request head,
-- found by scanning what arrives for the blank line (the same work as the
-- luv and LuaSocket servers; reading the head with conn:read("l") line by
-- line costs more: bench/README.md)
local find, sub, rep = string.find, string.sub, string.rep
local function hello (conn)
  local buf = ""
  while true do
    local data = conn:recv()
    if not data then return end
    buf = buf .. data
    local n, start = 0, 1
    while true do
      local e = find(buf, "\r\n\r\n", start, true)
      if not e then break end
      n, start = n + 1, e + 4
    end
    buf = sub(buf, start)
    if n > 0 and not conn:write(rep(RESPONSE, n)) then return end
  end
end

local server = assert(sockit.serve(network, address,
                                   mode == "http" and hello or echo))
print(server:addr())
io.stdout:flush()
sockit.run()
