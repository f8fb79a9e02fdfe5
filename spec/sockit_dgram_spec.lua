-- spec/sockit_dgram_spec.lua — datagram endpoints (sockit.bind, and
-- sockit.connect on udp and unixgram) and unixpacket record endpoints,
-- with real datagrams: udp4, udp6, dual-stack udp, unixgram on a path
-- and in the abstract namespace.

local sockit = require "sockit"
local H = require "support.helpers"

local v6, v6why = H.have_ipv6()

describe("datagram endpoints", function()
  local objs = {}
  local function keep(o) objs[#objs + 1] = o; return o end
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)
  after_each(function()
    for _, o in ipairs(objs) do o:close() end
    objs = {}
  end)

  local INET = {
    {name = "udp4", network = "udp4", address = "127.0.0.1:0", any = "^127%.0%.0%.1:%d+$"},
    {name = "udp6", network = "udp6", address = "[::1]:0", any = "^%[::1%]:%d+$",
     skip = not v6 and ("no IPv6: " .. tostring(v6why))},
  }

  for _, k in ipairs(INET) do
    it("send and receive on " .. k.name .. " with address strings", function()
      if k.skip then pending(k.skip) return end
      local a = keep(assert(sockit.bind(k.network, k.address)))
      local b = keep(assert(sockit.bind(k.network, k.address)))
      a:settimeout(5); b:settimeout(5)
      assert.matches(k.any, a:addr())
      assert.matches("^sockit%.endpoint{inet6? dgram fd=%d+ ", tostring(a))
      assert.equal(5, a:sendto("hello", b:addr()))
      local data, from = b:recvfrom()
      assert.equal("hello", data)
      assert.equal(a:addr(), from)
      assert.equal(0, b:sendto("", from))              -- an empty datagram
      data, from = a:recvfrom()
      assert.equal("", data)
      assert.equal(b:addr(), from)
      -- a connected endpoint: send/recv/peer
      local c = keep(assert(sockit.connect(k.network, b:addr(), {timeout = 5})))
      assert.equal(b:addr(), c:peer())
      assert.equal(3, c:send(123))                     -- a number is sent as text
      data, from = b:recvfrom()
      assert.equal("123", data)
      assert.equal(c:addr(), from)
      b:sendto("back", from)
      assert.equal("back", c:recv())
    end)
  end

  it("says EMSGSIZE for a datagram longer than max, and goes on", function()
    local a = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    local b = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    b:settimeout(5)
    a:sendto("0123456789", b:addr())
    a:sendto("next", b:addr())
    local data, msg, code = b:recvfrom(4)
    H.fails(data, msg, code)
    assert.equal("EMSGSIZE", code)
    assert.equal("recvfrom: datagram of 10 bytes is longer than max 4", msg)
    assert.equal("next", (b:recvfrom(4)))
  end)

  it("times out: ETIMEDOUT after settimeout(t), EAGAIN with 0", function()
    local a = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    assert.is_true(a:settimeout(0.2))
    assert.equal(0.2, a:gettimeout())
    local t0 = sockit.now()
    local data, msg, code = a:recvfrom()
    local dt = sockit.now() - t0
    H.fails(data, msg, code)
    assert.equal("ETIMEDOUT", code)
    assert.equal("recvfrom: timed out", msg)
    assert.is_true(dt >= 0.15 and dt < 1, "took " .. dt)
    a:settimeout(0)
    data, msg, code = a:recv()
    H.fails(data, msg, code)
    assert.equal("EAGAIN", code)
    assert.equal("recv: Resource temporarily unavailable", msg)
  end)

  it("serves IPv4 clients on the dual-stack 'udp' ':0', answering them", function()
    local srv = keep(assert(sockit.bind("udp", ":0")))
    srv:settimeout(5)
    local port = srv:addr():match(":(%d+)$")
    if v6 then assert.equal("[::]:" .. port, srv:addr()) end
    local c = keep(assert(sockit.connect("udp4", "127.0.0.1:" .. port, {timeout = 5})))
    c:send("ping")
    local data, from = srv:recvfrom()
    assert.equal("ping", data)
    assert.equal(c:addr(), from)                          -- plain IPv4
    assert.equal(4, srv:sendto("pong", from))
    assert.equal("pong", c:recv())
    -- ":port" as a destination is this machine
    local d = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    d:sendto("to self", ":" .. port)
    data, from = srv:recvfrom()
    assert.equal("to self", data)
    assert.equal(d:addr(), from)
  end)

  it("refuses misuse", function()
    local a = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    local function raises(text, f, ...)
      local ok, err = pcall(f, ...)
      assert.is_false(ok)
      assert.equal(text, err:match("^[^:]+:%d+: (.*)$") or err)
    end
    raises("bad argument #2 to 'sendto' (missing port in address 'nohost')",
           a.sendto, a, "x", "nohost")
    raises("bad argument #2 to 'sendto' (port out of range in address '127.0.0.1:70000')",
           a.sendto, a, "x", "127.0.0.1:70000")
    raises("bad argument #1 to 'sendto' (string expected, got nil)", a.sendto, a, nil, ":1")
    raises("bad argument #1 to 'recvfrom' (max must be a positive integer)", a.recvfrom, a, -1)
    raises("bad argument #1 to 'settimeout' (timeout must be a non-negative number or nil)",
           a.settimeout, a, "soon")
    assert.is_true(a:close())
    assert.is_true(a:close())
    assert.equal("sockit.endpoint{closed}", tostring(a))
    for _, f in ipairs{a.sendto, a.recvfrom, a.send, a.recv, a.addr, a.peer, a.gettimeout} do
      local ok, err = pcall(f, a, "x", ":1")
      assert.is_false(ok)
      assert.matches("attempt to use a closed socket$", err)
    end
  end)

  describe("unixgram", function()
    it("binds a path, answers an autobound client, removes the file on close", function()
      local path = dir .. "/gram"
      local srv = assert(sockit.bind("unixgram", path))
      srv:settimeout(5)
      assert.equal(path, srv:addr())
      local c = keep(assert(sockit.connect("unixgram", path, {timeout = 5})))
      assert.equal(path, c:peer())
      assert.matches("^@", c:addr())                   -- autobound: can be answered
      assert.equal(5, c:send("hello"))
      local data, from = srv:recvfrom()
      assert.equal("hello", data)
      assert.equal(c:addr(), from)
      assert.equal(5, srv:sendto("world", from))
      assert.equal("world", c:recv())
      assert.is_true(H.exists(path))
      srv:close()
      assert.is_false(H.exists(path))
    end)

    it("uses opts.bind as the client's address", function()
      local path, cpath = dir .. "/gsrv", dir .. "/gcli"
      local srv = keep(assert(sockit.bind("unixgram", path)))
      srv:settimeout(5)
      local c = assert(sockit.connect("unixgram", path, {bind = cpath, timeout = 5}))
      assert.equal(cpath, c:addr())
      c:send("named")
      local data, from = srv:recvfrom()
      assert.equal("named", data)
      assert.equal(cpath, from)
      srv:sendto("reply", from)
      assert.equal("reply", c:recv())
      c:close()
      assert.is_false(H.exists(cpath))
    end)

    it("sends between bound endpoints, '' for an unnamed sender", function()
      local a = keep(assert(sockit.bind("unixgram", dir .. "/ga")))
      local b = keep(assert(sockit.bind("unixgram", "@sockit-dgram-spec-" .. H.pid())))
      b:settimeout(5); a:settimeout(5)
      assert.equal("@sockit-dgram-spec-" .. H.pid(), b:addr())
      assert.equal(2, a:sendto("hi", b:addr()))
      local data, from = b:recvfrom()
      assert.equal("hi", data)
      assert.equal(dir .. "/ga", from)
      b:sendto("abstract to path", from)
      assert.equal("abstract to path", (a:recvfrom()))
      -- an autobound-less sender: bind "" is autobind too, so use a raw one
      local core = require "sockit.core"
      local raw = assert(core.socket("unix", "dgram"))
      raw:sendto("anon", dir .. "/ga")
      raw:close()
      data, from = a:recvfrom()
      assert.equal("anon", data)
      assert.equal("", from)
    end)

    it("replaces a stale file but not a live endpoint or a regular file", function()
      local path = dir .. "/gstale"
      local core = require "sockit.core"
      local old = assert(core.socket("unix", "dgram"))
      assert(old:bind(path))
      old:close()
      local ep = keep(assert(sockit.bind("unixgram", path)))
      local ep2, msg, code = sockit.bind("unixgram", path)
      H.fails(ep2, msg, code)
      assert.equal("EADDRINUSE", code)
      assert.equal("bind " .. path .. ": Address already in use", msg)
      assert.equal(path, ep:addr())
      local file = dir .. "/gfile"
      H.write_file(file, "keep me")
      ep2, msg, code = sockit.bind("unixgram", file)
      H.fails(ep2, msg, code)
      assert.equal("EADDRINUSE", code)
      assert.equal("keep me", H.read_file(file))
    end)
  end)

  describe("unixpacket", function()
    it("keeps record boundaries: send/recv on both ends, EOF at the end", function()
      local path = dir .. "/packet"
      local l = keep(assert(sockit.listen("unixpacket", path)))
      local c = keep(assert(sockit.connect("unixpacket", path, {timeout = 5})))
      local s, peer = l:accept()
      keep(s)
      assert.equal("", peer)
      assert.matches("^sockit%.endpoint{unix seqpacket ", tostring(s))
      s:settimeout(5)
      assert.equal(3, c:send("one"))
      assert.equal(3, c:send("two"))
      assert.equal("one", s:recv())
      assert.equal("two", s:recv())
      s:send(string.rep("r", 1000))
      local data, msg, code = c:recv(10)                 -- a record longer than max
      H.fails(data, msg, code)
      assert.equal("EMSGSIZE", code)
      s:send("small")
      assert.equal("small", c:recv(10))
      assert.equal(path, c:peer())
      assert.is_true(c:shutdown("w"))
      data, msg, code = s:recv()
      H.fails(data, msg, code)
      assert.equal("EOF", code)
      assert.equal("recv: end of stream", msg)
    end)

    it("works in the abstract namespace", function()
      local name = "@sockit-packet-spec-" .. H.pid()
      local l = keep(assert(sockit.listen("unixpacket", name)))
      local c = keep(assert(sockit.connect("unixpacket", name, {timeout = 5})))
      local s = keep(assert(l:accept()))
      s:settimeout(5)
      c:send("rec")
      assert.equal("rec", s:recv())
      assert.equal(name, l:addr())
    end)
  end)
end)
