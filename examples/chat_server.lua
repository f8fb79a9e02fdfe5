-- chat_server.lua — every line one client says goes to all the others.
--
--   lua5.4 examples/chat_server.lua                 three clients talk, then it ends
--   lua5.4 examples/chat_server.lua --serve [port]  just the server, forever
--                                                   (then: nc 127.0.0.1 7070)
--
-- One task per connection (sockit.serve); a task may write to another
-- task's connection while that task waits in read. A client that takes no
-- line for 5 s (it does not read) is dropped, so it holds the room up for
-- 5 s at most.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"

local clients = {}                 -- conn -> name, for everyone in the room

-- send a line to everyone but 'from'. Writing can wait (a slow client), and
-- meanwhile others may join or leave: go over a copy, skip who has left.
-- A write that fails (a client that has gone, or has not read for 5 s)
-- closes that conn, which ends its task's read. (A real server would give
-- each client a queue, so that one slow client holds up no one at all.)
local function broadcast (from, text)
  local list = {}
  for conn in pairs(clients) do
    if conn ~= from then list[#list + 1] = conn end
  end
  for _, conn in ipairs(list) do
    if clients[conn] and not conn:write(text, "\n") then
      clients[conn] = nil
      conn:close()
    end
  end
end

-- the next line from conn, nil at the end (EOF, a reset, a line over
-- max_line, closed by broadcast): a timeout only means a quiet client
local function readline (conn)
  while true do
    local line, _, code = conn:read("l")
    if line or code ~= "ETIMEDOUT" then return line end
  end
end

local function chat (conn, peer)
  conn:settimeout(5)               -- bounds each write to this client
  if not conn:write("welcome! your name?\n") then return end
  local name = readline(conn)
  if not name or name == "" then return end
  name = name:sub(1, 20)
  clients[conn] = name
  print(("server: %s joined from %s"):format(name, peer))
  broadcast(conn, "* " .. name .. " joined")
  for line in readline, conn do
    broadcast(conn, name .. ": " .. line)
  end
  clients[conn] = nil
  broadcast(conn, "* " .. name .. " left")
  print("server: " .. name .. " left")
end                                -- serve closes conn when the handler returns

if arg[1] == "--serve" then
  local address = "127.0.0.1:" .. (arg[2] or "7070")
  local server = assert(sockit.serve("tcp", address, chat))
  print("chat server on " .. server:addr() .. "; try: nc " ..
        server:addr():gsub(":", " "))
  sockit.run()                     -- forever (Ctrl-C to stop)
  return
end

-- the self-running demo: alice, bob and carol join, talk and leave
local server = assert(sockit.serve("tcp", "127.0.0.1:0", chat))
local address = server:addr()
print("server: listening on " .. address)

local script = {
  {"alice", "hi all"},
  {"bob", "hello alice"},
  {"carol", "hey, what did I miss?"},
  {"alice", "nothing yet"},
}

-- a failure ends the program (the loop would report it and go on waiting)
local function fail (err)
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local present = 0
-- what one client's screen shows, until the server hangs up
local function screen (name, conn)
  while true do
    local line, msg, code = conn:read("l")
    if not line then
      if code ~= "EOF" then fail(name .. ": " .. msg) end
      break
    end
    print(("  %-5s | %s"):format(name, line))
  end
  conn:close()
  present = present - 1
  if present == 0 then server:close() end      -- the last one turns it off
end

local function talk ()
  local people = {}
  for _, step in ipairs(script) do
    local name = step[1]
    if not people[name] then       -- first time: join the room
      local conn = assert(sockit.connect("tcp", address, {timeout = 5}))
      assert(conn:read("l"))       -- the welcome prompt
      assert(conn:write(name, "\n"))
      people[#people + 1], people[name] = conn, conn
      present = present + 1
      sockit.spawn(screen, name, conn)
      sockit.sleep(0.05)
    end
    print(step[1] .. " says: " .. step[2])
    assert(people[name]:write(step[2], "\n"))
    sockit.sleep(0.05)             -- let the room read it
  end
  for _, conn in ipairs(people) do -- leave one by one: "w" = no more lines
    conn:shutdown("w")
    sockit.sleep(0.05)
  end
end

sockit.spawn(function ()
  local ok, err = pcall(talk)
  if not ok then fail(err) end
end)

sockit.run()
print("done")
