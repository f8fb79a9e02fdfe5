-- spec/core_options_spec.lua — setoption/getoption: every option of
-- core-notes set and read back where it applies, what they do on real
-- sockets, and the kernel's answer where an option does not apply.

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

local function v6_or_skip()
  local ok, why = H.have_ipv6()
  if not ok then pending(why) end
end

-- nil, msg, code where msg names the call and the option and ends with
-- the strerror of code
local function assert_kernel_refuses(codes, op, name, ok, msg, code)
  assert.is_nil(ok)
  local found = false
  for _, c in ipairs(codes) do found = found or c == code end
  assert.is_true(found, "code " .. tostring(code))
  assert.matches("^" .. op .. " .*" .. name .. ".*: " .. N.strerror[code] .. "$", msg)
end

describe("core options", function()
  local open = {}
  local function keep(s) open[#open + 1] = s; return s end
  after_each(function()
    for _, s in ipairs(open) do s:close() end
    open = {}
  end)

  local booleans = {
    { "reuseaddr", "inet", "stream" },
    { "reuseport", "inet", "stream" },
    { "keepalive", "inet", "stream" },
    { "nodelay", "inet", "stream" },
    { "broadcast", "inet", "dgram" },
    { "reuseaddr", "inet", "dgram" },
    { "reuseport", "inet", "dgram" },
    { "v6only", "inet6", "stream" },
    { "v6only", "inet6", "dgram" },
    { "keepalive", "inet6", "stream" },
    { "nodelay", "inet6", "stream" },
    { "reuseaddr", "unix", "stream" },
  }
  for _, b in ipairs(booleans) do
    local name, family, type_ = b[1], b[2], b[3]
    it(name .. " on " .. family .. " " .. type_ .. " reads back true and false", function()
      if family == "inet6" then v6_or_skip() end
      local s = keep(assert(core.socket(family, type_)))
      assert.equal(true, s:setoption(name, true))
      assert.equal(true, s:getoption(name))
      assert.equal(true, s:setoption(name, false))
      assert.equal(false, s:getoption(name))
      assert.equal(true, s:setoption(name, true))
      assert.equal(true, s:getoption(name))
    end)
  end

  it("booleans start as the kernel's defaults", function()
    local s = keep(assert(core.socket("inet", "stream")))
    assert.equal(false, s:getoption("keepalive"))
    assert.equal(false, s:getoption("nodelay"))
    assert.equal(false, s:getoption("reuseport"))
    local d = keep(assert(core.socket("inet", "dgram")))
    assert.equal(false, d:getoption("broadcast"))
  end)

  for _, ft in ipairs({ { "inet", "stream" }, { "inet6", "stream" }, { "unix", "stream" } }) do
    it("linger on " .. ft[1] .. " " .. ft[2] .. ": off by default, seconds, 0, and false", function()
      if ft[1] == "inet6" then v6_or_skip() end
      local s = keep(assert(core.socket(ft[1], ft[2])))
      assert.equal(false, s:getoption("linger"))
      assert.equal(true, s:setoption("linger", 5))
      assert.equal(5, s:getoption("linger"))
      assert.equal("integer", math.type(s:getoption("linger")))
      assert.equal(true, s:setoption("linger", 0))
      assert.equal(0, s:getoption("linger"))
      assert.equal(true, s:setoption("linger", false))
      assert.equal(false, s:getoption("linger"))
    end)
  end

  for _, ft in ipairs({ { "inet", "stream" }, { "inet", "dgram" }, { "inet6", "stream" },
                        { "unix", "stream" }, { "unix", "dgram" }, { "unix", "seqpacket" } }) do
    it("rcvbuf and sndbuf on " .. ft[1] .. " " .. ft[2] .. " read back at least what was set", function()
      if ft[1] == "inet6" then v6_or_skip() end
      local s = keep(assert(core.socket(ft[1], ft[2])))
      local r0, s0 = s:getoption("rcvbuf"), s:getoption("sndbuf")
      assert.equal("integer", math.type(r0))
      assert.equal("integer", math.type(s0))
      assert.is_true(r0 > 0 and s0 > 0)
      for _, size in ipairs({ 65536, 100000 }) do
        assert.equal(true, s:setoption("rcvbuf", size))
        local r = s:getoption("rcvbuf")
        assert.is_true(r >= size, "rcvbuf " .. size .. " read back as " .. r)
        assert.is_true(r <= 2 * size + 4096, "rcvbuf " .. size .. " read back as " .. r)
        assert.equal(true, s:setoption("sndbuf", size))
        local w = s:getoption("sndbuf")
        assert.is_true(w >= size, "sndbuf " .. size .. " read back as " .. w)
        assert.is_true(w <= 2 * size + 4096, "sndbuf " .. size .. " read back as " .. w)
      end
    end)
  end

  describe("error", function()
    it("is false on a fresh socket", function()
      local s = keep(assert(core.socket("inet", "stream")))
      assert.equal(false, s:getoption("error"))
    end)

    for _, fam in ipairs(N.inet_families) do
      it("gives ECONNREFUSED after a failed non-blocking connect, once (" .. fam.name .. ")", function()
        if fam.skip then pending(fam.skip) end
        local port = N.closed_port(fam)
        local c = keep(assert(core.socket(fam.family, "stream")))
        c:settimeout(0)
        local ok, _, code = c:connect(fam.host, port)
        assert.is_nil(ok)
        -- EINPROGRESS on Linux loopback; the refusal comes back as SO_ERROR
        assert.equal("EINPROGRESS", code)
        assert.equal("w", c:wait("w", 5))
        assert.equal("ECONNREFUSED", c:getoption("error"))
        assert.equal(false, c:getoption("error"))   -- reading cleared it
      end)
    end
  end)

  describe("what options do", function()
    it("reuseaddr lets a listener rebind a port held in TIME_WAIT", function()
      -- Linux wants it on both: the old connection (inherited from its
      -- listener) and the new socket
      local l = keep(assert(core.socket("inet", "stream")))
      assert(l:setoption("reuseaddr", true))
      assert(l:bind("127.0.0.1", 0))
      assert(l:listen())
      l:settimeout(5)
      local _, port = l:getsockname()
      local c = keep(assert(core.socket("inet", "stream")))
      c:settimeout(5)
      assert(c:connect("127.0.0.1", port))
      local a = assert(l:accept())
      a:close()                       -- the server side closes first: TIME_WAIT
      assert.equal("EOF", select(3, c:recv()))
      c:close()
      l:close()
      local again = keep(assert(core.socket("inet", "stream")))
      local ok, msg, code = again:bind("127.0.0.1", port)
      assert.is_nil(ok)
      assert.equal("EADDRINUSE", code)
      assert.equal("bind 127.0.0.1:" .. port .. ": Address already in use", msg)
      local reuse = keep(assert(core.socket("inet", "stream")))
      assert(reuse:setoption("reuseaddr", true))
      assert.equal(true, reuse:bind("127.0.0.1", port))
      assert.equal(true, reuse:listen())
    end)

    it("reuseport lets two sockets bind one port, and both receive", function()
      local a = keep(assert(core.socket("inet", "dgram")))
      assert(a:setoption("reuseport", true))
      assert(a:bind("127.0.0.1", 0))
      local _, port = a:getsockname()
      local without = keep(assert(core.socket("inet", "dgram")))
      local ok, _, code = without:bind("127.0.0.1", port)
      assert.is_nil(ok)
      assert.equal("EADDRINUSE", code)
      local b = keep(assert(core.socket("inet", "dgram")))
      assert(b:setoption("reuseport", true))
      assert.equal(true, b:bind("127.0.0.1", port))
      -- datagrams from many source ports spread over both (bounded)
      a:settimeout(0); b:settimeout(0)
      local got = { 0, 0 }
      for i = 1, 64 do
        local s = assert(core.socket("inet", "dgram"))
        assert(s:sendto("d" .. i, "127.0.0.1", port))
        s:close()
      end
      H.wait_until(function()
        for idx, r in ipairs({ a, b }) do
          for _ = 1, 64 do
            if not r:recvfrom() then break end
            got[idx] = got[idx] + 1
          end
        end
        return got[1] + got[2] >= 64
      end, 5)
      assert.equal(64, got[1] + got[2])
      assert.is_true(got[1] > 0 and got[2] > 0, "one socket got all: " .. got[1] .. "/" .. got[2])
    end)

    it("v6only=false lets an inet6 listener on :: accept IPv4 clients; true refuses them", function()
      v6_or_skip()
      for _, v6only in ipairs({ false, true }) do
        local l = keep(assert(core.socket("inet6", "stream")))
        assert.equal(true, l:setoption("v6only", v6only))
        assert(l:bind("::", 0))
        assert(l:listen())
        l:settimeout(5)
        local _, port = l:getsockname()
        local c = keep(assert(core.socket("inet", "stream")))
        c:settimeout(5)
        local ok, msg, code = c:connect("127.0.0.1", port)
        if v6only then
          assert.is_nil(ok)
          assert.equal("ECONNREFUSED", code)
          assert.equal("connect 127.0.0.1:" .. port .. ": Connection refused", msg)
        else
          assert.equal(true, ok, msg)
          local a, host = l:accept()
          assert.is_truthy(a, host)
          keep(a)
          assert.equal("::ffff:127.0.0.1", host)
        end
      end
    end)

    it("nodelay and keepalive stay set on an accepted, connected socket", function()
      local c, a = N.stream_pair(N.by_name.inet)
      keep(c); keep(a)
      assert(c:setoption("nodelay", true))
      assert(c:setoption("keepalive", true))
      assert.equal(true, c:getoption("nodelay"))
      assert.equal(true, c:getoption("keepalive"))
      assert(c:send("still works"))
      assert.equal("still works", a:recv())
    end)
  end)

  describe("options that do not apply give the kernel's answer", function()
    it("nodelay on a unix socket", function()
      local u = keep(assert(core.socket("unix", "stream")))
      assert_kernel_refuses({ "EOPNOTSUPP", "ENOTSUP" }, "setoption", "nodelay",
        u:setoption("nodelay", true))
      assert_kernel_refuses({ "EOPNOTSUPP", "ENOTSUP" }, "getoption", "nodelay",
        u:getoption("nodelay"))
    end)

    it("v6only on an inet socket", function()
      local s = keep(assert(core.socket("inet", "stream")))
      assert_kernel_refuses({ "ENOPROTOOPT" }, "setoption", "v6only", s:setoption("v6only", true))
      assert_kernel_refuses({ "ENOPROTOOPT", "EOPNOTSUPP", "ENOTSUP" }, "getoption", "v6only",
        s:getoption("v6only"))
    end)

    it("nodelay on a UDP socket", function()
      local d = keep(assert(core.socket("inet", "dgram")))
      assert_kernel_refuses({ "ENOPROTOOPT" }, "setoption", "nodelay", d:setoption("nodelay", true))
    end)
  end)
end)
