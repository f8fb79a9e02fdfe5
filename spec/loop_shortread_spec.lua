-- A task's conn:recv after a short read, with the loop's edge-triggered
-- poller: where a short read stops with data left (TCP urgent data, a FIN
-- that came with the last data, a unix message carrying descriptors, unix
-- MSG_OOB), or when the poller reported the socket while no task waited,
-- the next conn:recv must still get the data: a loop that waited for the
-- next edge instead would wait for ever. (The loop reads until EAGAIN
-- before it waits; a version that skipped that read after a short one,
-- tried and measured in bench/README.md, had to be told each of these.)
-- Every test has a watchdog: a hang fails, bounded.

local H = require "support.helpers"
local sockit = require "sockit"

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

  --[[
  A sockit client on 'network': it connects, waits until the server
  parks, sends "a", waits until the server has it and sleeps, then runs
  rest(c) (which sends the rest). The server collects until 'want' bytes
  or the end; returns what it got and how it ended.
  ]]
  local function exchange(network, want, rest)
    local l = assert(sockit.listen(network,
      network == "tcp" and "127.0.0.1:0" or dir .. "/s.sock"))
    local result = serve_one(l, want, 0.5)
    sockit.spawn(function()
      local c = assert(sockit.connect(network, l:addr()))
      sockit.sleep(0.2)            -- the server parks first
      assert(c:write("a"))
      sockit.sleep(0.2)            -- the server got "a" and sleeps
      rest(c)
    end)
    sockit.run()
    l:close()
    local got, ends, hung = result()
    assert.is_false(hung, "the server waited for ever")
    return got, ends
  end

  it("reads what arrived while it was not waiting (a report with no reader)", function()
    local got, ends = exchange("tcp", 2, function(c)
      assert(c:write("z"))
      assert.equal("ok", c:read(2))
      c:close()
    end)
    assert.equal("az", got)
    assert.equal("EOF", ends)
  end)

  it("reads the end of the stream that came with the last data (FIN)", function()
    local got, ends = exchange("tcp", 100, function(c)
      assert(c:write("bye"))
      c:close()
    end)
    assert.equal("abye", got)
    assert.equal("EOF", ends)
  end)

  it("reads what follows a message that carried descriptors (unix)", function()
    local got, ends = exchange("unix", 3, function(c)
      local f = assert(io.tmpfile())
      assert.equal(1, c:sendfds("x", f))
      f:close()
      assert(c:write("y"))
      assert.equal("ok", c:read(2))
      c:close()
    end)
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


-- The loop registers a socket for reading only until a task first waits
-- to write on it (loop.lua, enroll): that first wait for room must still
-- be woken when the peer makes room, over TCP and unix.
describe("a task that waited to read, then waits to write", function()
  for _, network in ipairs{"tcp", "unix"} do
    it("is woken when the peer makes room (" .. network .. ")", function()
      local dir = H.tmpdir()
      local l = assert(sockit.listen(network,
        network == "tcp" and "127.0.0.1:0" or dir .. "/w.sock"))
      local big = ("0123456789abcdef"):rep(512 * 1024)   -- 8 MiB
      local wrote, got, hung = false, nil, false
      sockit.spawn(function()
        local c = assert(l:accept())
        assert.equal("go\n", c:read("L"))     -- parks to read first
        assert(c:write(big))                   -- then waits for room
        wrote = true
        c:close()
      end)
      sockit.spawn(function()
        local c = assert(sockit.connect(network, l:addr()))
        sockit.sleep(0.1)
        assert(c:write("go\n"))
        sockit.sleep(0.3)                      -- the writer fills its buffer
        got = c:read("a")
        c:close()
      end)
      sockit.spawn(function()
        for _ = 1, math.floor(100 * H.slow) do
          if got then return end
          sockit.sleep(0.1)
        end
        hung = true
        sockit.stop()
      end)
      sockit.run()
      l:close()
      H.rmdir(dir)
      assert.is_false(hung, "the writer was never woken")
      assert.is_true(wrote)
      assert.equal(#big, #got)
      assert.is_true(got == big, "the bytes differ")
    end)
  end
end)
