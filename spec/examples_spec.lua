-- The example servers (examples/*.lua --serve) against peers that do what
-- real clients do: request bodies, HEAD, long headers, Expect, a chat
-- client that never reads. Each server is a child process, killed after.

local H = require "support.helpers"
local sockit = require "sockit"

-- start 'example' with --serve and its arguments on a free port; returns
-- the handle (H.spawn) and the address once it accepts connections
local function start(example, ...)
  local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
  local port = l:addr():match("%d+$")
  l:close()
  local args = {...}
  args[#args + 1] = port
  local h = H.spawn("cd " .. H.quote(H.root) .. " && exec " .. H.lua .. " examples/"
                    .. example .. ".lua --serve " .. table.concat(args, " "), 30)
  local address = "127.0.0.1:" .. port
  assert(H.wait_until(function()
    local c = sockit.connect("tcp", address)
    if c then c:close() end
    return c ~= nil
  end, 5, 0.02), "the server did not start: " .. h.output())
  return h, address
end

local function stop(h)
  h.kill(); h:wait(3)
  local out = h.output()
  h.cleanup()
  return out
end

-- one response: status line, headers, body (Content-Length bytes, none for HEAD)
local function response(conn, head)
  local status = assert(conn:read("l"))
  local headers = {}
  while true do
    local line = assert(conn:read("l"))
    if line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.*)$")
    headers[k:lower()] = v
  end
  local n = tonumber(headers["content-length"]) or 0
  return status, headers, (head or n == 0) and "" or assert(conn:read(n))
end

describe("examples", function()
  it("http_hello: Content-Length too large for an integer is 400, not a raise", function()
    local h, address = start("http_hello")
    local c = assert(sockit.connect("tcp", address, {timeout = 5}))
    assert(c:write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\nabc"))
    local status = response(c)
    c:close()
    local out = stop(h)
    assert.are.equal("HTTP/1.1 400 Bad Request", status)
    assert.is_nil(out:find("traceback", 1, true), out)
  end)

  it("http_hello: a header line over max_line is 431; Expect: 100-continue is answered", function()
    local h, address = start("http_hello")
    local c = assert(sockit.connect("tcp", address, {timeout = 5}))
    assert(c:write("GET / HTTP/1.1\r\nX-Big: ", string.rep("a", 70000), "\r\n\r\n"))
    assert.are.equal("HTTP/1.1 431 Request Header Fields Too Large", (response(c)))
    c:close()
    c = assert(sockit.connect("tcp", address, {timeout = 5}))
    assert(c:write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"))
    c:settimeout(0.5)          -- curl waits 1 s for it before sending anyway
    assert.are.equal("HTTP/1.1 100 Continue", c:read("l"))
    assert.are.equal("", c:read("l"))
    assert(c:write("hello"))
    assert.are.equal("HTTP/1.1 405 Method Not Allowed", (response(c)))
    c:close()
    stop(h)
  end)

  it("file_server: a request body is not taken as the next request; HEAD has no body", function()
    local dir = H.tmpdir()
    H.write_file(dir .. "/f.txt", "0123456789")
    local h, address = start("file_server", dir .. "/f.txt")
    local c = assert(sockit.connect("tcp", address, {timeout = 5}))
    local body = "GET /f.txt HTTP/1.1\r\n\r\n"
    assert(c:write("POST /f.txt HTTP/1.1\r\nHost: x\r\nContent-Length: ", #body, "\r\n\r\n", body,
                   "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n",
                   "GET /f.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    local s1 = response(c)
    local s2 = response(c, true)
    local s3, _, b3 = response(c)
    c:close()
    stop(h)
    H.rmdir(dir)
    assert.are.same({"HTTP/1.1 404 Not Found", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK", "0123456789"},
                    {s1, s2, s3, b3})
  end)

  it("chat_server: a client that never reads holds the others up for a few seconds at most", function()
    local h, address = start("chat_server")
    local function join(name)
      local c = assert(sockit.connect("tcp", address, {timeout = 15}))
      assert(c:read("l"))
      assert(c:write(name, "\n"))
      return c
    end
    local slow = join("slow")      -- reads nothing from here on
    local alice, bob = join("alice"), join("bob")
    assert.are.equal("* bob joined", alice:read("l"))
    local N, line = 6000, string.rep("x", 1000)   -- 6 MB: more than slow's buffers
    local got, sent, t0 = 0, 0, sockit.now()
    sockit.spawn(function()
      for _ = 1, N do
        if not alice:write(line, "\n") then break end
        sent = sent + 1
      end
    end)
    sockit.spawn(function()
      while got < N do
        local l = bob:read("l")
        if not l then break end
        if l:sub(1, 7) == "alice: " then got = got + 1 end
      end
    end)
    sockit.run()
    local took = sockit.now() - t0
    slow:close(); alice:close(); bob:close()
    local out = stop(h)
    assert.are.same({N, N}, {sent, got})
    assert.is_true(took < 12, tostring(took))
    assert.is_nil(out:find("traceback", 1, true), out)
  end)
end)
