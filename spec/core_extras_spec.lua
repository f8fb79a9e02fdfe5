-- spec/core_extras_spec.lua — the core's extras (core-notes "Extras"):
-- s:wait, s:sendv, s:family, s:type.

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

describe("core extras", function()
  local dir
  local keep = N.keeper(after_each)
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  describe("wait", function()
    it("times out for 'r' with nothing to read, after about the timeout", function()
      local a, b = keep(core.socketpair())
      assert.is_truthy(b)
      local t0 = core.now()
      local ok, msg, code = a:wait("r", 0.1)
      local dt = core.now() - t0
      assert.is_nil(ok)
      assert.equal("ETIMEDOUT", code)
      assert.matches("^wait.*: timed out$", msg)
      assert.is_true(dt >= 0.095 and dt < 1.5, "waited " .. dt)
    end)

    it("with timeout 0 only polls", function()
      local a = keep(core.socketpair())
      local t0 = core.now()
      local ok, _, code = a:wait("r", 0)
      assert.is_nil(ok)
      assert.equal("ETIMEDOUT", code)
      assert.is_true(core.now() - t0 < 0.5)
    end)

    it("says 'w' for a writable socket, 'r' with data, 'rw' with both", function()
      local a, b = keep(core.socketpair())
      assert.equal("w", a:wait("w", 1))
      assert.equal("w", a:wait("rw", 1))
      assert(b:send("data"))
      assert.equal("r", a:wait("r", 1))
      assert.equal("rw", a:wait("rw", 1))
    end)

    it("reports a hang-up as ready for what was asked", function()
      local a, b = core.socketpair()
      keep(a)
      b:close()
      assert.equal("r", a:wait("r", 1))
      a:settimeout(1)
      assert.equal("EOF", select(3, a:recv()))
    end)

    it("wakes a listener when a client connects", function()
      local l, addr = N.listener(N.by_name.inet, "stream", dir)
      keep(l)
      local ok, _, code = l:wait("r", 0.05)
      assert.is_nil(ok)
      assert.equal("ETIMEDOUT", code)
      local c = keep(assert(core.socket("inet", "stream")))
      c:settimeout(5)
      assert(c:connect(addr[1], addr[2]))
      assert.equal("r", l:wait("r", 5))
      l:settimeout(0)
      keep(assert(l:accept()))
    end)

    it("ignores the socket's own timeout", function()
      local a = keep(core.socketpair())
      a:settimeout(0)
      local t0 = core.now()
      local ok, _, code = a:wait("r", 0.1)
      local dt = core.now() - t0
      assert.is_nil(ok)
      assert.equal("ETIMEDOUT", code)
      assert.is_true(dt >= 0.095, "returned after " .. dt .. " s: it used timeout 0")
      a:settimeout(5)
      t0 = core.now()
      ok = a:wait("r", 0.05)
      dt = core.now() - t0
      assert.is_nil(ok)
      assert.is_true(dt < 1, "waited " .. dt .. " s: it used the socket's 5 s")
    end)

    it("with no timeout waits until the data comes (a child sends it)", function()
      local path = dir .. "/waiter"
      local r = keep(assert(core.socket("unix", "dgram")))
      assert(r:bind(path))
      -- the child's delay must outlast our own way to r:wait (slow under valgrind)
      local delay = 0.2 * H.slow
      local child = H.spawn(("sleep %.1f; echo hi | socat -u - UNIX-SENDTO:"):format(delay) .. path, 10 * H.slow)
      local guard = H.spawn(("sleep %d; echo guard | socat -u - UNIX-SENDTO:"):format(5 * H.slow) .. path, 10 * H.slow)
      finally(function()
        child.kill(); child.cleanup(); guard.kill(); guard.cleanup()
      end)
      local t0 = core.now()
      assert.equal("r", r:wait("r"))
      assert.is_true(core.now() - t0 >= 0.15 * H.slow - 0.2 * (H.slow - 1))
      r:settimeout(0)
      assert.equal("hi\n", r:recv())
    end)
  end)

  describe("sendv", function()
    it("gathers strings and numbers into one send", function()
      local a, b = keep(core.socketpair())
      a:settimeout(5); b:settimeout(5)
      local n = a:sendv({ "GET ", "/x", " HTTP/1.1\r\n", 42, " ", 1.5 })
      local want = "GET /x HTTP/1.1\r\n42 1.5"
      assert.equal(#want, n)
      assert.equal(want, N.recv_exactly(b, #want))
    end)

    it("keeps the pieces in one datagram on a dgram socket", function()
      local a, b = core.socketpair("dgram")
      keep(a, b)
      a:settimeout(5); b:settimeout(5)
      assert.equal(11, a:sendv({ "one", "two", "three" }))
      assert.equal("onetwothree", b:recv())
    end)

    it("skips the first `skip` bytes of the whole", function()
      local a, b = keep(core.socketpair())
      a:settimeout(5); b:settimeout(5)
      local list = { "hello", " ", "world" }
      assert.equal(8, a:sendv(list, 3))          -- "lo world"
      assert.equal("lo world", N.recv_exactly(b, 8))
      assert.equal(5, a:sendv(list, 6))          -- across a boundary: "world"
      assert.equal("world", N.recv_exactly(b, 5))
      assert.equal(6, a:sendv(list, 5))          -- exactly at a boundary
      assert.equal(" world", N.recv_exactly(b, 6))
      assert.equal(11, a:sendv(list, 0))
      assert.equal("hello world", N.recv_exactly(b, 11))
      assert.equal(1, a:sendv({ 12345 }, 4))     -- numbers count as their text
      assert.equal("5", N.recv_exactly(b, 1))
    end)

    it("sends nothing for an empty list or a skip past the end", function()
      local a, b = keep(core.socketpair())
      a:settimeout(5); b:settimeout(0)
      assert.equal(0, a:sendv({}))
      assert.equal(0, a:sendv({ "abc" }, 3))
      assert.equal("EAGAIN", select(3, b:recv()))
    end)

    it("takes up to 1024 pieces in one call", function()
      local a, b = keep(core.socketpair())
      a:settimeout(5); b:settimeout(5)
      local list = {}
      for i = 1, 1024 do list[i] = string.char(65 + i % 26) end
      local want = table.concat(list)
      assert.equal(1024, a:sendv(list))
      assert.equal(want, N.recv_exactly(b, 1024))
    end)

    it("returns a short count on a full stream, and resumes with skip", function()
      local c, s = N.stream_pair(N.by_name.inet, dir)
      keep(c, s)
      c:settimeout(0); s:settimeout(0)
      local pieces = {}
      for i = 1, 64 do pieces[i] = string.rep(string.char(96 + i % 26), 65536) end
      local whole = table.concat(pieces)
      local sent, got, received = 0, {}, 0
      local short = false
      local deadline = core.now() + 20
      for _ = 1, 100000 do
        if received >= #whole or core.now() > deadline then break end
        if sent < #whole then
          local n, msg, code = c:sendv(pieces, sent)
          if n then
            if sent + n < #whole then short = true end
            sent = sent + n
          else
            assert.equal("EAGAIN", code, msg)
          end
        end
        local d, msg, code = s:recv()
        if d then got[#got + 1] = d; received = received + #d
        else assert.equal("EAGAIN", code, msg) end
      end
      assert.is_true(short, "4 MiB went in one call")
      assert.equal(#whole, received)
      assert.is_true(table.concat(got) == whole, "the bytes differ")
    end)

    it("fails like send when the peer has gone", function()
      local a, b = core.socketpair()
      keep(a)
      b:close()
      local n, msg, code = a:sendv({ "x", "y" })
      assert.is_nil(n)
      assert.equal("EPIPE", code)
      assert.matches("^sendv?: Broken pipe$", msg)
    end)

    it("obeys the socket's timeout", function()
      local a, b = keep(core.socketpair())
      assert.is_truthy(b)
      a:settimeout(0.1)
      local big = { string.rep("t", 65536), string.rep("u", 65536) }
      local last
      for _ = 1, 10000 do
        local t0 = core.now()
        local n, msg, code = a:sendv(big)
        if not n then last = { core.now() - t0, msg, code }; break end
      end
      assert.is_truthy(last)
      assert.equal("ETIMEDOUT", last[3])
      assert.matches("^sendv?: timed out$", last[2])
      assert.is_true(last[1] >= 0.095 and last[1] < 1.5, "took " .. last[1])
    end)
  end)

  -- internal (docs/core-notes.md): conn:write's common case in one call
  describe("_write", function()
    local token = {}   -- stands for the conn that _write hands back

    it("sends one whole string and returns its second argument", function()
      local a, b = keep(core.socketpair())
      a:settimeout(0); b:settimeout(5)
      assert.equal(token, a:_write(token, "hello"))
      assert.equal("hello", b:recv())
      assert.equal(token, a:_write(token, ""))       -- nothing to send
      b:settimeout(0)
      assert.equal("EAGAIN", select(3, b:recv()))
    end)

    it("answers false alone for every other case, and sends nothing", function()
      local a, b = keep(core.socketpair())
      a:settimeout(0); b:settimeout(0)
      for _, args in ipairs{ {"x", "y"}, {42}, {}, {{}}, {nil} } do
        local r, k = a:_write(token, table.unpack(args, 1, args[1] == nil and 1 or #args))
        assert.is_false(r)
        assert.is_nil(k)
      end
      a:settimeout(5)                                 -- a socket that may wait
      assert.is_false(a:_write(token, "x"))
      assert.equal("EAGAIN", select(3, b:recv()))
    end)

    it("returns false and the bytes taken when the stream is full", function()
      local a, b = keep(core.socketpair())
      a:settimeout(0); b:settimeout(0)
      local chunk = string.rep("z", 1 << 20)
      local r, k
      for _ = 1, 64 do
        r, k = a:_write(token, chunk)
        if r ~= token then break end
      end
      assert.is_false(r)
      assert.is_true(math.type(k) == "integer" and k >= 0 and k < #chunk,
                     "taken: " .. tostring(k))
      r, k = a:_write(token, "more")                  -- full: nothing taken
      assert.is_false(r)
      assert.equal(0, k)
    end)

    it("fails like send when the peer has gone", function()
      local a, b = core.socketpair()
      keep(a)
      b:close()
      a:settimeout(0)
      local r, msg, code = a:_write(token, "x")
      assert.is_nil(r)
      assert.equal("EPIPE", code)
      assert.equal("send: Broken pipe", msg)
    end)

    it("checks its socket", function()
      local a = core.socket("inet", "stream")
      a:close()
      assert.has_error(function () a:_write(token, "x") end,
                       "attempt to use a closed socket")
      local ok, err = pcall(core.methods._write, io.stdout, token, "x")
      assert.is_false(ok)
      assert.matches("sockit.socket expected, got FILE%*", err)
    end)
  end)

  describe("family and type", function()
    it("name what the socket is, also for accepted sockets", function()
      local c, a, l = N.stream_pair(N.by_name.unix, dir, "seqpacket")
      keep(c, a, l)
      assert.equal("unix", a:family())
      assert.equal("seqpacket", a:type())
      assert.equal("unix", l:family())
      assert.equal("seqpacket", l:type())
      local c2, a2, l2 = N.stream_pair(N.by_name.inet, dir)
      keep(c2, a2, l2)
      assert.equal("inet", a2:family())
      assert.equal("stream", a2:type())
      local d = keep(assert(core.socket("inet", "dgram")))
      assert.equal("inet", d:family())
      assert.equal("dgram", d:type())
    end)
  end)
end)
