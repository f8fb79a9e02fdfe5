-- spec/core_errors_spec.lua — every code SPEC §1 names, produced by a real
-- failure, with its message: "<op> <addr>: <strerror>" (core-notes).

local core = require "sockit.core"
local H = require "support.helpers"
local N = require "support.net"

local function skip_if(fam)
  if fam.skip then pending(fam.skip) end
end

-- nil, msg, code with exactly this code and message
local function assert_fails(code, msg, ok, m, c)
  assert.is_nil(ok, "expected a failure, got " .. tostring(ok))
  assert.equal(code, c, "message was: " .. tostring(m))
  assert.equal(msg, m)
end

describe("core errors", function()
  local dir
  local open = {}
  local function keep(s) open[#open + 1] = s; return s end
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)
  after_each(function()
    for _, s in ipairs(open) do s:close() end
    open = {}
  end)

  describe("ECONNREFUSED", function()
    for _, fam in ipairs(N.inet_families) do
      it("connect to a closed loopback port (" .. fam.name .. ")", function()
        skip_if(fam)
        local port = N.closed_port(fam)
        local c = keep(assert(core.socket(fam.family, "stream")))
        c:settimeout(5)
        assert_fails("ECONNREFUSED", "connect " .. fam.show(fam.host, port) .. ": Connection refused",
          c:connect(fam.host, port))
      end)
    end

    it("connect to a unix socket file nobody listens on", function()
      local path = dir .. "/deaf"
      local s = keep(assert(core.socket("unix", "stream")))
      assert(s:bind(path))            -- bound, never listening
      local c = keep(assert(core.socket("unix", "stream")))
      c:settimeout(5)
      assert_fails("ECONNREFUSED", "connect " .. path .. ": Connection refused", c:connect(path))
    end)

    it("connect to an abstract name nobody bound", function()
      local name = "\0sockit-nobody-" .. H.pid()
      local c = keep(assert(core.socket("unix", "stream")))
      c:settimeout(5)
      assert_fails("ECONNREFUSED", "connect @sockit-nobody-" .. H.pid() .. ": Connection refused",
        c:connect(name))
    end)
  end)

  describe("EADDRINUSE", function()
    for _, fam in ipairs(N.inet_families) do
      it("bind the same port twice (" .. fam.name .. ")", function()
        skip_if(fam)
        local a = keep(assert(core.socket(fam.family, "stream")))
        assert(a:bind(fam.host, 0))
        assert(a:listen())
        local _, port = a:getsockname()
        local b = keep(assert(core.socket(fam.family, "stream")))
        assert_fails("EADDRINUSE", "bind " .. fam.show(fam.host, port) .. ": Address already in use",
          b:bind(fam.host, port))
      end)
    end

    it("bind the same unix path twice", function()
      local path = dir .. "/twice"
      local a = keep(assert(core.socket("unix", "stream")))
      assert(a:bind(path))
      local b = keep(assert(core.socket("unix", "stream")))
      assert_fails("EADDRINUSE", "bind " .. path .. ": Address already in use", b:bind(path))
    end)

    it("bind the same abstract name twice", function()
      local name = "\0sockit-twice-" .. H.pid()
      local a = keep(assert(core.socket("unix", "dgram")))
      assert(a:bind(name))
      local b = keep(assert(core.socket("unix", "dgram")))
      assert_fails("EADDRINUSE", "bind @sockit-twice-" .. H.pid() .. ": Address already in use",
        b:bind(name))
    end)
  end)

  describe("ENOENT", function()
    it("connect to a unix path that does not exist", function()
      local path = dir .. "/missing"
      local c = keep(assert(core.socket("unix", "stream")))
      c:settimeout(5)
      assert_fails("ENOENT", "connect " .. path .. ": No such file or directory", c:connect(path))
    end)

    it("bind in a directory that does not exist", function()
      local path = dir .. "/no/such/dir/s"
      local s = keep(assert(core.socket("unix", "stream")))
      assert_fails("ENOENT", "bind " .. path .. ": No such file or directory", s:bind(path))
    end)
  end)

  describe("EACCES", function()
    it("sendto the loopback broadcast address without the broadcast option", function()
      local r = keep(assert(core.socket("inet", "dgram")))
      assert(r:bind("0.0.0.0", 0))
      r:settimeout(5)
      local _, port = r:getsockname()
      local s = keep(assert(core.socket("inet", "dgram")))
      assert_fails("EACCES", "sendto 127.255.255.255:" .. port .. ": Permission denied",
        s:sendto("x", "127.255.255.255", port))
      -- allowed with it; the datagram stays on lo
      assert.equal(true, s:setoption("broadcast", true))
      assert.equal(2, s:sendto("bc", "127.255.255.255", port))
      assert.equal("bc", (r:recvfrom()))
    end)

    it("bind a port below 1024 as an unprivileged user", function()
      if not H.is_root() then
        -- we are that user already
        local s = keep(assert(core.socket("inet", "stream")))
        assert_fails("EACCES", "bind 127.0.0.1:80: Permission denied", s:bind("127.0.0.1", 80))
        return
      end
      if not H.have("setpriv") then pending("setpriv is missing: cannot drop to an unprivileged user") end
      local start = tonumber(H.read_file("/proc/sys/net/ipv4/ip_unprivileged_port_start") or "1024")
      if start and start <= 80 then
        pending("net.ipv4.ip_unprivileged_port_start is " .. start .. ": port 80 is not privileged here")
      end
      local out, status, err = H.run_lua([[
        local core = require "sockit.core"
        local s = assert(core.socket("inet", "stream"))
        print(s:bind("127.0.0.1", 80))
      ]], { uid = 65534 })
      assert.equal(0, status, err)
      assert.equal("nil\tbind 127.0.0.1:80: Permission denied\tEACCES\n", out)
    end)
  end)

  describe("ENAMETOOLONG", function()
    it("a unix path longer than 107 bytes, never truncated", function()
      local own = H.tmpdir()           -- its own, to see that nothing appears
      finally(function() H.rmdir(own) end)
      local long = own .. "/" .. string.rep("n", 108 - #own - 1)
      assert.equal(108, #long)
      local s = keep(assert(core.socket("unix", "stream")))
      local ok, msg, code = s:bind(long)
      assert.is_nil(ok)
      assert.equal("ENAMETOOLONG", code)
      -- the whole path is in the message, then the reason
      local head = "bind " .. long .. ": File name too long"
      assert.equal(head, msg:sub(1, #head))
      -- nothing was made under a shortened name, the socket is still unbound
      assert.same({}, H.ls(own))
      assert.matches(" fresh}$", tostring(s))
      -- connect and sendto say the same
      local c = keep(assert(core.socket("unix", "stream")))
      ok, msg, code = c:connect(long)
      assert.is_nil(ok)
      assert.equal("ENAMETOOLONG", code)
      head = "connect " .. long .. ": File name too long"
      assert.equal(head, msg:sub(1, #head))
      local d = keep(assert(core.socket("unix", "dgram")))
      ok, msg, code = d:sendto("x", long .. "/more")
      assert.is_nil(ok)
      assert.equal("ENAMETOOLONG", code)
      head = "sendto " .. long .. "/more: File name too long"
      assert.equal(head, msg:sub(1, #head))
    end)

    it("a unix path of exactly 107 bytes binds, whole", function()
      local path = dir .. "/" .. string.rep("k", 107 - #dir - 1)
      assert.equal(107, #path)
      local s = keep(assert(core.socket("unix", "stream")))
      assert.equal(true, s:bind(path))
      assert.equal(path, (s:getsockname()))
      assert.is_true(H.exists(path))
      assert(s:listen())
      local c = keep(assert(core.socket("unix", "stream")))
      c:settimeout(5)
      assert.equal(true, c:connect(path))
      assert.equal(path, (c:getpeername()))
    end)

    it("an abstract name: 107 bytes after the zero byte bind, 108 are too long", function()
      local ok_name = "\0" .. string.rep("a", 106) .. "Z"
      assert.equal(108, #ok_name)
      local s = keep(assert(core.socket("unix", "dgram")))
      assert.equal(true, s:bind(ok_name))
      assert.equal(ok_name, (s:getsockname()))
      local long = "\0" .. string.rep("b", 108)
      local t = keep(assert(core.socket("unix", "dgram")))
      local ok, msg, code = t:bind(long)
      assert.is_nil(ok)
      assert.equal("ENAMETOOLONG", code)
      local head = "bind @" .. string.rep("b", 108) .. ": File name too long"
      assert.equal(head, msg:sub(1, #head))
    end)
  end)

  describe("EAGAIN", function()
    it("recv, recvfrom, accept and send with timeout 0 when they would block", function()
      local a, b = core.socketpair()
      keep(a); keep(b)
      a:settimeout(0)
      assert_fails("EAGAIN", "recv: Resource temporarily unavailable", a:recv())
      local u = keep(assert(core.socket("inet", "dgram")))
      assert(u:bind("127.0.0.1", 0))
      u:settimeout(0)
      assert_fails("EAGAIN", "recvfrom: Resource temporarily unavailable", u:recvfrom())
      local l = keep(assert(core.socket("inet", "stream")))
      assert(l:bind("127.0.0.1", 0))
      assert(l:listen())
      l:settimeout(0)
      -- accept may name the listener's address (SPEC §1: "where one is involved")
      local ok, msg, code = l:accept()
      assert.is_nil(ok)
      assert.equal("EAGAIN", code)
      local _, lport = l:getsockname()
      assert.is_truthy(msg == "accept: Resource temporarily unavailable"
        or msg == "accept 127.0.0.1:" .. lport .. ": Resource temporarily unavailable", msg)
      -- fill a's send buffer (b never reads): bounded
      local chunk = string.rep("f", 65536)
      local last = {}
      for _ = 1, 10000 do
        local n, smsg, scode = a:send(chunk)
        if not n then last = { smsg, scode }; break end
      end
      assert.equal("EAGAIN", last[2])
      assert.equal("send: Resource temporarily unavailable", last[1])
    end)
  end)

  describe("ETIMEDOUT", function()
    it("recv with timeout 0.1 gives up after about 0.1 s", function()
      local a, b = core.socketpair()
      keep(a); keep(b)
      assert.equal(true, a:settimeout(0.1))
      local t0 = core.now()
      local ok, msg, code = a:recv()
      local dt = core.now() - t0
      assert_fails("ETIMEDOUT", "recv: timed out", ok, msg, code)
      assert.is_true(dt >= 0.095, "timed out after only " .. dt .. " s")
      assert.is_true(dt < 1.5, "timed out after " .. dt .. " s")
      -- and data that arrives in time is received
      assert(b:send("in time"))
      assert.equal("in time", a:recv())
    end)
  end)

  describe("EOF", function()
    it("recv after the peer closed (inet)", function()
      local c, a = N.stream_pair(N.by_name.inet, dir)
      keep(c); keep(a)
      c:close()
      assert_fails("EOF", "recv: end of stream", a:recv())
    end)
  end)

  describe("ECONNRESET", function()
    it("recv after the peer closed with linger 0 (an RST)", function()
      local c, a = N.stream_pair(N.by_name.inet, dir)
      keep(c); keep(a)
      assert.equal(true, a:setoption("linger", 0))
      a:close()
      assert_fails("ECONNRESET", "recv: Connection reset by peer", c:recv())
    end)

    it("recv after the peer closed with unread data", function()
      local c, a = N.stream_pair(N.by_name.inet, dir)
      keep(c); keep(a)
      assert(c:send("never read"))
      assert(a:wait("r", 5))
      a:close()                        -- unread data: the kernel sends RST
      assert_fails("ECONNRESET", "recv: Connection reset by peer", c:recv())
    end)
  end)

  describe("EPIPE or ECONNRESET on send, in a child that must survive", function()
    -- the child prints "code|message|sends" and exits 0; SIGPIPE would
    -- kill it (status 141) before it could
    local child = [[
      local core = require "sockit.core"
      local kind, dir = ...
      local c, a
      if kind == "pair" then
        c, a = core.socketpair()
      else
        local l = assert(core.socket(kind == "unix" and "unix" or kind, "stream"))
        if kind == "unix" then assert(l:bind(dir .. "/epipe"))
        elseif kind == "inet" then assert(l:bind("127.0.0.1", 0))
        else assert(l:bind("::1", 0)) end
        assert(l:listen())
        l:settimeout(5)
        c = assert(core.socket(kind, "stream"))
        c:settimeout(5)
        assert(c:connect(l:getsockname()))
        a = assert(l:accept())
        l:close()
      end
      a:close()
      c:settimeout(5)
      local chunk = string.rep("p", 4096)
      for i = 1, 1000 do
        local n, msg, code = c:send(chunk)
        if not n then
          io.write(code, "|", msg, "|", i, "\n")
          os.exit(0)
        end
      end
      io.write("NOERROR|1000 sends succeeded|1000\n")
      os.exit(0)
    ]]
    it("(control: a child that does die of SIGPIPE is seen to)", function()
      local out, status = H.run_lua([[
        local p = io.popen("true", "w")
        os.execute("sleep 0.1")
        p:write(string.rep("x", 1000000))
        p:flush()
        print("alive")
      ]], { sigpipe = true })
      assert.equal(128 + 13, status)
      assert.equal("", out)
    end)

    for _, kind in ipairs({ "inet", "inet6", "unix", "pair" }) do
      it("send after the peer closed (" .. kind .. ")", function()
        if kind == "inet6" then skip_if(N.by_name.inet6) end
        local out, status, err = H.run_lua(child, { args = { kind, dir }, sigpipe = true })
        assert.equal(0, status, "child died (status " .. status .. "): " .. err)
        local code, msg, sends = out:match("^(%u+)|([^|]*)|(%d+)\n$")
        assert.is_truthy(code, "child printed: " .. out .. err)
        assert.is_truthy(code == "EPIPE" or code == "ECONNRESET", "code " .. code)
        assert.equal("send: " .. N.strerror[code], msg)
        assert.is_true(tonumber(sends) <= 1000)
        if kind == "pair" or kind == "unix" then
          -- a unix peer that has gone is EPIPE at once
          assert.equal("EPIPE", code)
          assert.equal("1", sends)
        end
      end)
    end
  end)

  describe("EAI_", function()
    it("getaddrinfo of nosuch.invalid", function()
      local r, msg, code = core.getaddrinfo("nosuch.invalid", 80)
      assert.is_nil(r)
      assert.matches("^EAI_%u+$", code)
      assert.is_truthy(N.strerror[code], "unexpected code " .. code)
      assert.equal("getaddrinfo nosuch.invalid: " .. N.strerror[code], msg)
    end)

    it("bind and sendto with a name that does not resolve name the address", function()
      local s = keep(assert(core.socket("inet", "dgram")))
      local ok, msg, code = s:bind("nosuch.invalid", 0)
      assert.is_nil(ok)
      assert.matches("^EAI_%u+$", code)
      assert.equal("bind nosuch.invalid:0: " .. N.strerror[code], msg)
      ok, msg, code = s:sendto("x", "nosuch.invalid", 9)
      assert.is_nil(ok)
      assert.matches("^EAI_%u+$", code)
      assert.equal("sendto nosuch.invalid:9: " .. N.strerror[code], msg)
    end)
  end)

  describe("EMSGSIZE", function()
    it("a UDP datagram longer than max, with its real length", function()
      local a, b, _, ba = N.dgram_pair(N.by_name.inet, dir)
      keep(a); keep(b)
      assert.equal(1234, a:sendto(string.rep("m", 1234), ba[1], ba[2]))
      assert_fails("EMSGSIZE", "recvfrom: datagram of 1234 bytes is longer than max 1000",
        b:recvfrom(1000))
    end)
  end)

  describe("non-blocking connect", function()
    for _, fam in ipairs(N.inet_families) do
      it("EINPROGRESS, then connect again finishes it (" .. fam.name .. ")", function()
        skip_if(fam)
        local l, addr = N.listener(fam, "stream", dir)
        keep(l)
        l:settimeout(5)
        local c = keep(assert(core.socket(fam.family, "stream")))
        assert.equal(true, c:settimeout(0))
        assert_fails("EINPROGRESS",
          "connect " .. fam.show(addr[1], addr[2]) .. ": Operation now in progress",
          c:connect(addr[1], addr[2]))
        -- tostring asks the kernel: on the loopback the handshake may
        -- be over already
        local text = tostring(c)
        assert.is_truthy(text:find(" connecting}$") or text:find(" connected}$"), text)
        assert.equal("w", c:wait("w", 5))
        assert.equal(true, c:connect(addr[1], addr[2]))
        assert.matches(" connected}$", tostring(c))
        local a = keep(assert(l:accept()))
        c:settimeout(5)
        assert(c:send("finished"))
        assert.equal("finished", a:recv())
      end)

      it("EINPROGRESS, then connect again reports the refusal (" .. fam.name .. ")", function()
        skip_if(fam)
        local port = N.closed_port(fam)
        local c = keep(assert(core.socket(fam.family, "stream")))
        c:settimeout(0)
        local expect = "connect " .. fam.show(fam.host, port) .. ": Connection refused"
        local ok, msg, code = c:connect(fam.host, port)
        assert.is_nil(ok)
        if code == "EINPROGRESS" then
          assert.equal("connect " .. fam.show(fam.host, port) .. ": Operation now in progress", msg)
          assert.equal("w", c:wait("w", 5))
          assert_fails("ECONNREFUSED", expect, c:connect(fam.host, port))
        else
          -- the loopback may refuse before connect returns
          assert_fails("ECONNREFUSED", expect, ok, msg, code)
        end
      end)

      it("EALREADY while still in progress, then ETIMEDOUT under a timeout (" .. fam.name .. ")", function()
        skip_if(fam)
        -- a listener whose backlog is full drops SYNs: connects stay in progress
        local l, addr = N.listener(fam, "stream", dir, 0)
        keep(l)
        local stuck
        for _ = 1, 20 do
          local c = keep(assert(core.socket(fam.family, "stream")))
          c:settimeout(0)
          local ok, _, code = c:connect(addr[1], addr[2])
          assert.is_nil(ok)
          assert.equal("EINPROGRESS", code)
          local ok2, msg2, code2 = c:connect(addr[1], addr[2])
          if not ok2 and code2 == "EALREADY" then
            assert.equal("connect " .. fam.show(addr[1], addr[2]) .. ": Operation already in progress",
              msg2)
            stuck = c
            break
          end
        end
        assert.is_truthy(stuck, "no connect stayed in progress against a full backlog")
        stuck:settimeout(0.2)
        local t0 = core.now()
        local ok, msg, code = stuck:connect(addr[1], addr[2])
        local dt = core.now() - t0
        assert_fails("ETIMEDOUT", "connect " .. fam.show(addr[1], addr[2]) .. ": timed out",
          ok, msg, code)
        assert.is_true(dt >= 0.19, "gave up after " .. dt)
        assert.is_true(dt < 2, "gave up after " .. dt)
      end)
    end

    it("a connecting socket finishes under a later positive timeout", function()
      local l, addr = N.listener(N.by_name.inet, "stream", dir)
      keep(l)
      local c = keep(assert(core.socket("inet", "stream")))
      c:settimeout(0)
      local _, _, code = c:connect(addr[1], addr[2])
      assert.equal("EINPROGRESS", code)
      c:settimeout(5)
      assert.equal(true, c:connect(addr[1], addr[2]))
      assert.equal(addr[2], select(2, c:getpeername()))
    end)
  end)

  -- SPEC §1: the code is the errno's symbolic name, whichever errno the
  -- kernel gives: ones outside the commonest (ENONET, ECOMM, EREMOTEIO,
  -- EBADFD, ...) said "EUNKNOWN". strace makes connect(2) fail with them.
  describe("every errno by its name", function()
    for _, e in ipairs({"ENONET", "ECOMM", "EREMOTEIO", "EBADFD", "EUCLEAN"}) do
      it(e .. " from connect", function()
        assert.is_true(H.have("strace"), "strace is needed (tools/deps.sh installs it)")
        local out, status, err = H.run_lua([[
          local core = require "sockit.core"
          local c = core.socket("inet", "stream")
          print(c:connect("127.0.0.1", 1))
        ]], {prefix = "strace -f -o /dev/null -e trace=connect -e inject=connect:error=" .. e})
        assert.equal(0, status, err)
        assert.matches("^nil\tconnect 127%.0%.0%.1:1: [^\t]+\t" .. e .. "\n$", out)
      end)
    end
  end)
end)
