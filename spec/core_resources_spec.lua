-- spec/core_resources_spec.lua — nothing leaks, nothing is inherited:
-- garbage sockets close their descriptors, `<close>` closes at scope end,
-- every descriptor is close-on-exec (created, accepted, socketpair).

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

-- the "socket:[inode]" link targets of our sockets
local function targets(list)
  local t = {}
  for _, s in ipairs(list) do
    local target = H.fd_target(s:fileno())
    assert.matches("^socket:%[%d+%]$", target)
    t[#t + 1] = target
  end
  return t
end

-- what a child process has open: `ls -l /proc/$$/fd` of a shell that
-- io.popen started (so it inherited whatever was not close-on-exec)
local function child_fd_listing()
  local f = assert(io.popen("sh -c 'ls -l /proc/$$/fd'", "r"))
  local out = f:read("a")
  f:close()
  return out
end

describe("core resources", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  it("5000 sockets dropped as garbage leave the descriptor count unchanged", function()
    collectgarbage(); collectgarbage()
    local before = H.count_fds()
    local kinds = { { "inet", "stream" }, { "inet", "dgram" }, { "unix", "stream" },
                    { "unix", "dgram" }, { "unix", "seqpacket" } }
    for i = 1, 5000 do
      local k = kinds[i % #kinds + 1]
      local s, msg = core.socket(k[1], k[2])
      assert.is_truthy(s, msg)
      if i % 500 == 0 then collectgarbage() end
    end
    collectgarbage(); collectgarbage()
    local after = H.count_fds()
    assert.is_true(math.abs(after - before) <= 3,
      "descriptors before " .. before .. ", after " .. after)
  end)

  it("socketpairs and accepted sockets dropped as garbage are closed too", function()
    collectgarbage(); collectgarbage()
    local before = H.count_fds()
    local l, addr = N.listener(N.by_name.inet, "stream", dir)
    l:settimeout(5)
    for _ = 1, 200 do
      local a, b = core.socketpair()
      assert.is_truthy(a and b)
      local c = assert(core.socket("inet", "stream"))
      c:settimeout(5)
      assert(c:connect(addr[1], addr[2]))
      assert(l:accept())
    end
    l:close()
    collectgarbage(); collectgarbage()
    local after = H.count_fds()
    assert.is_true(math.abs(after - before) <= 3,
      "descriptors before " .. before .. ", after " .. after)
  end)

  it("a garbage socket's own descriptor is gone after collection", function()
    local target
    do
      local s = assert(core.socket("inet", "stream"))
      target = H.fd_target(s:fileno())
      assert.is_true(H.target_open(target))
    end
    collectgarbage(); collectgarbage()
    assert.is_false(H.target_open(target))
  end)

  it("local s <close> closes at the end of its scope", function()
    local target, escaped
    do
      local s <close> = assert(core.socket("inet", "stream"))
      escaped = s
      target = H.fd_target(s:fileno())
      assert.is_true(H.target_open(target))
    end
    -- closed at once, not at collection: the object is still referenced
    assert.is_false(H.target_open(target))
    assert.equal("sockit.socket{closed}", tostring(escaped))
    assert.equal(true, escaped:close())
  end)

  it("<close> closes when the scope is left by an error", function()
    local target, escaped
    local ok = pcall(function()
      local s <close> = assert(core.socket("unix", "stream"))
      escaped = s
      target = H.fd_target(s:fileno())
      error("leaving")
    end)
    assert.is_false(ok)
    assert.is_false(H.target_open(target))
    assert.equal("sockit.socket{closed}", tostring(escaped))
  end)

  it("<close> on a socket already closed is fine", function()
    do
      local s <close> = assert(core.socket("inet", "dgram"))
      assert.equal(true, s:close())
    end
  end)

  it("a child process inherits none of our sockets (close-on-exec)", function()
    local open = {}
    for _, k in ipairs({ { "inet", "stream" }, { "inet", "dgram" }, { "unix", "stream" },
                         { "unix", "dgram" }, { "unix", "seqpacket" } }) do
      open[#open + 1] = assert(core.socket(k[1], k[2]))
    end
    local ok = H.have_ipv6()
    if ok then open[#open + 1] = assert(core.socket("inet6", "stream")) end
    -- socketpair ends
    local p1, p2 = core.socketpair()
    local q1, q2 = core.socketpair("dgram")
    open[#open + 1] = p1; open[#open + 1] = p2
    open[#open + 1] = q1; open[#open + 1] = q2
    -- a listener, a connected client and the accepted socket
    local c, a, l = N.stream_pair(N.by_name.inet, dir)
    open[#open + 1] = c; open[#open + 1] = a; open[#open + 1] = l
    local uc, ua, ul = N.stream_pair(N.by_name.unix, dir)
    open[#open + 1] = uc; open[#open + 1] = ua; open[#open + 1] = ul
    local ts = targets(open)
    local listing = child_fd_listing()
    -- the listing works: it shows the child's own standard descriptors
    assert.matches("\n[^\n]* 0 %-> ", listing)
    for i, t in ipairs(ts) do
      assert.is_falsy(listing:find(t, 1, true),
        tostring(open[i]) .. " (" .. t .. ") is open in a child:\n" .. listing)
    end
    for _, s in ipairs(open) do s:close() end
  end)

  it("a child started with os.execute inherits none of them either", function()
    local a, b = core.socketpair()
    local c, s, l = N.stream_pair(N.by_name.inet, dir)
    local ts = targets({ a, b, c, s, l })
    local out = H.sh("ls -l /proc/self/fd/ 2>&1; sh -c 'ls -l /proc/$$/fd' 2>&1")
    for _, t in ipairs(ts) do
      assert.is_falsy(out:find(t, 1, true), t .. " is open in a child:\n" .. out)
    end
    a:close(); b:close(); c:close(); s:close(); l:close()
  end)

  it("closing one end of a pair does not close the other, and frees only its own descriptor", function()
    local a, b = core.socketpair()
    local ta, tb = H.fd_target(a:fileno()), H.fd_target(b:fileno())
    a:close()
    assert.is_false(H.target_open(ta))
    assert.is_true(H.target_open(tb))
    b:settimeout(1)
    assert.equal("EOF", select(3, b:recv()))
    b:close()
    assert.is_false(H.target_open(tb))
  end)
end)
