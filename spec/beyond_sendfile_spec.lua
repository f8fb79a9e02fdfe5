-- spec/beyond_sendfile_spec.lua — SPEC §4 sendfile: a file to a stream
-- socket without passing through Lua, in the core (blocking, to a child
-- process) and in the Lua layer (conn:sendfile in tasks), over TCP on
-- 127.0.0.1 and unix sockets; a 10 MiB file checked by SHA-256.

local sockit = require "sockit"
local core = sockit.core
local H = require "support.helpers"
local B = require "support.beyond"

local SIZE = 10 * 1024 * 1024

describe("sendfile", function()
  local dir, path, digest, fds_before
  setup(function()
    B.warm_loop()
    dir = H.tmpdir()
    path = dir .. "/random.bin"
    assert(os.execute("head -c " .. SIZE .. " /dev/urandom > " .. H.quote(path)))
    digest = B.sha256(path)
  end)
  teardown(function() H.rmdir(dir) end)
  before_each(function() fds_before = B.count_fds() end)
  after_each(function()
    assert.equal(fds_before, B.count_fds(), "descriptors leaked")
  end)

  -- write 'data' to a file in dir and return its SHA-256
  local function sha_of(data)
    local out = dir .. "/received.bin"
    H.write_file(out, data)
    local d = B.sha256(out)
    os.remove(out)
    return d
  end

  it("core: 10 MiB to a child process over TCP arrives intact", function()
    local l = assert(core.socket("inet", "stream"))
    assert(l:bind("127.0.0.1", 0)); assert(l:listen())
    l:settimeout(10)
    local _, port = l:getsockname()
    local out = dir .. "/child.bin"
    local child = H.spawn_lua(([[
      local core = require "sockit.core"
      local c = assert(core.socket("inet", "stream"))
      c:settimeout(20)
      assert(c:connect("127.0.0.1", %d))
      local f = assert(io.open(%q, "wb"))
      while true do
        local data, msg, code = c:recv(1 << 20)
        if not data then assert(code == "EOF", msg) break end
        f:write(data)
      end
      f:close()
      print("done")
    ]]):format(port, out), {timeout = 30})
    local s = assert(l:accept())
    s:settimeout(20)
    local f = assert(io.open(path, "rb"))
    assert.equal(SIZE, s:sendfile(f))
    assert.equal(0, f:seek())                    -- the file's position is untouched
    s:close(); f:close(); l:close()
    assert.equal(0, child:wait(20))
    assert.equal("done\n", child.output())
    assert.equal(digest, B.sha256(out))
    os.remove(out)
    child.cleanup()
  end)

  for _, network in ipairs{"tcp4", "unix"} do
    it("conn:sendfile: 10 MiB over " .. network .. " in a task arrives intact", function()
      local address = network == "unix" and (dir .. "/s.sock") or "127.0.0.1:0"
      local l = assert(sockit.listen(network, address))
      local got, sent, nret = {}, nil, nil
      local ticks = 0
      sockit.spawn(function()
        local c = assert(l:accept())
        c:settimeout(20)
        local f = assert(io.open(path, "rb"))
        local r = table.pack(c:sendfile(f))
        nret = r.n                        -- bytes sent, alone (as the core)
        sent = assert(r[1])
        f:close(); c:close()
      end)
      sockit.spawn(function()
        local c = assert(sockit.connect(network, l:addr(), {timeout = 20}))
        got[1] = assert(c:read("a"))
        c:close()
      end)
      sockit.spawn(function()                    -- others run meanwhile
        while not got[1] do ticks = ticks + 1; sockit.sleep(0.001) end
      end)
      sockit.run()
      l:close()
      assert.equal(SIZE, sent)
      assert.equal(1, nret)
      assert.equal(SIZE, #got[1])
      assert.equal(digest, sha_of(got[1]))
      assert.is_true(ticks > 0)
    end)
  end

  it("offset and count: exactly that part; the end of the file ends it", function()
    local a, b = core.socketpair()
    a:settimeout(5); b:settimeout(5)
    local f = assert(io.open(path, "rb"))
    local whole = f:read(64)
    f:seek("set", 0)
    assert.equal(10, a:sendfile(f, 5, 10))
    assert.equal(whole:sub(6, 15), b:recv())
    assert.equal(3, a:sendfile(f, SIZE - 3, 100))     -- only what is left
    local f2 = assert(io.open(path, "rb")); f2:seek("set", SIZE - 3)
    assert.equal(f2:read("a"), b:recv()); f2:close()
    assert.equal(0, a:sendfile(f, SIZE))              -- at the end: 0
    assert.equal(0, a:sendfile(f, SIZE + 10, 5))      -- past it: 0
    -- far past it too: the kernel would say EOVERFLOW (2^53) or EINVAL
    -- (an offset whose sum with the count overflows)
    assert.equal(0, a:sendfile(f, 2^53, 3))
    assert.equal(0, a:sendfile(f, math.maxinteger, 3))
    assert.equal(0, a:sendfile(f, math.maxinteger))
    assert.equal(4, a:sendfile(f, 0, 4))
    assert.equal(whole:sub(1, 4), b:recv())
    f:close(); a:close(); b:close()
  end)

  it("conn:sendfile sends what is in the file, not what Lua still buffers", function()
    local l = assert(sockit.listen("unix", dir .. "/buf.sock"))
    local c = assert(sockit.connect("unix", l:addr(), {timeout = 5}))
    local s = assert(l:accept())
    s:settimeout(5)
    local name = dir .. "/partial.txt"
    local f = assert(io.open(name, "w+"))            -- sendfile reads it
    f:write("abc")                                  -- in the C stdio buffer
    assert.equal(0, c:sendfile(f))
    f:flush()
    assert.equal(3, c:sendfile(f))
    assert.equal(2, c:sendfile(f, 1))
    assert.equal("abcbc", s:read(5))
    local w = assert(io.open(name, "a"))             -- not open for reading
    local msg, code = H.fails(c:sendfile(w))
    assert.equal("EBADF", code)
    assert.equal("sendfile: Bad file descriptor", msg)
    w:close()
    f:close(); c:close(); s:close(); l:close()
  end)

  it("conn:sendfile times out with the count sent, and reports a peer gone", function()
    local l = assert(sockit.listen("tcp4", "127.0.0.1:0"))
    local c = assert(sockit.connect("tcp4", l:addr(), {timeout = 5}))
    local s = assert(l:accept())
    local f = assert(io.open(path, "rb"))
    c:settimeout(0.2)                               -- nobody reads s
    local t0 = sockit.now()
    local ok, msg, code, sent = c:sendfile(f)
    H.fails(ok, msg, code)
    assert.equal("ETIMEDOUT", code)
    assert.equal("sendfile: timed out", msg)
    assert.is_true(sent > 0 and sent < SIZE, "sent " .. tostring(sent))
    assert.is_true(sockit.now() - t0 < 2 * H.slow)
    c:settimeout(0)
    ok, msg, code, sent = c:sendfile(f, 0)
    H.fails(ok, msg, code)
    assert.equal("EAGAIN", code)
    assert.equal("sendfile: Resource temporarily unavailable", msg)
    assert.is_true(sent >= 0 and sent < SIZE)       -- whatever room there was
    -- the peer goes: EPIPE (or a reset, if it had unread data)
    s:close()
    c:settimeout(5)
    ok, msg, code = c:sendfile(f, 0)
    H.fails(ok, msg, code)
    assert.is_truthy(code == "EPIPE" or code == "ECONNRESET", code)
    assert.matches("^sendfile: ", msg)
    f:close(); c:close(); l:close()
  end)

  it("to a peer that has gone: EPIPE in a child with SIGPIPE at its default, no signal left behind", function()
    -- sendfile(2) has no MSG_NOSIGNAL; busted itself ignores SIGPIPE, so
    -- only a child with the default action shows the difference (141)
    local out, status, err = H.run_lua([[
      local sockit = require "sockit"
      local core = sockit.core
      local path = ...
      local function sigbits(field)
        local fh = assert(io.open("/proc/self/status"))
        local st = fh:read("a"); fh:close()
        return tonumber(st:match(field .. ":%s*(%x+)"), 16) & (1 << 12)
      end
      local f = assert(io.open(path, "rb"))
      local a, b = core.socketpair(); b:close()
      local _, msg, code = a:sendfile(f)
      io.write(code, "|", msg, "|", sigbits("SigBlk"), "|", sigbits("SigPnd"), "\n")
      local l = assert(sockit.listen("tcp4", "127.0.0.1:0"))
      local c = assert(sockit.connect("tcp4", l:addr(), {timeout = 5}))
      l:accept():close()
      local n1, m1, c1 = c:sendfile(f, 0, 100)   -- may still go
      local _, m2, c2 = c:sendfile(f)
      io.write(tostring(n1 or c1), "|", c2, "|", m2, "|", tostring(m1), "\n")
      f:close(); a:close(); c:close(); l:close()
    ]], {args = {path}, sigpipe = true})
    assert.equal(0, status, "child died (status " .. status .. "): " .. err)
    local code, msg, blk, pnd, l2 = out:match("^(%u+)|([^|]*)|(%d+)|(%d+)\n(.*)$")
    assert.is_truthy(code, out .. err)
    assert.equal("EPIPE", code)
    assert.equal("sendfile: Broken pipe", msg)
    assert.equal("0", blk)    -- the mask is back as it was
    assert.equal("0", pnd)    -- and the signal the call raised is gone
    local c2, m2 = l2:match("^[^|]*|(%u+)|([^|]*)|")
    assert.is_truthy(c2 == "EPIPE" or c2 == "ECONNRESET", l2)
    assert.matches("^sendfile: ", m2)
  end)

  it("raises on misuse; a closed conn; non-stream sockets have none", function()
    local a, b = core.socketpair()
    local l = assert(sockit.listen("unix", dir .. "/m.sock"))
    local c = assert(sockit.connect("unix", l:addr(), {timeout = 5}))
    local s = assert(l:accept())
    local f = assert(io.open(path, "rb"))
    assert.equal("bad argument #2 to 'sendfile' (offset must not be negative)",
                 H.raises(c.sendfile, c, f, -1))
    assert.equal("bad argument #3 to 'sendfile' (count must not be negative)",
                 H.raises(c.sendfile, c, f, 0, -5))
    assert.equal("bad argument #2 to 'sendfile' (offset must be an integer)",
                 H.raises(c.sendfile, c, f, 1.5))
    assert.matches("bad argument #1 to 'sendfile' %(file or integer descriptor expected, got string%)",
                   H.raises(c.sendfile, c, "name"))
    local g = assert(io.open(path, "rb")); g:close()
    assert.matches("attempt to use a closed file", H.raises(c.sendfile, c, g))
    local d1, d2 = core.socketpair("dgram")
    -- (was "sendfile needs a stream socket", not SPEC §1's form)
    assert.equal("bad argument #1 to 'sendfile' (stream socket expected, got dgram)",
                 H.raises(d1.sendfile, d1, f))
    local p1, p2 = core.socketpair("seqpacket")
    assert.equal("bad argument #1 to 'sendfile' (stream socket expected, got seqpacket)",
                 H.raises(p1.sendfile, p1, "not even a file"))
    p1:close(); p2:close()
    local ep = assert(sockit.bind("udp4", "127.0.0.1:0"))
    assert.is_nil(ep.sendfile)
    c:close()
    assert.equal("attempt to use a closed socket", H.raises(c.sendfile, c, f))
    for _, x in ipairs{a, b, s, l, f, d1, d2, ep} do x:close() end
  end)
end)
