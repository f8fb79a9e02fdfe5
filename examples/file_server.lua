-- file_server.lua — an HTTP/1.1 file server whose bodies never pass
-- through Lua: conn:sendfile hands them from the file to the socket.
--
--   lua5.4 examples/file_server.lua                      self-test, then it ends
--   lua5.4 examples/file_server.lua --serve FILE [port]  serve FILE forever
--       curl -O http://127.0.0.1:8080/NAME               (NAME: FILE's base name)
--       curl -r 0-99 http://127.0.0.1:8080/NAME          (a range: 206)
--
-- GET and HEAD of "/NAME"; one "Range: bytes=a-b" (or "a-", "-n") gives
-- 206 Partial Content, sent with sendfile's offset and count (a range
-- past the end: 416); any other method or path is 404, a request line
-- that does not parse 400. Keep-alive, request bodies (read and dropped),
-- 431 and 501 as in http_hello.lua.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"

local MAX_HEADERS = 100

local function respond (conn, status, keep, extra, body, head_only)
  body = body or ""
  return conn:write("HTTP/1.1 ", status, "\r\n",
                    "Content-Length: ", #body, "\r\n",
                    keep and "Connection: keep-alive\r\n" or "Connection: close\r\n",
                    extra or "", "\r\n", head_only and "" or body)
end

-- the headers of a request, at most MAX_HEADERS; nil (after an answer,
-- if one is due) when the connection must end
local function read_headers (conn)
  local headers, n = {}, 0
  while true do
    local h, _, code = conn:read("l")
    if not h then                  -- EOF, timeout, or a line over max_line
      if code == "EMSGSIZE" then respond(conn, "431 Request Header Fields Too Large", false) end
      return nil
    end
    if h == "" then return headers end
    n = n + 1
    if n > MAX_HEADERS then
      return nil, respond(conn, "431 Request Header Fields Too Large", false)
    end
    local k, v = h:match("^([^:%s]+):%s*(.-)%s*$")
    if not k then return nil, respond(conn, "400 Bad Request", false) end
    headers[k:lower()] = v
  end
end

-- read the request's body and drop it, 64 KiB at a time: true, or nil
-- (after an answer, if one is due) when the connection must end
local function skip_body (conn, headers)
  if headers["transfer-encoding"] then
    return nil, respond(conn, "501 Not Implemented", false)
  end
  local length = headers["content-length"] or "0"
  local left = length:match("^%d+$") and math.tointeger(tonumber(length))
  if not left then return nil, respond(conn, "400 Bad Request", false) end
  while left > 0 do
    local chunk = conn:recv(math.min(left, 65536))
    if not chunk then return nil end
    left = left - #chunk
  end
  return true
end

-- the byte range asked for, as offset and count; nil for the whole file,
-- false for one that cannot be served
local function range (header, size)
  if not header then return nil end
  local a, b = header:match("^bytes=(%d*)%-(%d*)$")
  if not a or (a == "" and b == "") then return false end
  local first, last
  if a == "" then                    -- "-n": the last n bytes
    first, last = math.max(size - tonumber(b), 0), size - 1
  else
    first = tonumber(a)
    last = b == "" and size - 1 or math.min(tonumber(b), size - 1)
  end
  if first > last or first >= size then return false end
  return first, last - first + 1
end

-- a handler serving 'path' as "/name"
local function file_handler (path, name)
  return function (conn)
    while true do
      local line = conn:read("l")
      if not line then return end
      local method, target, minor = line:match("^(%u+) (%S+) HTTP/1%.(%d)$")
      if not method then return respond(conn, "400 Bad Request", false) end
      local headers = read_headers(conn)
      if not headers or not skip_body(conn, headers) then return end
      local tokens = (headers.connection or ""):lower()
      local keep
      if minor == "1" then keep = not tokens:find("close", 1, true)
      else keep = tokens:find("keep-alive", 1, true) ~= nil end
      local f = (method == "GET" or method == "HEAD") and target == "/" .. name
                and io.open(path, "rb")
      if not f then
        if not respond(conn, "404 Not Found", keep, nil, "not found\n", method == "HEAD")
           or not keep then return end
      else
        local size = f:seek("end")
        local offset, count = range(headers.range, size)
        local ok
        if offset == false then
          ok = respond(conn, "416 Range Not Satisfiable", keep,
                       "Content-Range: bytes */" .. size .. "\r\n")
        else
          local status, extra = "200 OK", ""
          if offset then
            status = "206 Partial Content"
            extra = ("Content-Range: bytes %d-%d/%d\r\n"):format(offset, offset + count - 1, size)
          end
          count = count or size
          ok = conn:write("HTTP/1.1 ", status, "\r\n",
                          "Content-Type: application/octet-stream\r\n",
                          "Content-Length: ", count, "\r\n", extra,
                          keep and "Connection: keep-alive\r\n" or "Connection: close\r\n", "\r\n")
          -- the body: from the file to the socket, waiting for room as it goes
          if ok and method == "GET" then
            local sent = conn:sendfile(f, offset or 0, count)
            ok = sent == count
          end
        end
        f:close()
        if not ok or not keep then return end
      end
    end
  end
end

if arg[1] == "--serve" then
  local path = assert(arg[2], "usage: file_server.lua --serve FILE [port]")
  local name = path:match("[^/]+$")
  local server = assert(sockit.serve("tcp", "127.0.0.1:" .. (arg[3] or "8080"),
                                     file_handler(path, name), {timeout = 30}))
  print("http://" .. server:addr() .. "/" .. name .. " (Ctrl-C to stop)")
  sockit.run()
  return
end

-- {=====  the self-test  =====

-- Adler-32 of a string (a checksum Lua can compute on its own)
local function adler32 (s)
  local a, b = 1, 0
  for i = 1, #s, 4096 do
    local bytes = {s:byte(i, i + 4095)}
    for j = 1, #bytes do a = a + bytes[j]; b = b + a end
    a, b = a % 65521, b % 65521
  end
  return ("%08x"):format(b << 16 | a)
end

local dir = assert(io.popen("mktemp -d")):read("l")
local path = dir .. "/random.bin"
local SIZE = 8 * 1024 * 1024
do                                 -- 8 MiB of pseudo-random bytes
  math.randomseed(42)
  local words = {}
  for i = 1, SIZE // 8 do words[i] = string.pack("<i8", math.random(math.mininteger, math.maxinteger)) end
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(words))
  f:close()
end
local data = assert(io.open(path, "rb")):read("a")
local sum = adler32(data)
print(("file: %s, %d bytes, adler32 %s"):format(path, #data, sum))

local server = assert(sockit.serve("tcp", "127.0.0.1:0", file_handler(path, "random.bin"),
                                   {timeout = 10}))
local url = "http://" .. server:addr() .. "/random.bin"
print("server: " .. url)

-- one request on conn: status, headers, body
local function request (conn, target, extra)
  assert(conn:write("GET ", target, " HTTP/1.1\r\nHost: x\r\n", extra or "", "\r\n"))
  local status = assert(conn:read("l"))
  local headers = {}
  for h in conn:lines() do
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.*)$")
    headers[k:lower()] = v
  end
  local n = tonumber(headers["content-length"])
  return status, headers, n > 0 and assert(conn:read(n)) or ""
end

local function client ()
  local conn = assert(sockit.connect("tcp", server:addr(), {timeout = 10}))
  local t0 = sockit.now()
  local status, _, body = request(conn, "/random.bin")
  local took = sockit.now() - t0
  print(("client: %s, %d bytes in %.3f s (%.0f MiB/s), adler32 %s"):format(status,
        #body, took, #body / 1048576 / took, adler32(body)))
  assert(status == "HTTP/1.1 200 OK" and adler32(body) == sum, "the body differs")
  local headers
  status, headers, body = request(conn, "/random.bin", "Range: bytes=1000-1999\r\n")
  print(("client: %s, %s, %d bytes"):format(status, headers["content-range"], #body))
  assert(body == data:sub(1001, 2000), "the range differs")
  status, _, body = request(conn, "/nothing-here", "Connection: close\r\n")
  print(("client: %s, %q"):format(status, (body:gsub("\n$", ""))))
  conn:close()
end

-- curl in a child process; this task sleeps (the loop serves) until curl
-- has written its exit status
local function curl ()
  if not os.execute("command -v curl >/dev/null 2>&1") then
    print("curl: not on PATH, skipped")
    return
  end
  local out, log = dir .. "/curl.bin", dir .. "/curl.log"
  os.execute(("(curl -s --max-time 10 -o %s %s; echo \"exit $?\") >%s 2>&1 &")
             :format(out, url, log))
  local text, deadline = "", sockit.now() + 15
  while not text:find("exit %d+") and sockit.now() < deadline do
    sockit.sleep(0.05)
    local f = io.open(log)
    if f then text = f:read("a"); f:close() end
  end
  assert(text:find("exit 0", 1, true), "curl failed: " .. text)
  local f = assert(io.open(out, "rb"))
  local got = f:read("a")
  f:close()
  print(("curl: %d bytes, adler32 %s"):format(#got, adler32(got)))
  assert(adler32(got) == sum, "curl's copy differs")
end

sockit.spawn(function ()
  local ok, err = pcall(function () client(); curl() end)
  os.execute("rm -rf '" .. dir .. "'")
  if not ok then io.stderr:write("self-test failed: ", tostring(err), "\n"); os.exit(1) end
  server:close()
end)
sockit.run()
print("done: every copy has the file's checksum")
-- }=====
