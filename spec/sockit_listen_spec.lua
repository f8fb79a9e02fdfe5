-- spec/sockit_listen_spec.lua — sockit.listen and the listener: accept
-- and its peer, addr after ":0", settimeout, options, dual stack, and the
-- unix socket file: a stale one replaced, a live one or a file that is
-- not a socket refused (and untouched), removed on close.

local sockit = require "sockit"
local core = require "sockit.core"
local H = require "support.helpers"

local v6, v6why = H.have_ipv6()

describe("sockit.listen", function()
  local objs = {}
  local function keep(o) objs[#objs + 1] = o; return o end
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)
  after_each(function()
    for _, o in ipairs(objs) do o:close() end
    objs = {}
  end)

  it("gives the real port after ':0' and accepts with the peer's address", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    local a = l:addr()
    assert.matches("^127%.0%.0%.1:%d+$", a)
    assert.not_equal("127.0.0.1:0", a)
    assert.matches("^sockit%.listener{inet stream fd=%d+ 127%.0%.0%.1:%d+ listening}$",
                   tostring(l))
    local c = keep(assert(sockit.connect("tcp4", a)))
    local s, peer = l:accept()
    keep(s)
    assert.equal(c:addr(), peer)
    assert.equal(peer, s:peer())
    assert.matches("^sockit%.conn{", tostring(s))
  end)

  it("listens on tcp6", function()
    if not v6 then pending("no IPv6: " .. tostring(v6why)) return end
    local l = keep(assert(sockit.listen("tcp6", "[::1]:0")))
    assert.matches("^%[::1%]:%d+$", l:addr())
    assert.is_true(l.socket:getoption("v6only"))
    local c = keep(assert(sockit.connect("tcp6", l:addr())))
    local s, peer = l:accept()
    keep(s)
    assert.equal(c:addr(), peer)
    assert.matches("^%[::1%]:%d+$", peer)
  end)

  it("listens on every interface for 'tcp' ':0', IPv4 clients too", function()
    local l = keep(assert(sockit.listen("tcp", ":0")))
    local port = l:addr():match(":(%d+)$")
    if v6 then
      assert.equal("[::]:" .. port, l:addr())
      assert.is_false(l.socket:getoption("v6only"))
    else
      assert.equal("0.0.0.0:" .. port, l:addr())
    end
    local c = keep(assert(sockit.connect("tcp4", "127.0.0.1:" .. port)))
    local s, peer = l:accept()
    keep(s)
    assert.equal(c:addr(), peer)                  -- "127.0.0.1:P", not v4-mapped
    assert.matches("^127%.0%.0%.1:%d+$", peer)
    if v6 then
      c = keep(assert(sockit.connect("tcp6", "[::1]:" .. port)))
      s, peer = l:accept()
      keep(s)
      assert.equal(c:addr(), peer)
    end
  end)

  it("sets reuseaddr by default for tcp, and the other options", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    assert.is_true(l.socket:getoption("reuseaddr"))
    local l2 = keep(assert(sockit.listen("tcp4", "127.0.0.1:0",
      {reuseaddr = false, reuseport = true, backlog = 4, nodelay = true})))
    assert.is_false(l2.socket:getoption("reuseaddr"))
    assert.is_true(l2.socket:getoption("reuseport"))
    keep(assert(sockit.connect("tcp4", l2:addr())))
    local s = keep(assert(l2:accept()))
    assert.is_true(s.socket:getoption("nodelay"))        -- on every accepted conn
    keep(assert(sockit.connect("tcp4", l:addr())))
    s = keep(assert(l:accept()))
    assert.is_false(s.socket:getoption("nodelay"))
  end)

  it("hands max_line on to accepted conns", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0", {max_line = 3})))
    local c = keep(assert(sockit.connect("tcp4", l:addr(), {timeout = 5})))
    local s = keep(assert(l:accept()))
    c:write("abcd\n")
    local v, msg, code = s:read("l")
    H.fails(v, msg, code)
    assert.equal("EMSGSIZE", code)
    assert.equal("read: line longer than max_line (3 bytes)", msg)
  end)

  -- regression: a backlog out of range raised from core listen after the
  -- bind, as "bad argument #1" at listener.lua's line; the bound socket
  -- held its port until garbage collection and a unix socket file stayed
  it("raises for a backlog out of range before anything is made", function()
    collectgarbage(); collectgarbage()
    collectgarbage("stop")                  -- a leaked socket stays open
    local before = H.count_fds()
    for _, b in ipairs({-1, 2^31, math.maxinteger, 2.5, "5"}) do
      local line = debug.getinfo(1, "l").currentline + 1
      local ok, err = pcall(function() local l = sockit.listen("tcp", "127.0.0.1:0", {backlog = b}); return l end)
      assert.is_false(ok)
      assert.equal("sockit_listen_spec.lua:" .. line .. ": bad argument #3 to 'listen' "
                   .. "(opts.backlog must be an integer from 0 to 2147483647, got "
                   .. (type(b) == "number" and tostring(b) or type(b)) .. ")",
                   err:match("[^/]*$"))
      local path = dir .. "/backlog"
      assert.matches("^bad argument #3 to 'listen' %(opts%.backlog",
                     H.raises(sockit.listen, "unix", path, {backlog = b}))
      assert.is_false(H.exists(path))
    end
    local after = H.count_fds()
    collectgarbage("restart")
    assert.equal(before, after)
    -- an integral float is an integer, as luaL_checkinteger has it
    local l = keep(assert(sockit.listen("tcp", "127.0.0.1:0", {backlog = 5.0})))
    keep(assert(sockit.connect("tcp", l:addr())))
    keep(assert(l:accept()))
    keep(assert(sockit.listen("tcp", "127.0.0.1:0", {backlog = 0})))
  end)

  it("says EADDRINUSE for a tcp port in use", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    local l2, msg, code = sockit.listen("tcp4", l:addr(), {reuseaddr = false})
    H.fails(l2, msg, code)
    assert.equal("EADDRINUSE", code)
    assert.equal("bind " .. l:addr() .. ": Address already in use", msg)
  end)

  it("bounds accept with settimeout: ETIMEDOUT, and 0 never waits", function()
    local l = keep(assert(sockit.listen("tcp4", "127.0.0.1:0")))
    assert.is_true(l:settimeout(0.2))
    assert.equal(0.2, l:gettimeout())
    local t0 = sockit.now()
    local s, msg, code = l:accept()
    local dt = sockit.now() - t0
    H.fails(s, msg, code)
    assert.equal("ETIMEDOUT", code)
    assert.equal("accept: timed out", msg)
    assert.is_true(dt >= 0.15 and dt < 1, "took " .. dt)
    l:settimeout(0)
    s, msg, code = l:accept()
    H.fails(s, msg, code)
    assert.equal("EAGAIN", code)
    assert.equal("accept: Resource temporarily unavailable", msg)
    l:settimeout(nil)
    keep(assert(sockit.connect("tcp4", l:addr())))
    keep(assert(l:accept()))                          -- no timeout: waits, gets it
  end)

  it("closes idempotently; use after close raises", function()
    local l = assert(sockit.listen("tcp4", "127.0.0.1:0"))
    assert.is_true(l:close())
    assert.is_true(l:close())
    assert.equal("sockit.listener{closed}", tostring(l))
    for _, f in ipairs{l.accept, l.addr, l.settimeout, l.gettimeout} do
      local ok, err = pcall(f, l, 1)
      assert.is_false(ok)
      assert.matches("attempt to use a closed socket$", err)
    end
    do
      local l2 <close> = assert(sockit.listen("tcp4", "127.0.0.1:0"))
      l = l2
    end
    assert.equal("sockit.socket{closed}", tostring(l.socket))
  end)

  describe("on a unix path", function()
    it("accepts, the peer of an unnamed client being ''", function()
      local path = dir .. "/plain"
      local l = keep(assert(sockit.listen("unix", path)))
      assert.equal(path, l:addr())
      local c = keep(assert(sockit.connect("unix", path, {timeout = 5})))
      local s, peer = l:accept()
      keep(s)
      assert.equal("", peer)
      s:write("over unix\n")
      assert.equal("over unix", c:read("l"))
    end)

    it("removes the file it made when closed", function()
      local path = dir .. "/removed"
      local l = assert(sockit.listen("unix", path))
      assert.is_true(H.exists(path))
      l:close()
      assert.is_false(H.exists(path))
    end)

    it("replaces a stale socket file", function()
      local path = dir .. "/stale"
      local old = assert(core.socket("unix", "stream"))
      assert(old:bind(path))
      old:close()                                    -- the file stays behind
      assert.is_true(H.exists(path))
      local l = keep(assert(sockit.listen("unix", path)))
      local c = keep(assert(sockit.connect("unix", path, {timeout = 5})))
      keep(assert(l:accept()))
      assert.equal(path, c:peer())
    end)

    -- regression: a symbolic link to a stale socket file was followed by
    -- the staleness probe and then removed and replaced by a socket file:
    -- the user's link was gone
    it("leaves a symbolic link to a stale socket file alone: EADDRINUSE", function()
      local target, link = dir .. "/stale-target", dir .. "/link"
      local old = assert(core.socket("unix", "stream"))
      assert(old:bind(target))
      old:close()                                    -- stale: nobody bound
      assert(os.execute("ln -s " .. H.quote(target) .. " " .. H.quote(link)))
      local l, msg, code = sockit.listen("unix", link)
      H.fails(l, msg, code)
      assert.equal("EADDRINUSE", code)
      local _, kind = core.fileid(link)
      assert.equal("other", kind)                    -- still the link
      assert.equal(target, (H.sh("readlink " .. H.quote(link)):gsub("\n$", "")))
      local _, tkind = core.fileid(target)
      assert.equal("socket", tkind)                  -- and its target
    end)

    it("refuses a live socket file: EADDRINUSE", function()
      local path = dir .. "/live"
      local l = keep(assert(sockit.listen("unix", path)))
      local l2, msg, code = sockit.listen("unix", path)
      H.fails(l2, msg, code)
      assert.equal("EADDRINUSE", code)
      assert.equal("bind " .. path .. ": Address already in use", msg)
      -- the first listener still works
      local c = keep(assert(sockit.connect("unix", path, {timeout = 5})))
      local s = keep(assert(l:accept()))
      c:write("still alive\n")
      s:settimeout(5)
      assert.equal("still alive", s:read("l"))
    end)

    -- regression: telling a live path from a stale file connected to it,
    -- so the live listener's next accept returned that probe (peer "",
    -- EOF at once) in place of the real client
    it("checks a live path without handing its listener a connection", function()
      local path = dir .. "/noprobe"
      local l = keep(assert(sockit.listen("unix", path)))
      for _, net in ipairs({"unix", "unixpacket"}) do
        local l2, _, code = sockit.listen(net, path)
        assert.is_nil(l2)
        assert.equal("EADDRINUSE", code)
      end
      local ep, _, code = sockit.bind("unixgram", path)
      assert.is_nil(ep)
      assert.equal("EADDRINUSE", code)
      l:settimeout(0)
      local s, _, acode = l:accept()
      assert.is_nil(s)
      assert.equal("EAGAIN", acode)
      local c = keep(assert(sockit.connect("unix", path, {timeout = 5})))
      s = keep(assert(l:accept()))
      c:write("the real client\n")
      s:settimeout(5)
      assert.equal("the real client", s:read("l"))
    end)

    -- regression: a path bound by a socket that is open but not listening
    -- (a client's opts.bind, a bound socket) counted as stale, and a
    -- second listen/bind deleted it from under its owner
    it("refuses a path bound by a live socket that is not listening", function()
      local srv = keep(assert(sockit.listen("unix", dir .. "/srv")))
      local psrv = keep(assert(sockit.listen("unixpacket", dir .. "/psrv")))
      local bound = dir .. "/bound"
      local raw = assert(core.socket("unix", "stream"))
      assert(raw:bind(bound))
      local cases = {
        {function(p) return keep(assert(sockit.connect("unix", dir .. "/srv",
                                   {bind = p, timeout = 5}))) end, srv},
        {function(p) return keep(assert(sockit.connect("unixpacket", dir .. "/psrv",
                                   {bind = p, timeout = 5}))) end, psrv},
        {function(p) return keep(assert(sockit.bind("unixgram", p))) end},
        {function(p) return keep(assert(sockit.connect("unixgram", dir .. "/srvg",
                                   {bind = p}))) end},
      }
      keep(assert(sockit.bind("unixgram", dir .. "/srvg")))
      for i, case in ipairs(cases) do
        local p = dir .. "/client" .. i
        local obj = case[1](p)
        local id = core.fileid(p)
        for _, try in ipairs({
          function() return sockit.listen("unix", p) end,
          function() return sockit.listen("unixpacket", p) end,
          function() return sockit.bind("unixgram", p) end,
          function() return sockit.connect("unix", dir .. "/srv", {bind = p}) end,
        }) do
          local o, msg, code = try()
          H.fails(o, msg, code)
          assert.equal("EADDRINUSE", code)
          assert.equal(id, core.fileid(p))            -- the same file, still there
        end
        assert.equal(p, obj:addr())
        if case[2] then                                -- its server sees it
          local s, peer = case[2]:accept()
          keep(s)
          assert.equal(p, peer)
        end
      end
      local l, _, code = sockit.listen("unix", bound)
      assert.is_nil(l)
      assert.equal("EADDRINUSE", code)
      raw:close()                                      -- now it is stale
      keep(assert(sockit.listen("unix", bound)))
    end)

    it("never deletes a path that is not a socket: EADDRINUSE, untouched", function()
      local file = dir .. "/regular"
      H.write_file(file, "precious data\n")
      local l, msg, code = sockit.listen("unix", file)
      H.fails(l, msg, code)
      assert.equal("EADDRINUSE", code)
      assert.equal("bind " .. file .. ": Address already in use", msg)
      assert.equal("precious data\n", H.read_file(file))
      local sub = dir .. "/adir"
      os.execute("mkdir " .. H.quote(sub))
      l, msg, code = sockit.listen("unix", sub)
      H.fails(l, msg, code)
      assert.equal("EADDRINUSE", code)
      local _, rc = H.sh("test -d " .. H.quote(sub))
      assert.equal(0, rc)
      local fifo = dir .. "/fifo"
      local _, mk = H.sh("mkfifo " .. H.quote(fifo))
      if mk == 0 then
        l, msg, code = sockit.listen("unix", fifo)
        H.fails(l, msg, code)
        assert.equal("EADDRINUSE", code)
        local _, isfifo = H.sh("test -p " .. H.quote(fifo))
        assert.equal(0, isfifo)
      end
    end)

    it("listens in the abstract namespace, with no file to remove", function()
      local name = "@sockit-listen-spec-" .. H.pid()
      local l = keep(assert(sockit.listen("unix", name)))
      assert.equal(name, l:addr())
      assert.matches("^sockit%.listener{unix stream fd=%d+ @sockit%-listen%-spec", tostring(l))
      local c = keep(assert(sockit.connect("unix", name, {timeout = 5})))
      local s = keep(assert(l:accept()))
      c:write("abstract\n")
      s:settimeout(5)
      assert.equal("abstract", s:read("l"))
      assert.equal(name, c:peer())
      local l2, msg, code = sockit.listen("unix", name)
      H.fails(l2, msg, code)
      assert.equal("EADDRINUSE", code)
      assert.equal("bind " .. name .. ": Address already in use", msg)
    end)
  end)
end)
