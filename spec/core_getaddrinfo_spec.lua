-- spec/core_getaddrinfo_spec.lua — core.getaddrinfo: entries
-- {family=, type=, host=, port=}, stream and dgram only, no duplicates.

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

-- the entries as "family type host port" strings, sorted
local function flat(list)
  local t = {}
  for _, e in ipairs(list) do
    t[#t + 1] = string.format("%s %s %s %s", e.family, e.type, e.host, tostring(e.port))
  end
  table.sort(t)
  return t
end

local function assert_well_formed(list)
  assert.equal("table", type(list))
  assert.is_true(#list > 0)
  local seen = {}
  for _, e in ipairs(list) do
    assert.is_truthy(e.family == "inet" or e.family == "inet6", tostring(e.family))
    assert.is_truthy(e.type == "stream" or e.type == "dgram", tostring(e.type))
    assert.equal("string", type(e.host))
    assert.equal("integer", math.type(e.port))
    local key = e.family .. " " .. e.type .. " " .. e.host .. " " .. e.port
    assert.is_nil(seen[key], "duplicate entry " .. key)
    seen[key] = true
  end
end

describe("core.getaddrinfo", function()
  it("an IPv4 literal gives one stream and one dgram entry", function()
    local r = assert(core.getaddrinfo("127.0.0.1", 80))
    assert_well_formed(r)
    assert.same({ "inet dgram 127.0.0.1 80", "inet stream 127.0.0.1 80" }, flat(r))
  end)

  it("an IPv6 literal", function()
    local r = assert(core.getaddrinfo("::1", 443))
    assert_well_formed(r)
    assert.same({ "inet6 dgram ::1 443", "inet6 stream ::1 443" }, flat(r))
  end)

  it("family and type narrow the answer", function()
    local r = assert(core.getaddrinfo("127.0.0.1", 8080, "inet", "stream"))
    assert.same({ "inet stream 127.0.0.1 8080" }, flat(r))
    r = assert(core.getaddrinfo("127.0.0.1", 53, "inet", "dgram"))
    assert.same({ "inet dgram 127.0.0.1 53" }, flat(r))
  end)

  it("a service name is a port", function()
    local r = assert(core.getaddrinfo("127.0.0.1", "http", "inet", "stream"))
    assert.same({ "inet stream 127.0.0.1 80" }, flat(r))
  end)

  it("localhost resolves within the asked family", function()
    local r = assert(core.getaddrinfo("localhost", 0, "inet"))
    assert_well_formed(r)
    for _, e in ipairs(r) do
      assert.equal("inet", e.family)
      assert.equal("127.0.0.1", e.host)
      assert.equal(0, e.port)
    end
  end)

  it("host nil is the wildcard", function()
    local r = assert(core.getaddrinfo(nil, 9000, "inet", "stream"))
    assert.same({ "inet stream 0.0.0.0 9000" }, flat(r))
    local ok, why = H.have_ipv6()
    if not ok then pending(why) end
    r = assert(core.getaddrinfo(nil, 9000, "inet6", "dgram"))
    assert.same({ "inet6 dgram :: 9000" }, flat(r))
  end)

  it("an address of the other family does not resolve within a family", function()
    local r, msg, code = core.getaddrinfo("::1", 80, "inet")
    assert.is_nil(r)
    assert.matches("^EAI_", code)
    assert.equal("getaddrinfo ::1: " .. N.strerror[code], msg)
  end)

  it("a name that does not exist is EAI_NONAME (or the resolver's EAI_ code)", function()
    local r, msg, code = core.getaddrinfo("nosuch.invalid", 80)
    assert.is_nil(r)
    assert.matches("^EAI_", code)
    assert.equal("getaddrinfo nosuch.invalid: " .. N.strerror[code], msg)
  end)

  it("a host passed in brackets is named as passed, with no second pair", function()
    -- the core takes no brackets ("[::1]" is the Lua layer's spelling);
    -- the message shows what was passed, not "[[::1]]:0"
    local s = assert(core.socket("inet6", "stream"))
    local ok, msg, code = s:bind("[::1]", 0)
    assert.is_nil(ok)
    assert.matches("^EAI_", code)
    assert.equal("bind [::1]:0: " .. N.strerror[code], msg)
    s:close()
    local r
    r, msg, code = core.getaddrinfo("[::1]", "nosuchservice")
    assert.is_nil(r)
    assert.matches("^EAI_", code)
    assert.is_nil(msg:find("[[", 1, true), msg)
  end)

  it("its answers can be connected to", function()
    local l = assert(core.socket("inet", "stream"))
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    local _, port = l:getsockname()
    local r = assert(core.getaddrinfo("localhost", port, "inet", "stream"))
    local e = r[1]
    local c = assert(core.socket(e.family, e.type))
    c:settimeout(5)
    assert.equal(true, c:connect(e.host, e.port))
    c:close(); l:close()
  end)
end)
