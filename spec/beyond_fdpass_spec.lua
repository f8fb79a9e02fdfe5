-- spec/beyond_fdpass_spec.lua — SPEC §4 on unix sockets: descriptors
-- passed with SCM_RIGHTS (core and Lua layer), peer credentials,
-- core.fromfd, and the 'inheritable' option that hands a descriptor to a
-- child process. Real sockets, real files, real child processes; every
-- test counts our descriptors before and after.

local sockit = require "sockit"
local core = sockit.core
local H = require "support.helpers"
local B = require "support.beyond"

local CTRUNC_MSG = "recvfds: more descriptors arrived than maxfds (%d); "
                   .. "those that came were closed"

-- effective uid and gid of this process (what SO_PEERCRED reports)
local function ids()
  local s = H.read_file("/proc/self/status")
  return tonumber(s:match("\nUid:%s+%d+%s+(%d+)")),
         tonumber(s:match("\nGid:%s+%d+%s+(%d+)"))
end

-- is descriptor fd close-on-exec? (the "flags:" line of fdinfo, octal)
local function cloexec(fd)
  local s = H.read_file("/proc/self/fdinfo/" .. fd)
  local flags = tonumber(s:match("flags:%s*(%d+)"), 8)
  return flags & tonumber("2000000", 8) ~= 0
end

local count_fds = B.count_fds

local function tmpfile_with(text)
  local f = io.tmpfile()
  f:write(text)
  f:flush()
  return f
end


describe("sockit.core descriptor passing", function()
  local dir, fds_before
  before_each(function()
    dir = H.tmpdir()
    fds_before = count_fds()
  end)
  after_each(function()
    H.rmdir(dir)
    assert.equal(fds_before, count_fds(), "descriptors leaked")
  end)

  it("passes a listening socket to a child process, which accepts on it", function()
    local a, b = core.socketpair()
    a:settimeout(10)
    assert.is_false(b:getoption("inheritable"))
    assert.is_true(b:setoption("inheritable", true))  -- the child's end
    local child = H.spawn_lua([[
      local core = require "sockit.core"
      local f = assert(io.open("/proc/self/stat")); local pid = f:read("n"); f:close()
      local ch = assert(core.fromfd(tonumber(arg[1])))
      ch:settimeout(10)
      local data, fds = assert(ch:recvfds())
      assert(data == "L" and #fds == 1, "expected L and one descriptor")
      local l = assert(core.fromfd(fds[1]))
      print(tostring(l))
      l:settimeout(10)
      local c = assert(l:accept())
      c:settimeout(10)
      assert(c:send(("hello from child %d\n"):format(math.tointeger(pid))))
      print("child got " .. assert(c:recv()))
      c:close(); l:close()
      assert(ch:send("done"))
    ]], {args = {b:fileno()}, timeout = 20})
    b:close()                         -- the child has its own copy now

    local l = assert(core.socket("inet", "stream"))
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    local _, port = l:getsockname()
    assert.equal(1, a:sendfds("L", l))
    l:close()                         -- only the child listens from here on

    local c = assert(core.socket("inet", "stream"))
    c:settimeout(10)
    assert(c:connect("127.0.0.1", port))
    local greeting = assert(c:recv())
    local cpid = tonumber(greeting:match("^hello from child (%d+)\n$"))
    assert.is_truthy(cpid, greeting)
    assert.not_equal(H.pid(), cpid)
    assert(c:send("hi there"))
    assert.equal("done", a:recv())
    assert.equal(0, child:wait(10))
    local out = child.output()
    assert.matches("sockit%.socket{inet stream fd=%d+ 127%.0%.0%.1:" .. port
                   .. " listening}\n", out)
    assert.matches("child got hi there\n", out, 1, true)
    c:close(); a:close()
    child.cleanup()
  end)

  -- (a received descriptor that is not a socket cannot be closed from
  -- Lua: core.fromfd refuses it, io cannot adopt it; so the side that
  -- receives files here is a child process, whose exit closes them)
  it("passes a Lua file to a child process, which reads it", function()
    local a, b = core.socketpair()
    a:settimeout(10)
    assert(b:setoption("inheritable", true))
    local child = H.spawn_lua([[
      local core = require "sockit.core"
      local ch = assert(core.fromfd(tonumber(arg[1])))
      ch:settimeout(10)
      local data, fds = assert(ch:recvfds())
      local fd = fds[1]
      local info = assert(io.open("/proc/self/fdinfo/" .. fd)):read("a")
      local flags = tonumber(info:match("flags:%s*(%d+)"), 8)
      print(("got %q and %d descriptor(s), cloexec=%s"):format(data, #fds,
            tostring(flags & tonumber("2000000", 8) ~= 0)))
      io.write(assert(io.open("/proc/self/fd/" .. fd)):read("a"))
      -- the same open file as the parent's: read from its offset with sendfile
      local x, y = core.socketpair()
      x:settimeout(5); y:settimeout(5)
      print("sendfile from it: " .. assert(x:sendfile(fd, 12, 5)) .. " bytes, "
            .. assert(y:recv()))
      assert(ch:send("done"))
    ]], {args = {b:fileno()}, timeout = 20})
    b:close()
    local f = tmpfile_with("contents of a Lua file\n")
    assert.equal(4, a:sendfds("file", f))
    assert.equal("done", a:recv())
    assert.equal(0, child:wait(10))
    assert.equal('got "file" and 1 descriptor(s), cloexec=true\n'
                 .. "contents of a Lua file\n"
                 .. "sendfile from it: 5 bytes, a Lua\n", child.output())
    f:close(); a:close()
    child.cleanup()
  end)

  it("passes sockets and integers; what arrives is close-on-exec and adoptable", function()
    for _, kind in ipairs{"stream", "dgram", "seqpacket"} do
      local a, b = core.socketpair(kind)
      b:settimeout(5)
      local x, y = core.socketpair("stream")
      local u = assert(core.socket("inet", "dgram"))
      assert(u:bind("127.0.0.1", 0))
      local data = kind == "stream" and "S" or ""    -- a record may be empty
      assert.equal(#data, a:sendfds(data, x, u:fileno()))
      local got, fds = b:recvfds()
      assert.equal(data, got)
      assert.equal(2, #fds, kind)
      assert.is_true(cloexec(fds[1]) and cloexec(fds[2]), kind)
      local x2 = assert(core.fromfd(fds[1]))
      local u2 = assert(core.fromfd(fds[2]))
      assert.equal("unix", x2:family()); assert.equal("stream", x2:type())
      assert.equal("inet", u2:family()); assert.equal("dgram", u2:type())
      assert.matches("^sockit%.socket{unix stream fd=" .. fds[1] .. " .*connected}$",
                     tostring(x2))
      assert.same({u:getsockname()}, {u2:getsockname()})
      -- the received end works: it is the same socket as x
      x2:settimeout(5); y:settimeout(5)
      assert(y:send("through the passed end"))
      assert.equal("through the passed end", x2:recv())
      for _, s in ipairs{a, b, x, y, u, x2, u2} do s:close() end
    end
  end)

  it("gives EMSGSIZE for more descriptors than maxfds, and closes what came", function()
    for _, kind in ipairs{"stream", "dgram", "seqpacket"} do
      local a, b = core.socketpair(kind)
      b:settimeout(5)
      local s1, s2 = core.socketpair()
      local before = count_fds()
      assert.equal(1, a:sendfds("x", s1, s2, s1))   -- three descriptors
      local ok, msg, code = b:recvfds(100, 2)
      H.fails(ok, msg, code)
      assert.equal("EMSGSIZE", code)
      assert.equal(CTRUNC_MSG:format(2), msg)
      assert.equal(before, count_fds(), kind .. ": the two that came leaked")
      -- the socket goes on: the next message comes whole
      assert.equal(1, a:sendfds("y", s2))
      local data, fds = b:recvfds(100, 2)
      assert.equal("y", data)
      assert.equal(1, #fds)
      assert(core.fromfd(fds[1])):close()
      for _, s in ipairs{a, b, s1, s2} do s:close() end
    end
  end)

  -- regression: msg_controllen was CMSG_SPACE(4 * maxfds), which rounds
  -- up to 8 bytes: an odd maxfds let one descriptor more arrive, and
  -- recvfds returned maxfds + 1 of them instead of EMSGSIZE
  it("an odd maxfds is exact too (CMSG_SPACE rounds up)", function()
    local a, b = core.socketpair()
    b:settimeout(5)
    local x, y = core.socketpair()
    local before = count_fds()
    for _, maxfds in ipairs{1, 3, 5} do
      local fds = {}
      for i = 1, maxfds + 1 do fds[i] = i % 2 == 1 and x or y end
      assert.equal(1, a:sendfds("o", table.unpack(fds)))
      local msg, code = H.fails(b:recvfds(10, maxfds))
      assert.equal("EMSGSIZE", code)
      assert.equal(CTRUNC_MSG:format(maxfds), msg)
      assert.equal(before, count_fds())
    end
    assert.equal(1, a:sendfds("p", x, y, x))          -- exactly maxfds: fine
    local data, got = b:recvfds(10, 3)
    assert.equal("p", data)
    assert.equal(3, #got)
    for _, fd in ipairs(got) do assert(core.fromfd(fd)):close() end
    for _, s in ipairs{a, b, x, y} do s:close() end
  end)

  it("getpeercred says this process's pid, uid and gid for a socketpair", function()
    local uid, gid = ids()
    for _, kind in ipairs{"stream", "dgram", "seqpacket"} do
      local a, b = core.socketpair(kind)
      local pid, u, g = a:getpeercred()
      assert.equal(H.pid(), pid, kind)
      assert.equal(uid, u)
      assert.equal(gid, g)
      assert.same({pid, u, g}, {b:getpeercred()})
      a:close(); b:close()
    end
  end)

  it("getpeercred names a peer process of another user", function()
    if not H.is_root() then pending("not root: cannot run a child as another user") return end
    local path = dir .. "/cred.sock"
    local l = assert(core.socket("unix", "stream"))
    assert(l:bind(path)); assert(l:listen())
    l:settimeout(10)
    os.execute("chmod 755 " .. H.quote(dir) .. "; chmod 777 " .. H.quote(path))
    -- the child connects (into the backlog), says its pid and ends; the
    -- credentials were recorded at connect time
    local out, status, err = H.run_lua(([[
      local core = require "sockit.core"
      local f = assert(io.open("/proc/self/stat")); local pid = f:read("n"); f:close()
      local c = assert(core.socket("unix", "stream"))
      c:settimeout(10)
      assert(c:connect(%q))
      assert(c:send(tostring(math.tointeger(pid))))
      print("uid " .. io.open("/proc/self/status"):read("a"):match("\nUid:%%s+(%%d+)"))
    ]]):format(path), {uid = 65534})
    assert.equal(0, status, err)
    assert.equal("uid 65534\n", out)
    local c = assert(l:accept())
    c:settimeout(10)
    local cpid = tonumber(assert(c:recv()))
    assert.same({cpid, 65534, 65534}, {c:getpeercred()})
    c:close(); l:close()
  end)

  it("fromfd and closefd refuse a descriptor a live socket or poller owns", function()
    -- a second owner would close the number again later, by then maybe
    -- someone else's descriptor
    local a, b = core.socketpair()
    local fd = a:fileno()
    local msg, code = H.fails(core.fromfd(fd))
    assert.equal("EBUSY", code)
    assert.equal("fromfd fd " .. fd .. ": owned by a live sockit socket or "
                 .. "poller (close that object, or pass a dup of the descriptor)", msg)
    msg, code = H.fails(core.closefd(b:fileno()))
    assert.equal("EBUSY", code)
    assert.truthy(msg:find("^closefd fd " .. b:fileno() .. ": owned by"))
    assert(b:send("still open"))             -- neither call touched them
    assert.equal("still open", a:recv())
    local l = assert(core.socket("inet", "stream"))
    assert(l:bind("127.0.0.1", 0)); assert(l:listen())
    local c = assert(core.socket("inet", "stream"))
    assert(c:connect(l:getsockname()))
    local accepted = assert(l:accept())
    for _, s in ipairs({l, c, accepted}) do
      assert.equal("EBUSY", select(3, core.fromfd(s:fileno())))
    end
    local p = core.poller()
    if p:fileno() then
      assert.equal("EBUSY", select(3, core.closefd(p:fileno())))
    end
    -- closed, the number is free to adopt again: a socket that reuses it
    a:close()
    local again = core.socket("unix", "dgram")
    assert.equal(fd, again:fileno())
    assert.equal("EBUSY", select(3, core.fromfd(fd)))
    -- adopted once (a plain descriptor from recvfds, say), owned after
    local x, y = core.socketpair()
    assert(x:sendfds("fd", y))
    local _, fds = assert(y:recvfds())
    local adopted = assert(core.fromfd(fds[1]))
    assert.equal("EBUSY", select(3, core.fromfd(fds[1])))
    adopted:close()
    for _, s in ipairs({b, l, c, accepted, p, again, x, y}) do s:close() end
  end)

  it("a descriptor whose ownership cannot be recorded (memory) is closed at once", function()
    -- the faults core's "own" rule fails the growth of the set of owned
    -- descriptors as a memory error would. A socket holding its
    -- descriptor unmarked until a collection let fromfd adopt that number
    -- a second time (and the collection then closed it under the new
    -- owner): the descriptor must be gone when the call raises.
    local FCORE = os.getenv("SOCKIT_FAULTS_CORE") or (H.root .. "/build/faults")
    assert.is_true(H.exists(FCORE .. "/sockit/core.so"), "make build/faults/sockit/core.so")
    local out, status, err = H.run_lua("package.cpath = " .. string.format("%q", FCORE .. "/?.so;")
      .. " .. package.cpath\n" .. [[
      local core = require "sockit.core"
      assert(core._faults, "not the faults core")
      collectgarbage("stop")   -- no finalizer may close what a call left behind
      local function open_fds()
        local t = {}
        for fd = 0, 63 do
          local f, _, errno = io.open("/proc/self/fd/" .. fd, "r")
          if f then f:close() end
          if f or errno ~= 2 then t[#t + 1] = fd end
        end
        return table.concat(t, " ")
      end
      local before = open_fds()
      core._faults("own:short:1")   -- every growth fails; this state has no set yet
      for _, make in ipairs({
        function() return core.socket("inet", "stream") end,
        function() return core.socketpair() end,
        function() return core.poller() end,
      }) do
        local ok, e = pcall(make)
        print(ok, (tostring(e):gsub("^.*: ", "")), open_fds() == before)
      end
      core._faults("")
      local s = assert(core.socket("unix", "dgram"))
      assert(s:bind(""))
      collectgarbage("restart"); collectgarbage(); collectgarbage()
      print(select(3, core.fromfd(s:fileno())), s:getsockname() ~= nil)
    ]])
    assert.equal(0, status, err)
    assert.equal(("false\tnot enough memory\ttrue\n"):rep(3) .. "EBUSY\ttrue\n", out)
  end)

  it("fromfd fails for what is not a socket, and raises on misuse", function()
    local msg, code = H.fails(core.fromfd(0))
    assert.equal("ENOTSOCK", code)
    assert.equal("fromfd fd 0: Socket operation on non-socket", msg)
    msg, code = H.fails(core.fromfd(4000))
    assert.equal("EBADF", code)
    assert.equal("fromfd fd 4000: Bad file descriptor", msg)
    assert.equal("bad argument #1 to 'sockit.core.fromfd' (invalid descriptor)",
                 H.raises(core.fromfd, -1))
    local t = assert(core.socket("inet", "stream"))
    -- (was "sendfds needs a unix socket, not inet", not SPEC §1's form)
    assert.equal("bad argument #1 to 'sendfds' (unix socket expected, got inet)",
                 H.raises(t.sendfds, t, "x", 0))
    assert.equal("bad argument #1 to 'recvfds' (unix socket expected, got inet)",
                 H.raises(t.recvfds, t))
    assert.equal("bad argument #1 to 'getpeercred' (unix socket expected, got inet)",
                 H.raises(t.getpeercred, t))
    local a, b = core.socketpair()
    assert.matches("at least one byte", H.raises(a.sendfds, a, "", b))
    assert.matches("at least one descriptor", H.raises(a.sendfds, a, "x"))
    assert.matches("maxfds must be 1..253", H.raises(b.recvfds, b, 10, 0))
    t:close(); a:close(); b:close()
  end)

  -- regression: a socket adopted with core.fromfd that was bound but
  -- neither listening nor connected printed "fresh": tostring showed
  -- only what sockit had seen this object do
  it("tostring shows the state the kernel has for what sockit did not see", function()
    local a, b = core.socketpair()
    b:settimeout(5)
    local u = assert(core.socket("inet", "dgram"))
    assert(u:bind("127.0.0.1", 0))
    local _, uport = u:getsockname()
    local t = assert(core.socket("inet", "stream"))
    assert(t:bind("127.0.0.1", 0))
    local _, tport = t:getsockname()
    local name = "sockit-adopt-" .. H.pid()
    local x = assert(core.socket("unix", "dgram"))
    assert(x:bind("\0" .. name))
    local fresh = assert(core.socket("inet", "stream"))
    assert.equal(1, a:sendfds("x", u, t, x, fresh))
    local _, fds = b:recvfds()
    local shown = {}
    for i, fd in ipairs(fds) do
      local s = assert(core.fromfd(fd))
      shown[i] = tostring(s):gsub("fd=%d+", "fd=N")
      s:close()
    end
    assert.same({
      "sockit.socket{inet dgram fd=N 127.0.0.1:" .. uport .. " bound}",
      "sockit.socket{inet stream fd=N 127.0.0.1:" .. tport .. " bound}",
      "sockit.socket{unix dgram fd=N @" .. name .. " bound}",
      "sockit.socket{inet stream fd=N 0.0.0.0:0 fresh}",
    }, shown)
    -- the kernel binds a datagram socket on its first sendto
    local d = assert(core.socket("inet", "dgram"))
    assert.matches(" 0%.0%.0%.0:0 fresh}$", tostring(d))
    assert(d:sendto("x", "127.0.0.1", uport))
    assert.matches(" 0%.0%.0%.0:%d+ bound}$", tostring(d))
    for _, o in ipairs{a, b, u, t, x, fresh, d} do o:close() end
  end)

  it("inheritable: a child sees the descriptor only while it is set", function()
    local a, b = core.socketpair()
    a:settimeout(10)
    local script = [[
      local core = require "sockit.core"
      local s, msg = core.fromfd(tonumber(arg[1]))
      if not s then print(msg) return end
      s:settimeout(5)
      assert(s:send("child " .. arg[2]))
      print("sent")
    ]]
    assert.is_false(b:getoption("inheritable"))       -- CLOEXEC by default
    local out, status = H.run_lua(script, {args = {b:fileno(), "one"}})
    assert.equal(0, status)
    assert.equal("fromfd fd " .. b:fileno() .. ": Bad file descriptor\n", out)
    assert.is_true(b:setoption("inheritable", true))
    assert.is_true(b:getoption("inheritable"))
    out, status = H.run_lua(script, {args = {b:fileno(), "two"}})
    assert.equal(0, status)
    assert.equal("sent\n", out)
    assert.equal("child two", a:recv())
    assert.is_true(b:setoption("inheritable", false))
    assert.is_false(b:getoption("inheritable"))
    out = H.run_lua(script, {args = {b:fileno(), "three"}})
    assert.equal("fromfd fd " .. b:fileno() .. ": Bad file descriptor\n", out)
    a:close(); b:close()
  end)
end)


describe("sockit descriptor passing (Lua layer)", function()
  local dir, fds_before
  local objs = {}
  local function keep(o) objs[#objs + 1] = o; return o end
  setup(B.warm_loop)
  before_each(function()
    dir = H.tmpdir()
    fds_before = count_fds()
  end)
  after_each(function()
    for _, o in ipairs(objs) do o:close() end
    objs = {}
    H.rmdir(dir)
    assert.equal(fds_before, count_fds(), "descriptors leaked")
  end)

  -- a connected unix stream pair of conns, over a listener in dir
  local function conns()
    local l = keep(assert(sockit.listen("unix", dir .. "/s")))
    local c = keep(assert(sockit.connect("unix", l:addr(), {timeout = 5})))
    local s = keep(assert(l:accept()))
    s:settimeout(5)
    return c, s
  end

  it("unix conns have sendfds, recvfds and peercred; tcp conns do not", function()
    local c, s = conns()
    local uid, gid = ids()
    assert.same({H.pid(), uid, gid}, {c:peercred()})
    assert.same({H.pid(), uid, gid}, {s:peercred()})
    local x, y = core.socketpair()
    assert.equal(5, c:sendfds("hello", x))
    local data, fds = s:recvfds()
    assert.equal("hello", data)
    assert.equal(1, #fds)
    local x2 = assert(core.fromfd(fds[1]))
    y:settimeout(5); x2:settimeout(5)
    assert(x2:send("via the copy")); assert.equal("via the copy", y:recv())
    x:close(); y:close(); x2:close()

    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    local t = keep(assert(sockit.connect("tcp4", l:addr())))
    keep(assert(l:accept()))
    assert.is_nil(t.sendfds); assert.is_nil(t.recvfds); assert.is_nil(t.peercred)
    assert.is_function(t.sendfile)
  end)

  it("recvfds: buffered bytes come first with {}, then a receive with descriptors", function()
    local c, s = conns()
    assert(c:write("line\nmore"))
    assert.equal("line", s:read("l"))            -- "more" stays buffered
    local x, y = core.socketpair()
    assert.equal(1, c:sendfds("X", x))
    local data, fds = s:recvfds()
    assert.equal("more", data)                   -- no system call: no fds
    assert.same({}, fds)
    data, fds = s:recvfds()
    assert.equal("X", data)
    assert.equal(1, #fds)
    assert(core.fromfd(fds[1])):close()
    -- max applies to the buffer too
    assert(c:write("abcdef"))
    assert.equal("ab", s:read(2))
    data, fds = s:recvfds(3)
    assert.equal("cde", data); assert.same({}, fds)
    assert.equal("f", s:read(1))
    x:close(); y:close()
  end)

  it("a plain read of bytes that carried descriptors makes the kernel close them", function()
    local c, s = conns()
    local x, y = core.socketpair()
    local before = count_fds()
    assert.equal(1, c:sendfds("Z", x, y))
    assert.equal("Z", s:read(1))
    assert.equal(before, count_fds())          -- dropped, not leaked
    x:close(); y:close()
  end)

  it("recvfds: more than maxfds is EMSGSIZE with nothing leaked", function()
    local c, s = conns()
    local x, y = core.socketpair()
    local before = count_fds()
    assert.equal(3, c:sendfds("abc", x, y, x, y))
    local ok, msg, code = s:recvfds(nil, 3)
    H.fails(ok, msg, code)
    assert.equal("EMSGSIZE", code)
    assert.equal(CTRUNC_MSG:format(3), msg)
    assert.equal(before, count_fds())
    x:close(); y:close()
  end)

  it("sends every byte of a long message with descriptors, the rest as plain bytes", function()
    local c, s = conns()
    local x, y = core.socketpair()
    local big = ("0123456789abcdef"):rep(256 * 1024)   -- 4 MiB: many sends
    local got = {}
    sockit.spawn(function()
      assert.equal(#big, c:sendfds(big, x))
    end)
    sockit.spawn(function()
      local data, fds = assert(s:recvfds())
      got.fds = fds
      got[1] = data
      local rest = assert(s:read(#big - #data))
      got[2] = rest
    end)
    sockit.run()
    assert.equal(1, #got.fds)
    assert.is_true(got[1] .. got[2] == big)
    assert(core.fromfd(got.fds[1])):close()
    x:close(); y:close()
  end)

  it("suspends in tasks: recvfds waits while other tasks run", function()
    local c, s = conns()
    local x, y = core.socketpair()
    local ticks, at = 0, nil
    local data, fds
    sockit.spawn(function()
      data, fds = s:recvfds()
      at = ticks
    end)
    sockit.spawn(function()
      for _ = 1, 10 do ticks = ticks + 1; sockit.sleep(0.01) end
    end)
    sockit.spawn(function()
      sockit.sleep(0.05)
      c:sendfds("late", x)
    end)
    sockit.run()
    assert.equal("late", data)
    assert.equal(1, #fds)
    assert.is_true(at >= 1, "the ticker ran while recvfds waited (" .. at .. ")")
    assert(core.fromfd(fds[1])):close()
    x:close(); y:close()
  end)

  it("times out and says so", function()
    local _, s = conns()
    s:settimeout(0.1)
    local ok, msg, code = s:recvfds()
    H.fails(ok, msg, code)
    assert.equal("ETIMEDOUT", code)
    assert.equal("recvfds: timed out", msg)
    s:settimeout(0)
    ok, msg, code = s:recvfds()
    H.fails(ok, msg, code)
    assert.equal("EAGAIN", code)
    assert.equal("recvfds: Resource temporarily unavailable", msg)
  end)

  it("unixgram: a connected endpoint sends descriptors, a bound one receives", function()
    local srv = keep(assert(sockit.bind("unixgram", dir .. "/g")))
    srv:settimeout(5)
    local cl = keep(assert(sockit.connect("unixgram", dir .. "/g", {timeout = 5})))
    local x, y = core.socketpair()
    assert.equal(4, cl:sendfds("gram", x))
    local data, fds = srv:recvfds()
    assert.equal("gram", data)
    assert.equal(1, #fds)
    assert(core.fromfd(fds[1])):close()
    -- no credentials on unix datagram sockets: ENOTCONN, not pid 0 / uid -1
    local msg, code = H.fails(cl:peercred())
    assert.equal("ENOTCONN", code)
    assert.matches("^getpeercred: the kernel has no credentials for this peer", msg)
    -- sendfds needs the connected peer
    msg, code = H.fails(srv:sendfds("x", x))
    assert.equal("ENOTCONN", code)
    assert.equal("sendfds: Transport endpoint is not connected", msg)
    assert.is_function(srv.sendmany)               -- unixgram: batches too
    x:close(); y:close()
  end)

  it("unixpacket: record endpoints send descriptors with records", function()
    local l = keep(assert(sockit.listen("unixpacket", dir .. "/p")))
    local c = keep(assert(sockit.connect("unixpacket", l:addr(), {timeout = 5})))
    local s = keep(assert(l:accept()))
    s:settimeout(5)
    local uid, gid = ids()
    assert.same({H.pid(), uid, gid}, {s:peercred()})
    assert.is_nil(s.sendmany)                      -- records: no batches
    local x, y = core.socketpair()
    assert.equal(3, c:sendfds("one", x))
    assert.equal(0, c:sendfds("", y))              -- an empty record with one
    local data, fds = s:recvfds()
    assert.equal("one", data); assert.equal(1, #fds)
    assert(core.fromfd(fds[1])):close()
    data, fds = s:recvfds()
    assert.equal("", data); assert.equal(1, #fds)
    assert(core.fromfd(fds[1])):close()
    c:close()
    local msg, code = H.fails(s:recvfds())
    assert.equal("EOF", code)
    assert.equal("recvfds: end of stream", msg)
    x:close(); y:close()
  end)

  -- regression: the core checked the descriptors, maxfds and sendfile's
  -- file, so misuse raised at ".../lua/sockit/fdpass.lua:42:", not at the
  -- line that called conn:sendfds, as conn:write's misuse does
  it("points misuse at the caller's line", function()
    local c, s = conns()
    local srv = keep(assert(sockit.bind("unixgram", dir .. "/g")))
    local cl = keep(assert(sockit.connect("unixgram", dir .. "/g", {timeout = 5})))
    local f = assert(io.open(dir .. "/f", "w")); f:close()
    local function at(fn)
      local line = debug.getinfo(2, "l").currentline
      local ok, err = pcall(fn)
      assert.is_false(ok)
      local where, msg = err:match("([^/]*:%d+): (.*)$")
      assert.equal("beyond_fdpass_spec.lua:" .. line, where, err)
      return msg
    end
    assert.equal("bad argument #2 to 'sendfds' (socket, file or integer descriptor expected, got table)",
                 at(function() c:sendfds("x", {}) end))
    assert.equal("bad argument #3 to 'sendfds' (invalid descriptor)",
                 at(function() c:sendfds("x", 0, -1) end))
    assert.equal("bad argument #2 to 'sendfds' (number has no integer representation)",
                 at(function() c:sendfds("x", 1.5) end))
    assert.equal("bad argument #2 to 'sendfds' (attempt to use a closed file)",
                 at(function() c:sendfds("x", f) end))
    assert.equal("bad argument #2 to 'sendfds' (at least one descriptor expected)",
                 at(function() c:sendfds("x") end))
    assert.equal("bad argument #1 to 'sendfds' (a stream needs at least one byte of data with descriptors)",
                 at(function() c:sendfds("", 0) end))
    assert.equal("bad argument #2 to 'recvfds' (maxfds must be an integer from 1 to 253)",
                 at(function() s:recvfds(10, 0) end))
    assert.equal("bad argument #1 to 'sendfile' (file or integer descriptor expected, got string)",
                 at(function() c:sendfile("name") end))
    assert.equal("bad argument #1 to 'sendfile' (attempt to use a closed file)",
                 at(function() c:sendfile(f) end))
    assert.equal("bad argument #1 to 'sendfile' (invalid descriptor)",
                 at(function() c:sendfile(-1) end))
    assert.equal("bad argument #2 to 'sendfds' (socket, file or integer descriptor expected, got boolean)",
                 at(function() cl:sendfds("x", true) end))
    assert.equal("bad argument #2 to 'recvfds' (maxfds must be an integer from 1 to 253)",
                 at(function() srv:recvfds(10, 254) end))
    local x = core.socket("unix", "stream")
    x:close()
    assert.equal("attempt to use a closed socket", at(function() c:sendfds("x", x) end))
  end)

  -- regression: "socket, file or integer descriptor expected, got
  -- sockit.listener": only core sockets were taken, though the layer's own
  -- objects hold one (.socket)
  it("sendfds takes conns, listeners and endpoints as descriptors", function()
    local c, s = conns()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    local ep = keep(assert(sockit.bind("udp4", "127.0.0.1:0")))
    assert.equal(4, c:sendfds("objs", l, ep, c, s))
    local data, fds = s:recvfds()
    assert.equal("objs", data)
    assert.equal(4, #fds)
    local kinds = {}
    for i, fd in ipairs(fds) do
      local x = assert(core.fromfd(fd))
      kinds[i] = x:family() .. " " .. x:type()
      if i == 1 then assert.equal(select(2, l.socket:getsockname()), select(2, x:getsockname())) end
      x:close()
    end
    assert.same({"inet stream", "inet dgram", "unix stream", "unix stream"}, kinds)
    -- an endpoint sends them too
    local srv = keep(assert(sockit.bind("unixgram", dir .. "/g")))
    srv:settimeout(5)
    local cl = keep(assert(sockit.connect("unixgram", dir .. "/g", {timeout = 5})))
    assert.equal(1, cl:sendfds("l", l))
    data, fds = srv:recvfds()
    assert.equal("l", data)
    assert.equal(1, #fds)
    assert(core.fromfd(fds[1])):close()
    -- a closed object is a closed socket
    ep:close()
    assert.equal("attempt to use a closed socket", H.raises(c.sendfds, c, "x", ep))
  end)

  it("raises on misuse and on a closed object", function()
    local c, s = conns()
    assert.equal("bad argument #1 to 'sendfds' (string expected, got table)",
                 H.raises(c.sendfds, c, {}, 0))
    assert.equal("bad argument #1 to 'recvfds' (max must be a positive integer)",
                 H.raises(s.recvfds, s, 0))
    c:close()
    assert.equal("attempt to use a closed socket", H.raises(c.sendfds, c, "x", 0))
    assert.equal("attempt to use a closed socket", H.raises(c.recvfds, c))
    assert.equal("attempt to use a closed socket", H.raises(c.peercred, c))
  end)
end)
