-- spec/sockit_bulk_spec.lua — megabytes through conns, against a peer in
-- another process (a single process that writes 8 MiB to a socket nobody
-- reads would block): write of a large payload, in one argument and in
-- several, and a 10 MiB read("a") that must not be quadratic.

local sockit = require "sockit"
local H = require "support.helpers"

-- the same deterministic payload on both sides: n bytes, n a multiple of 16
local PAYLOAD = [[
local function payload(n)
  local parts = {}
  for i = 1, n // 16 do parts[i] = string.format("%015d\n", i) end
  return table.concat(parts)
end
]]
local payload = load(PAYLOAD .. " return payload")()

-- the child: connect, then read everything and check it, or write it
local CHILD = PAYLOAD .. [[
local sockit = require "sockit"
local network, address, mode, n = ...
n = tonumber(n)
local c = assert(sockit.connect(network, address, {timeout = 30 * (tonumber(os.getenv("SOCKIT_SLOW")) or 1)}))
if mode == "read" then
  local data, msg = c:read("a")
  if data == payload(n) then io.write("ok ", #data)
  else io.write("bad ", tostring(data and #data or msg)) end
else
  assert(c:write(payload(n)))
  io.write("sent")
end
c:close()
]]

local MiB = 1024 * 1024

describe("bulk transfers", function()
  local objs = {}
  local function keep(o) objs[#objs + 1] = o; return o end
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)
  after_each(function()
    for _, o in ipairs(objs) do o:close() end
    objs = {}
  end)

  for _, k in ipairs{{"tcp4", function() return "127.0.0.1:0" end},
                     {"unix", function() return dir .. "/bulk" end}} do
    local network, address = k[1], k[2]

    it("writes 8 MiB in one call to a reader in another process (" .. network .. ")", function()
      for _, split in ipairs{false, true} do
        local l = keep(assert(sockit.listen(network, address())))
        l:settimeout(20 * H.slow)
        local h = H.spawn_lua(CHILD, {args = {network, l:addr(), "read", 8 * MiB}})
        local s = assert(l:accept())
        keep(s)
        s:settimeout(30 * H.slow)
        local data = payload(8 * MiB)
        local t0 = sockit.now()
        if split then   -- several arguments: writev rounds with an offset
          local a, b = data:sub(1, 3 * MiB + 5), data:sub(3 * MiB + 6, 7 * MiB)
          assert.equal(s, s:write(a, b, data:sub(7 * MiB + 1)))
        else
          assert.equal(s, s:write(data))
        end
        s:close()
        local status = h:wait(30)
        local out = h.output()
        h.cleanup()
        l:close()
        assert.equal(0, status, out)
        assert.equal("ok " .. 8 * MiB, out)
        assert.is_true(sockit.now() - t0 < 20)
      end
    end)

    it("reads 10 MiB with read('a') from a writer in another process (" .. network .. ")", function()
      local l = keep(assert(sockit.listen(network, address())))
      l:settimeout(20 * H.slow)
      local h = H.spawn_lua(CHILD, {args = {network, l:addr(), "write", 10 * MiB}})
      local s = keep(assert(l:accept()))
      s:settimeout(30 * H.slow)
      local t0 = sockit.now()
      local data = s:read("a")
      local dt = sockit.now() - t0
      local status = h:wait(30)
      local out = h.output()
      h.cleanup()
      assert.equal(0, status, out)
      assert.equal("sent", out)
      assert.equal(10 * MiB, #data)
      assert.is_true(data == payload(10 * MiB), "the data differs")
      assert.equal("", s:read("a"))
      assert.is_true(dt < 10 * H.slow, "read('a') took " .. dt .. " s")
    end)
  end

  it("reads lines and counts through a big buffer in linear time", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    l:settimeout(20 * H.slow)
    local h = H.spawn_lua(CHILD, {args = {"tcp4", l:addr(), "write", 4 * MiB}})
    local s = keep(assert(l:accept()))
    s:settimeout(30 * H.slow)
    local t0 = sockit.now()
    local n, i = 0, 0
    for line in s:lines() do
      i = i + 1
      if tonumber(line) ~= i then error("line " .. i .. " is " .. line) end
      n = n + #line + 1
    end
    local dt = sockit.now() - t0
    local status = h:wait(30)
    h.cleanup()
    assert.equal(0, status)
    assert.equal(4 * MiB, n)
    assert.is_true(dt < 10 * H.slow, "took " .. dt)
  end)
end)
