-- The read-before-park (socket.c, do_recv; poller.c; conn.lua, Conn:recv):
-- a short stream read proves the kernel's queue empty, so a task's next
-- conn:recv waits first instead of reading EAGAIN first. Where a short
-- read can stop with data left (TCP urgent data, a FIN, unix descriptors,
-- unix MSG_OOB), or when the poller reported the socket meanwhile, the
-- next receive must read, or the task would wait for an edge that never
-- comes. Every loop test here has a watchdog: a hang fails, bounded.

local H = require "support.helpers"
local sockit = require "sockit"
local core = require "sockit.core"

local recvq = core.methods._recvq

-- a connected TCP pair of core sockets, non-blocking
local function tcppair()
  local l = assert(core.socket("inet", "stream"))
  assert(l:bind("127.0.0.1", 0))
  assert(l:listen())
  local _, port = l:getsockname()
  local c = assert(core.socket("inet", "stream"))
  assert(c:connect("127.0.0.1", port))
  local s = assert(l:accept())
  l:close()
  c:settimeout(0)
  s:settimeout(0)
  return c, s
end

local function unixpair()
  local a, b = assert(core.socketpair())
  a:settimeout(0)
  b:settimeout(0)
  return a, b
end

-- wait (bounded) until 's' has something to read
local function readable(s)
  local p = assert(core.poller())
  assert(p:add(s, "r"))
  local n = p:wait(2 * H.slow)
  p:close()
  assert.equal(1, n, "nothing arrived")
end


describe("the core's _recvq", function()
  for _, pair in ipairs{{"tcp", tcppair}, {"unix", unixpair}} do
    local name, make = pair[1], pair[2]

    it("answers false, without reading, after a short read (" .. name .. ")", function()
      local a, b = make()
      assert.equal(3, a:send("abc"))
      readable(b)
      assert.equal("abc", b:recv(10))
      assert.equal(false, recvq(b, 10))
      -- once: the next call reads (and finds the queue empty)
      local d, _, code = recvq(b, 10)
      assert.is_nil(d)
      assert.equal("EAGAIN", code)
      -- data sent after the short read is read by the call after the false
      assert.equal(2, a:send("de"))
      readable(b)
      assert.equal("de", b:recv(10))
      assert.equal(false, recvq(b, 10))
      assert.equal(1, a:send("f"))
      readable(b)
      assert.equal("f", recvq(b, 10))
      a:close() b:close()
    end)

    it("reads after a read that filled max, or any other receive (" .. name .. ")", function()
      local a, b = make()
      assert.equal(4, a:send("abcd"))
      readable(b)
      assert.equal("abcd", b:recv(4))          -- all it asked for: proves nothing
      local d, _, code = recvq(b, 10)
      assert.is_nil(d)
      assert.equal("EAGAIN", code)
      assert.equal(3, a:send("xyz"))
      readable(b)
      assert.equal("xyz", b:recv(10))          -- short: the flag is set ...
      d, _, code = b:recv(10)                  -- ... and a plain recv clears it
      assert.is_nil(d)
      assert.equal("EAGAIN", code)
      d, _, code = recvq(b, 10)
      assert.is_nil(d)
      assert.equal("EAGAIN", code)
      a:close() b:close()
    end)
  end

  it("reads after a unix read that stopped at descriptors", function()
    local a, b = unixpair()
    local f = assert(io.tmpfile())
    assert.equal(1, a:sendfds("x", f))
    assert.equal(1, a:send("y"))
    readable(b)
    -- a plain recv drops the descriptors (the kernel closes them) and
    -- stops after their message, with "y" still queued
    assert.equal("x", b:recv(10))
    assert.equal("y", recvq(b, 10))
    f:close() a:close() b:close()
  end)

  it("reads after the loop's poller reported the socket", function()
    local a, b = tcppair()
    local p = assert(core.poller())
    assert(p:add(b:fileno(), "rw", true, b))
    assert.equal(3, a:send("abc"))
    assert.is_true(p:wait(2 * H.slow) >= 1)
    assert.equal("abc", b:recv(10))
    assert.equal(1, a:send("d"))
    -- the report of "d" clears the proof of the short read
    assert.is_true(p:wait(2 * H.slow) >= 1)
    assert.equal("d", recvq(b, 10))
    p:close() a:close() b:close()
  end)

  it("reads after a poller saw the peer's FIN, for good", function()
    local a, b = tcppair()
    local p = assert(core.poller())
    assert(p:add(b:fileno(), "rw", true, b))
    assert.equal(3, a:send("abc"))
    assert.is_true(a:shutdown("w"))
    assert.is_true(p:wait(2 * H.slow) >= 1)
    -- the read takes "abc" and the FIN; without the mark the next call
    -- would answer false and a task would wait for ever
    assert.equal("abc", b:recv(10))
    local d, _, code = recvq(b, 10)
    assert.is_nil(d)
    assert.equal("EOF", code)
    p:close() a:close() b:close()
  end)

  it("keeps no flag for a poller registration without the socket", function()
    local a, b = tcppair()
    local p = assert(core.poller())
    assert(p:add(b:fileno(), "rw", true))
    assert.equal(3, a:send("abc"))
    assert.is_true(p:wait(2 * H.slow) >= 1)
    assert.equal("abc", b:recv(10))
    assert.equal(false, recvq(b, 10))
    p:close() a:close() b:close()
  end)

  it("never answers false for datagrams or recvfrom", function()
    local u = assert(core.socket("inet", "dgram"))
    assert(u:bind("127.0.0.1", 0))
    u:settimeout(0)
    local h, port = u:getsockname()
    assert.equal(2, u:sendto("hi", h, port))
    readable(u)
    assert.equal("hi", u:recv(10))
    local d, _, code = recvq(u, 10)
    assert.is_nil(d)
    assert.equal("EAGAIN", code)
    u:close()
    local a, b = tcppair()
    assert.equal(2, a:send("hi"))
    readable(b)
    assert.equal("hi", (b:recvfrom(10)))
    d, _, code = recvq(b, 10)
    assert.is_nil(d)
    assert.equal("EAGAIN", code)
    a:close() b:close()
  end)

  it("checks its arguments as recv does", function()
    local a, b = unixpair()
    assert.has_error(function() recvq(b, 0) end)
    assert.has_error(function() recvq({}, 10) end)
    b:close()
    assert.has_error(function() recvq(b, 10) end, "attempt to use a closed socket")
    a:close()
  end)
end)


--[[
In the loop: the server task reads the peer's first message after
parking for it (so the loop's poller has the socket), then sleeps while
the peer sends the rest, then reads until it has 'want' bytes or the end
of the stream. Returns what it read, how its last read ended, and whether
the watchdog had to end it.
]]
local function serve_one(l, want, pause)
  local got, ends, hung = {}, nil, false
  local done = false
  sockit.spawn(function()
    local c = assert(l:accept())
    sockit.spawn(function()
      for _ = 1, math.floor(50 * H.slow) do
        if done then return end
        sockit.sleep(0.1)
      end
      hung = true
      c:close()
    end)
    got[1] = assert(c:recv())
    sockit.sleep(pause)
    while #table.concat(got) < want do
      local d, _, code = c:recv()
      if not d then ends = code break end
      got[#got + 1] = d
    end
    if not hung then
      if #table.concat(got) >= want then
        assert(c:write("ok"))
        local d, _, code = c:recv()      -- the peer closes after "ok"
        ends = d or code
      end
      c:close()
    end
    done = true
  end)
  return function() return table.concat(got), ends, hung end
end

describe("a task's conn:recv after a short read", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("reads what arrived while it was not waiting (a report with no reader)", function()
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    local result = serve_one(l, 2, 0.5)
    sockit.spawn(function()
      local c = assert(sockit.connect("tcp", l:addr()))
      sockit.sleep(0.2)            -- the server parks first
      assert(c:write("a"))
      sockit.sleep(0.2)            -- the server got "a" and sleeps
      assert(c:write("z"))
      assert.equal("ok", c:read(2))
      c:close()
    end)
    sockit.run()
    l:close()
    local got, ends, hung = result()
    assert.is_false(hung, "the server waited for ever")
    assert.equal("az", got)
    assert.equal("EOF", ends)
  end)

  it("reads the end of the stream that came with the last data (FIN)", function()
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    local result = serve_one(l, 100, 0.5)
    sockit.spawn(function()
      local c = assert(sockit.connect("tcp", l:addr()))
      sockit.sleep(0.2)
      assert(c:write("a"))
      sockit.sleep(0.2)
      assert(c:write("bye"))
      c:close()
    end)
    sockit.run()
    l:close()
    local got, ends, hung = result()
    assert.is_false(hung, "the server waited for ever")
    assert.equal("abye", got)
    assert.equal("EOF", ends)
  end)

  it("reads what follows a message that carried descriptors (unix)", function()
    local path = dir .. "/s.sock"
    local l = assert(sockit.listen("unix", path))
    local result = serve_one(l, 3, 0.5)
    sockit.spawn(function()
      local c = assert(sockit.connect("unix", path))
      sockit.sleep(0.2)
      assert(c:write("a"))
      sockit.sleep(0.2)
      local f = assert(io.tmpfile())
      assert.equal(1, c:sendfds("x", f))
      f:close()
      assert(c:write("y"))
      assert.equal("ok", c:read(2))
      c:close()
    end)
    sockit.run()
    l:close()
    local got, ends, hung = result()
    assert.is_false(hung, "the server waited for ever")
    assert.equal("axy", got)
    assert.equal("EOF", ends)
  end)

  -- urgent data: a peer that is not sockit sends it (sockit does not)
  local PY_OOB = [[
import socket, sys, time
fam, where = sys.argv[1], sys.argv[2]
if fam == "tcp":
    host, port = where.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(where)
time.sleep(0.2)
s.sendall(b"a")
time.sleep(0.2)
s.sendall(b"hello")
try:
    s.send(b"!", socket.MSG_OOB)
except OSError as e:
    print("no MSG_OOB:", e)
    sys.exit(0)
s.sendall(b"world")
print(s.recv(2).decode())
s.close()
]]

  for _, fam in ipairs{"tcp", "unix"} do
    it("reads past urgent data (MSG_OOB over " .. fam .. ")", function()
      if not H.have("python3") then pending("python3 is not installed") end
      local path = dir .. "/s.sock"
      local l = assert(sockit.listen(fam, fam == "tcp" and "127.0.0.1:0" or path))
      local script = dir .. "/oob.py"
      H.write_file(script, PY_OOB)
      local py = H.spawn("python3 " .. H.quote(script) .. " " .. fam .. " "
                         .. H.quote(l:addr()), 30)
      local result = serve_one(l, 11, 0.6)
      sockit.run()
      l:close()
      local status = py:wait(10)
      local out = py.output()
      py.cleanup()
      local got, ends, hung = result()
      if out:match("^no MSG_OOB") then
        -- a kernel without unix MSG_OOB (CONFIG_AF_UNIX_OOB)
        pending(out)
      end
      assert.equal(0, status, out)
      assert.is_false(hung, "the server waited for ever")
      -- the urgent byte is out of band: not in the stream
      assert.equal("ahelloworld", got)
      assert.equal("EOF", ends)
      assert.equal("ok\n", out)
    end)
  end
end)
