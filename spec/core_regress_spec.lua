-- Regressions in sockit.core, each named after the bug it pins (STYLE 15).

local H = require "support.helpers"
local core = require "sockit.core"
local N = require "support.net"

describe("core regressions", function()
  -- sendto on an unconnected unix datagram socket whose receiver's queue
  -- is full: poll says writable, sendto says EAGAIN again at once, and the
  -- retry loop spun at 85% CPU forever, past any timeout
  it("sendto-full-unix-queue-spins: times out on time and does not spin", function()
    local dir = H.tmpdir()
    local r = assert(core.socket("unix", "dgram"))
    assert(r:bind(dir .. "/r"))
    r:setoption("rcvbuf", 1)
    local s = assert(core.socket("unix", "dgram"))
    s:settimeout(0)
    local filled = false
    for _ = 1, 10000 do   -- fill the receiver's queue
      local ok, _, code = s:sendto(("x"):rep(100), dir .. "/r")
      if not ok then assert.are.equal("EAGAIN", code); filled = true; break end
    end
    assert.is_true(filled)
    s:settimeout(0.3)
    local t0, c0 = core.now(), os.clock()
    local ok, msg, code = s:sendto("y", dir .. "/r")
    local wall, cpu = core.now() - t0, os.clock() - c0
    r:close(); s:close(); H.rmdir(dir)
    assert.is_nil(ok)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("^sendto .*/r: timed out$", msg)
    assert.is_true(wall >= 0.29 and wall < 0.3 * 5 * H.slow, "took " .. wall)
    assert.is_true(cpu < wall / 2, ("cpu %.3f s of %.3f s"):format(cpu, wall))
  end)

  -- getpeercred on a socket with no peer answered the kernel's "nobody"
  -- (pid 0, uid and gid 4294967295) as if they were credentials
  it("getpeercred-without-peer: ENOTCONN, not pid 0 and uid -1", function()
    local s = assert(core.socket("unix", "dgram"))
    local ok, msg, code = s:getpeercred()
    s:close()
    assert.is_nil(ok)
    assert.are.equal("ENOTCONN", code)
    assert.are.equal("getpeercred: the kernel has no credentials for this peer "
      .. "(a unix datagram socket, or not connected)", msg)
  end)

  -- a received descriptor that is not a socket (a passed file) could not
  -- be closed from Lua: fromfd refuses it and io cannot adopt it
  it("received-file-cannot-be-closed: core.closefd closes it, once", function()
    local a, b = core.socketpair()
    local f = assert(io.open("/etc/hostname"))
    assert(a:sendfds("x", f))
    local data, fds = assert(b:recvfds())
    assert.are.equal("x", data)
    local fd = fds[1]
    assert.is_true(H.fd_target(fd) ~= nil)
    assert.is_true(core.closefd(fd))
    local ok, msg, code = core.closefd(fd)
    assert.is_nil(ok)
    assert.are.equal("EBADF", code)
    assert.are.equal("closefd fd " .. fd .. ": Bad file descriptor", msg)
    f:close(); a:close(); b:close()
  end)
  -- a port on 127.0.0.1 where nothing listens
  local function free_port() return N.closed_port(N.by_name.inet) end

  -- getoption("error") reads SO_ERROR, which clears it: the finishing
  -- connect then saw 0 and said true on a socket with no peer
  it("connect-after-so-error-read: no false 'connected'", function()
    local s = assert(core.socket("inet", "stream"))
    s:settimeout(0)
    local port = free_port()
    local _, _, code = s:connect("127.0.0.1", port)
    assert.are.equal("EINPROGRESS", code)
    assert(s:wait("w", 5))
    assert.are.equal("ECONNREFUSED", s:getoption("error"))
    local ok, msg
    ok, msg, code = s:connect("127.0.0.1", port)
    assert.is_nil(ok, "connect said true on a socket with no peer")
    assert.are.equal("ENOTCONN", code)
    assert.matches("^connect 127%.0%.0%.1:%d+: ", msg)
    assert.not_matches("connected", tostring(s))
    s:close()
  end)

  -- a failed connect left the kernel's socket "connecting": connecting
  -- again (the listener up by now) said ECONNABORTED and tried nothing
  it("connect-retry-after-refusal: the second connect really connects", function()
    local port = free_port()
    local c = assert(core.socket("inet", "stream"))
    c:settimeout(5)
    local _, _, code = c:connect("127.0.0.1", port)
    assert.are.equal("ECONNREFUSED", code)
    local l = assert(core.socket("inet", "stream"))
    l:setoption("reuseaddr", true)
    assert(l:bind("127.0.0.1", port)); assert(l:listen())
    assert.is_true(c:connect("127.0.0.1", port))
    local _, peerport = c:getpeername()
    assert.are.equal(port, peerport)
    -- connected: another address is EISCONN, not a quiet true
    local l2 = assert(core.socket("inet", "stream"))
    assert(l2:bind("127.0.0.1", 0)); assert(l2:listen())
    local ok
    ok, _, code = c:connect(l2:getsockname())
    assert.is_nil(ok)
    assert.are.equal("EISCONN", code)
    c:close(); l:close(); l2:close()
  end)

  -- a numeric string port went to glibc as a service name, which took it
  -- modulo 65536 ("70000" -> 4464); a zero byte cut names short
  it("getaddrinfo-string-port-wraps, names-cut-at-zero-byte: misuse raises", function()
    assert.matches("bad argument #2 to '[%w%.]*getaddrinfo' %(port out of range%)",
                   H.raises(core.getaddrinfo, "127.0.0.1", "70000"))
    assert.matches("port out of range", H.raises(core.getaddrinfo, "127.0.0.1", "99999999999999999999"))
    assert.are.equal(80, core.getaddrinfo("127.0.0.1", "080")[1].port)
    assert.matches("bad argument #1 to '[%w%.]*getaddrinfo' %(host contains a zero byte%)",
                   H.raises(core.getaddrinfo, "127.0.0.1\0junk", 80))
    assert.matches("bad argument #2 to '[%w%.]*getaddrinfo' %(port contains a zero byte%)",
                   H.raises(core.getaddrinfo, "127.0.0.1", "80\0junk"))
    local u = assert(core.socket("inet", "dgram"))
    assert.matches("bad argument #1 to 'bind' %(host contains a zero byte%)",
                   H.raises(function() return u:bind("127.0.0.1\0junk", 0) end))
    assert.matches("bad argument #2 to 'sendto' %(host contains a zero byte%)",
                   H.raises(function() return u:sendto("x", "127.0.0.1\0x", 9) end))
    u:close()
    local sockit = require "sockit"
    assert.matches("bad argument #2 to 'connect' %(host contains a zero byte%)",
                   H.raises(sockit.connect, "tcp", "127.0.0.1\0x:80"))
    local ok, msg, code = core.getaddrinfo("localhost", "nosuchservice")
    assert.is_nil(ok)
    assert.are.equal("EAI_SERVICE", code)
    assert.matches("^getaddrinfo localhost:nosuchservice: ", msg)
  end)

  -- modify replaced the registered object with whatever it was given
  it("poller-modify-replaces-object: wait reports the object as added", function()
    local a, b = core.socketpair()
    local p = assert(core.poller())
    assert(p:add(a, "r")); assert(p:modify(a:fileno(), "w"))
    local n, objs = p:wait(0)
    assert.are.equal(1, n)
    assert.are.equal(a, objs[1])
    assert(p:remove(a))
    assert(p:add(b:fileno(), "w")); assert(p:modify(b, "w"))
    n, objs = p:wait(0)
    assert.are.equal(1, n)
    assert.are.equal(b:fileno(), objs[1])
    p:close(); a:close(); b:close()
  end)

  -- an IPv6 literal in an inet socket's message was not bracketed
  it("ipv6-literal-in-message: bracketed", function()
    local s = assert(core.socket("inet", "stream"))
    local _, msg = s:connect("::1", 1)
    assert.matches("^connect %[::1%]:1: ", msg)
    s:close()
  end)

  -- recvfrom on a TCP socket returned the data alone: the kernel gives no
  -- address for a connected stream (SPEC: data, host, port)
  it("recvfrom-tcp-one-value: data, host, port of the peer", function()
    local l = assert(core.socket("inet", "stream"))
    assert(l:bind("127.0.0.1", 0)); assert(l:listen())
    local c = assert(core.socket("inet", "stream"))
    assert(c:connect(l:getsockname()))
    local s = assert(l:accept())
    local _, cport = c:getsockname()
    assert(c:send("tcpdata"))
    local r = table.pack(s:recvfrom())
    assert.are.same({"tcpdata", "127.0.0.1", cport, n = 3}, r)
    -- a unix stream keeps data, path ("" unnamed)
    local a, b = core.socketpair()
    assert(a:send("u"))
    assert.are.same({"u", "", n = 2}, table.pack(b:recvfrom()))
    l:close(); c:close(); s:close(); a:close(); b:close()
  end)

  -- tostring kept what sockit last saw: "connected" after the peer had
  -- reset the connection, "connecting" after a non-blocking connect had
  -- failed (and its error had been read)
  it("tostring-stale-state: the kernel says disconnected or connect failed", function()
    local inet = N.families[1]
    local c, a, l = N.stream_pair(inet)
    assert(c:setoption("linger", 0)); c:close()   -- a reset
    local text = H.wait_until(function()
      local t = tostring(a)
      return t:find(" disconnected}$") and t
    end, 5)
    assert.matches("^sockit%.socket{inet stream fd=%d+ 127%.0%.0%.1:%d+ disconnected}$",
                   text or tostring(a))
    a:close(); l:close()

    local s = assert(core.socket("inet", "stream"))
    s:settimeout(0)
    local _, _, code = s:connect("127.0.0.1", N.closed_port(inet))
    assert.are.equal("EINPROGRESS", code)
    assert.are.equal("w", s:wait("w", 5))
    assert.matches(" connect failed}$", tostring(s))
    -- reading the state took no error away
    assert.are.equal("ECONNREFUSED", s:getoption("error"))
    assert.matches(" connect failed}$", tostring(s))
    s:close()
  end)

  -- an abstract name with a zero byte inside was cut there in messages
  -- and tostring: "\0ab\0cd" showed as "@ab"
  it("abstract-name-cut-at-zero: every byte shown, zero as \\0", function()
    local name = "\0sockit-ab\0cd-" .. H.pid()
    local shown = "@sockit-ab\\0cd-" .. H.pid()
    local s = assert(core.socket("unix", "stream"))
    local _, msg = s:connect(name)
    assert.are.equal("connect " .. shown .. ": Connection refused", msg)
    assert(s:bind(name)); assert(s:listen())
    assert.are.equal("sockit.socket{unix stream fd=" .. s:fileno() .. " " .. shown
                     .. " listening}", tostring(s))
    local c = assert(core.socket("unix", "stream"))
    assert(c:connect(name))
    assert.matches(" %-> " .. H.pat(shown) .. " connected}$", tostring(c))
    -- a backslash is escaped too, so the text is unambiguous
    _, msg = core.socket("unix", "stream"):connect("\0a\\0b")
    assert.matches("^connect @a\\\\0b: ", msg)
    _, msg = core.socket("unix", "stream"):bind("\0a\0" .. ("x"):rep(120))
    assert.matches("^bind @a\\0x+: File name too long %(123 bytes, at most 108%)$", msg)
    c:close(); s:close()
  end)

  -- a name with a zero byte inside was taken for its prefix
  -- (luaL_checkoption compares with strcmp): "inet\0x" made an inet socket
  it("option-name-with-zero-byte: invalid option, every byte shown", function()
    local s = assert(core.socket("inet", "stream"))
    local a, b = core.socketpair()
    local p = assert(core.poller())
    local cases = {
      {1, "inet\0x", function() return core.socket("inet\0x", "stream") end},
      {2, "stream\0", function() return core.socket("inet", "stream\0") end},
      {1, "dgram\0", function() return core.socketpair("dgram\0") end},
      {3, "inet\0x", function() return core.getaddrinfo("127.0.0.1", 80, "inet\0x") end},
      {4, "stream\0x", function() return core.getaddrinfo("127.0.0.1", 80, nil, "stream\0x") end},
      {1, "nodelay\0x", function() return s:getoption("nodelay\0x") end},
      {1, "nodelay\0x", function() return s:setoption("nodelay\0x", true) end},
      {1, "w\0", function() return a:shutdown("w\0") end},
      {1, "r\0", function() return a:wait("r\0", 0) end},
      {2, "r\0", function() return p:add(a, "r\0") end},
    }
    for _, c in ipairs(cases) do
      local shown = c[2]:gsub("%z", "\\0")
      assert.matches("^bad argument #" .. c[1] .. " to '[%w_.]+' %(invalid option '"
                     .. H.pat(shown) .. "'%)$", H.raises(c[3]))
    end
    p:close(); s:close(); a:close(); b:close()
  end)

  -- a port string meant one thing to bind and another to getaddrinfo:
  -- bind took "8e1" as 80 and refused "-1" as out of range, getaddrinfo
  -- said EAI_SERVICE for both; and a 20-digit port raised "no integer
  -- representation" from bind
  it("port-strings-differ: bind and getaddrinfo agree", function()
    local function bindraise(port)
      return H.raises(function() return core.socket("inet", "stream"):bind("127.0.0.1", port) end)
    end
    for _, port in ipairs{"-1", "70000", "99999999999999999999", 1e20, -1} do
      assert.matches("^bad argument #2 to '[%w%.]*getaddrinfo' %(port out of range%)$",
                     H.raises(core.getaddrinfo, "127.0.0.1", port))
      assert.are.equal("bad argument #2 to 'bind' (port out of range)", bindraise(port))
    end
    assert.are.equal(80, core.getaddrinfo("127.0.0.1", "8e1", "inet", "stream")[1].port)
    assert.are.equal(80, core.getaddrinfo("127.0.0.1", " 0x50 ", "inet", "stream")[1].port)
    local s = assert(core.socket("inet", "dgram"))
    assert(s:bind("127.0.0.1", "0e1"))
    s:close()
    -- fractions keep Lua's words; names stay service names
    assert.matches("no integer representation", H.raises(core.getaddrinfo, "127.0.0.1", "80.5"))
    assert.matches("no integer representation", bindraise("80.5"))
    local _, msg, code = core.getaddrinfo("127.0.0.1", "nosuchservice")
    assert.are.equal("EAI_SERVICE", code)
    assert.matches("^getaddrinfo 127%.0%.0%.1:nosuchservice: ", msg)
    -- sendmany's items: the same check
    local u = assert(core.socket("inet", "dgram"))
    assert.are.equal("bad argument #1 to 'sendmany' (item 1: port out of range at [3])",
      H.raises(function() return u:sendmany({{"a", "127.0.0.1", "99999999999999999999"}}) end))
    u:close()
  end)

  -- settimeout(-0.0) passed the t >= 0 check and gettimeout gave -0.0
  -- back; getaddrinfo with an empty host named nothing: "getaddrinfo : ..."
  it("negative-zero-timeout, empty-host-message: 0, and the port named", function()
    local s = assert(core.socket("inet", "stream"))
    assert(s:settimeout(-0.0))
    assert.are.equal(math.huge, 1 / s:gettimeout())
    s:close()
    local sockit = require "sockit"
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    assert(l:settimeout(-0.0))
    assert.are.equal(math.huge, 1 / l:gettimeout())
    l:close()
    local ok, msg = core.getaddrinfo("", 80)
    assert.is_nil(ok)
    assert.matches("^getaddrinfo :80: ", msg)
  end)
end)
