--[[
bench/servers/luasocket.lua — the LuaSocket echo / HTTP hello server of
`make bench`: the usual single-threaded socket.select loop.

  lua5.4 luasocket.lua echo|http tcp HOST:PORT | unix PATH

Prints the bound address, then serves until killed. socket.select is
built on select(2): descriptors must stay below FD_SETSIZE (1024).
]]

local socket = require "socket"

local mode, family, where = ...
local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
                 "Content-Length: 13\r\n\r\nHello, World!"

local server
if family == "unix" then
  local unix = require "socket.unix"
  os.remove(where)
  server = assert(unix.stream())
  assert(server:bind(where))
  assert(server:listen(4096))
  print(where)
else
  local host, port = where:match("^(.*):(%d+)$")
  server = assert(socket.bind(host, tonumber(port), 4096))
  local _, p = server:getsockname()
  print(host .. ":" .. p)
end
io.stdout:flush()
server:settimeout(0)

local readers = {server}   -- what select watches for reading
local writers = {}         -- clients with output still to send
local pending = {}         -- client -> bytes not sent yet
local requests = {}        -- client -> partial HTTP request (http mode)

local function remove (list, s)
  for i = #list, 1, -1 do
    if list[i] == s then
      list[i] = list[#list]
      list[#list] = nil
      return
    end
  end
end

local function drop (c)
  remove(readers, c)
  if pending[c] then remove(writers, c) end
  pending[c], requests[c] = nil, nil
  c:close()
end

-- send what we can; keep the rest for when select says writable
local function send (c, data)
  local last, err, partial = c:send(data)
  if last then return true end
  if err ~= "timeout" then drop(c) return false end
  pending[c] = data:sub(partial + 1)
  remove(readers, c)
  writers[#writers + 1] = c
  return true
end

local function on_data (c, data)
  if mode ~= "http" then return send(c, data) end
  local buf = (requests[c] or "") .. data
  local n, start = 0, 1
  while true do
    local e = buf:find("\r\n\r\n", start, true)
    if not e then break end
    n, start = n + 1, e + 4
  end
  requests[c] = buf:sub(start)
  if n > 0 then return send(c, RESPONSE:rep(n)) end
  return true
end

while true do
  local readable, writable = socket.select(readers, writers)
  for _, c in ipairs(writable) do
    local last, err, partial = c:send(pending[c])
    if last then
      pending[c] = nil
      remove(writers, c)
      readers[#readers + 1] = c
    elseif err == "timeout" then
      pending[c] = pending[c]:sub(partial + 1)
    else
      drop(c)
    end
  end
  for _, c in ipairs(readable) do
    if c == server then
      for _ = 1, 1000 do             -- accept what is waiting
        local client = server:accept()
        if not client then break end
        client:settimeout(0)
        readers[#readers + 1] = client
      end
    else
      local data, err, partial = c:receive(65536)
      data = data or partial
      if data and #data > 0 then on_data(c, data) end
      if err and err ~= "timeout" then drop(c) end
    end
  end
end
