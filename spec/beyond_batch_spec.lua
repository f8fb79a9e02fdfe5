-- spec/beyond_batch_spec.lua — SPEC §4 batches of datagrams: the core's
-- sendmany/recvmany (sendmmsg/recvmmsg), the Lua layer's endpoint
-- methods with address strings, and sockit.serve on a datagram network,
-- which takes batches and answers in batches. Real datagrams over UDP on
-- 127.0.0.1 / ::1 and unixgram in a temp dir.

local sockit = require "sockit"
local core = sockit.core
local H = require "support.helpers"
local B = require "support.beyond"

local v6, v6why = H.have_ipv6()

-- a bound core UDP socket on 127.0.0.1 and its port
local function udp4()
  local s = assert(core.socket("inet", "dgram"))
  assert(s:bind("127.0.0.1", 0))
  s:settimeout(5)
  local _, port = s:getsockname()
  return s, port
end

-- a receiver r that got "ok", a 10-byte datagram and "fine" from a, by
-- recvmany(8, 4): the middle one is longer than max
local function one_too_long()
  local r, rport = udp4()
  local a, aport = udp4()
  assert.equal(3, a:sendmany({"ok", "0123456789", "fine"}, "127.0.0.1", rport))
  return r, a, aport, r:recvmany(8, 4), rport
end


describe("sockit.core sendmany/recvmany", function()
  local fds_before
  before_each(function() fds_before = B.count_fds() end)
  after_each(function()
    assert.equal(fds_before, B.count_fds(), "descriptors leaked")
  end)

  it("recvmany returns several datagrams in one call, with their senders", function()
    local r, rport = udp4()
    local a, aport = udp4()
    local b, bport = udp4()
    assert.equal(3, a:sendmany({"one", "two", "three"}, "127.0.0.1", rport))
    assert.equal(5, b:sendto("four!", "127.0.0.1", rport))
    assert.equal(0, a:sendto("", "127.0.0.1", rport))   -- an empty datagram
    local list = r:recvmany(16)
    assert.same({
      {"one", "127.0.0.1", aport}, {"two", "127.0.0.1", aport},
      {"three", "127.0.0.1", aport}, {"four!", "127.0.0.1", bport},
      {"", "127.0.0.1", aport},
    }, list)
    -- numbers are sent as strings, as send takes them (the Lua layer too)
    assert.equal(2, a:sendmany({7, {2.5, "127.0.0.1", rport}}, "127.0.0.1", rport))
    assert.same({{"7", "127.0.0.1", aport}, {"2.5", "127.0.0.1", aport}}, r:recvmany(2))
    -- at most n, the rest stays queued
    assert.equal(4, a:sendmany({"1", "2", "3", "4"}, "127.0.0.1", rport))
    assert.same({{"1", "127.0.0.1", aport}, {"2", "127.0.0.1", aport}}, r:recvmany(2))
    assert.same({{"3", "127.0.0.1", aport}, {"4", "127.0.0.1", aport}}, r:recvmany(5))
    r:close(); a:close(); b:close()
  end)

  it("recvmany marks a datagram longer than max (EMSGSIZE) and keeps the others", function()
    local r, a, aport, list = one_too_long()
    assert.equal(3, #list)
    assert.same({"ok", "127.0.0.1", aport}, list[1])
    assert.same({false, "127.0.0.1", aport, code = "EMSGSIZE",
                 message = "recvmany: datagram of 10 bytes is longer than max 4"}, list[2])
    assert.same({"fine", "127.0.0.1", aport}, list[3])
    r:close(); a:close()
  end)

  it("sendmany sends to per-datagram destinations, and strings to the common one", function()
    local r1, p1 = udp4()
    local r2, p2 = udp4()
    local r3, p3 = udp4()
    local s, sport = udp4()
    assert.equal(5, s:sendmany({
      "to r1 (common)", {"to r2", "127.0.0.1", p2}, {"to r3", "127.0.0.1", p3},
      {"to r1 too"}, "again r1",
    }, "127.0.0.1", p1))
    assert.same({{"to r1 (common)", "127.0.0.1", sport}, {"to r1 too", "127.0.0.1", sport},
                 {"again r1", "127.0.0.1", sport}}, r1:recvmany(10))
    assert.same({{"to r2", "127.0.0.1", sport}}, r2:recvmany(10))
    assert.same({{"to r3", "127.0.0.1", sport}}, r3:recvmany(10))
    -- a connected socket: strings go to its peer
    assert(s:connect("127.0.0.1", p2))
    assert.equal(2, s:sendmany({"x", "y"}))
    assert.same({{"x", "127.0.0.1", sport}, {"y", "127.0.0.1", sport}}, r2:recvmany(10))
    for _, x in ipairs{r1, r2, r3, s} do x:close() end
  end)

  it("on unix datagram sockets: paths both ways, an unnamed sender as ''", function()
    local dir = H.tmpdir()
    local r = assert(core.socket("unix", "dgram"))
    assert(r:bind(dir .. "/r"))
    r:settimeout(5)
    local s = assert(core.socket("unix", "dgram"))
    assert(s:bind(dir .. "/s"))
    local anon = assert(core.socket("unix", "dgram"))
    assert.equal(2, s:sendmany({"a", {"b", dir .. "/r"}}, dir .. "/r"))
    assert.equal(1, anon:sendto("c", dir .. "/r"))
    assert.same({{"a", dir .. "/s"}, {"b", dir .. "/s"}, {"c", ""}}, r:recvmany(10))
    r:close(); s:close(); anon:close()
    H.rmdir(dir)
  end)

  it("says how it fails: the first error, or the count that went", function()
    local s = udp4()
    local msg, code = H.fails(s:sendmany({"a"}, "127.0.0.1", 0))
    assert.equal("EINVAL", code)
    assert.equal("sendmany 127.0.0.1:0: Invalid argument", msg)
    -- a bad second item: the first went, the count says so
    local r, rport = udp4()
    assert.equal(1, s:sendmany({{"ok", "127.0.0.1", rport}, {"bad", "127.0.0.1", 0}}))
    assert.same({"ok"}, {r:recvmany(2)[1][1]})
    s:settimeout(0)
    msg, code = H.fails(s:recvmany(4))
    assert.equal("EAGAIN", code)
    assert.equal("recvmany: Resource temporarily unavailable", msg)
    assert.equal(0, s:sendmany({}))
    assert.matches("n must be 1..1024", H.raises(s.recvmany, s, 0))
    assert.matches("n must be 1..1024", H.raises(s.recvmany, s, 1025))
    assert.matches("item 2: string or table expected, got boolean",
                   H.raises(s.sendmany, s, {"a", true}, "127.0.0.1", 1))
    s:close(); r:close()
  end)

  -- regression: sendmany reserved n + 8 stack slots but keeps two per
  -- table item ({data, host, port} and its data): with many table items
  -- it wrote past the Lua stack (a heap corruption, "corrupted size vs.
  -- prev_size" now and then; valgrind: invalid write in lua_rawgeti)
  it("sendmany with 1024 table items stays within the Lua stack", function()
    local script = [[
      local core = require "sockit.core"
      local u = assert(core.socket("inet", "dgram"))
      assert(u:bind("127.0.0.1", 0))
      local _, port = u:getsockname()
      local items = {}
      for i = 1, 1024 do items[i] = {"d" .. i, "127.0.0.1", port} end
      local s = assert(core.socket("inet", "dgram"))
      print(s:sendmany(items))
      collectgarbage()
      local r = assert(core.socket("unix", "dgram"))
      assert(r:bind(""))                       -- autobound, abstract
      local path = r:getsockname()
      for i = 1, 1024 do items[i] = {"p" .. i, path} end
      local x = assert(core.socket("unix", "dgram"))
      local n = x:sendmany(items)              -- the queue takes a few
      print(n >= 1 and n < 1024)
    ]]
    -- (under make valgrind and make sanitize every child lua5.4 is
    -- wrapped already: no valgrind of our own there)
    local prefix = H.have("valgrind") and H.slow == 1 and not os.getenv("LD_PRELOAD")
      and "valgrind -q --error-exitcode=99 --leak-check=no" or nil
    local out, status, err = H.run_lua(script, {prefix = prefix, timeout = 60})
    assert.equal(0, status, err)
    assert.equal("1024\ntrue\n", out)
    assert.is_nil(err:find("Invalid write", 1, true), err)
  end)

  -- regression: recvmany on a TCP socket called recvmmsg with MSG_TRUNC,
  -- which makes TCP discard the bytes and only count them; the entry was
  -- then cut from the shared batch buffer: "SECRET-F", received by a
  -- unix datagram socket's recvmany, came back from the TCP socket and
  -- its own "hello wo" was lost. Batches are for datagrams and records.
  it("recvmany and sendmany raise on a stream socket, and lose nothing", function()
    local a, b = core.socketpair("dgram")
    assert.equal(1, a:sendmany({"SECRET-F"}))
    assert.same({{"SECRET-F", ""}}, b:recvmany(1, 8))
    local l = assert(core.socket("inet", "stream"))
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    local c = assert(core.socket("inet", "stream"))
    c:settimeout(5)
    assert(c:connect(l:getsockname()))
    local s = assert(l:accept())
    s:settimeout(5)
    assert.equal(11, c:send("hello world"))
    assert.equal("bad argument #1 to 'recvmany' (datagram socket expected, got stream)",
                 H.raises(s.recvmany, s, 1, 8))
    assert.equal("bad argument #1 to 'sendmany' (datagram socket expected, got stream)",
                 H.raises(c.sendmany, c, {"x"}))
    assert.equal("hello world", s:recv())
    -- unix streams too; records (seqpacket) are batches as datagrams are
    local x, y = core.socketpair("stream")
    assert.equal("bad argument #1 to 'recvmany' (datagram socket expected, got stream)",
                 H.raises(x.recvmany, x, 1))
    local p, q = core.socketpair("seqpacket")
    assert.equal(2, p:sendmany({"r1", "r2"}))
    q:settimeout(5)
    assert.same({{"r1", ""}, {"r2", ""}}, q:recvmany(4))
    for _, o in ipairs{a, b, l, c, s, x, y, p, q} do o:close() end
  end)

  -- regression: a bad address in a table item was checked at its stack
  -- slot, so u:sendmany({{"a", "127.0.0.1", 70000}}) said "bad argument
  -- #5"; misuse in the list is argument #1, with the item in the text
  it("misuse in an item names the list (#1) and the item", function()
    local u = udp4()
    local raises = H.raises   -- (a method call inside: numbered as the user sees it)
    assert.equal("bad argument #1 to 'sendmany' (item 1: port out of range at [3])",
                 raises(function() u:sendmany({{"a", "127.0.0.1", 70000}}) end))
    assert.equal("bad argument #1 to 'sendmany' (item 2: port out of range at [3])",
                 raises(function() u:sendmany({"x", {"a", "127.0.0.1", -1}}, "127.0.0.1", 9) end))
    assert.equal("bad argument #1 to 'sendmany' (item 1: port (an integer) expected at [3], got nil)",
                 raises(function() u:sendmany({{"a", "127.0.0.1"}}) end))
    assert.equal("bad argument #1 to 'sendmany' (item 1: port at [3] has no integer representation)",
                 raises(function() u:sendmany({{"a", "127.0.0.1", 1.5}}) end))
    assert.equal("bad argument #1 to 'sendmany' (item 1: host (a string) expected at [2], got boolean)",
                 raises(function() u:sendmany({{"a", true, 1}}) end))
    assert.equal("bad argument #1 to 'sendmany' (item 1: string expected at [1], got table)",
                 raises(function() u:sendmany({{{}}}) end))
    -- the common address is arguments #2 and #3
    assert.equal("bad argument #3 to 'sendmany' (port out of range)",
                 raises(function() u:sendmany({"a"}, "127.0.0.1", 70000) end))
    local x = assert(core.socket("unix", "dgram"))
    assert.equal("bad argument #1 to 'sendmany' (item 1: path (a string) expected at [2], got boolean)",
                 raises(function() x:sendmany({{"a", false}}) end))
    assert.equal("bad argument #1 to 'sendmany' (item 1: unix path contains a zero byte)",
                 raises(function() x:sendmany({{"a", "/tmp/a\0b"}}) end))
    u:close(); x:close()
  end)

  -- regression: recvmany's entry for a datagram too long ({false, host,
  -- port, code = "EMSGSIZE", ...}) made sendmany raise "item 2: data (a
  -- string) expected at [1]", so the echo s:sendmany(s:recvmany(n)) died
  -- on the first such datagram
  it("sendmany skips recvmany's error entries and counts them as done", function()
    local r, a, aport, list, rport = one_too_long()
    local bad = list[2]
    assert.is_false(bad[1])
    assert.equal(3, r:sendmany(list))            -- echoed, each to its sender
    assert.same({{"ok", "127.0.0.1", rport}, {"fine", "127.0.0.1", rport}}, a:recvmany(8))
    assert.equal(2, r:sendmany({bad, bad}))      -- nothing to send: all done
    -- among runs of one length (UDP_SEGMENT) the bounds stay
    assert.equal(5, r:sendmany({"aaaa", bad, "bbbb", "cc", bad}, "127.0.0.1", aport))
    assert.same({{"aaaa", "127.0.0.1", rport}, {"bbbb", "127.0.0.1", rport},
                 {"cc", "127.0.0.1", rport}}, a:recvmany(8))
    -- skipped entries before an item that fails are done; the next call,
    -- which starts at that item, says why
    assert.equal(2, r:sendmany({bad, bad, {"x", "127.0.0.1", 0}, "y"}))
    local msg, code = H.fails(r:sendmany({{"x", "127.0.0.1", 0}, "y"}))
    assert.equal("EINVAL", code)
    assert.equal("sendmany: Invalid argument", msg)
    -- a partial send: the count is of the first items done, and the item
    -- after them is one that was not sent
    local dir = H.tmpdir()
    local u = assert(core.socket("unix", "dgram"))
    assert(u:bind(dir .. "/u"))
    local items = {}
    for i = 1, 1024 do items[i] = i % 2 == 1 and bad or {"p" .. i, dir .. "/u"} end
    local x = assert(core.socket("unix", "dgram"))
    x:settimeout(0)
    local n = x:sendmany(items)
    assert.is_true(n >= 1 and n < 1024)
    assert.is_string(items[n + 1][1])
    u:settimeout(0)
    local got = 0
    while true do
      local more = u:recvmany(1024)
      if not more then break end
      for _, e in ipairs(more) do got = got + 1; assert.equal("p" .. 2 * got, e[1]) end
    end
    assert.equal(n // 2, got)
    for _, o in ipairs{r, a, u, x} do o:close() end
    H.rmdir(dir)
  end)
end)


--[[
UDP segmentation offload: sendmany sends a run of items to one
destination, all of one length but a shorter last, as one message with
UDP_SEGMENT. The receiver must still get each item as its own datagram,
in order, whatever the mix of lengths and destinations.
]]
describe("sendmany's runs (UDP_SEGMENT)", function()
  local fds_before
  before_each(function() fds_before = B.count_fds() end)
  after_each(function()
    assert.equal(fds_before, B.count_fds(), "descriptors leaked")
  end)

  -- a mix that starts, ends and breaks runs in every way: equal lengths
  -- (runs longer than the kernel's 64 segments), a shorter item (ends a
  -- run), a longer one (starts a new run), empty items (no run at all),
  -- and a change of destination
  local function mix(dest1, dest2)
    local items, want1, want2 = {}, {}, {}
    local function add(data, to2)
      if to2 then
        items[#items + 1] = {data, dest2[1], dest2[2]}
        want2[#want2 + 1] = data
      else
        items[#items + 1] = {data, dest1[1], dest1[2]}
        want1[#want1 + 1] = data
      end
    end
    for i = 1, 150 do add(("%04d"):format(i) .. ("a"):rep(60)) end
    add("short")
    add(("b"):rep(100)); add(("c"):rep(100)); add(("d"):rep(7))
    add(""); add(""); add(("e"):rep(10)); add(("f"):rep(10))
    for i = 1, 5 do add(("%02d"):format(i) .. ("g"):rep(30), i % 2 == 0) end
    add(("h"):rep(30), true); add(("i"):rep(30), true); add("j")
    for i = 1, 70 do add(("k"):rep(900) .. ("%03d"):format(i)) end
    return items, want1, want2
  end

  local function receive_all(r, n)
    local got = {}
    for _ = 1, n do
      if #got >= n then break end
      for _, it in ipairs(assert(r:recvmany(64))) do got[#got + 1] = it[1] end
    end
    return got
  end

  local FAMILIES = {
    {name = "IPv4", family = "inet", host = "127.0.0.1"},
    {name = "IPv6", family = "inet6", host = "::1",
     skip = not v6 and ("no IPv6: " .. tostring(v6why))},
  }
  for _, f in ipairs(FAMILIES) do
    it("keeps every datagram's bounds and order over " .. f.name, function()
      if f.skip then pending(f.skip) return end
      local function bound()
        local s = assert(core.socket(f.family, "dgram"))
        assert(s:bind(f.host, 0))
        assert(s:setoption("rcvbuf", 1 << 20))
        s:settimeout(5)
        local _, port = s:getsockname()
        return s, port
      end
      local r1, p1 = bound()
      local r2, p2 = bound()
      local s = bound()
      local items, want1, want2 = mix({f.host, p1}, {f.host, p2})
      local sent = 0
      while sent < #items do
        local part = table.move(items, sent + 1, #items, 1, {})
        sent = sent + assert(s:sendmany(part))
      end
      assert.same(want1, receive_all(r1, #want1))
      assert.same(want2, receive_all(r2, #want2))
      -- and nothing more arrived
      r1:settimeout(0); r2:settimeout(0)
      assert.equal("EAGAIN", select(3, r1:recvmany(1)))
      assert.equal("EAGAIN", select(3, r2:recvmany(1)))
      -- strings to a connected peer make runs too
      assert(s:connect(f.host, p1))
      local list = {}
      for i = 1, 100 do list[i] = ("%03d"):format(i) .. ("z"):rep(i == 100 and 1 or 40) end
      assert.equal(100, s:sendmany(list))
      r1:settimeout(5)
      assert.same(list, receive_all(r1, 100))
      r1:close(); r2:close(); s:close()
    end)
  end

  -- where the kernel refuses a run (here: segments longer than the
  -- loopback MTU of a namespace made for the test: EMSGSIZE), sendmany
  -- sends the items one by one, which IP fragments and delivers
  it("falls back to one datagram per message where the kernel refuses a run", function()
    if not H.is_root() then pending("not root: cannot create a network namespace") return end
    if not H.have("ip") then pending("the ip command (iproute2) is missing") return end
    local ns = "sockit-gso-" .. H.pid()
    local why, code = H.sh("ip netns add " .. ns .. " 2>&1")
    if code ~= 0 then pending("ip netns add failed: " .. why) return end
    local out, status, err
    local done, raised = pcall(function()
      assert.equal(0, select(2, H.sh("ip -n " .. ns .. " link set lo mtu 1280 up")))
      out, status, err = H.run_lua([[
        local core = require "sockit.core"
        local r = assert(core.socket("inet", "dgram"))
        assert(r:bind("127.0.0.1", 0))
        r:settimeout(5)
        local _, port = r:getsockname()
        local s = assert(core.socket("inet", "dgram"))
        local list = {}
        for i = 1, 6 do list[i] = ("%02d"):format(i) .. ("x"):rep(1398) end
        local n1 = assert(s:sendmany(list, "127.0.0.1", port))
        local n2 = assert(s:sendmany({"a", "b"}, "127.0.0.1", port))
        local got = {}
        while #got < 8 do
          for _, it in ipairs(assert(r:recvmany(8))) do got[#got + 1] = it[1] end
        end
        for i = 1, 6 do assert(got[i] == list[i], "datagram " .. i) end
        assert(got[7] == "a" and got[8] == "b")
        print(n1, n2, #got)
      ]], {prefix = "ip netns exec " .. ns, timeout = 30})
    end)
    H.sh("ip netns del " .. ns)
    assert(done, raised)
    assert.equal(0, status, err)
    assert.equal("6\t2\t8", (out:gsub("%s+$", "")))
  end)
end)


describe("sockit endpoints: sendmany/recvmany", function()
  local objs = {}
  local function keep(o) objs[#objs + 1] = o; return o end
  local dir, fds_before
  setup(B.warm_loop)
  before_each(function()
    dir = H.tmpdir()
    fds_before = B.count_fds()
  end)
  after_each(function()
    for _, o in ipairs(objs) do o:close() end
    objs = {}
    H.rmdir(dir)
    assert.equal(fds_before, B.count_fds(), "descriptors leaked")
  end)

  local KINDS = {
    {name = "udp4", network = "udp4", address = function() return "127.0.0.1:0" end},
    {name = "udp6", network = "udp6", address = function() return "[::1]:0" end,
     skip = not v6 and ("no IPv6: " .. tostring(v6why))},
    {name = "unixgram", network = "unixgram",
     address = function(tag) return dir .. "/" .. tag end},
  }

  for _, k in ipairs(KINDS) do
    it("batches on " .. k.name .. " with address strings", function()
      if k.skip then pending(k.skip) return end
      local r = keep(assert(sockit.bind(k.network, k.address("r"))))
      local r2 = keep(assert(sockit.bind(k.network, k.address("r2"))))
      local s = keep(assert(sockit.bind(k.network, k.address("s"))))
      r:settimeout(5); r2:settimeout(5)
      assert.equal(4, s:sendmany({"one", 2, {"three", r2:addr()}, {"four"}}, r:addr()))
      assert.same({{"one", s:addr()}, {"2", s:addr()}, {"four", s:addr()}}, r:recvmany(10))
      assert.same({{"three", s:addr()}}, r2:recvmany(10))
      -- per-datagram destinations only, no common address
      assert.equal(3, s:sendmany({{"a", r:addr()}, {"b", r2:addr()}, {"c", r:addr()}}))
      assert.same({{"a", s:addr()}, {"c", s:addr()}}, r:recvmany(10))
      assert.same({{"b", s:addr()}}, r2:recvmany(10))
      -- an oversized one is marked, the others come
      assert.equal(2, s:sendmany({"0123456789", "tiny"}, r:addr()))
      assert.same({{false, s:addr(), code = "EMSGSIZE",
                    message = "recvmany: datagram of 10 bytes is longer than max 5"},
                   {"tiny", s:addr()}}, r:recvmany(10, 5))
    end)
  end

  it("':port' is this machine, as for sendto; a connected endpoint sends to its peer", function()
    local r = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    r:settimeout(5)
    local port = r:addr():match(":(%d+)$")
    local s = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    assert.equal(1, s:sendmany({"local"}, ":" .. port))
    assert.same({{"local", s:addr()}}, r:recvmany(4))
    local c = keep(assert(sockit.connect("udp4", r:addr(), {timeout = 5})))
    assert.equal(2, c:sendmany({"p", "q"}))
    assert.same({{"p", c:addr()}, {"q", c:addr()}}, r:recvmany(4))
  end)

  it("sends more than 1024 and waits for room: 3000 through a unixgram queue", function()
    -- a unix datagram queue holds few datagrams (net.unix.max_dgram_qlen),
    -- so the sender waits again and again, and goes on where it stopped
    local r = keep(assert(sockit.bind("unixgram", dir .. "/r")))
    local s = keep(assert(sockit.bind("unixgram", dir .. "/s")))
    r:settimeout(10); s:settimeout(10)
    local list = {}
    for i = 1, 3000 do list[i] = i % 7 == 0 and {"n" .. i, r:addr()} or "n" .. i end
    local got, calls, sent = {}, 0, nil
    sockit.spawn(function()
      while #got < 3000 do
        local batch = assert(r:recvmany(64))
        calls = calls + 1
        for _, e in ipairs(batch) do got[#got + 1] = e[1] end
      end
    end)
    sockit.spawn(function() sent = assert(s:sendmany(list, r:addr())) end)
    sockit.run()
    assert.equal(3000, sent)
    assert.equal(3000, #got)
    for i = 1, 3000 do
      if got[i] ~= "n" .. i then error("datagram " .. i .. " is " .. tostring(got[i])) end
    end
    assert.is_true(calls < 3000, "recvmany took one at a time")
  end)

  it("reports failures with the item's own address and the count sent", function()
    local s = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    local r = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    r:settimeout(5)
    local ok, msg, code, sent = s:sendmany({"a", {"b", "127.0.0.1:0"}, "c"}, r:addr())
    H.fails(ok, msg, code)
    assert.equal("EINVAL", code)
    assert.equal("sendmany 127.0.0.1:0: Invalid argument", msg)
    assert.equal(1, sent)
    assert.same({{"a", s:addr()}}, r:recvmany(4))
    local u = keep(assert(sockit.bind("unixgram", dir .. "/u")))
    ok, msg, code, sent = u:sendmany({"x"}, dir .. "/nobody")
    H.fails(ok, msg, code)
    assert.equal("ENOENT", code)
    assert.equal("sendmany " .. dir .. "/nobody: No such file or directory", msg)
    assert.equal(0, sent)
    r:settimeout(0.1)
    msg, code = H.fails(r:recvmany(4))
    assert.equal("ETIMEDOUT", code)
    assert.equal("recvmany: timed out", msg)
  end)

  -- regression: an item to "" (an unnamed unix peer: what a datagram
  -- server's handler gets for one, and may answer) failed with
  -- "sendmany : Invalid argument", a blank where no address is; sendto
  -- says "sendto: Invalid argument"
  it("names no address for an item to an unnamed unix peer ('')", function()
    local u = keep(assert(sockit.bind("unixgram", dir .. "/n")))
    local ok, msg, code, sent = u:sendmany({{"x", ""}})
    H.fails(ok, msg, code)
    assert.equal("EINVAL", code)
    assert.equal("sendmany: Invalid argument", msg)
    assert.equal(0, sent)
    assert.equal("sendto: Invalid argument", select(2, u:sendto("x", "")))
  end)

  -- regression: the echo of docs/API.md raised "item 2: string expected
  -- at [1], got boolean" once a datagram in the batch was too long
  it("echoes with sendmany(recvmany(n)): an entry for a datagram too long is skipped", function()
    local a = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    local b = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    a:settimeout(5); b:settimeout(5)
    assert.equal(3, a:sendmany({"ok", "0123456789", "fine"}, b:addr()))
    local list = b:recvmany(8, 4)
    assert.same({false, a:addr(), code = "EMSGSIZE",
                 message = "recvmany: datagram of 10 bytes is longer than max 4"}, list[2])
    assert.equal(3, b:sendmany(list))
    assert.same({{"ok", b:addr()}, {"fine", b:addr()}}, a:recvmany(8))
    -- a failure after skipped entries: 'sent' counts them
    local ok, msg, code, sent = b:sendmany({list[2], {"x", "127.0.0.1:0"}, "y"})
    H.fails(ok, msg, code)
    assert.equal("EINVAL", code)
    assert.equal("sendmany 127.0.0.1:0: Invalid argument", msg)
    assert.equal(1, sent)
  end)

  it("raises on misuse; a closed endpoint; unixpacket has no batches", function()
    local s = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    assert.equal("bad argument #1 to 'sendmany' (table expected, got string)",
                 H.raises(s.sendmany, s, "x", "127.0.0.1:1"))
    assert.equal("bad argument #1 to 'sendmany' (item 2: string or table expected, got boolean)",
                 H.raises(s.sendmany, s, {"a", false}, "127.0.0.1:1"))
    assert.equal("bad argument #1 to 'sendmany' (item 1: string expected at [1], got nil)",
                 H.raises(s.sendmany, s, {{nil, "127.0.0.1:1"}}))
    assert.equal("bad argument #1 to 'sendmany' (missing port in address 'nowhere')",
                 H.raises(s.sendmany, s, {{"a", "nowhere"}}))
    assert.equal("bad argument #2 to 'sendmany' (missing port in address 'x')",
                 H.raises(s.sendmany, s, {"a"}, "x"))
    assert.equal("bad argument #1 to 'recvmany' (n must be an integer from 1 to 1024)",
                 H.raises(s.recvmany, s, 2000))
    assert.equal("bad argument #2 to 'recvmany' (max must be a positive integer)",
                 H.raises(s.recvmany, s, 2, -1))
    s:close()
    assert.equal("attempt to use a closed socket", H.raises(s.recvmany, s, 2))
    assert.equal("attempt to use a closed socket", H.raises(s.sendmany, s, {}))
    local l = keep(assert(sockit.listen("unixpacket", dir .. "/p")))
    local c = keep(assert(sockit.connect("unixpacket", l:addr())))
    assert.is_nil(c.sendmany); assert.is_nil(c.recvmany)
    assert.is_nil(c.sendfile)
  end)
end)


describe("sockit.serve on a datagram network (batches)", function()
  local fds_before
  setup(B.warm_loop)
  before_each(function() fds_before = B.count_fds() end)
  after_each(function()
    assert.equal(fds_before, B.count_fds(), "descriptors leaked")
  end)

  -- count the core calls of the whole process while fn runs
  local function counting(fn)
    local index = getmetatable(core.socket("inet", "dgram")).__index
    local counts, saved = {}, {}
    for _, name in ipairs{"recvmany", "sendmany", "recvfrom", "sendto"} do
      saved[name] = index[name]
      index[name] = function(...)
        counts[name] = (counts[name] or 0) + 1
        return saved[name](...)
      end
    end
    local ok, err = pcall(fn)
    for name, f in pairs(saved) do index[name] = f end
    collectgarbage()
    if not ok then error(err, 0) end
    return counts
  end

  it("answers 200 datagrams in order, in batches: few recvmany and sendmany calls", function()
    local server = assert(sockit.serve("udp4", "127.0.0.1:0", function(data, peer, ep)
      ep:sendto("re:" .. data, peer)
    end))
    local c = assert(sockit.bind("udp4", "127.0.0.1:0"))
    c.socket:setoption("rcvbuf", 1 << 20)
    c:settimeout(5)
    local got = {}
    local counts = counting(function()
      sockit.spawn(function()
        local list = {}
        for i = 1, 200 do list[i] = "d" .. i end
        assert.equal(200, c:sendmany(list, server:addr()))   -- all queued at once
        while #got < 200 do
          for _, e in ipairs(assert(c:recvmany(64))) do got[#got + 1] = e[1] end
        end
        server:close()
      end)
      sockit.run()
    end)
    for i = 1, 200 do assert.equal("re:d" .. i, got[i]) end
    assert.is_nil(counts.sendto)                  -- no reply went alone
    assert.is_nil(counts.recvfrom)
    assert.is_true(counts.sendmany <= 10, "sendmany calls: " .. counts.sendmany)
    c:close()
  end)

  it("sends replies queued before a handler sleeps; later ones keep their order", function()
    local t0
    local server = assert(sockit.serve("udp4", "127.0.0.1:0", function(data, peer, ep)
      ep:sendto("1:" .. data, peer)
      if data == "slow" then sockit.sleep(0.3) end
      ep:sendto("2:" .. data, peer)
    end))
    local c = assert(sockit.bind("udp4", "127.0.0.1:0"))
    c:settimeout(5)
    local got = {}
    sockit.spawn(function()
      t0 = sockit.now()
      assert(c:sendmany({"a", "slow", "b"}, server:addr()))
      while #got < 6 do
        for _, e in ipairs(assert(c:recvmany(8))) do
          got[#got + 1] = {e[1], sockit.now() - t0}
        end
      end
      server:close()
    end)
    sockit.run()
    local order = {}
    for i, g in ipairs(got) do order[i] = g[1] end
    assert.same({"1:a", "2:a", "1:slow", "2:slow", "1:b", "2:b"}, order)
    -- "1:slow" left before the handler slept, "2:slow" after the 0.3 s
    assert.is_true(got[4][2] - got[3][2] >= 0.2,
                   ("1:slow was held back: %.3f s, then 2:slow %.3f s"):format(got[3][2], got[4][2]))
    assert.is_true(got[4][2] >= 0.25, "2:slow came before the sleep ended")
    c:close()
  end)

  it("reports a reply that fails (on_error) and sends the others", function()
    local errors = {}
    local raise_line = debug.getinfo(1, "l").currentline + 2
    local server = assert(sockit.serve("udp4", "127.0.0.1:0", function(data, peer, ep)
      if data == "boom" then error("handler raised") end   -- raise_line
      ep:sendto("x", "127.0.0.1:0")               -- cannot be sent: EINVAL
      ep:sendto("re:" .. data, peer)
    end, {max_datagram = 8, on_error = function(err, peer)
      errors[#errors + 1] = tostring(err):match("^[^\n]*") .. " @ " .. peer
    end}))
    local c = assert(sockit.bind("udp4", "127.0.0.1:0"))
    c:settimeout(5)
    local got = {}
    sockit.spawn(function()
      assert(c:sendmany({"a", "boom", "much too long", "b"}, server:addr()))
      while #got < 2 do
        for _, e in ipairs(assert(c:recvmany(8))) do got[#got + 1] = e[1] end
      end
      sockit.sleep(0.05)
      server:close()
    end)
    sockit.run()
    assert.same({"re:a", "re:b"}, got)
    local peer = c:addr()
    -- (in the order they happen: the handler's and the receive's at once,
    -- the replies' when the batch is sent)
    table.sort(errors)
    assert.same({
      "recvmany: datagram of 13 bytes is longer than max 8 @ " .. peer,
      "sendmany 127.0.0.1:0: Invalid argument @ 127.0.0.1:0",
      "sendmany 127.0.0.1:0: Invalid argument @ 127.0.0.1:0",
      "spec/beyond_batch_spec.lua:" .. raise_line .. ": handler raised @ " .. peer,
    }, errors)
    c:close()
  end)

  it("a sendto from another task, after the batch, goes out at once", function()
    local server
    server = assert(sockit.serve("udp4", "127.0.0.1:0", function(data, peer, ep)
      assert.equal(server.endpoint.socket, ep.socket)
      assert.matches("^sockit%.endpoint{inet dgram", tostring(ep))
      assert.equal(server:addr(), ep:addr())     -- the endpoint's own methods
      sockit.spawn(function()
        sockit.sleep(0.05)
        assert.equal(#data + 5, ep:sendto("late:" .. data, peer))
      end)
    end))
    local c = assert(sockit.bind("udp4", "127.0.0.1:0"))
    c:settimeout(5)
    local got
    sockit.spawn(function()
      assert(c:sendto("q", server:addr()))
      got = assert(c:recvfrom())
      server:close()
    end)
    sockit.run()
    assert.equal("late:q", got)
    c:close()
  end)

  it("a handler that closes the server still gets its reply out", function()
    local server
    server = assert(sockit.serve("unixgram", "@sockit-batch-" .. H.pid(), function(data, peer, ep)
      ep:sendto("bye " .. data, peer)
      server:close()
    end))
    local c = assert(sockit.connect("unixgram", server:addr(), {timeout = 5}))
    local got
    sockit.spawn(function()
      assert(c:send("now"))
      got = assert(c:recv())
    end)
    sockit.run()
    assert.equal("bye now", got)
    c:close()
  end)
end)
