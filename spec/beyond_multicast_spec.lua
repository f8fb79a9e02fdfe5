-- spec/beyond_multicast_spec.lua — SPEC §4 multicast options, on the
-- loopback only: the sender names lo as its multicast interface, the
-- receivers join on lo. A socket that joined hears the group; one bound
-- to the same port that did not join hears nothing (the core turns
-- IP_MULTICAST_ALL off). Skipped, with the reason, only where the machine
-- cannot route multicast on lo.

local sockit = require "sockit"
local core = sockit.core
local H = require "support.helpers"
local B = require "support.beyond"

local pid = H.pid()
local GROUP4 = ("239.255.%d.%d"):format(pid // 250 % 250, pid % 250 + 1)
local GROUP6 = ("ff12::50c:%x"):format(pid % 65536)

-- a socket of family bound to the wildcard at port (0: any), reuseaddr
local function member(family, port)
  local s = assert(core.socket(family, "dgram"))
  assert(s:setoption("reuseaddr", true))
  assert(s:bind(family == "inet" and "0.0.0.0" or "::", port or 0))
  s:settimeout(2)
  local _, p = s:getsockname()
  return s, p
end

--[[
Can this machine deliver multicast of 'family' on lo? Tries it: a member
joins on lo, a sender sends there. Returns true, or false and why.
]]
local function loopback_multicast(family, group)
  local iface = family == "inet" and "127.0.0.1" or "lo"
  local r, port = member(family)
  local ok, msg = r:setoption("add_membership", {group, family == "inet" and iface or "lo"})
  if not ok then
    r:close()
    return false, "cannot join " .. group .. " on lo: " .. msg
  end
  local s = assert(core.socket(family, "dgram"))
  assert(s:setoption("multicast_if", iface))
  local n
  n, msg = s:sendto("probe", group, port)
  local why
  if not n then
    why = "no multicast route on lo (" .. msg .. ")"
  else
    r:settimeout(0.5)
    local data
    data, msg = r:recvfrom()
    if data ~= "probe" then why = "lo does not deliver multicast (" .. tostring(msg) .. ")" end
  end
  r:close(); s:close()
  if why then return false, why end
  return true
end


describe("multicast on the loopback", function()
  local fds_before
  setup(B.warm_loop)
  before_each(function() fds_before = B.count_fds() end)
  after_each(function()
    assert.equal(fds_before, B.count_fds(), "descriptors leaked")
  end)

  it("IPv4: options read back what was set", function()
    local s = assert(core.socket("inet", "dgram"))
    assert.is_true(s:getoption("multicast_loop"))       -- the kernel's default
    assert.equal(1, s:getoption("multicast_ttl"))
    assert.equal("0.0.0.0", s:getoption("multicast_if"))
    assert.is_true(s:setoption("multicast_loop", false))
    assert.is_false(s:getoption("multicast_loop"))
    assert.is_true(s:setoption("multicast_ttl", 4))
    assert.equal(4, s:getoption("multicast_ttl"))
    assert.is_true(s:setoption("multicast_if", "127.0.0.1"))
    assert.equal("127.0.0.1", s:getoption("multicast_if"))
    assert.is_true(s:setoption("multicast_if", "lo"))   -- a name works too
    -- but the kernel reports only an address (IP_MULTICAST_IF gives
    -- mc_addr, never mc_index): set by name or index, it reads back as
    -- none, as docs/API.md says
    assert.equal("0.0.0.0", s:getoption("multicast_if"))
    assert.is_true(s:setoption("multicast_if", 1))
    assert.equal("0.0.0.0", s:getoption("multicast_if"))
    assert.matches("is not an IPv4 group address",
                   H.raises(s.setoption, s, "add_membership", "nonsense"))
    assert.matches("option 'add_membership' is write%-only",
                   H.raises(s.getoption, s, "add_membership"))
    local msg, code = H.fails(s:setoption("multicast_if", "nosuchif0"))
    assert.equal("ENODEV", code)
    assert.equal("setoption multicast_if: No such device", msg)
    s:close()
  end)

  -- regression: a membership table's fields were checked at their stack
  -- slots: {} said "bad argument #-3", {"239.1.1.1", true} "#4"; the
  -- value is setoption's argument #2, with the field in the text
  it("misuse in a membership table or interface names the value (#2)", function()
    local s = assert(core.socket("inet", "dgram"))
    local raises = H.raises   -- (a method call inside: numbered as the user sees it)
    assert.equal("bad argument #2 to 'setoption' (group (a string) expected at [1], got nil)",
                 raises(function() s:setoption("add_membership", {}) end))
    assert.equal("bad argument #2 to 'setoption' (interface (a name, index or address) "
                 .. "expected at [2], got boolean)",
                 raises(function() s:setoption("add_membership", {"239.1.1.1", true}) end))
    assert.equal("bad argument #2 to 'setoption' (invalid interface index at [2])",
                 raises(function() s:setoption("drop_membership", {"239.1.1.1", -1}) end))
    assert.equal("bad argument #2 to 'setoption' (group or {group, interface} expected, got boolean)",
                 raises(function() s:setoption("add_membership", true) end))
    assert.equal("bad argument #2 to 'setoption' (interface (a name, index or address) "
                 .. "expected, got boolean)",
                 raises(function() s:setoption("multicast_if", true) end))
    assert.equal("bad argument #2 to 'setoption' (invalid interface index)",
                 raises(function() s:setoption("multicast_if", 1.5) end))
    -- an object is named by its type's name, as Lua's own errors do
    assert.equal("bad argument #2 to 'setoption' (interface (a name, index or address) "
                 .. "expected, got sockit.socket)",
                 raises(function() s:setoption("multicast_if", s) end))
    assert.equal("bad argument #2 to 'setoption' (interface (a name, index or address) "
                 .. "expected at [2], got FILE*)",
                 raises(function() s:setoption("add_membership", {"239.1.1.1", io.stdout}) end))
    s:close()
  end)

  -- regression: multicast_ttl 256 returned nil, "EINVAL" (the kernel's
  -- answer) while -1 raised; every value outside 0..255 is misuse
  it("multicast_ttl outside 0..255 raises, for a TTL and a hop limit alike", function()
    local families = {"inet"}
    if H.have_ipv6() then families[2] = "inet6" end
    for _, family in ipairs(families) do
      local s = assert(core.socket(family, "dgram"))
      for _, bad in ipairs{256, -1, 1000, math.mininteger} do
        assert.equal("bad argument #2 to 'setoption' (multicast_ttl must be 0..255)",
                     H.raises(function() s:setoption("multicast_ttl", bad) end))
      end
      assert.equal(1, s:getoption("multicast_ttl"))          -- untouched
      assert.is_true(s:setoption("multicast_ttl", 255))
      assert.equal(255, s:getoption("multicast_ttl"))
      assert.is_true(s:setoption("multicast_ttl", 0))
      assert.equal(0, s:getoption("multicast_ttl"))
      s:close()
    end
  end)

  it("IPv4: a joined socket hears the group, a non-joined one on the same port does not", function()
    local ok, why = loopback_multicast("inet", GROUP4)
    if not ok then pending(why) return end
    local joined, port = member("inet")
    local other = member("inet", port)
    assert.is_true(joined:setoption("add_membership", {GROUP4, "127.0.0.1"}))
    local s = assert(core.socket("inet", "dgram"))
    assert(s:bind("127.0.0.1", 0))
    local _, sport = s:getsockname()
    assert(s:setoption("multicast_if", "127.0.0.1"))
    assert(s:setoption("multicast_loop", true))
    assert.equal(5, s:sendto("hello", GROUP4, port))
    assert.same({"hello", "127.0.0.1", sport}, {joined:recvfrom()})
    other:settimeout(0.3)
    local msg, code = H.fails(other:recvfrom())
    assert.equal("ETIMEDOUT", code)
    assert.equal("recvfrom: timed out", msg)
    -- after drop_membership the group is not heard any more
    assert.is_true(joined:setoption("drop_membership", {GROUP4, "127.0.0.1"}))
    assert.equal(5, s:sendto("again", GROUP4, port))
    joined:settimeout(0.3)
    assert.equal("ETIMEDOUT", select(3, joined:recvfrom()))
    msg, code = H.fails(joined:setoption("drop_membership", {GROUP4, "127.0.0.1"}))
    assert.equal("EADDRNOTAVAIL", code)
    assert.equal("setoption drop_membership " .. GROUP4 .. ": Cannot assign requested address", msg)
    joined:close(); other:close(); s:close()
  end)

  it("IPv4 through the Lua layer: endpoints, one sendto, two members hear it", function()
    local ok, why = loopback_multicast("inet", GROUP4)
    if not ok then pending(why) return end
    local a = assert(sockit.bind("udp4", "0.0.0.0:0", {reuseaddr = true}))
    local port = a:addr():match(":(%d+)$")
    local b = assert(sockit.bind("udp4", "0.0.0.0:" .. port, {reuseaddr = true}))
    local deaf = assert(sockit.bind("udp4", "0.0.0.0:" .. port, {reuseaddr = true}))
    for _, ep in ipairs{a, b} do
      assert(ep.socket:setoption("add_membership", {GROUP4, "127.0.0.1"}))
    end
    local s = assert(sockit.bind("udp4", "127.0.0.1:0"))
    assert(s.socket:setoption("multicast_if", "127.0.0.1"))
    local heard = {}
    sockit.spawn(function()
      assert(s:sendmany({"one", "two"}, GROUP4 .. ":" .. port))
    end)
    for name, ep in pairs{a = a, b = b, deaf = deaf} do
      ep:settimeout(name == "deaf" and 0.3 or 2)
      sockit.spawn(function()
        local list, msg, code = ep:recvmany(8)
        if list and #list < 2 then               -- (the second may come later)
          local more = ep:recvmany(8)
          if more then list[2] = more[1] end
        end
        heard[name] = list and {list[1][1], list[2] and list[2][1], list[1][2]} or code
        assert(list or code == "ETIMEDOUT", msg)
      end)
    end
    sockit.run()
    assert.same({"one", "two", s:addr()}, heard.a)
    assert.same({"one", "two", s:addr()}, heard.b)
    assert.equal("ETIMEDOUT", heard.deaf)
    for _, ep in ipairs{a, b, deaf, s} do ep:close() end
  end)

  -- regression: a dual-stack endpoint (inet6, v6only off) could not join
  -- an IPv4 group: "'239.255.42.98' is not an IPv6 group address", though
  -- Linux lets an inet6 socket join at IPPROTO_IP and delivers the
  -- group's IPv4 datagrams to it
  it("dual stack: a udp endpoint on ':0' joins an IPv4 group and hears it", function()
    local v6, v6why = H.have_ipv6()
    if not v6 then pending("no IPv6 (no dual-stack socket): " .. tostring(v6why)) return end
    local ok, why = loopback_multicast("inet", GROUP4)
    if not ok then pending(why) return end
    local ep = assert(sockit.bind("udp", ":0", {reuseaddr = true}))
    assert.equal("inet6", ep.socket:family())
    assert.is_false(ep.socket:getoption("v6only"))
    local port = ep:addr():match(":(%d+)$")
    local deaf = assert(sockit.bind("udp", ":" .. port, {reuseaddr = true}))
    assert.is_true(ep.socket:setoption("add_membership", {GROUP4, "127.0.0.1"}))
    -- an inet sender on lo
    local s = assert(core.socket("inet", "dgram"))
    assert(s:bind("127.0.0.1", 0))
    local _, sport = s:getsockname()
    assert(s:setoption("multicast_if", "127.0.0.1"))
    assert.equal(5, s:sendto("hello", GROUP4, tonumber(port)))
    ep:settimeout(2)
    assert.same({"hello", "127.0.0.1:" .. sport}, {ep:recvfrom()})
    deaf:settimeout(0.3)                -- only the member hears it
    assert.equal("ETIMEDOUT", select(3, deaf:recvfrom()))
    -- an inet6 sender: its multicast options apply to its IPv4 sends too
    -- (without multicast_if on lo the datagram would leave by the default
    -- route, and a member on lo would not hear it); an IPv4 address as
    -- the interface sets the IPv4 one only
    for _, iface in ipairs{"lo", 1, "127.0.0.1"} do
      local s6 = assert(core.socket("inet6", "dgram"))
      assert.is_true(s6:setoption("multicast_if", iface))
      assert.is_true(s6:setoption("multicast_ttl", 1))
      assert.is_true(s6:setoption("multicast_loop", true))
      assert.equal(2, s6:sendto("v6", "::ffff:" .. GROUP4, tonumber(port)))
      ep:settimeout(2)
      assert.equal("v6", (ep:recvfrom()))
      s6:close()
    end
    -- a v4-mapped group is the IPv4 group; the interface may be its name
    assert.is_true(ep.socket:setoption("drop_membership", {"::ffff:" .. GROUP4, "lo"}))
    local msg, code = H.fails(ep.socket:setoption("drop_membership", {GROUP4, "127.0.0.1"}))
    assert.equal("EADDRNOTAVAIL", code)
    assert.equal("setoption drop_membership " .. GROUP4 .. ": Cannot assign requested address", msg)
    assert.equal("bad argument #2 to 'setoption' ('nonsense' is not an IPv4 or IPv6 group address)",
                 H.raises(function() ep.socket:setoption("add_membership", "nonsense") end))
    for _, x in ipairs{ep, deaf, s} do x:close() end
  end)

  it("IPv6: options, and delivery on lo where it has a multicast route", function()
    local v6, v6why = H.have_ipv6()
    if not v6 then pending("no IPv6: " .. tostring(v6why)) return end
    local s = assert(core.socket("inet6", "dgram"))
    assert.is_true(s:setoption("multicast_loop", false))
    assert.is_false(s:getoption("multicast_loop"))
    assert.is_true(s:setoption("multicast_ttl", 3))      -- hops
    assert.equal(3, s:getoption("multicast_ttl"))
    assert.equal(0, s:getoption("multicast_if"))
    assert.is_true(s:setoption("multicast_if", "lo"))
    assert.equal("lo", s:getoption("multicast_if"))
    assert.is_true(s:setoption("multicast_if", 1))       -- an index works too
    assert.matches("'ff12::zz' is not an IPv4 or IPv6 group address",
                   H.raises(s.setoption, s, "add_membership", "ff12::zz"))
    s:close()
    local ok, why = loopback_multicast("inet6", GROUP6)
    if not ok then pending("IPv6 multicast on lo: " .. why) return end
    local joined, port = member("inet6")
    local other = member("inet6", port)
    assert(joined:setoption("add_membership", {GROUP6, "lo"}))
    s = assert(core.socket("inet6", "dgram"))
    assert(s:setoption("multicast_if", "lo"))
    assert.equal(2, s:sendto("v6", GROUP6, port))
    assert.equal("v6", (joined:recvfrom()))
    other:settimeout(0.3)
    assert.equal("ETIMEDOUT", select(3, other:recvfrom()))
    joined:close(); other:close(); s:close()
  end)
end)
