-- spec/core_stream_spec.lua — stream sockets on inet, inet6, unix and
-- unix abstract: bind/listen/accept/connect, real data both ways, send's
-- i/j, recv's max, shutdown, EOF, getsockname/getpeername.

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

local function skip_if(fam)
  if fam.skip then pending(fam.skip) end
end

for _, fam in ipairs(N.families) do
  describe("core stream " .. fam.name, function()
    local dir
    local keep = N.keeper(after_each)
    setup(function() dir = H.tmpdir() end)
    teardown(function() H.rmdir(dir) end)

    it("binds, listens, and reports the bound address", function()
      skip_if(fam)
      local l = keep(assert(core.socket(fam.family, "stream")))
      local a1, a2 = fam.addr(dir)
      assert.equal(true, l:bind(a1, a2))
      assert.equal(true, l:listen())
      local h, p = l:getsockname()
      if fam.family == "unix" then
        assert.equal(a1, h)
        assert.is_nil(p)
      else
        assert.equal(fam.host, h)
        assert.equal("integer", math.type(p))
        assert.is_true(p > 0 and p <= 65535, "port " .. tostring(p))
      end
    end)

    it("accepts a client and tells who it is", function()
      skip_if(fam)
      local l, addr = N.listener(fam, "stream", dir)
      keep(l)
      l:settimeout(5)
      local c = keep(assert(core.socket(fam.family, "stream")))
      c:settimeout(5)
      assert.equal(true, c:connect(table.unpack(addr, 1, addr.n)))
      local a, h, p = l:accept()
      assert.is_truthy(a, h)
      keep(a)
      if fam.family == "unix" then
        assert.equal("", h)        -- the client never bound: unnamed
        assert.is_nil(p)
        assert.equal(addr[1], (a:getsockname()))
        assert.equal("", (a:getpeername()))
        assert.equal(addr[1], (c:getpeername()))
      else
        local ch, cp = c:getsockname()
        assert.equal(fam.host, h)
        assert.equal(cp, p)
        assert.equal(fam.host, ch)
        local ph, pp = a:getpeername()
        assert.equal(ch, ph)
        assert.equal(cp, pp)
        ph, pp = c:getpeername()
        assert.equal(addr[1], ph)
        assert.equal(addr[2], pp)
      end
      assert.equal(fam.family, a:family())
      assert.equal("stream", a:type())
    end)

    if fam.family == "unix" then
      it("accept returns the path of a client that bound one", function()
        local l, addr = N.listener(fam, "stream", dir)
        keep(l)
        l:settimeout(5)
        local c = keep(assert(core.socket("unix", "stream")))
        local mine = fam.addr(dir)
        assert(c:bind(mine))
        c:settimeout(5)
        assert(c:connect(addr[1]))
        local a, path = l:accept()
        keep(a)
        assert.equal(mine, path)
        assert.equal(mine, (a:getpeername()))
        assert.equal(mine, (c:getsockname()))
      end)
    end

    it("carries data both ways, byte for byte", function()
      skip_if(fam)
      local c, a, l = N.stream_pair(fam, dir)
      keep(c, a, l)
      assert.equal(11, c:send("hello world"))
      assert.equal("hello world", N.recv_exactly(a, 11))
      local bin = {}
      for i = 0, 255 do bin[#bin + 1] = string.char(i) end
      bin = table.concat(bin)
      assert.equal(256, a:send(bin))
      assert.equal(bin, N.recv_exactly(c, 256))
    end)

    it("moves 4 MiB with interleaved non-blocking sends and receives", function()
      skip_if(fam)
      local c, a, l = N.stream_pair(fam, dir)
      keep(c, a, l)
      c:settimeout(0); a:settimeout(0)
      local parts = {}
      for i = 1, 4096 do parts[i] = string.format("%07d", i) .. string.rep("x", 1017) end
      local data = table.concat(parts)
      assert.equal(4 * 1024 * 1024, #data)
      local sent, got, chunks = 0, {}, 0
      local received = 0
      local deadline = core.now() + 20
      for _ = 1, 200000 do
        if received >= #data or core.now() > deadline then break end
        if sent < #data then
          local n, msg, code = c:send(data, sent + 1, math.min(#data, sent + 262144))
          if n then sent = sent + n else assert.equal("EAGAIN", code, msg) end
        end
        local d, msg, code = a:recv(65536)
        if d then
          got[#got + 1] = d; received = received + #d; chunks = chunks + 1
          assert.is_true(#d <= 65536)
        else
          assert.equal("EAGAIN", code, msg)
          assert.equal("recv: Resource temporarily unavailable", msg)
        end
      end
      assert.equal(#data, received)
      assert.is_true(table.concat(got) == data, "the bytes differ")
      assert.is_true(chunks >= 64)
    end)

    it("send takes i and j as string.sub does", function()
      skip_if(fam)
      local c, a, l = N.stream_pair(fam, dir)
      keep(c, a, l)
      assert.equal(5, c:send("hello world", 7))         -- "world"
      assert.equal("world", N.recv_exactly(a, 5))
      assert.equal(1, c:send("abc", 2, 2))              -- "b"
      assert.equal("b", N.recv_exactly(a, 1))
      assert.equal(3, c:send("hello", -3))              -- "llo"
      assert.equal("llo", N.recv_exactly(a, 3))
      assert.equal(2, c:send("hello", -3, -2))          -- "ll"
      assert.equal("ll", N.recv_exactly(a, 2))
      assert.equal(5, c:send("hello", 1, 100))          -- j past the end
      assert.equal("hello", N.recv_exactly(a, 5))
      assert.equal(0, c:send("hello", 4, 2))            -- empty range
      assert.equal(0, c:send(""))
      -- nothing extra arrived
      a:settimeout(0)
      local d, msg, code = a:recv()
      assert.is_nil(d)
      assert.equal("EAGAIN", code)
      assert.equal("recv: Resource temporarily unavailable", msg)
    end)

    it("recv returns at most max bytes, and the rest later", function()
      skip_if(fam)
      local c, a, l = N.stream_pair(fam, dir)
      keep(c, a, l)
      assert.equal(10, c:send("0123456789"))
      assert(a:wait("r", 5))
      assert.equal("0123", a:recv(4))
      assert.equal("45", a:recv(2))
      assert.equal("6789", N.recv_exactly(a, 4))
    end)

    it("recv with no max takes up to 65536 bytes", function()
      skip_if(fam)
      local c, a, l = N.stream_pair(fam, dir)
      keep(c, a, l)
      assert(N.send_all(c, string.rep("z", 100000)))
      H.wait_until(function() return a:wait("r", 0) end, 2)
      local d = assert(a:recv())
      assert.is_true(#d >= 1 and #d <= 65536, "#d = " .. #d)
      assert.equal(string.rep("z", #d), d)
      local rest = N.recv_exactly(a, 100000 - #d)
      assert.equal(100000 - #d, #rest)
    end)

    it("reports the end of stream as EOF after the peer closes", function()
      skip_if(fam)
      local c, a, l = N.stream_pair(fam, dir)
      keep(c, a, l)
      assert.equal(3, c:send("bye"))
      c:close()
      assert.equal("bye", N.recv_exactly(a, 3))
      local d, msg, code = a:recv()
      assert.is_nil(d)
      assert.equal("EOF", code)
      assert.equal("recv: end of stream", msg)
      -- and again: EOF stays EOF
      d, msg, code = a:recv(10)
      assert.is_nil(d)
      assert.equal("EOF", code)
      assert.equal("recv: end of stream", msg)
    end)

    it("shutdown('w') ends the peer's stream, and the other way still works", function()
      skip_if(fam)
      local c, a, l = N.stream_pair(fam, dir)
      keep(c, a, l)
      assert.equal(4, c:send("last"))
      assert.equal(true, c:shutdown("w"))
      assert.equal("last", N.recv_exactly(a, 4))
      local d, msg, code = a:recv()
      assert.is_nil(d)
      assert.equal("EOF", code)
      assert.equal("recv: end of stream", msg)
      assert.equal(5, a:send("reply"))
      assert.equal("reply", N.recv_exactly(c, 5))
      -- writing after shutdown("w") is EPIPE
      local n
      n, msg, code = c:send("more")
      assert.is_nil(n)
      assert.equal("EPIPE", code)
      assert.equal("send: Broken pipe", msg)
    end)

    it("shutdown('r') makes our own reads end", function()
      skip_if(fam)
      local c, a, l = N.stream_pair(fam, dir)
      keep(c, a, l)
      assert.equal(true, a:shutdown("r"))
      local d, msg, code = a:recv()
      assert.is_nil(d)
      assert.equal("EOF", code)
      assert.equal("recv: end of stream", msg)
      -- we can still write
      assert.equal(2, a:send("ok"))
      assert.equal("ok", N.recv_exactly(c, 2))
    end)

    it("shutdown('rw') ends both directions", function()
      skip_if(fam)
      local c, a, l = N.stream_pair(fam, dir)
      keep(c, a, l)
      assert.equal(true, c:shutdown("rw"))
      local d, _, code = a:recv()
      assert.is_nil(d)
      assert.equal("EOF", code)
      d, _, code = c:recv()
      assert.is_nil(d)
      assert.equal("EOF", code)
      local n, msg
      n, msg, code = c:send("x")
      assert.is_nil(n)
      assert.equal("EPIPE", code)
      assert.equal("send: Broken pipe", msg)
    end)

    it("shutdown of an unconnected socket is the kernel's answer", function()
      skip_if(fam)
      if fam.family == "unix" then
        -- Linux lets an unconnected unix socket shut down (it returns 0)
        local s = keep(assert(core.socket(fam.family, "stream")))
        assert.equal(true, s:shutdown("rw"))
        return
      end
      local s = keep(assert(core.socket(fam.family, "stream")))
      local ok, msg, code = s:shutdown("rw")
      assert.is_nil(ok)
      assert.equal("ENOTCONN", code)
      assert.equal("shutdown: Transport endpoint is not connected", msg)
    end)

    it("accepts many clients from one listener, each with its own data", function()
      skip_if(fam)
      local l, addr = N.listener(fam, "stream", dir)
      keep(l)
      l:settimeout(5)
      local clients = {}
      for i = 1, 20 do
        local c = keep(assert(core.socket(fam.family, "stream")))
        c:settimeout(5)
        assert(c:connect(table.unpack(addr, 1, addr.n)))
        assert(c:send("client " .. i))
        clients[i] = c
      end
      local seen = {}
      for _ = 1, 20 do
        local a = keep(assert(l:accept()))
        local d = assert(a:recv())
        local i = tonumber(d:match("^client (%d+)$"))
        assert.is_truthy(i, d)
        seen[i] = true
        assert(a:send("you are " .. i))
      end
      for i = 1, 20 do
        assert.is_true(seen[i])
        assert.equal("you are " .. i, clients[i]:recv())
      end
    end)
  end)
end

describe("core stream addresses", function()
  it("bind(nil | '*' | '') means every interface", function()
    for _, host in ipairs({ "*", "" }) do
      local s = assert(core.socket("inet", "stream"))
      assert.equal(true, s:bind(host, 0))
      local h, p = s:getsockname()
      assert.equal("0.0.0.0", h)
      assert.is_true(p > 0)
      s:close()
    end
    local s = assert(core.socket("inet", "stream"))
    assert.equal(true, s:bind(nil, 0))
    assert.equal("0.0.0.0", (s:getsockname()))
    s:close()
    local ok, why = H.have_ipv6()
    if not ok then pending(why) end
    s = assert(core.socket("inet6", "stream"))
    assert.equal(true, s:bind("*", 0))
    assert.equal("::", (s:getsockname()))
    s:close()
  end)

  it("resolves names within the socket's family: localhost on inet", function()
    local l = assert(core.socket("inet", "stream"))
    assert(l:bind("localhost", 0))
    assert(l:listen())
    local h, port = l:getsockname()
    assert.equal("127.0.0.1", h)
    local c = assert(core.socket("inet", "stream"))
    c:settimeout(5)
    assert.equal(true, c:connect("localhost", port))
    assert.equal("127.0.0.1", (c:getpeername()))
    c:close(); l:close()
  end)

  it("gives an inet6 socket an IPv4 literal as the v4-mapped address", function()
    local ok, why = H.have_ipv6()
    if not ok then pending(why) end
    local l = assert(core.socket("inet", "stream"))
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    l:settimeout(5)
    local _, port = l:getsockname()
    local c = assert(core.socket("inet6", "stream"))
    c:settimeout(5)
    assert.equal(true, c:connect("127.0.0.1", port))
    local h, p = c:getpeername()
    assert.equal("::ffff:127.0.0.1", h)
    assert.equal(port, p)
    local a, ah = l:accept()
    assert.is_truthy(a, ah)
    assert.equal("127.0.0.1", ah)
    assert(c:send("mapped"))
    assert.equal("mapped", a:recv())
    a:close(); c:close(); l:close()
  end)

  it("connect to a name that does not resolve is an EAI_ failure naming the address", function()
    local c = assert(core.socket("inet", "stream"))
    c:settimeout(10)
    local ok, msg, code = c:connect("nosuch.invalid", 80)
    assert.is_nil(ok)
    assert.matches("^EAI_", code)
    assert.equal("connect nosuch.invalid:80: " .. N.strerror[code], msg)
    c:close()
  end)
end)
