-- http_hello.lua — a small HTTP/1.1 server with keep-alive, enough for
-- curl and wrk.
--
--   lua5.4 examples/http_hello.lua                 self-test, then it ends
--   lua5.4 examples/http_hello.lua --serve [port]  serve forever (default 8080)
--       curl -i http://127.0.0.1:8080/
--       wrk -t2 -c100 -d10s http://127.0.0.1:8080/
--
-- Every request gets "Hello, world!". HTTP/1.1 connections stay open unless
-- the client says "Connection: close"; HTTP/1.0 ones close unless it says
-- "Connection: keep-alive". A request body (Content-Length) is read and
-- dropped, 64 KiB at a time (after a "100 Continue" if the client expects
-- one); chunked request bodies are refused (501). A header line longer
-- than the conn's max_line (64 KiB), or more than 100 of them: 431.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"

local BODY = "Hello, world!\n"
local MAX_HEADERS = 100

local function respond (conn, status, keep, head_only, extra)
  local body = status == "200 OK" and BODY or status .. "\n"
  return conn:write("HTTP/1.1 ", status, "\r\n",
                    "Content-Type: text/plain\r\n",
                    "Content-Length: ", #body, "\r\n",
                    keep and "Connection: keep-alive\r\n" or "Connection: close\r\n",
                    extra or "",
                    "\r\n",
                    head_only and "" or body)     -- one writev for it all
end

-- one connection: requests until the client or a rule closes it
local function http (conn)
  while true do
    local line = conn:read("l")    -- "l" drops the "\r\n"; nil: EOF, timeout
    while line == "" do line = conn:read("l") end -- blank lines before a request
    if not line then return end
    local method, _, major, minor = line:match("^(%u+) (%S+) HTTP/(%d)%.(%d)$")
    if not method then return respond(conn, "400 Bad Request", false) end
    local headers, n = {}, 0
    while true do
      local h, _, code = conn:read("l")
      if not h then                -- EOF, timeout, or a line over max_line
        if code == "EMSGSIZE" then
          respond(conn, "431 Request Header Fields Too Large", false)
        end
        return
      end
      if h == "" then break end
      n = n + 1
      if n > MAX_HEADERS then
        return respond(conn, "431 Request Header Fields Too Large", false)
      end
      local name, value = h:match("^([^:%s]+):%s*(.-)%s*$")
      if not name then return respond(conn, "400 Bad Request", false) end
      name = name:lower()
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
    local tokens = (headers.connection or ""):lower()
    local keep
    if major .. minor == "11" then keep = not tokens:find("close", 1, true)
    else keep = tokens:find("keep-alive", 1, true) ~= nil end
    if headers["transfer-encoding"] then
      return respond(conn, "501 Not Implemented", false)
    end
    local length = headers["content-length"] or "0"
    local left = length:match("^%d+$") and math.tointeger(tonumber(length))
    if not left then return respond(conn, "400 Bad Request", false) end
    if left > 0 and (headers.expect or ""):lower() == "100-continue" then
      if not conn:write("HTTP/1.1 100 Continue\r\n\r\n") then return end
    end
    while left > 0 do              -- the body, dropped: never all in memory
      local chunk = conn:recv(math.min(left, 65536))
      if not chunk then return end
      left = left - #chunk
    end
    local ok
    if method == "GET" or method == "HEAD" then
      ok = respond(conn, "200 OK", keep, method == "HEAD")
    else
      ok = respond(conn, "405 Method Not Allowed", keep, false, "Allow: GET, HEAD\r\n")
    end
    if not ok or not keep then return end   -- serve closes conn after us
  end
end

if arg[1] == "--serve" then
  local server = assert(sockit.serve("tcp", "127.0.0.1:" .. (arg[2] or "8080"),
                                     http, {backlog = 1024, timeout = 30}))
  print("http://" .. server:addr() .. "/ (Ctrl-C to stop)")
  sockit.run()
  return
end

-- {=====  the self-test  =====

local server = assert(sockit.serve("tcp", "127.0.0.1:0", http, {timeout = 5}))
local address = server:addr()
print("server: http://" .. address .. "/")

-- read one response: status line, headers, then Content-Length bytes
local function response (conn)
  local status = assert(conn:read("l"))
  local headers = {}
  for h in conn:lines() do
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.*)$")
    headers[name:lower()] = value
  end
  return status, headers, assert(conn:read(tonumber(headers["content-length"])))
end

-- three requests on one connection; the third one asks to close it
local function keepalive ()
  local conn = assert(sockit.connect("tcp", address, {timeout = 5}))
  for i = 1, 3 do
    local close = i == 3 and "Connection: close\r\n" or ""
    assert(conn:write("GET /", i, " HTTP/1.1\r\nHost: ", address, "\r\n",
                      close, "\r\n"))
    local status, headers, body = response(conn)
    print(("request %d: %s, Connection: %s, body %q"):format(
          i, status, headers.connection, (body:gsub("\n$", ""))))
  end
  local _, msg, code = conn:read("l")
  print("after the third: " .. msg .. " (" .. code .. ")")  -- the server closed
  assert(code == "EOF", "the server did not close the connection")
  conn:close()
end

-- curl in a child process: its output goes to a file, and this task sleeps
-- (the loop keeps serving) until curl has written its exit status there
local function curl ()
  if not os.execute("command -v curl >/dev/null 2>&1") then
    print("curl: not on PATH, skipped")
    return
  end
  local out, url = os.tmpname(), "http://" .. address .. "/"
  os.execute(("(curl -s --max-time 5 -w 'curl: HTTP %%{http_code}, " ..
              "new connections: %%{num_connects}\\n' %s %s; " ..
              "echo \"curl: exit $?\") >%s 2>&1 &"):format(url, url, out))
  local text, deadline = "", sockit.now() + 10
  while not text:find("curl: exit %d+") and sockit.now() < deadline do
    sockit.sleep(0.05)
    local f = io.open(out)
    if f then text = f:read("a"); f:close() end
  end
  os.remove(out)
  io.write((text:gsub("[^\n]+", "  %0")))
  assert(text:find("curl: exit 0", 1, true), "curl failed")
end

sockit.spawn(function ()
  local ok, err = pcall(function () keepalive(); curl() end)
  if not ok then io.stderr:write("self-test failed: ", tostring(err), "\n"); os.exit(1) end
  server:close()
end)
sockit.run()
print("done")
-- }=====
