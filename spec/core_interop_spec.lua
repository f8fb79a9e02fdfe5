-- spec/core_interop_spec.lua — sockit.core against peers that are not
-- sockit: Python's socket module and socat, over TCP, unix stream, unix
-- datagram and the abstract namespace. Every child runs under a timeout.

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

-- a patterned payload of n bytes
local function payload(n)
  local t, i = {}, 0
  while #t * 16 < n do
    i = i + 1
    t[#t + 1] = string.format("%015d\n", i)
  end
  return table.concat(t):sub(1, n)
end

-- wait for the first line a spawned child prints (bounded)
local function first_line(h, timeout)
  return H.wait_until(function() return h.output():match("^([^\n]*)\n") end, timeout or 10)
end

local PY_ECHO = [[
import socket, sys
fam = socket.AF_INET6 if sys.argv[1] == "inet6" else socket.AF_INET
host = "::1" if sys.argv[1] == "inet6" else "127.0.0.1"
s = socket.socket(fam, socket.SOCK_STREAM)
s.bind((host, 0))
s.listen(1)
s.settimeout(15)
print(s.getsockname()[1], flush=True)
c, addr = s.accept()
c.settimeout(15)
total = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    c.sendall(d)
    total += len(d)
c.close()
print("echoed", total, "to port", addr[1], flush=True)
]]

local PY_UNIX_DGRAM = [[
import socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(15)
print("ready", flush=True)
d, addr = s.recvfrom(65536)
s.sendto(d.upper() + b" from python", addr)
print("got", d.decode(), "from", addr, flush=True)
]]

local PY_UNIX_CLIENT = [[
import socket, sys
path = sys.argv[1]
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.settimeout(15)
c.connect(path)
c.sendall(b"ping from python")
c.shutdown(socket.SHUT_WR)
buf = b""
while True:
    d = c.recv(4096)
    if not d:
        break
    buf += d
print(buf.decode(), flush=True)
]]

describe("core interop", function()
  local dir
  local children = {}
  local function child(h) children[#children + 1] = h; return h end
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)
  after_each(function()
    for _, h in ipairs(children) do h.kill(); h.cleanup() end
    children = {}
  end)

  local function need(cmd)
    if not H.have(cmd) then pending(cmd .. " is not installed") end
  end

  describe("with python3", function()
    for _, fam in ipairs(N.inet_families) do
      it("a sockit client and a python TCP echo server exchange 300 KB (" .. fam.name .. ")", function()
        need("python3")
        if fam.skip then pending(fam.skip) end
        local script = dir .. "/echo.py"
        H.write_file(script, PY_ECHO)
        local py = child(H.spawn("python3 " .. H.quote(script) .. " " .. fam.name, 30))
        local port = tonumber(first_line(py))
        assert.is_truthy(port, "python printed: " .. py.output())
        local c = assert(core.socket(fam.family, "stream"))
        c:settimeout(5)
        assert.equal(true, c:connect(fam.host, port))
        local data = payload(300000)
        local back, msg = N.exchange(c, data)
        assert.equal(#data, #back, msg)
        assert.is_true(back == data, "the echo differs")
        assert.equal(true, c:shutdown("w"))
        c:settimeout(5)
        local d, emsg, code = c:recv()
        assert.is_nil(d)
        assert.equal("EOF", code)
        assert.equal("recv: end of stream", emsg)
        local _, myport = c:getsockname()
        c:close()
        assert.equal(0, py:wait(10), py.output())
        assert.matches("echoed 300000 to port " .. myport .. "\n", py.output())
      end)
    end

    it("a sockit unix datagram socket and a python one exchange datagrams", function()
      need("python3")
      local script = dir .. "/dgram.py"
      H.write_file(script, PY_UNIX_DGRAM)
      local pypath = dir .. "/py.sock"
      local py = child(H.spawn("python3 " .. H.quote(script) .. " " .. H.quote(pypath), 30))
      assert.equal("ready", first_line(py), py.output())
      local s = assert(core.socket("unix", "dgram"))
      local mine = dir .. "/lua.sock"
      assert(s:bind(mine))
      s:settimeout(10)
      assert.equal(5, s:sendto("hello", pypath))
      local d, from = s:recvfrom()
      assert.equal("HELLO from python", d)
      assert.equal(pypath, from)
      s:close()
      assert.equal(0, py:wait(10), py.output())
      assert.matches("got hello from " .. H.pat(mine), py.output())
    end)

    it("a python unix stream client talks to a sockit listener", function()
      need("python3")
      local path = dir .. "/srv.sock"
      local l = assert(core.socket("unix", "stream"))
      assert(l:bind(path))
      assert(l:listen())
      l:settimeout(10)
      local script = dir .. "/client.py"
      H.write_file(script, PY_UNIX_CLIENT)
      local py = child(H.spawn("python3 " .. H.quote(script) .. " " .. H.quote(path), 30))
      local a, peer = l:accept()
      assert.is_truthy(a, peer)
      assert.equal("", peer)
      a:settimeout(10)
      local got = {}
      for _ = 1, 100 do
        local d, _, code = a:recv()
        if not d then assert.equal("EOF", code); break end
        got[#got + 1] = d
      end
      assert.equal("ping from python", table.concat(got))
      assert(N.send_all(a, "pong from sockit"))
      a:close(); l:close()
      assert.equal(0, py:wait(10), py.output())
      assert.equal("pong from sockit\n", py.output())
    end)
  end)

  describe("with socat", function()
    it("socat as a TCP client of a sockit listener", function()
      need("socat")
      local l = assert(core.socket("inet", "stream"))
      assert(l:bind("127.0.0.1", 0))
      assert(l:listen())
      l:settimeout(10)
      local _, port = l:getsockname()
      local sc = child(H.spawn("printf 'hello socat\\n' | socat -t 5 - TCP:127.0.0.1:" .. port, 30))
      local a, host, cport = l:accept()
      assert.is_truthy(a, host)
      assert.equal("127.0.0.1", host)
      assert.equal("integer", math.type(cport))
      a:settimeout(10)
      assert.equal("hello socat\n", N.recv_exactly(a, 12))
      assert.equal("EOF", select(3, a:recv()))     -- socat passes its stdin's end on
      assert(N.send_all(a, "reply from sockit\n"))
      a:close(); l:close()
      assert.equal(0, sc:wait(10), sc.output())
      assert.equal("reply from sockit\n", sc.output())
    end)

    it("a sockit client of socat listening on a unix path (upper-casing through tr)", function()
      need("socat")
      local path = dir .. "/socat.sock"
      local sc = child(H.spawn("socat UNIX-LISTEN:" .. path .. " SYSTEM:'tr a-z A-Z'", 30))
      assert.is_truthy(H.wait_until(function() return H.exists(path) end, 10), sc.output())
      local c = assert(core.socket("unix", "stream"))
      c:settimeout(10)
      assert.equal(true, c:connect(path))
      assert(N.send_all(c, "make me loud"))
      assert.equal(true, c:shutdown("w"))
      local got = {}
      for _ = 1, 100 do
        local d, _, code = c:recv()
        if not d then assert.equal("EOF", code); break end
        got[#got + 1] = d
      end
      assert.equal("MAKE ME LOUD", table.concat(got))
      c:close()
      assert.equal(0, sc:wait(10), sc.output())
    end)

    it("sockit's \"\\0name\" is socat's ABSTRACT namespace", function()
      need("socat")
      local name = "sockit-socat-" .. H.pid()
      local s = assert(core.socket("unix", "dgram"))
      assert(s:bind("\0" .. name))
      s:settimeout(10)
      local sc = child(H.spawn("printf 'abstract hello' | socat -u - ABSTRACT-SENDTO:" .. name, 30))
      local d, from = s:recvfrom()
      assert.equal("abstract hello", d)
      assert.equal("", from)                 -- socat's sending socket is unnamed
      assert.equal(0, sc:wait(10), sc.output())
      s:close()
    end)

    it("socat as a UDP peer: a datagram there and back", function()
      need("socat")
      local s = assert(core.socket("inet", "dgram"))
      assert(s:bind("127.0.0.1", 0))
      s:settimeout(10)
      local _, port = s:getsockname()
      -- socat sends its stdin as one datagram and prints what comes back
      local sc = child(H.spawn("printf 'udp hello' | socat -t 1 - UDP:127.0.0.1:" .. port, 30))
      local d, host, from = s:recvfrom()
      assert.equal("udp hello", d)
      assert.equal("127.0.0.1", host)
      assert.equal(9, s:sendto("udp reply", host, from))
      assert.equal(0, sc:wait(10), sc.output())
      assert.equal("udp reply", sc.output())
      s:close()
    end)
  end)
end)
