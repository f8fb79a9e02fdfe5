-- spec/core_basics_spec.lua — sockit.core: the module, socket objects,
-- creation for every family x type, tostring, fileno, close, family/type.

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

describe("core module", function()
  it("has _VERSION 'sockit 0.1.0'", function()
    assert.equal("sockit 0.1.0", core._VERSION)
  end)

  it("now() is a float on a monotonic clock that never goes back", function()
    local prev = core.now()
    assert.equal("float", math.type(prev))
    for _ = 1, 10000 do
      local t = core.now()
      assert.is_true(t >= prev, "now() went back from " .. prev .. " to " .. t)
      prev = t
    end
  end)

  it("now() advances with real time", function()
    local t0 = core.now()
    H.sleep(0.2)
    local dt = core.now() - t0
    assert.is_true(dt >= 0.19, "0.2 s of sleep advanced now() by only " .. dt)
    assert.is_true(dt < 5, "0.2 s of sleep advanced now() by " .. dt)
  end)
end)

describe("core.socket", function()
  local combos = {
    { "inet", "stream" }, { "inet", "dgram" },
    { "inet6", "stream" }, { "inet6", "dgram" },
    { "unix", "stream" }, { "unix", "dgram" }, { "unix", "seqpacket" },
  }
  for _, c in ipairs(combos) do
    local family, type_ = c[1], c[2]
    it("creates " .. family .. " " .. type_ .. " that knows its family and type", function()
      if family == "inet6" then
        local ok, why = H.have_ipv6()
        if not ok then pending(why) end
      end
      local s = assert(core.socket(family, type_))
      assert.equal(family, s:family())
      assert.equal(type_, s:type())
      local fd = s:fileno()
      assert.equal("integer", math.type(fd))
      assert.is_true(fd > 2)
      local target = H.fd_target(fd)
      assert.matches("^socket:%[%d+%]$", target)
      assert.equal(true, s:close())
      assert.is_false(H.target_open(target))
    end)
  end

  it("takes an explicit protocol (0, and the family's own 6 for tcp, 17 for udp)", function()
    local s = assert(core.socket("inet", "stream", 0))
    assert.equal("stream", s:type())
    s:close()
    s = assert(core.socket("inet", "stream", 6))
    assert.equal("stream", s:type())
    s:close()
    s = assert(core.socket("inet", "dgram", 17))
    assert.equal("dgram", s:type())
    s:close()
  end)

  it("gives inet seqpacket the kernel's error (Linux has no SCTP here)", function()
    local s, msg, code = core.socket("inet", "seqpacket")
    assert.is_nil(s)
    -- socket(AF_INET, SOCK_SEQPACKET, 0): no protocol registered for it
    assert.is_truthy(code == "ESOCKTNOSUPPORT" or code == "EPROTONOSUPPORT",
      "code " .. tostring(code))
    assert.equal("string", type(msg))
    assert.matches("^socket.*: " .. N.strerror[code] .. "$", msg)
  end)

  it("gives inet6 seqpacket the kernel's error too", function()
    local s, msg, code = core.socket("inet6", "seqpacket")
    assert.is_nil(s)
    assert.is_truthy(code == "ESOCKTNOSUPPORT" or code == "EPROTONOSUPPORT",
      "code " .. tostring(code))
    assert.matches("^socket.*: " .. N.strerror[code] .. "$", msg)
  end)

  it("gives a bad protocol number the kernel's error", function()
    local s, msg, code = core.socket("inet", "stream", 17)  -- udp on a stream
    assert.is_nil(s)
    assert.equal("EPROTONOSUPPORT", code)
    assert.matches("^socket.*: Protocol not supported$", msg)
  end)
end)

describe("core.socketpair", function()
  it("defaults to a connected unix stream pair carrying data both ways", function()
    local a, b = core.socketpair()
    assert.equal("unix", a:family())
    assert.equal("stream", a:type())
    assert.equal("stream", b:type())
    a:settimeout(5); b:settimeout(5)
    assert.equal(5, a:send("hello"))
    assert.equal("hello", b:recv())
    assert.equal(3, b:send("abc"))
    assert.equal("abc", a:recv())
    assert.equal("", (a:getpeername()))
    a:close(); b:close()
  end)

  for _, t in ipairs({ "stream", "dgram", "seqpacket" }) do
    it("makes " .. t .. " pairs", function()
      local a, b = core.socketpair(t)
      assert.equal(t, a:type())
      assert.equal(t, b:type())
      a:settimeout(5); b:settimeout(5)
      assert.equal(4, a:send("ping"))
      assert.equal("ping", b:recv())
      a:close(); b:close()
    end)
  end
end)

describe("socket objects", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  it("print as fresh, bound, listening, connected and closed (inet)", function()
    local s = assert(core.socket("inet", "stream"))
    local fd = s:fileno()
    assert.matches("^sockit%.socket{inet stream fd=" .. fd .. " .*fresh}$", tostring(s))
    assert(s:bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    assert.matches("^sockit%.socket{inet stream fd=" .. fd .. " 127%.0%.0%.1:" .. port .. " .*bound}$",
      tostring(s))
    assert(s:listen())
    assert.equal("sockit.socket{inet stream fd=" .. fd .. " 127.0.0.1:" .. port .. " listening}",
      tostring(s))
    local c = assert(core.socket("inet", "stream"))
    c:settimeout(5); s:settimeout(5)
    assert(c:connect("127.0.0.1", port))
    local a, host, cport = s:accept()
    assert.is_truthy(a, host)
    assert.equal("sockit.socket{inet stream fd=" .. c:fileno() .. " 127.0.0.1:" .. cport
      .. " -> 127.0.0.1:" .. port .. " connected}", tostring(c))
    assert.equal("sockit.socket{inet stream fd=" .. a:fileno() .. " 127.0.0.1:" .. port
      .. " -> 127.0.0.1:" .. cport .. " connected}", tostring(a))
    s:close(); c:close(); a:close()
    assert.equal("sockit.socket{closed}", tostring(s))
    assert.equal("sockit.socket{closed}", tostring(c))
    assert.equal("sockit.socket{closed}", tostring(a))
  end)

  it("print inet6 addresses in brackets", function()
    local ok, why = H.have_ipv6()
    if not ok then pending(why) end
    local l = assert(core.socket("inet6", "stream"))
    assert(l:bind("::1", 0))
    assert(l:listen())
    local _, port = l:getsockname()
    assert.equal("sockit.socket{inet6 stream fd=" .. l:fileno() .. " [::1]:" .. port .. " listening}",
      tostring(l))
    l:close()
  end)

  it("print unix paths and abstract names as @name", function()
    local path = dir .. "/tostring"
    local l = assert(core.socket("unix", "stream"))
    assert(l:bind(path))
    assert(l:listen())
    assert.equal("sockit.socket{unix stream fd=" .. l:fileno() .. " " .. path .. " listening}",
      tostring(l))
    local c = assert(core.socket("unix", "stream"))
    c:settimeout(5)
    assert(c:connect(path))
    assert.matches("^sockit%.socket{unix stream fd=" .. c:fileno() .. " .*" .. H.pat(path)
      .. " connected}$", tostring(c))
    c:close(); l:close()
    local ab = assert(core.socket("unix", "dgram"))
    assert(ab:bind("\0sockit-tostring-" .. H.pid()))
    assert.matches("@sockit%-tostring%-" .. H.pid(), tostring(ab))
    assert.matches("bound}$", tostring(ab))
    ab:close()
  end)

  it("close() returns true and is idempotent", function()
    local s = assert(core.socket("inet", "stream"))
    local fd = s:fileno()
    local target = H.fd_target(fd)
    assert.equal(true, s:close())
    assert.equal(true, s:close())
    assert.equal(true, s:close())
    assert.is_false(H.target_open(target))
  end)

  it("raises 'attempt to use a closed socket' for every method but close and tostring", function()
    local s = assert(core.socket("inet", "stream"))
    s:close()
    local calls = {
      bind = function() return s:bind("127.0.0.1", 0) end,
      listen = function() return s:listen() end,
      accept = function() return s:accept() end,
      connect = function() return s:connect("127.0.0.1", 1) end,
      send = function() return s:send("x") end,
      recv = function() return s:recv() end,
      sendto = function() return s:sendto("x", "127.0.0.1", 1) end,
      recvfrom = function() return s:recvfrom() end,
      shutdown = function() return s:shutdown("rw") end,
      getsockname = function() return s:getsockname() end,
      getpeername = function() return s:getpeername() end,
      setoption = function() return s:setoption("reuseaddr", true) end,
      getoption = function() return s:getoption("reuseaddr") end,
      settimeout = function() return s:settimeout(1) end,
      gettimeout = function() return s:gettimeout() end,
      fileno = function() return s:fileno() end,
      wait = function() return s:wait("r", 0) end,
      sendv = function() return s:sendv({ "x" }) end,
      family = function() return s:family() end,
      type = function() return s:type() end,
    }
    local names = {}
    for name in pairs(calls) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local ok, err = pcall(calls[name])
      assert.is_false(ok, name .. " on a closed socket did not raise")
      assert.is_truthy(tostring(err):find("attempt to use a closed socket", 1, true),
        name .. " raised: " .. tostring(err))
    end
    assert.equal(true, s:close())
    assert.equal("sockit.socket{closed}", tostring(s))
  end)

  it("fileno() is the kernel descriptor of this socket", function()
    local a, b = core.socketpair()
    local fa, fb = a:fileno(), b:fileno()
    assert.are_not.equal(fa, fb)
    assert.matches("^socket:", H.fd_target(fa))
    assert.matches("^socket:", H.fd_target(fb))
    a:close()
    assert.equal(fb, b:fileno())
    b:close()
  end)
end)
