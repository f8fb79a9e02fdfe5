-- spec/sockit_connect_spec.lua — sockit.connect: each address of a name
-- tried in turn, ONE deadline for resolution and every address (measured
-- against listeners whose backlog is full, on the loopback only), the
-- timeout handed on to the conn, opts.nodelay and opts.bind, failures.

local sockit = require "sockit"
local core = require "sockit.core"
local wait = require "sockit.wait"
local H = require "support.helpers"
local N = require "support.net"

local v6, v6why = H.have_ipv6()

-- a port on 127.0.0.1 where nothing listens
local function closed_port() return N.closed_port(N.by_name.inet) end

--[[
A loopback listener whose accept queue is full, so that a new connect
hangs (Linux drops the SYN) until its deadline. listen(0) queues one
connection; the first connect that does not complete at once shows the
queue is full. Returns port and a table of sockets to close.
]]
local function blackhole(family)
  family = family or "inet"
  local host = family == "inet" and "127.0.0.1" or "::1"
  local l = assert(core.socket(family, "stream"))
  assert(l:bind(host, 0))
  assert(l:listen(0))
  local _, port = l:getsockname()
  local held = {l}
  for _ = 1, 16 do
    local s = assert(core.socket(family, "stream"))
    s:settimeout(0)
    s:connect(host, port)
    held[#held + 1] = s
    if not s:wait("w", 0.2) then return port, held end
  end
  error("could not fill the accept queue of a listener")
end

local function release(held)
  for _, s in ipairs(held) do s:close() end
end

describe("sockit.connect", function()
  local objs = {}
  local function keep(o) objs[#objs + 1] = o; return o end
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)
  after_each(function()
    wait.resolver = nil
    for _, o in ipairs(objs) do o:close() end
    objs = {}
  end)

  it("says who refused: 'connect 127.0.0.1:P: Connection refused'", function()
    local port = closed_port()
    local c, msg, code = sockit.connect("tcp4", "127.0.0.1:" .. port)
    H.fails(c, msg, code)
    assert.equal("ECONNREFUSED", code)
    assert.equal("connect 127.0.0.1:" .. port .. ": Connection refused", msg)
    c, msg, code = sockit.connect("unix", dir .. "/nobody")
    H.fails(c, msg, code)
    assert.equal("ENOENT", code)
    assert.equal("connect " .. dir .. "/nobody: No such file or directory", msg)
  end)

  it("tries each address of a name until one connects", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    local good = tonumber(l:addr():match(":(%d+)$"))
    local bad = closed_port()
    local asked
    wait.resolver = function(host, port, family, socktype)
      asked = {host, port, family, socktype}
      return {{family = "inet", type = "stream", host = "127.0.0.1", port = bad},
              {family = "inet", type = "stream", host = "127.0.0.1", port = good}}
    end
    local c = keep(assert(sockit.connect("tcp", "two.example:80")))
    assert.same({"two.example", 80, nil, "stream"}, asked)
    assert.equal("127.0.0.1:" .. good, c:peer())
    local s = keep(assert(l:accept()))
    c:write("via the second address\n")
    assert.equal("via the second address", s:read("l"))
  end)

  it("returns the first address's error when every address fails", function()
    local p1, p2 = closed_port(), closed_port()
    wait.resolver = function()
      return {{family = "inet", type = "stream", host = "127.0.0.1", port = p1},
              {family = "inet", type = "stream", host = "127.0.0.1", port = p2}}
    end
    local c, msg, code = sockit.connect("tcp", "both.example:1")
    H.fails(c, msg, code)
    assert.equal("ECONNREFUSED", code)
    assert.equal("connect 127.0.0.1:" .. p1 .. ": Connection refused", msg)
  end)

  it("':port' is this machine: 127.0.0.1, then ::1", function()
    if not v6 then pending("no IPv6: " .. tostring(v6why)) return end
    -- a listener on ::1 only: 127.0.0.1 refuses, ::1 answers
    local l = keep(assert(sockit.listen("tcp6", "[::1]:0")))
    local port = l:addr():match(":(%d+)$")
    local c = keep(assert(sockit.connect("tcp", ":" .. port, {timeout = 5})))
    assert.equal("[::1]:" .. port, c:peer())
    local l4 = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    port = l4:addr():match(":(%d+)$")
    c = keep(assert(sockit.connect("tcp", ":" .. port, {timeout = 5})))
    assert.equal("127.0.0.1:" .. port, c:peer())
  end)

  it("connects by a real name with two families, whichever listens", function()
    local list = core.getaddrinfo("localhost", 1, nil, "stream")
    local fams = {}
    for _, e in ipairs(list or {}) do fams[e.family] = true end
    if not (fams.inet and fams.inet6) or not v6 then
      pending("'localhost' does not resolve to both 127.0.0.1 and ::1 here")
      return
    end
    for _, only in ipairs{{"tcp4", "127.0.0.1"}, {"tcp6", "[::1]"}} do
      local l = keep(assert(sockit.listen(only[1], only[2] .. ":0")))
      local port = l:addr():match(":(%d+)$")
      local c = keep(assert(sockit.connect("tcp", "localhost:" .. port, {timeout = 5})))
      assert.equal(only[2] .. ":" .. port, c:peer())
    end
  end)

  it("keeps ONE deadline for every address: never restarted", function()
    local p1, held1 = blackhole()
    local p2, held2 = blackhole()
    wait.resolver = function()
      return {{family = "inet", type = "stream", host = "127.0.0.1", port = p1},
              {family = "inet", type = "stream", host = "127.0.0.1", port = p2}}
    end
    local t0 = sockit.now()
    local c, msg, code = sockit.connect("tcp", "slow.example:1", {timeout = 0.5})
    local dt = sockit.now() - t0
    release(held1)
    release(held2)
    H.fails(c, msg, code)
    assert.equal("ETIMEDOUT", code)
    assert.equal("connect 127.0.0.1:" .. p1 .. ": timed out", msg)
    assert.is_true(dt >= 0.45 and dt < 0.9, "took " .. dt .. " s for a 0.5 s timeout")
  end)

  it("counts the time name resolution takes", function()
    local p, held = blackhole()
    wait.resolver = function()
      wait.sleep(0.3)
      return {{family = "inet", type = "stream", host = "127.0.0.1", port = p}}
    end
    local t0 = sockit.now()
    local c, msg, code = sockit.connect("tcp4", "slowdns.example:1", {timeout = 0.5})
    local dt = sockit.now() - t0
    release(held)
    H.fails(c, msg, code)
    assert.equal("ETIMEDOUT", code)
    assert.is_true(dt >= 0.45 and dt < 0.75, "took " .. dt .. " s for a 0.5 s timeout")
  end)

  it("gives each address a share of the time left, so a dead one cannot eat it all", function()
    local dead, held = blackhole()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    local good = tonumber(l:addr():match(":(%d+)$"))
    wait.resolver = function()
      return {{family = "inet", type = "stream", host = "127.0.0.1", port = dead},
              {family = "inet", type = "stream", host = "127.0.0.1", port = good}}
    end
    local t0 = sockit.now()
    -- 4.2 s for two addresses: 2.1 s each (Go's rule: at least 2 s)
    local c = sockit.connect("tcp", "half.example:1", {timeout = 4.2})
    local dt = sockit.now() - t0
    release(held)
    assert.is_table(c)
    keep(c)
    assert.equal("127.0.0.1:" .. good, c:peer())
    assert.is_true(dt >= 2.0 and dt < 3.5, "took " .. dt)
  end)

  it("times out on a unix listener whose backlog is full", function()
    local path = dir .. "/full"
    local l = assert(core.socket("unix", "stream"))
    assert(l:bind(path))
    assert(l:listen(0))
    local held = {l}
    local t0
    for _ = 1, 16 do
      t0 = sockit.now()
      local c, msg, code = sockit.connect("unix", path, {timeout = 0.3})
      if not c then
        assert.equal("ETIMEDOUT", code)
        assert.equal("connect " .. path .. ": timed out", msg)
        break
      end
      held[#held + 1] = c
    end
    local dt = sockit.now() - t0
    release(held)
    assert.is_true(dt >= 0.25 and dt < 1, "took " .. dt)
  end)

  it("hands the timeout on to the conn", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    local c = keep(assert(sockit.connect("tcp4", l:addr(), {timeout = 0.2})))
    keep(assert(l:accept()))
    assert.equal(0.2, c:gettimeout())
    local t0 = sockit.now()
    local v, msg, code = c:read("l")
    H.fails(v, msg, code)
    assert.equal("ETIMEDOUT", code)
    assert.is_true(sockit.now() - t0 < 1)
    local c2 = keep(assert(sockit.connect("tcp4", l:addr())))
    assert.is_nil(c2:gettimeout())
  end)

  it("sets nodelay", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    local c = keep(assert(sockit.connect("tcp4", l:addr(), {nodelay = true})))
    assert.is_true(c.socket:getoption("nodelay"))
    local c2 = keep(assert(sockit.connect("tcp4", l:addr())))
    assert.is_false(c2.socket:getoption("nodelay"))
  end)

  it("binds the local end to opts.bind (tcp)", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    local lport = closed_port()
    local c = keep(assert(sockit.connect("tcp4", l:addr(), {bind = "127.0.0.1:" .. lport})))
    assert.equal("127.0.0.1:" .. lport, c:addr())
    local _, peer = l:accept()
    assert.equal("127.0.0.1:" .. lport, peer)
    local c2 = keep(assert(sockit.connect("tcp", l:addr(), {bind = ":0"})))
    assert.matches("^127%.0%.0%.1:%d+$", c2:addr())
    -- no address of the right family
    local c3, msg, code = sockit.connect("tcp", l:addr(), {bind = "[::1]:0"})
    H.fails(c3, msg, code)
    assert.equal("EADDRNOTAVAIL", code)
    assert.equal("connect " .. l:addr() .. ": opts.bind has no inet address", msg)
  end)

  it("binds the local end to opts.bind (unix), and removes that file on close", function()
    local l = keep(assert(sockit.listen("unix", dir .. "/srv")))
    local c = assert(sockit.connect("unix", dir .. "/srv", {bind = dir .. "/cli"}))
    assert.equal(dir .. "/cli", c:addr())
    local s, peer = l:accept()
    keep(s)
    assert.equal(dir .. "/cli", peer)
    assert.is_true(H.exists(dir .. "/cli"))
    c:close()
    assert.is_false(H.exists(dir .. "/cli"))
  end)
end)
