-- spec/unixfile_spec.lua — unix socket files are handled safely (issue 5):
-- listen (and bind) never delete what is not a socket at their path (a
-- regular file, a directory, a FIFO, a link to a file: EADDRINUSE, left
-- untouched); opts.mode sets the socket file's permissions (and the
-- kernel then enforces them on connect); close removes the file the
-- object made — and not a file someone else has put at the path since.

local sockit = require "sockit"
local core = require "sockit.core"
local H = require "support.helpers"

local q = H.quote

-- permission bits of a path as octal text ("600"), or nil
local function mode_of(path)
  local out, rc = H.sh("stat -c %a " .. q(path) .. " 2>/dev/null")
  if rc ~= 0 then return nil end
  return (out:gsub("%s+$", ""))
end

-- "dev:inode kind" of a path (not following links), or nil
local function id_of(path)
  local out, rc = H.sh("stat -c '%d:%i %F' " .. q(path) .. " 2>/dev/null")
  if rc ~= 0 then return nil end
  return (out:gsub("%s+$", ""))
end

-- a child that, once started, puts its own listening socket at 'path'
-- (removing whatever is there) and answers "other\n" to each client
local OTHER = [[
local sockit = require "sockit"
local path = ...
os.remove(path)
local l = assert(sockit.listen("unix", path))
print("ready"); io.stdout:flush()
l:settimeout(15)
for _ = 1, 5 do
  local c = l:accept()
  if not c then break end
  c:write("other\n"); c:close()
end
l:close()
]]

describe("unix socket files", function()
  local dir
  local objs = {}
  local function keep(o) objs[#objs + 1] = o; return o end
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)
  after_each(function()
    for _, o in ipairs(objs) do o:close() end
    objs = {}
  end)

  describe("at a path that is not a socket", function()
    -- each case: listen (stream), listen (unixpacket) and bind
    -- (unixgram) all say EADDRINUSE, and the thing is still there, as it was
    local function refuses(path, check)
      local before = id_of(path)
      assert.is_string(before)
      for _, call in ipairs({{sockit.listen, "unix"}, {sockit.listen, "unixpacket"},
                             {sockit.bind, "unixgram"}}) do
        local obj, msg, code = call[1](call[2], path, {mode = tonumber("600", 8)})
        H.fails(obj, msg, code)
        assert.equal("EADDRINUSE", code)
        assert.equal("bind " .. path .. ": Address already in use", msg)
        assert.equal(before, id_of(path))
        check()
      end
      -- and a conn's opts.bind too
      local l = keep(assert(sockit.listen("unix", dir .. "/for-bind-" .. H.now())))
      local c, msg, code = sockit.connect("unix", l:addr(), {bind = path, timeout = 5})
      H.fails(c, msg, code)
      assert.equal("EADDRINUSE", code)
      assert.equal(before, id_of(path))
      check()
    end

    it("leaves a regular file untouched: contents, inode and mode", function()
      local file = dir .. "/regular"
      H.write_file(file, "precious data\n")
      os.execute("chmod 640 " .. q(file))
      refuses(file, function()
        assert.equal("precious data\n", H.read_file(file))
        assert.equal("640", mode_of(file))
      end)
    end)

    it("leaves an empty regular file untouched", function()
      local file = dir .. "/empty"
      H.write_file(file, "")
      refuses(file, function() assert.equal("", H.read_file(file)) end)
    end)

    it("leaves a directory and its contents untouched", function()
      local sub = dir .. "/adir"
      os.execute("mkdir " .. q(sub))
      H.write_file(sub .. "/inside", "x")
      refuses(sub, function()
        assert.equal("x", H.read_file(sub .. "/inside"))
      end)
    end)

    it("leaves a FIFO untouched (and does not block on it)", function()
      local fifo = dir .. "/fifo"
      local _, rc = H.sh("mkfifo " .. q(fifo))
      assert.equal(0, rc)
      local t0 = H.now()
      refuses(fifo, function()
        local _, isfifo = H.sh("test -p " .. q(fifo))
        assert.equal(0, isfifo)
      end)
      assert.is_true(H.now() - t0 < 5)
    end)

    it("leaves a symbolic link to a file, and the file, untouched", function()
      local target = dir .. "/target"
      H.write_file(target, "target data")
      local link = dir .. "/link"
      os.execute("ln -s " .. q(target) .. " " .. q(link))
      refuses(link, function()
        assert.equal("target data", H.read_file(target))
        local _, islink = H.sh("test -L " .. q(link))
        assert.equal(0, islink)
      end)
    end)
  end)

  describe("opts.mode", function()
    it("sets the permissions of the socket file of listen and bind", function()
      for _, m in ipairs({"600", "660", "666", "700", "777", "604"}) do
        local path = dir .. "/mode" .. m
        local l = assert(sockit.listen("unix", path, {mode = tonumber(m, 8)}))
        assert.equal(m, mode_of(path))
        -- still a working listener
        local c = keep(assert(sockit.connect("unix", path, {timeout = 5})))
        keep(assert(l:accept()))
        c:close()
        l:close()
        assert.is_false(H.exists(path))
        local ep = assert(sockit.bind("unixgram", path, {mode = tonumber(m, 8)}))
        assert.equal(m, mode_of(path))
        ep:close()
        assert.is_false(H.exists(path))
      end
      -- for serve too (it passes opts to listen)
      local path = dir .. "/served"
      local server = assert(sockit.serve("unix", path, function() end,
                                         {mode = tonumber("640", 8)}))
      assert.equal("640", mode_of(path))
      server:close()
      sockit.run()
      assert.is_false(H.exists(path))
    end)

    it("is enforced by the kernel: another user is refused by 0600, let in by 0666", function()
      if not H.is_root() or not H.have("setpriv") then
        pending("needs root and setpriv to connect as another user")
        return
      end
      os.execute("chmod 755 " .. q(dir))
      -- (a unix connect completes in the backlog: no accept is needed)
      local client = [[
        local sockit = require "sockit"
        local c, msg, code = sockit.connect("unix", ..., {timeout = 5})
        if c then print("connected") else print(code, msg) end
      ]]
      for _, case in ipairs({{"600", "^EACCES\tconnect .*: Permission denied\n$"},
                             {"666", "^connected\n$"}}) do
        local path = dir .. "/perm" .. case[1]
        keep(assert(sockit.listen("unix", path, {mode = tonumber(case[1], 8)})))
        local out, status, err = H.run_lua(client, {args = {path}, uid = 65534})
        assert.equal(0, status, err)
        assert.matches(case[2], out)
      end
      os.execute("chmod 700 " .. q(dir))
    end)

    it("raises on a bad mode; is ignored for an abstract name and for tcp", function()
      assert.matches("bad argument #3 to 'listen' %(opts%.mode",
                     H.raises(sockit.listen, "unix", dir .. "/bad", {mode = "600"}))
      assert.matches("bad argument #3 to 'listen' %(opts%.mode",
                     H.raises(sockit.listen, "unix", dir .. "/bad", {mode = -1}))
      assert.matches("bad argument #3 to 'listen' %(opts%.mode",
                     H.raises(sockit.listen, "unix", dir .. "/bad", {mode = 4096 * 2}))
      assert.matches("bad argument #3 to 'bind' %(opts%.mode",
                     H.raises(sockit.bind, "unixgram", dir .. "/bad", {mode = 1.5}))
      assert.is_false(H.exists(dir .. "/bad"))
      local l = keep(assert(sockit.listen("unix", "@sockit-mode-" .. H.pid(), {mode = 384})))
      assert.matches("^@sockit%-mode%-", l:addr())
      keep(assert(sockit.listen("tcp", "127.0.0.1:0", {mode = 384})))
    end)
  end)

  describe("on close", function()
    it("removes the file the listener, endpoint or bound conn made", function()
      local path = dir .. "/mine"
      local l = assert(sockit.listen("unix", path))
      assert.is_true(H.exists(path))
      l:close()
      assert.is_false(H.exists(path))
      local ep = assert(sockit.bind("unixgram", path))
      assert.is_true(H.exists(path))
      ep:close()
      assert.is_false(H.exists(path))
      local srv = keep(assert(sockit.listen("unix", dir .. "/srv")))
      local c = assert(sockit.connect("unix", dir .. "/srv", {bind = path, timeout = 5}))
      keep(assert(srv:accept()))
      assert.is_true(H.exists(path))
      c:close()
      assert.is_false(H.exists(path))
    end)

    it("does not remove another process's socket that replaced its file", function()
      local path = dir .. "/replaced"
      local l = assert(sockit.listen("unix", path))
      local mine = id_of(path)
      local child = H.spawn_lua(OTHER, {args = {path}, timeout = 20})
      local ready = H.wait_until(function() return child.output():find("ready") end, 10)
      assert.is_truthy(ready, child.output())
      assert.not_equal(mine, id_of(path))          -- someone else's now
      local theirs = id_of(path)
      l:close()
      assert.equal(theirs, id_of(path))            -- still theirs
      local c = assert(sockit.connect("unix", path, {timeout = 5}))
      assert.equal("other", c:read("l"))
      c:close()
      child.kill(); child:wait(5); child.cleanup()
    end)

    it("does not remove what replaced the file of an endpoint or a bound conn", function()
      -- an endpoint: its file replaced by a regular file
      local path = dir .. "/ep"
      local ep = assert(sockit.bind("unixgram", path))
      os.remove(path)
      H.write_file(path, "not yours\n")
      ep:close()
      assert.equal("not yours\n", H.read_file(path))
      os.remove(path)
      -- a conn bound with opts.bind: its file replaced by another socket
      local srv = keep(assert(sockit.listen("unix", dir .. "/srv2")))
      local cpath = dir .. "/cbound"
      local c = assert(sockit.connect("unix", dir .. "/srv2", {bind = cpath, timeout = 5}))
      keep(assert(srv:accept()))
      os.remove(cpath)
      local other = assert(core.socket("unix", "stream"))
      assert(other:bind(cpath))
      local theirs = id_of(cpath)
      c:close()
      assert.equal(theirs, id_of(cpath))
      other:close()
      os.remove(cpath)
    end)

    it("is fine when the file is already gone", function()
      local path = dir .. "/gone"
      local l = assert(sockit.listen("unix", path))
      os.remove(path)
      assert.is_true(l:close())
      assert.is_false(H.exists(path))
    end)

    it("leaves the file on garbage collection (another may own the path by then)", function()
      local path = dir .. "/gc"
      do assert(sockit.listen("unix", path)) end
      collectgarbage(); collectgarbage()
      assert.is_true(H.exists(path))
      -- a stale file now: the next listen replaces it
      local l = keep(assert(sockit.listen("unix", path)))
      assert.equal(path, l:addr())
    end)
  end)
end)
