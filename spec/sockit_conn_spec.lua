-- spec/sockit_conn_spec.lua — the buffered stream conn (SPEC §3 "Conn")
-- over real sockets of every stream network: tcp4, tcp6, dual-stack tcp,
-- unix and abstract unix. Every read format, write, recv, lines, timeouts
-- that lose nothing, max_line, shutdown, close, addresses, tostring.

local sockit = require "sockit"
local H = require "support.helpers"

local v6, v6why = H.have_ipv6()
if not v6 then print("sockit_conn_spec: skipping tcp6: " .. tostring(v6why)) end

local KINDS = {
  {name = "tcp4", network = "tcp4", address = function() return "127.0.0.1:0" end,
   peer = "^127%.0%.0%.1:%d+$"},
  {name = "tcp6", network = "tcp6", address = function() return "[::1]:0" end,
   peer = "^%[::1%]:%d+$", skip = not v6 and v6why},
  {name = "tcp dual stack", network = "tcp", address = function() return ":0" end,
   peer = "^.*:%d+$"},
  {name = "unix", network = "unix", unix = true},
  {name = "unix abstract", network = "unix", unix = true, abstract = true},
}

local serial = 0

for _, kind in ipairs(KINDS) do
  describe("conn over " .. kind.name, function()
    local dir
    local objs = {}
    local function keep(o) objs[#objs + 1] = o; return o end

    setup(function() dir = H.tmpdir() end)
    teardown(function() H.rmdir(dir) end)
    after_each(function()
      for _, o in ipairs(objs) do o:close() end
      objs = {}
    end)

    local function address()
      serial = serial + 1
      if kind.abstract then
        return "@sockit-spec-" .. H.pid() .. "-" .. serial
      elseif kind.unix then
        return dir .. "/s" .. serial
      end
      return kind.address()
    end

    -- client conn, server conn, listener; both conns time out after 5 s
    local function pair(opts)
      opts = opts or {}
      if opts.timeout == nil then opts.timeout = 5 end
      local l = keep(assert(sockit.listen(kind.network, address())))
      local c = keep(assert(sockit.connect(kind.network, l:addr(), opts)))
      local s, peer = l:accept()
      assert.is_table(s)
      keep(s)
      assert.is_true(s:settimeout(5))
      return c, s, l, peer
    end

    local function skip()
      if kind.skip then pending(kind.skip) return true end
    end

    it("reads lines: 'l' drops \\n and \\r\\n, 'L' keeps them", function()
      if skip() then return end
      local c, s = pair()
      assert.equal(s, s:write("one\ntwo\r\nthree\r\nfour\n\nlast"))
      s:shutdown("w")
      assert.equal("one", c:read("l"))
      assert.equal("two", c:read())              -- default "l"
      assert.equal("three\r\n", c:read("L"))
      assert.equal("four\n", c:read("*L"))        -- "*" prefix accepted
      assert.equal("", c:read("*l"))              -- an empty line
      assert.equal("last", c:read("l"))           -- no "\n" before EOF
      local v, msg, code = c:read("l")
      H.fails(v, msg, code)
      assert.equal("EOF", code)
      assert.equal("recv: end of stream", msg)
    end)

    it("reads a line split across many writes (\\r and \\n apart)", function()
      if skip() then return end
      local c, s = pair()
      s:write("ab")
      s:write("cd\r")
      assert.equal("", c:read(0))                 -- waits for data, takes none
      s:write("\nrest\n")
      assert.equal("abcd", c:read("l"))
      assert.equal("rest", c:read("l"))
    end)

    it("reads counts, exactly n unless the stream ends", function()
      if skip() then return end
      local c, s = pair()
      s:write("0123456789")
      assert.equal("012", c:read(3))
      assert.equal("", c:read(0))
      assert.equal("3456", c:read(4.0))           -- an integral float
      s:write("abc")
      s:close()
      assert.equal("789abc", c:read(100))        -- larger than available, then EOF
      local v, msg, code = c:read(5)
      H.fails(v, msg, code)
      assert.equal("EOF", code)
      assert.equal("recv: end of stream", msg)
      v, msg, code = c:read(0)                    -- file:read(0) at EOF: fail
      assert.equal("EOF", select(2, H.fails(v, msg, code)))
    end)

    it("reads 'a' to the end, and '' once at the end", function()
      if skip() then return end
      local c, s = pair()
      s:write("x\ny\n", "z")
      assert.equal("x", c:read("l"))
      s:shutdown("w")
      assert.equal("y\nz", c:read("a"))
      assert.equal("", c:read("a"))
      assert.equal("", c:read("*a"))
      local v, _, code = c:read("l")
      assert.is_nil(v)
      assert.equal("EOF", code)
    end)

    it("reads several formats in one call, as file:read", function()
      if skip() then return end
      local c, s = pair()
      s:write("head\r\n12345tail\nrest of it")
      s:shutdown("w")
      local a, b, d, e = c:read("l", 5, "L", "a")
      assert.equal("head", a)
      assert.equal("12345", b)
      assert.equal("tail\n", d)
      assert.equal("rest of it", e)
      -- a failing format: the values before it, then nil, msg, code
      local r = table.pack(c:read("a", "l"))
      assert.equal(4, r.n)
      assert.equal("", r[1])
      assert.is_nil(r[2])
      assert.equal("recv: end of stream", r[3])
      assert.equal("EOF", r[4])
    end)

    it("bounds lines by max_line: EMSGSIZE, and the bytes stay readable", function()
      if skip() then return end
      local c, s = pair({max_line = 10})
      assert.equal(10, c.max_line)
      s:write("0123456789\n", "0123456789A\nok\n")
      assert.equal("0123456789", c:read("l"))       -- exactly max_line: fine
      local v, msg, code = c:read("l")
      H.fails(v, msg, code)
      assert.equal("EMSGSIZE", code)
      assert.equal("read: line longer than max_line (10 bytes)", msg)
      assert.equal("0123456789A\n", c:read(12))     -- nothing was lost
      assert.equal("ok", c:read("l"))
      -- a line that never ends stops growing at max_line, and stays buffered
      s:write(string.rep("z", 100))
      v, msg, code = c:read("l")
      assert.equal("EMSGSIZE", select(2, H.fails(v, msg, code)))
      c.max_line = 1000                            -- may be raised
      s:write("\n")
      assert.equal(string.rep("z", 100), c:read("l"))
    end)

    -- regression: max_line + 1 bytes with no "\n" waited for one more
    -- byte (room for a "\r"), even when the last one was not a "\r": the
    -- read waited out its timeout (or forever) instead of EMSGSIZE
    it("says EMSGSIZE as soon as a line is known to be too long", function()
      if skip() then return end
      local c, s = pair({max_line = 10})
      s:write(string.rep("q", 11))                 -- 11 bytes, not "\r"
      local t0 = sockit.now()
      local v, msg, code = c:read("l")
      assert.equal("EMSGSIZE", select(2, H.fails(v, msg, code)))
      assert.is_true(sockit.now() - t0 < 2.5)      -- the timeout is 5 s
      assert.equal(string.rep("q", 11), c:read(11))
      -- 10 bytes and a "\r": it may still end in time, so it waits
      s:write(string.rep("r", 10) .. "\r")
      c:settimeout(0.05)
      v, msg, code = c:read("l")
      assert.equal("ETIMEDOUT", select(2, H.fails(v, msg, code)))
      s:write("\n")
      assert.equal(string.rep("r", 10), c:read("l"))
    end)

    it("reads numerals with 'n', as file:read does", function()
      if skip() then return end
      local c, s = pair()
      s:write("  42\t-3.5e2\n0x10 0x1p4 .5 12abc")
      local got = {c:read("n", "n", "n", "n", "n", "n")}
      assert.same({42, -350.0, 16, 16.0, 0.5, 12}, got)
      assert.equal("integer", math.type(got[1]))
      assert.equal("float", math.type(got[2]))
      -- "abc" is no numeral: the read fails and it stays buffered
      local v, msg, code = c:read("n")
      H.fails(v, msg, code)
      assert.equal("EINVAL", code)
      assert.equal("read: not a numeral at 'abc'", msg)
      assert.equal("abc", c:read(3))
      -- a numeral at the end of what has arrived may go on: it waits
      s:write(" 123")
      c:settimeout(0.05)
      v, msg, code = c:read("n")
      assert.equal("ETIMEDOUT", select(2, H.fails(v, msg, code)))
      s:write("4e1 ")
      assert.equal(12340.0, c:read("n"))
      -- the end of the stream ends one; then "n" says EOF
      s:write(" 7")
      s:shutdown("w")
      c:settimeout(5)
      assert.equal(7, c:read("n"))
      v, msg, code = c:read("n")
      assert.equal("EOF", select(2, H.fails(v, msg, code)))
      assert.is_nil(c:lines("n")())
    end)

    it("loses nothing when a read times out (bytes in two parts)", function()
      if skip() then return end
      local c, s = pair()
      assert.is_true(c:settimeout(0.2))
      assert.equal(0.2, c:gettimeout())
      s:write("abc")
      local t0 = sockit.now()
      local v, msg, code = c:read("l")
      local dt = sockit.now() - t0
      H.fails(v, msg, code)
      assert.equal("ETIMEDOUT", code)
      assert.equal("recv: timed out", msg)
      assert.is_true(dt >= 0.15 and dt < 2, "waited " .. dt)
      s:write("def\r\nghi")
      assert.equal("abcdef", c:read("l"))
      -- a count
      v, msg, code = c:read(6)
      assert.equal("ETIMEDOUT", select(2, H.fails(v, msg, code)))
      s:write("jkl")
      assert.equal("ghijkl", c:read(6))
      -- "a"
      s:write("mno")
      v, msg, code = c:read("a")
      assert.equal("ETIMEDOUT", select(2, H.fails(v, msg, code)))
      s:write("pqr")
      s:shutdown("w")
      assert.equal("mnopqr", c:read("a"))
    end)

    it("with timeout 0 never waits: EAGAIN, and nothing lost", function()
      if skip() then return end
      local c, s = pair()
      assert.is_true(c:settimeout(0))
      local t0 = sockit.now()
      local v, msg, code = c:read("l")
      assert.is_true(sockit.now() - t0 < 0.1)
      H.fails(v, msg, code)
      assert.equal("EAGAIN", code)
      assert.equal("recv: Resource temporarily unavailable", msg)
      s:write("12")
      for _ = 1, 100 do                     -- read what came, keep it buffered
        v, msg, code = c:read(3)
        assert.is_nil(v)
        assert.equal("EAGAIN", code, msg)
        if tostring(c):match("buffered=2}") then break end
        H.sleep(0.01)
      end
      assert.matches("buffered=2}$", tostring(c))
      s:write("3")
      for _ = 1, 100 do
        v = c:read(3)
        if v then break end
        H.sleep(0.01)
      end
      assert.equal("123", v)
    end)

    it("recv returns the buffer first, then one receive", function()
      if skip() then return end
      local c, s = pair()
      s:write("line\nabcdef")
      assert.equal("line", c:read("l"))
      local got = {}
      local n = 0
      for _ = 1, 10 do                       -- the bytes after the line
        local chunk = c:recv(4)
        assert.is_true(#chunk >= 1 and #chunk <= 4)
        n = n + #chunk
        got[#got + 1] = chunk
        if n == 6 then break end
      end
      assert.equal("abcdef", table.concat(got))
      s:write("xyz")
      assert.equal("xyz", c:recv())
      s:close()
      local v, msg, code = c:recv()
      H.fails(v, msg, code)
      assert.equal("EOF", code)
    end)

    it("writes many arguments, numbers too, in one call", function()
      if skip() then return end
      local c, s = pair()
      assert.equal(c, c:write("a", 1, "-", 2.5, "", "b\n"))
      assert.equal("a1-2.5b", s:read("l"))
      -- more pieces than one writev takes
      local pieces = {}
      for i = 1, 1500 do pieces[i] = tostring(i % 10) end
      assert.equal(c, c:write(table.unpack(pieces)))
      assert.equal(c, c:write())                   -- nothing: fine
      assert.equal(table.concat(pieces), s:read(1500))
    end)

    -- regression: write returned conn, nil, nil, nil after several
    -- arguments, a number or none; numbers went as tostring wrote them
    it("returns conn alone; writes numbers as file:write does", function()
      if skip() then return end
      local c, s = pair()
      assert.equal(1, select("#", c:write("a", "b")))
      assert.equal(1, select("#", c:write(1)))
      assert.equal(1, select("#", c:write()))
      assert.equal(1, select("#", c:write("c")))
      c:write(3.0, " ", -0.0, " ", 2^63, " ", 7, " ", 0.1, " ", 1/0, "\n")
      assert.equal("ab1c3 -0 9.2233720368548e+18 7 0.1 inf", s:read("l"))
    end)

    it("iterates with lines()", function()
      if skip() then return end
      local c, s = pair()
      s:write("a\nb\r\n\nc")
      s:shutdown("w")
      local got = {}
      for line in c:lines() do got[#got + 1] = line end
      assert.same({"a", "b", "", "c"}, got)
      local c2, s2 = pair()
      s2:write("12345678")
      s2:shutdown("w")
      got = {}
      for chunk in c2:lines(3) do got[#got + 1] = chunk end
      assert.same({"123", "456", "78"}, got)
      local c3, s3 = pair()
      s3:write("p\nq\n")
      s3:shutdown("w")
      got = {}
      for all in c3:lines("a") do got[#got + 1] = all end
      assert.same({"p\nq\n"}, got)
    end)

    it("lines() raises what is not the end of the stream", function()
      if skip() then return end
      local c, s = pair()
      c:settimeout(0.1)
      s:write("only\n")
      local got = {}
      local ok, err = pcall(function()
        for line in c:lines() do got[#got + 1] = line end
      end)
      assert.is_false(ok)
      assert.same({"only"}, got)
      assert.matches("recv: timed out$", err)
    end)

    it("shutdown('w') ends the peer's stream", function()
      if skip() then return end
      local c, s = pair()
      assert.is_true(c:shutdown("w"))
      local v, _, code = s:read("l")
      assert.is_nil(v)
      assert.equal("EOF", code)
      s:write("still here\n")                       -- the other way is open
      assert.equal("still here", c:read("l"))
      assert.is_true(c:shutdown())                  -- default "rw"
    end)

    it("shutdown with a how that is not a string raises as the core does", function()
      if skip() then return end
      local c = pair()
      -- conn.socket:shutdown({}) says "string expected, got table"; the
      -- conn said "invalid option 'table: 0x...'", and a value whose
      -- __tostring raises made it raise that value instead of a message
      local ok, err = pcall(c.shutdown, c, {})
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'shutdown' %(string expected, got table%)$", err)
      ok, err = pcall(c.shutdown, c, setmetatable({}, {__tostring = error}))
      assert.is_false(ok)
      assert.equal("string", type(err))
      assert.matches("bad argument #1 to 'shutdown' %(string expected, got table%)$", err)
      ok, err = pcall(c.shutdown, c, true)
      assert.is_false(ok)
      assert.matches("string expected, got boolean%)$", err)
      ok, err = pcall(c.shutdown, c, "x")
      assert.is_false(ok)
      assert.matches("invalid option 'x'%)$", err)
      assert.is_true(c:shutdown("w"))
    end)

    it("reports a peer that has gone: EPIPE or ECONNRESET, no signal", function()
      if skip() then return end
      local c, s = pair()
      s:close()
      local ok, msg, code
      for _ = 1, 100 do
        ok, msg, code = c:write(string.rep("x", 65536))
        if not ok then break end
      end
      H.fails(ok, msg, code)
      assert.is_true(code == "EPIPE" or code == "ECONNRESET", code)
      assert.matches("^send: ", msg)
    end)

    it("says how much a write that failed had sent", function()
      if skip() then return end
      local c, s = pair()
      c:settimeout(0)
      local big = string.rep("y", 16 * 1024 * 1024)   -- more than any buffer
      local ok, msg, code, sent = c:write("head", big)
      H.fails(ok, msg, code)
      assert.equal("EAGAIN", code)
      assert.equal("send: Resource temporarily unavailable", msg)
      assert.is_true(math.type(sent) == "integer" and sent > 4 and sent < #big, tostring(sent))
      assert.equal("heady", s:read(5))
    end)

    it("gives addresses as strings", function()
      if skip() then return end
      local c, s, l, peer = pair()
      local la = l:addr()
      if kind.network == "tcp" then
        -- the listener is on the wildcard [::]; the conns on a real address
        assert.matches("^%[::%]:%d+$", la)
        local port = la:match(":(%d+)$")
        assert.equal(port, c:peer():match(":(%d+)$"))
        assert.equal(port, s:addr():match(":(%d+)$"))
      else
        assert.equal(la, c:peer())
        assert.equal(la, s:addr())
      end
      if kind.unix then
        assert.equal("", peer)                       -- an unnamed client
        assert.equal("", s:peer())
        assert.equal("", c:addr())
        if kind.abstract then assert.matches("^@sockit%-spec%-", la)
        else assert.matches("^/tmp/", la) end
      else
        assert.matches(kind.peer, la)
        assert.equal(peer, s:peer())
        assert.equal(peer, c:addr())
        assert.not_matches(":0$", la)               -- the real port
      end
    end)

    it("closes idempotently; use after close raises", function()
      if skip() then return end
      local c, s = pair()
      s:write("buffered\n")
      assert.equal("b", c:read(1))                   -- the rest is buffered
      assert.matches("^sockit%.conn{.* buffered=%d+}$", tostring(c))
      assert.is_true(c:close())
      assert.is_true(c:close())
      assert.equal("sockit.conn{closed}", tostring(c))
      assert.equal("sockit.socket{closed}", tostring(c.socket))
      for _, call in ipairs{
        function() return c:read("l") end,       -- even with bytes buffered
        function() return c:read(1) end,
        function() return c:recv() end,
        function() return c:write("x") end,
        function() return c:lines() end,
        function() return c:settimeout(1) end,
        function() return c:gettimeout() end,
        function() return c:shutdown("w") end,
        function() return c:peer() end,
        function() return c:addr() end,
      } do
        local ok, err = pcall(call)
        assert.is_false(ok)
        assert.matches("attempt to use a closed socket$", err)
      end
    end)

    -- regression: with conn.socket closed by the user (not conn:close()),
    -- the next method raised at a line of conn.lua (98, 464), not the caller's
    it("raises at the caller's line when conn.socket was closed under it", function()
      if skip() then return end
      local c, s = pair()
      s:write("x")                                    -- a read that finds data
      c.socket:close()
      local here = debug.getinfo(1, "S").short_src:match("[^/]*$")
      for _, call in ipairs{   -- (no tail calls, which would hide the line)
        function() local r = c:read("l"); return r end,
        function() local r = c:read(5); return r end,
        function() local r = c:read("a"); return r end,
        function() local r = c:recv(); return r end,
        function() local r = c:write("x"); return r end,
        function() local r = c:write("x", "y"); return r end,
        function() local r = c:lines()(); return r end,
        function() local r = c:shutdown("w"); return r end,
        function() local r = c:addr(); return r end,
      } do
        local line = debug.getinfo(call, "S").linedefined
        local ok, err = pcall(call)
        assert.is_false(ok)
        assert.equal(here .. ":" .. line .. ": attempt to use a closed socket",
                     err:match("[^/]*$"))
      end
      assert.is_true(c:close())
    end)

    -- regression: the iterator of a conn closed meanwhile raised at a
    -- line of conn.lua, not at the loop that called it
    it("raises at the loop's line when the conn closes under lines()", function()
      if skip() then return end
      local c, s = pair()
      s:write("one\ntwo\n")
      local here = debug.getinfo(1, "S").short_src:match("[^/]*$")
      local line
      local ok, err = pcall(function()
        for l in c:lines() do
          assert.equal("one", l)
          c:close()
          line = debug.getinfo(1, "l").currentline - 3   -- the for's line
        end
      end)
      assert.is_false(ok)
      assert.equal(here .. ":" .. line .. ": attempt to use a closed socket",
                   err:match("[^/]*$"))
    end)

    -- regression: once the peer had reset the connection, tostring(conn)
    -- lost the peer's address (getpeername fails) and still said "connected"
    it("prints the peer it had and 'disconnected' after a reset", function()
      if skip() then return end
      local c, s = pair()
      local peer = s:peer()
      local connected = tostring(s)
      assert.matches(" connected}$", connected)
      if kind.unix then return end           -- a unix peer's name outlives it
      assert.is_truthy(connected:find(" -> " .. peer .. " connected}", 1, true), connected)
      s:write("unread by c\n")
      -- (the core socket: the conn would take all 12 bytes into its buffer)
      assert.equal("unread", H.wait_until(function() return c.socket:recv(6) end))
      assert.is_true(c:close())                  -- bytes unread: a reset (RST)
      local ok, msg, code = s:read("a")
      H.fails(ok, msg, code)
      assert.equal("ECONNRESET", code)
      assert.is_nil(s.socket:getpeername())      -- the kernel forgot the peer
      local text = tostring(s)
      assert.is_truthy(text:find(" -> " .. peer .. " disconnected}", 1, true), text)
      assert.matches("^sockit%.conn{inet6? stream fd=%d+ ", text)
      assert.equal(peer, s:peer())
    end)

    it("closes on <close> and when collected", function()
      if skip() then return end
      local sock, fd, target
      do
        local c <close>, s = pair()
        sock = c.socket
        assert.matches("^sockit%.conn{" .. (kind.unix and "unix" or "inet"), tostring(c))
        s:write("x")
      end
      assert.equal("sockit.socket{closed}", tostring(sock))
      -- a conn nobody holds: its descriptor goes with it
      local l = keep(assert(sockit.listen(kind.network, address())))
      do
        local c = assert(sockit.connect(kind.network, l:addr()))
        fd = c.socket:fileno()
        target = H.fds()[fd]
        assert.matches("^socket:", target)
      end
      collectgarbage()
      collectgarbage()
      assert.is_false(H.target_open(target))
    end)

    it("raises on bad formats and arguments", function()
      if skip() then return end
      local c = pair()
      local function raises(text, f, ...)
        local ok, err = pcall(f, ...)
        assert.is_false(ok)
        assert.equal(text, err:match("^[^:]+:%d+: (.*)$") or err)
      end
      raises("bad argument #1 to 'read' (invalid format)", c.read, c, "x")
      raises("bad argument #2 to 'read' (invalid format)", c.read, c, "l", {})
      raises("bad argument #1 to 'read' (invalid format)", c.read, c, "*x")
      raises("bad argument #1 to 'read' (negative size)", c.read, c, -1)
      raises("bad argument #1 to 'read' (number has no integer representation)",
             c.read, c, 1.5)
      raises("bad argument #1 to 'recv' (max must be a positive integer)", c.recv, c, 0)
      raises("bad argument #2 to 'write' (string expected, got table)", c.write, c, "a", {})
      raises("bad argument #1 to 'write' (string expected, got boolean)", c.write, c, true)
      raises("bad argument #1 to 'shutdown' (invalid option 'x')", c.shutdown, c, "x")
      raises("bad argument #1 to 'settimeout' (timeout must be a non-negative number or nil)",
             c.settimeout, c, -1)
    end)
  end)
end
