-- spec/core_dgram_spec.lua — datagram sockets on inet, inet6, unix and
-- unix abstract, and unix seqpacket: sendto/recvfrom with the sender's
-- address, connected datagrams, empty datagrams, boundaries, and the
-- EMSGSIZE rule (a datagram longer than max is never silently cut).

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

local function skip_if(fam)
  if fam.skip then pending(fam.skip) end
end

-- the largest payload one UDP datagram can carry on the loopback
local UDP_MAX = { inet = 65507, inet6 = 65527 }

for _, fam in ipairs(N.families) do
  describe("core dgram " .. fam.name, function()
    local dir
    local keep = N.keeper(after_each)
    setup(function() dir = H.tmpdir() end)
    teardown(function() H.rmdir(dir) end)

    it("sendto/recvfrom carry data and name the sender", function()
      skip_if(fam)
      local a, b, aa, ba = N.dgram_pair(fam, dir)
      keep(a, b)
      assert.equal(5, a:sendto("hello", table.unpack(ba, 1, ba.n)))
      local d, h, p = b:recvfrom()
      assert.equal("hello", d)
      assert.equal(aa[1], h)
      assert.equal(aa[2], p)
      assert.equal(3, b:sendto("hi!", h, p))
      d, h, p = a:recvfrom()
      assert.equal("hi!", d)
      assert.equal(ba[1], h)
      assert.equal(ba[2], p)
      if fam.family == "unix" then assert.is_nil(p) end
    end)

    it("keeps datagram boundaries", function()
      skip_if(fam)
      local a, b, _, ba = N.dgram_pair(fam, dir)
      keep(a, b)
      for i = 1, 5 do
        assert.equal(#("dgram" .. i), a:sendto("dgram" .. i, table.unpack(ba, 1, ba.n)))
      end
      for i = 1, 5 do
        assert.equal("dgram" .. i, (b:recvfrom()))
      end
    end)

    it("carries an empty datagram as \"\"", function()
      skip_if(fam)
      local a, b, aa, ba = N.dgram_pair(fam, dir)
      keep(a, b)
      assert.equal(0, a:sendto("", table.unpack(ba, 1, ba.n)))
      local d, h = b:recvfrom()
      assert.equal("", d)
      assert.equal(aa[1], h)
      assert.equal(0, a:sendto("", table.unpack(ba, 1, ba.n)))
      assert.equal("", b:recv())
    end)

    it("connect, send and recv on a connected datagram socket", function()
      skip_if(fam)
      local a, b, aa, ba = N.dgram_pair(fam, dir)
      keep(a, b)
      assert.equal(true, a:connect(table.unpack(ba, 1, ba.n)))
      assert.equal(true, b:connect(table.unpack(aa, 1, aa.n)))
      local ph, pp = a:getpeername()
      assert.equal(ba[1], ph)
      assert.equal(ba[2], pp)
      assert.equal(4, a:send("ping"))
      assert.equal("ping", b:recv())
      assert.equal(4, b:send("pong"))
      assert.equal("pong", a:recv())
      assert.matches(" connected}$", tostring(a))
    end)

    it("recvfrom: a datagram longer than max is EMSGSIZE with its real length, and consumed", function()
      skip_if(fam)
      local a, b, _, ba = N.dgram_pair(fam, dir)
      keep(a, b)
      assert.equal(1000, a:sendto(string.rep("L", 1000), table.unpack(ba, 1, ba.n)))
      assert.equal(4, a:sendto("next", table.unpack(ba, 1, ba.n)))
      local d, msg, code = b:recvfrom(100)
      assert.is_nil(d)
      assert.equal("EMSGSIZE", code)
      assert.equal("recvfrom: datagram of 1000 bytes is longer than max 100", msg)
      assert.equal("next", (b:recvfrom(100)))
    end)

    it("recv: the same rule", function()
      skip_if(fam)
      local a, b, _, ba = N.dgram_pair(fam, dir)
      keep(a, b)
      assert.equal(11, a:sendto("hello world", table.unpack(ba, 1, ba.n)))
      assert.equal(2, a:sendto("ok", table.unpack(ba, 1, ba.n)))
      assert.equal(5, a:sendto("exact", table.unpack(ba, 1, ba.n)))
      local d, msg, code = b:recv(10)
      assert.is_nil(d)
      assert.equal("EMSGSIZE", code)
      assert.equal("recv: datagram of 11 bytes is longer than max 10", msg)
      assert.equal("ok", b:recv(10))
      assert.equal("exact", b:recv(5))   -- exactly max fits
    end)

    if fam.family ~= "unix" then
      it("receives the largest UDP datagram whole with the default max", function()
        skip_if(fam)
        local a, b, _, ba = N.dgram_pair(fam, dir)
        keep(a, b)
        local big = string.rep("0123456789abcdef", 4096):sub(1, UDP_MAX[fam.family])
        assert.equal(#big, a:sendto(big, table.unpack(ba, 1, ba.n)))
        local d = assert(b:recvfrom())
        assert.equal(#big, #d)
        assert.is_true(d == big)
      end)

      it("a UDP socket connected to a closed port hears ECONNREFUSED", function()
        skip_if(fam)
        local port = N.closed_port(fam)
        local s = keep(assert(core.socket(fam.family, "dgram")))
        s:settimeout(5)
        assert(s:connect(fam.host, port))
        assert.equal(5, s:send("knock"))
        -- the ICMP port unreachable comes back as the next call's error
        local d, msg, code = s:recv()
        assert.is_nil(d)
        assert.equal("ECONNREFUSED", code)
        assert.equal("recv: Connection refused", msg)
      end)
    else
      it("carries a 70000-byte datagram: EMSGSIZE at the default max, whole with a larger one", function()
        local a, b, _, ba = N.dgram_pair(fam, dir)
        keep(a, b)
        local big = string.rep("u", 70000)
        assert.equal(70000, a:sendto(big, table.unpack(ba, 1, ba.n)))
        assert.equal(70000, a:sendto(big, table.unpack(ba, 1, ba.n)))
        local d, msg, code = b:recv()
        assert.is_nil(d)
        assert.equal("EMSGSIZE", code)
        assert.equal("recv: datagram of 70000 bytes is longer than max 65536", msg)
        d = assert(b:recvfrom(100000))
        assert.equal(70000, #d)
        assert.is_true(d == big)
      end)

      it("names an unbound sender \"\"", function()
        local b = keep(assert(core.socket("unix", "dgram")))
        local path = fam.addr(dir)
        assert(b:bind(path))
        b:settimeout(5)
        local a = keep(assert(core.socket("unix", "dgram")))
        assert.equal(3, a:sendto("who", path))
        local d, from, extra = b:recvfrom()
        assert.equal("who", d)
        assert.equal("", from)
        assert.is_nil(extra)
      end)

      it("sendto a name nobody bound is the kernel's error, naming the address", function()
        local a = keep(assert(core.socket("unix", "dgram")))
        local path = fam.addr(dir)
        local n, msg, code = a:sendto("x", path)
        assert.is_nil(n)
        if fam.name == "unix" then
          assert.equal("ENOENT", code)
          assert.equal("sendto " .. path .. ": No such file or directory", msg)
        else
          assert.equal("ECONNREFUSED", code)
          assert.equal("sendto " .. fam.show(path) .. ": Connection refused", msg)
        end
      end)
    end
  end)
end

describe("core seqpacket", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  for _, fam in ipairs(N.unix_families) do
    it("listens, accepts and keeps record boundaries (" .. fam.name .. ")", function()
      local c, a, l, addr = N.stream_pair(fam, dir, "seqpacket")
      assert.equal("seqpacket", a:type())
      assert.equal("seqpacket", c:type())
      assert.equal(addr[1], (c:getpeername()))
      for i = 1, 3 do assert.equal(#("rec" .. i), c:send("rec" .. i)) end
      for i = 1, 3 do assert.equal("rec" .. i, a:recv()) end
      assert.equal(5, a:send("reply"))
      assert.equal("reply", c:recv())
      c:close(); a:close(); l:close()
    end)

    it("a record longer than max is EMSGSIZE, and consumed (" .. fam.name .. ")", function()
      local c, a, l = N.stream_pair(fam, dir, "seqpacket")
      assert.equal(20, c:send(string.rep("s", 20)))
      assert.equal(4, c:send("tail"))
      local d, msg, code = a:recv(10)
      assert.is_nil(d)
      assert.equal("EMSGSIZE", code)
      assert.equal("recv: record of 20 bytes is longer than max 10", msg)
      assert.equal("tail", a:recv(10))
      -- recvfds and recvmany name it a record too
      assert.equal(20, c:send(string.rep("s", 20)))
      d, msg, code = a:recvfds(10)
      assert.is_nil(d)
      assert.equal("EMSGSIZE", code)
      assert.equal("recvfds: record of 20 bytes is longer than max 10", msg)
      assert.equal(20, c:send(string.rep("s", 20)))
      local list = assert(a:recvmany(1, 10))
      assert.equal("recvmany: record of 20 bytes is longer than max 10",
                   list[1].message)
      c:close(); a:close(); l:close()
    end)

    it("shutdown('w') is EOF for the peer, which can still answer (" .. fam.name .. ")", function()
      local c, a, l = N.stream_pair(fam, dir, "seqpacket")
      assert.equal(3, c:send("end"))
      assert.equal(true, c:shutdown("w"))
      assert.equal("end", a:recv())
      local d, msg, code = a:recv()
      assert.is_nil(d)
      assert.equal("EOF", code)
      assert.equal("recv: end of stream", msg)
      assert.equal(6, a:send("answer"))
      assert.equal("answer", c:recv())
      c:close(); a:close(); l:close()
    end)

    it("the peer's close is EOF (" .. fam.name .. ")", function()
      local c, a, l = N.stream_pair(fam, dir, "seqpacket")
      assert.equal(4, c:send("last"))
      c:close()
      assert.equal("last", a:recv())
      local d, msg, code = a:recv()
      assert.is_nil(d)
      assert.equal("EOF", code)
      assert.equal("recv: end of stream", msg)
      a:close(); l:close()
    end)
  end

  it("a socketpair('seqpacket') keeps boundaries both ways", function()
    local a, b = core.socketpair("seqpacket")
    a:settimeout(5); b:settimeout(5)
    assert.equal(3, a:send("one"))
    assert.equal(3, a:send("two"))
    assert.equal("one", b:recv())
    assert.equal("two", b:recv())
    assert.equal(5, b:send("three"))
    assert.equal("three", a:recv())
    a:close(); b:close()
  end)

  it("a socketpair('dgram') keeps boundaries and carries empty datagrams", function()
    local a, b = core.socketpair("dgram")
    a:settimeout(5); b:settimeout(5)
    assert.equal(0, a:send(""))
    assert.equal(2, a:send("xy"))
    assert.equal("", b:recv())
    assert.equal("xy", b:recv())
    assert.equal(1, a:send("q"))
    local d, from = b:recvfrom()
    assert.equal("q", d)
    assert.equal("", from)          -- a socketpair end has no name
    b:settimeout(0)
    local msg, code
    d, msg, code = b:recvfrom()
    assert.is_nil(d)
    assert.equal("EAGAIN", code)
    assert.equal("recvfrom: Resource temporarily unavailable", msg)
    a:close(); b:close()
  end)
end)
