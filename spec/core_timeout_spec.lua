-- spec/core_timeout_spec.lua — settimeout/gettimeout, and every blocking
-- call (accept, connect, send, recv, sendto, recvfrom) bounded by the
-- socket's timeout: ETIMEDOUT after about that long, not much less.

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

local T = 0.15         -- the timeout used below
local SLACK = 1.5      -- generous upper bound for a loaded machine

-- run fn, return its results and how long it took
local function timed(fn)
  local t0 = core.now()
  local r = table.pack(fn())
  return core.now() - t0, table.unpack(r, 1, r.n)
end

local function assert_took(dt, t)
  assert.is_true(dt >= t * 0.95, "gave up after only " .. dt .. " s, timeout " .. t)
  assert.is_true(dt < t + SLACK, "gave up after " .. dt .. " s, timeout " .. t)
end

describe("core timeouts", function()
  local dir
  local open = {}
  local function keep(s) open[#open + 1] = s; return s end
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)
  after_each(function()
    for _, s in ipairs(open) do s:close() end
    open = {}
  end)

  it("settimeout/gettimeout round trip: nil by default, 0, 0.5, 2, nil", function()
    local s = keep(assert(core.socket("inet", "stream")))
    assert.is_nil(s:gettimeout())
    assert.equal(true, s:settimeout(0))
    assert.equal(0, s:gettimeout())
    assert.equal(true, s:settimeout(0.5))
    assert.equal(0.5, s:gettimeout())
    assert.equal(true, s:settimeout(2))
    assert.equal(2, s:gettimeout())
    assert.equal(true, s:settimeout(nil))
    assert.is_nil(s:gettimeout())
    assert.equal(true, s:settimeout(0.5))
    assert.equal(true, s:settimeout())   -- no argument is nil too
    assert.is_nil(s:gettimeout())
  end)

  it("accept", function()
    local l = keep(assert(core.socket("inet", "stream")))
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    local _, port = l:getsockname()
    l:settimeout(T)
    local dt, ok, msg, code = timed(function() return l:accept() end)
    assert.is_nil(ok)
    assert.equal("ETIMEDOUT", code)
    assert.is_truthy(msg == "accept: timed out" or msg == "accept 127.0.0.1:" .. port .. ": timed out",
      msg)
    assert_took(dt, T)
    -- a client that comes in time is accepted
    local c = keep(assert(core.socket("inet", "stream")))
    c:settimeout(5)
    assert(c:connect("127.0.0.1", port))
    local a = keep(assert(l:accept()))
    assert.equal("inet", a:family())
  end)

  it("accept on a unix listener", function()
    local path = dir .. "/acc"
    local l = keep(assert(core.socket("unix", "stream")))
    assert(l:bind(path))
    assert(l:listen())
    l:settimeout(T)
    local dt, ok, msg, code = timed(function() return l:accept() end)
    assert.is_nil(ok)
    assert.equal("ETIMEDOUT", code)
    assert.is_truthy(msg == "accept: timed out" or msg == "accept " .. path .. ": timed out", msg)
    assert_took(dt, T)
  end)

  for _, fam in ipairs(N.inet_families) do
    it("connect to a listener whose backlog is full (" .. fam.name .. ")", function()
      if fam.skip then pending(fam.skip) end
      local l, addr = N.listener(fam, "stream", dir, 0)
      keep(l)
      local last
      for _ = 1, 10 do
        local c = keep(assert(core.socket(fam.family, "stream")))
        c:settimeout(T)
        local dt, ok, msg, code = timed(function() return c:connect(addr[1], addr[2]) end)
        if not ok then
          last = { dt = dt, msg = msg, code = code }
          break
        end
      end
      assert.is_truthy(last, "every connect went through a full backlog")
      assert.equal("ETIMEDOUT", last.code)
      assert.equal("connect " .. fam.show(addr[1], addr[2]) .. ": timed out", last.msg)
      assert_took(last.dt, T)
    end)
  end

  -- a unix connect to a full backlog is a blocking connect(2) bounded by
  -- SO_SNDTIMEO: a timeout too large for a timeval (math.huge, 1e300)
  -- failed at once with EDOM instead of waiting
  for _, t in ipairs({"math.huge", "1e300"}) do
    it("a unix connect with timeout " .. t .. " waits for room in a full backlog", function()
      local name = "\0sockit-huge-" .. math.random(1 << 30)
      local l = keep(assert(core.socket("unix", "stream")))
      assert(l:bind(name))
      assert(l:listen(0))
      for _ = 1, 16 do   -- fill the backlog
        local c = keep(assert(core.socket("unix", "stream")))
        c:settimeout(0)
        if not c:connect(name) then break end
      end
      local h = H.spawn_lua(string.format([[
        local core = require "sockit.core"
        local c = core.socket("unix", "stream")
        c:settimeout(%s)
        print("start"); io.flush()
        print("connect", c:connect(%q))
      ]], t, name), {timeout = 20})
      local ok, err = pcall(function()
        assert(H.wait_until(function() return h.output():find("start\n", 1, true) end, 10),
               "the child did not start: " .. h.output())
        H.sleep(0.3)
        assert.equal("start\n", h.output())   -- still waiting
        assert(l:accept())                     -- room for one more
        assert.equal(0, h:wait(10), h.output())
        assert.equal("start\nconnect\ttrue\n", h.output())
      end)
      h.kill()
      h.cleanup()
      assert(ok, err)
    end)
  end

  it("send when the peer does not read (stream)", function()
    local a, b = core.socketpair()
    keep(a); keep(b)
    a:settimeout(T)
    local chunk = string.rep("s", 65536)
    local last
    for _ = 1, 10000 do
      local dt, n, msg, code = timed(function() return a:send(chunk) end)
      if not n then
        last = { dt = dt, msg = msg, code = code }
        break
      end
    end
    assert.is_truthy(last)
    assert.equal("ETIMEDOUT", last.code)
    assert.equal("send: timed out", last.msg)
    assert_took(last.dt, T)
  end)

  it("send on inet when the peer does not read", function()
    local c, a = N.stream_pair(N.by_name.inet, dir)
    keep(c); keep(a)
    c:settimeout(T)
    local chunk = string.rep("s", 65536)
    local last
    for _ = 1, 10000 do
      local dt, n, msg, code = timed(function() return c:send(chunk) end)
      if not n then
        last = { dt = dt, msg = msg, code = code }
        break
      end
    end
    assert.is_truthy(last)
    assert.equal("ETIMEDOUT", last.code)
    assert.equal("send: timed out", last.msg)
    assert_took(last.dt, T)
  end)

  for _, fam in ipairs(N.families) do
    if fam.family ~= "unix" then
      it("recv on a stream with nothing to read (" .. fam.name .. ")", function()
        if fam.skip then pending(fam.skip) end
        local c, a = N.stream_pair(fam, dir)
        keep(c); keep(a)
        c:settimeout(T)
        local dt, ok, msg, code = timed(function() return c:recv() end)
        assert.is_nil(ok)
        assert.equal("ETIMEDOUT", code)
        assert.equal("recv: timed out", msg)
        assert_took(dt, T)
      end)
    end

    it("recvfrom on a datagram socket with nothing to read (" .. fam.name .. ")", function()
      if fam.skip then pending(fam.skip) end
      local a, b = N.dgram_pair(fam, dir)
      keep(a); keep(b)
      a:settimeout(T)
      local dt, ok, msg, code = timed(function() return a:recvfrom() end)
      assert.is_nil(ok)
      assert.equal("ETIMEDOUT", code)
      assert.equal("recvfrom: timed out", msg)
      assert_took(dt, T)
    end)
  end

  it("sendto when the receiver's queue is full (unix dgram)", function()
    local path = dir .. "/full"
    local r = keep(assert(core.socket("unix", "dgram")))
    assert(r:bind(path))
    local s = keep(assert(core.socket("unix", "dgram")))
    assert(s:connect(path))       -- so that poll(2) sees the receiver's queue
    s:settimeout(T)
    local last, sent = nil, 0
    for _ = 1, 10000 do
      local dt, n, msg, code = timed(function() return s:sendto("q", path) end)
      if not n then
        last = { dt = dt, msg = msg, code = code }
        break
      end
      sent = sent + 1
    end
    assert.is_truthy(last)
    assert.is_true(sent > 0)
    assert.equal("ETIMEDOUT", last.code)
    assert.equal("sendto " .. path .. ": timed out", last.msg)
    assert_took(last.dt, T)
    -- the receiver gets every one that was sent
    r:settimeout(0)
    local got = 0
    for _ = 1, sent + 1 do
      if not r:recv() then break end
      got = got + 1
    end
    assert.equal(sent, got)
  end)

  it("does not delay a call that can go at once", function()
    local a, b = core.socketpair()
    keep(a); keep(b)
    a:settimeout(5); b:settimeout(5)
    assert(b:send("ready"))
    local dt, d = timed(function() return a:recv() end)
    assert.equal("ready", d)
    assert.is_true(dt < 0.5, "took " .. dt)
  end)

  it("leaves the socket usable after a timeout", function()
    local a, b = core.socketpair()
    keep(a); keep(b)
    a:settimeout(0.05)
    assert.equal("ETIMEDOUT", select(3, a:recv()))
    assert(b:send("later"))
    assert.equal("later", a:recv())
  end)

  it("nil blocks until the data comes (a child sends it 0.3 s later)", function()
    local path = dir .. "/blocking"
    local r = keep(assert(core.socket("unix", "dgram")))
    assert(r:bind(path))
    assert.is_nil(r:gettimeout())
    local child = H.spawn_lua([[
      local core = require "sockit.core"
      local path = ...
      os.execute("sleep 0.3")
      local s = assert(core.socket("unix", "dgram"))
      assert(s:sendto("woke you", path))
    ]], { args = { path }, timeout = 20 })
    -- should the child never send, a guard does after 5 s, so that a
    -- broken core fails this test instead of hanging the run
    local guard = H.spawn("sleep 5; echo guard | socat -u - UNIX-SENDTO:" .. path, 10)
    finally(function()
      child.kill(); child.cleanup()
      guard.kill(); guard.cleanup()
    end)
    local dt, d = timed(function() return r:recv() end)
    assert.equal("woke you", d)
    assert.is_true(dt >= 0.25, "recv returned after only " .. dt .. " s")
    assert.equal(0, child:wait(10), child.output())
  end)
end)
