--[[
bench/servers/luv.lua — the luv (libuv) echo / HTTP hello server of
`make bench`: callbacks on uv.run's loop.

  lua5.4 luv.lua echo|http tcp HOST:PORT | unix PATH

Prints the bound address, then serves until killed.
]]

local uv = require "luv"

local mode, family, where = ...
local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
                 "Content-Length: 13\r\n\r\nHello, World!"

local function new_stream ()
  if family == "unix" then return uv.new_pipe(false) end
  return uv.new_tcp()
end

local server = new_stream()
if family == "unix" then
  os.remove(where)
  assert(server:bind(where))
else
  local host, port = where:match("^(.*):(%d+)$")
  assert(server:bind(host, tonumber(port)))
end

local function echo (client)
  client:read_start(function (err, data)
    if err or not data then return client:close() end
    client:write(data)
  end)
end

local function hello (client)
  local buf = ""
  client:read_start(function (err, data)
    if err or not data then return client:close() end
    buf = buf .. data
    local n, start = 0, 1
    while true do
      local e = buf:find("\r\n\r\n", start, true)
      if not e then break end
      n, start = n + 1, e + 4
    end
    buf = buf:sub(start)
    if n > 0 then client:write(RESPONSE:rep(n)) end
  end)
end

local handler = mode == "http" and hello or echo
assert(server:listen(4096, function (err)
  if err then return end
  local client = new_stream()
  if server:accept(client) then handler(client) else client:close() end
end))

if family == "unix" then
  print(where)
else
  local name = server:getsockname()
  print(name.ip .. ":" .. name.port)
end
io.stdout:flush()
uv.run()
