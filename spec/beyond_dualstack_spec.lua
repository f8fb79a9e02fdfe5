-- spec/beyond_dualstack_spec.lua — SPEC §4 dual-stack listeners: one
-- IPv6 socket on "[::]:port" with v6only = false serves IPv4 clients
-- (seen as plain "127.0.0.1:P") and IPv6 clients; v6only = true does not.

local sockit = require "sockit"
local H = require "support.helpers"
local B = require "support.beyond"

local v6, v6why = H.have_ipv6()

describe("dual-stack listeners and endpoints", function()
  local objs = {}
  local function keep(o) objs[#objs + 1] = o; return o end
  local fds_before
  setup(B.warm_loop)
  before_each(function() fds_before = B.count_fds() end)
  after_each(function()
    for _, o in ipairs(objs) do o:close() end
    objs = {}
    assert.equal(fds_before, B.count_fds(), "descriptors leaked")
  end)

  it("tcp '[::]:0' with v6only = false accepts 127.0.0.1 and ::1 clients", function()
    if not v6 then pending("no IPv6: " .. tostring(v6why)) return end
    local l = keep(assert(sockit.listen("tcp", "[::]:0", {v6only = false})))
    assert.is_false(l.socket:getoption("v6only"))
    local port = l:addr():match("^%[::%]:(%d+)$")
    assert.is_truthy(port, l:addr())
    local seen = {}
    sockit.spawn(function()
      for _ = 1, 2 do
        local c, peer = assert(l:accept())
        c:settimeout(5)
        seen[#seen + 1] = peer
        assert(c:write("hello ", peer, "\n"))
        c:close()
      end
    end)
    local replies = {}
    for i, addr in ipairs{"127.0.0.1:" .. port, "[::1]:" .. port} do
      sockit.spawn(function()
        sockit.sleep(0.02 * i)                    -- one after the other
        local c = assert(sockit.connect("tcp", addr, {timeout = 5}))
        replies[i] = {c:addr(), assert(c:read("l"))}
        c:close()
      end)
    end
    sockit.run()
    assert.matches("^127%.0%.0%.1:%d+$", seen[1])  -- plain IPv4, not ::ffff:
    assert.matches("^%[::1%]:%d+$", seen[2])
    assert.same({seen[1], "hello " .. seen[1]}, replies[1])
    assert.same({seen[2], "hello " .. seen[2]}, replies[2])
  end)

  -- regression: when [::]:P could not be bound because [::1]:P was
  -- taken, ":P" quietly fell back to an IPv4-only 0.0.0.0:P listener;
  -- that fallback is for machines without IPv6, EADDRINUSE is the answer
  it("':port' in use on IPv6 is EADDRINUSE, not an IPv4-only fallback", function()
    if not v6 then pending("no IPv6: " .. tostring(v6why)) return end
    local l6 = keep(assert(sockit.listen("tcp6", "[::1]:0")))
    local port = l6:addr():match(":(%d+)$")
    local l, msg, code = sockit.listen("tcp", ":" .. port)
    H.fails(l, msg, code)
    assert.equal("EADDRINUSE", code)
    assert.equal("bind [::]:" .. port .. ": Address already in use", msg)
    local u6 = keep(assert(sockit.bind("udp6", "[::1]:0")))
    local uport = u6:addr():match(":(%d+)$")
    local ep
    ep, msg, code = sockit.bind("udp", ":" .. uport)
    H.fails(ep, msg, code)
    assert.equal("EADDRINUSE", code)
    -- the port is free on IPv4, and tcp4/udp4 may take it there
    keep(assert(sockit.listen("tcp4", ":" .. port)))
    keep(assert(sockit.bind("udp4", ":" .. uport)))
  end)

  it("':port' still falls back to 0.0.0.0 where there is no IPv6", function()
    local open = require "sockit.open"
    local real = open.socket
    open.socket = function(family, socktype)       -- a kernel without IPv6
      if family == "inet6" then
        return nil, "socket inet6 " .. socktype .. ": Address family not "
                    .. "supported by protocol", "EAFNOSUPPORT"
      end
      return real(family, socktype)
    end
    local ok, l, ep = pcall(function()
      return sockit.listen("tcp", ":0"), sockit.bind("udp", ":0")
    end)
    open.socket = real
    assert(ok, l)
    keep(assert(l)); keep(assert(ep))
    assert.matches("^0%.0%.0%.0:%d+$", l:addr())
    assert.matches("^0%.0%.0%.0:%d+$", ep:addr())
  end)

  -- regression: tostring(conn) of a 127.0.0.1 client on a dual-stack
  -- listener showed "[::ffff:127.0.0.1]:P" while conn:peer() said
  -- "127.0.0.1:P"; the v4-mapped addresses are unmapped in both now
  it("tostring of a v4 client's conn shows plain IPv4, as peer() and addr() do", function()
    if not v6 then pending("no IPv6: " .. tostring(v6why)) return end
    local l = keep(assert(sockit.listen("tcp", "[::]:0", {v6only = false})))
    local port = l:addr():match(":(%d+)$")
    local c = keep(assert(sockit.connect("tcp4", "127.0.0.1:" .. port, {timeout = 5})))
    l:settimeout(5)
    local s = keep(assert(l:accept()))
    assert.equal(c:addr(), s:peer())
    assert.equal("127.0.0.1:" .. port, s:addr())
    assert.equal("sockit.conn{inet6 stream fd=" .. s.socket:fileno() .. " " .. s:addr()
                 .. " -> " .. s:peer() .. " connected}", tostring(s))
    assert.equal("sockit.socket{inet6 stream fd=" .. s.socket:fileno() .. " " .. s:addr()
                 .. " -> " .. s:peer() .. " connected}", tostring(s.socket))
    -- an IPv6 peer stays in brackets
    local c6 = keep(assert(sockit.connect("tcp6", "[::1]:" .. port, {timeout = 5})))
    local s6 = keep(assert(l:accept()))
    assert.matches("^%[::1%]:%d+$", s6:peer())
    assert.matches(" %[::1%]:" .. port .. " %-> " .. H.pat(s6:peer()) .. " connected}$",
                   tostring(s6))
    assert.is_truthy(c6)
  end)

  it("v6only = true refuses IPv4; tcp6 may be made dual stack on purpose", function()
    if not v6 then pending("no IPv6: " .. tostring(v6why)) return end
    local l = keep(assert(sockit.listen("tcp", "[::]:0", {v6only = true})))
    assert.is_true(l.socket:getoption("v6only"))
    local port = l:addr():match(":(%d+)$")
    local msg, code = H.fails(sockit.connect("tcp4", "127.0.0.1:" .. port, {timeout = 5}))
    assert.equal("ECONNREFUSED", code)
    assert.equal("connect 127.0.0.1:" .. port .. ": Connection refused", msg)
    keep(assert(sockit.connect("tcp6", "[::1]:" .. port, {timeout = 5})))
    keep(assert(l:accept()))
    -- the defaults: tcp6 is IPv6 only, tcp on [::] is dual stack
    local l6 = keep(assert(sockit.listen("tcp6", "[::]:0")))
    assert.is_true(l6.socket:getoption("v6only"))
    local l6d = keep(assert(sockit.listen("tcp6", "[::]:0", {v6only = false})))
    assert.is_false(l6d.socket:getoption("v6only"))
    local ld = keep(assert(sockit.listen("tcp", "[::]:0")))
    assert.is_false(ld.socket:getoption("v6only"))
    keep(assert(sockit.connect("tcp4", "127.0.0.1:" .. ld:addr():match(":(%d+)$"),
                               {timeout = 5})))
    local s, peer = assert(ld:accept())
    keep(s)
    assert.matches("^127%.0%.0%.1:%d+$", peer)
    -- an IPv4 address has no v6only to set: the option is ignored there
    local l4 = keep(assert(sockit.listen("tcp", "127.0.0.1:0", {v6only = true})))
    assert.equal("inet", l4.socket:family())
  end)

  it("udp '[::]:0' with v6only = false: IPv4 and IPv6 senders, answered", function()
    if not v6 then pending("no IPv6: " .. tostring(v6why)) return end
    local ep = keep(assert(sockit.bind("udp", "[::]:0", {v6only = false})))
    assert.is_false(ep.socket:getoption("v6only"))
    ep:settimeout(5)
    local port = ep:addr():match(":(%d+)$")
    local c4 = keep(assert(sockit.connect("udp4", "127.0.0.1:" .. port, {timeout = 5})))
    local c6 = keep(assert(sockit.connect("udp6", "[::1]:" .. port, {timeout = 5})))
    assert(c4:send("four")); assert(c6:send("six"))
    local list = assert(ep:recvmany(4))
    if #list < 2 then list[2] = assert(ep:recvmany(4))[1] end
    assert.same({{"four", c4:addr()}, {"six", c6:addr()}}, list)
    assert.equal(2, ep:sendmany({{"to four", list[1][2]}, {"to six", list[2][2]}}))
    assert.equal("to four", c4:recv())
    assert.equal("to six", c6:recv())
  end)

  it("raises for a v6only that is not a boolean", function()
    assert.equal("bad argument #3 to 'listen' (opts.v6only must be a boolean, got string)",
                 H.raises(sockit.listen, "tcp", "[::]:0", {v6only = "no"}))
    assert.equal("bad argument #3 to 'bind' (opts.v6only must be a boolean, got number)",
                 H.raises(sockit.bind, "udp", "[::]:0", {v6only = 0}))
  end)
end)
