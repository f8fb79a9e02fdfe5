-- spec/support/helpers.lua — what every spec shares.
--
--   local H = require "support.helpers"
--
-- Nothing here uses sockit itself (so a broken core cannot make a helper
-- lie), except H.now(), which prefers core.now() when the core loads.
-- Every wait is bounded in count and in time.

local H = {}

-- {====================================================== paths

-- the repo root: this file is <root>/spec/support/helpers.lua
local function find_root()
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)/spec/support/helpers%.lua$")
  if dir and dir ~= "" then
    if dir:sub(1, 1) ~= "/" then
      local pwd = io.popen("pwd"):read("l")
      dir = pwd .. "/" .. dir
    end
    return dir
  end
  return (io.popen("pwd"):read("l"))
end

H.root = find_root()
H.lua = "lua5.4"
H.LUA_PATH = H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;"
  .. H.root .. "/spec/?.lua;;"
-- SOCKIT_CORE names another directory holding sockit/core.so (make
-- sanitize and make valgrind run the same specs on their own builds)
H.core_dir = os.getenv("SOCKIT_CORE") or H.root

-- how much slower this run is than a plain one (make valgrind sets
-- SOCKIT_SLOW=10): specs multiply their generous upper bounds by it
H.slow = tonumber(os.getenv("SOCKIT_SLOW")) or 1
H.LUA_CPATH = H.core_dir .. "/?.so;;"

-- quote one word for sh
function H.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
local q = H.quote

-- }======================================================


-- {====================================================== shell

-- run a shell command; returns stdout, exit code (a signal as 128+n)
function H.sh(cmd)
  local f = assert(io.popen(cmd, "r"))
  local out = f:read("a")
  local ok, how, code = f:close()
  if ok then return out, 0 end
  if how == "signal" then return out, 128 + code end
  return out, code
end

function H.sleep(seconds)
  os.execute("sleep " .. string.format("%.3f", seconds))
end

-- the monotonic clock: core.now() if the core loads, else whole seconds
local clock
function H.now()
  if not clock then
    local ok, core = pcall(require, "sockit.core")
    if ok and type(core) == "table" and type(core.now) == "function" then
      clock = core.now
    else
      clock = os.time
    end
  end
  return clock()
end

-- call fn() until it returns a true value or `timeout` seconds (default 5)
-- have passed, sleeping `step` (default 0.02) between tries; at most
-- `timeout/step + 2` tries. Returns fn's values, or nil, "timed out".
function H.wait_until(fn, timeout, step)
  timeout = timeout or 5
  step = step or 0.02
  local deadline = H.now() + timeout
  local tries = math.floor(timeout / step) + 2
  for _ = 1, tries do
    local r = table.pack(fn())
    if r[1] then return table.unpack(r, 1, r.n) end
    if H.now() >= deadline then break end
    H.sleep(step)
  end
  return nil, "timed out"
end

-- }======================================================


-- {====================================================== files

-- a new private directory; remove it with H.rmdir
function H.tmpdir()
  local out, code = H.sh("mktemp -d /tmp/sockit-spec.XXXXXX")
  assert(code == 0, "mktemp failed")
  return (out:gsub("%s+$", ""))
end

function H.rmdir(dir)
  -- only what H.tmpdir made
  assert(type(dir) == "string" and dir:match("^/tmp/sockit%-spec%.[%w]+$"),
    "H.rmdir refuses " .. tostring(dir))
  os.execute("rm -rf " .. q(dir))
end

function H.exists(path)
  local _, code = H.sh("test -e " .. q(path) .. " || test -S " .. q(path))
  return code == 0
end

-- the names in a directory, sorted
function H.ls(dir)
  local out = H.sh("ls -A " .. q(dir) .. " 2>/dev/null")
  local t = {}
  for name in out:gmatch("[^\n]+") do t[#t + 1] = name end
  table.sort(t)
  return t
end

function H.write_file(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

function H.read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- }======================================================


-- {====================================================== this process

function H.pid()
  local f = assert(io.open("/proc/self/stat", "r"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

-- how many threads this process has now (/proc/self/status)
function H.threads()
  local f = assert(io.open("/proc/self/status", "r"))
  local n = tonumber(f:read("a"):match("\nThreads:%s*(%d+)"))
  f:close()
  return n
end

function H.is_root()
  local f = io.open("/proc/self/status", "r")
  if not f then return false end
  local s = f:read("a")
  f:close()
  local euid = s:match("\nUid:%s+%d+%s+(%d+)")
  return euid == "0"
end

-- our open descriptors: a table fd -> link target ("socket:[123]", ...).
-- Read through a child (`find`), so the read end of its pipe is listed too.
function H.fds(pid)
  pid = pid or H.pid()
  local out = H.sh("find /proc/" .. pid .. "/fd -mindepth 1 -maxdepth 1 -printf '%f %l\\n' 2>/dev/null")
  local t = {}
  for fd, target in out:gmatch("(%d+) ([^\n]*)") do
    t[tonumber(fd)] = target
  end
  return t
end

function H.count_fds(pid)
  local n = 0
  for _ in pairs(H.fds(pid)) do n = n + 1 end
  return n
end

-- the link target of one of our descriptors ("socket:[123]"), or nil
function H.fd_target(fd)
  return H.fds()[fd]
end

-- is some descriptor of ours this object (a "socket:[inode]" target)?
function H.target_open(target)
  for _, t in pairs(H.fds()) do
    if t == target then return true end
  end
  return false
end

-- }======================================================


-- {====================================================== networking

-- can this machine bind ::1? (the kernel's own list, not sockit's answer)
-- returns true, or false and why
function H.have_ipv6()
  local f = io.open("/proc/net/if_inet6", "r")
  if not f then return false, "no IPv6 in this kernel (/proc/net/if_inet6 missing)" end
  local s = f:read("a")
  f:close()
  if not s:find("^00000000000000000000000000000001 ") and
     not s:find("\n00000000000000000000000000000001 ") then
    return false, "::1 is not configured on this machine"
  end
  local d = io.open("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "r")
  if d then
    local v = d:read("l")
    d:close()
    if v == "1" then return false, "IPv6 is disabled on lo" end
  end
  return true
end

function H.have(cmd)
  local _, code = H.sh("command -v " .. q(cmd) .. " >/dev/null 2>&1")
  return code == 0
end

-- }======================================================


-- {====================================================== child processes

local function script_file(code)
  local path = os.tmpname()
  H.write_file(path, code)
  return path
end

local function env_prefix()
  return "env LUA_PATH=" .. q(H.LUA_PATH) .. " LUA_CPATH=" .. q(H.LUA_CPATH) .. " "
end

-- run Lua code in a child lua5.4 with the repo on its paths.
-- opts.args: list of arguments (the script's `arg`/`...`);
-- opts.prefix: put before the command (e.g. "ip netns exec NS");
-- opts.timeout: kill the child after that many seconds (default 20);
-- opts.uid: run it as that user id (needs root; uses setpriv);
-- opts.sigpipe: give the child SIGPIPE's default action (death), even if
-- this process was started with it ignored.
-- Returns stdout, exit status (a signal as 128+n, a timeout as 124), stderr.
function H.run_lua(code, opts)
  opts = opts or {}
  local file = script_file(code)
  local errf = os.tmpname()
  local args = {}
  for i, a in ipairs(opts.args or {}) do args[i] = q(a) end
  local prefix = opts.prefix and (opts.prefix .. " ") or ""
  if opts.uid then
    os.execute("chmod 644 " .. q(file))
    prefix = prefix .. "setpriv --reuid=" .. opts.uid .. " --regid=" .. opts.uid
      .. " --clear-groups "
  end
  local cmd = prefix
    .. env_prefix()
    .. (opts.sigpipe and "env --default-signal=PIPE " or "")
    .. "timeout -k 2 " .. (opts.timeout or 20) .. " "
    .. H.lua .. " " .. q(file) .. " " .. table.concat(args, " ")
    .. " 2>" .. q(errf)
  local out, status = H.sh(cmd)
  local err = H.read_file(errf) or ""
  os.remove(file)
  os.remove(errf)
  return out, status, err
end

-- H.run_lua on a poller backend: "epoll" (the core under test) or "poll"
-- (build/poll/sockit/core.so, the poll(2) fallback, built by make test)
function H.run_lua_on(backend, code, opts)
  if backend == "poll" then
    local dir = H.root .. "/build/poll"
    assert(H.exists(dir .. "/sockit/core.so"),
           "build the fallback: make build/poll/sockit/core.so")
    code = "package.cpath = " .. string.format("%q", dir .. "/?.so;")
      .. " .. package.cpath\n" .. code
  end
  return H.run_lua(code, opts)
end

-- start a shell command in the background, under `timeout` (default
-- 30 s); its stdout and stderr go to a file. Returns a handle: h.pid (the
-- timeout process, which leads the command's process group), h.output(),
-- h:wait([seconds]) -> exit status or nil, h.kill() (this group only),
-- h.cleanup() (its files).
function H.spawn(cmd, timeout)
  local out = os.tmpname()
  local rc, pidf = out .. ".rc", out .. ".pid"
  local line = "(timeout -k 2 " .. (timeout or 30) .. " sh -c " .. q(cmd)
    .. " >" .. q(out) .. " 2>&1 </dev/null & echo $! >" .. q(pidf)
    .. "; wait $!; echo $? >" .. q(rc) .. ") >/dev/null 2>&1 &"
  os.execute(line)
  local h = { file = out }
  h.pid = H.wait_until(function()
    local s = H.read_file(pidf)
    return s and tonumber(s:match("%d+"))
  end, 5, 0.01)
  function h.output() return H.read_file(out) or "" end
  function h.wait(_, t)
    return (H.wait_until(function()
      local s = H.read_file(rc)
      return s and tonumber(s:match("%d+"))
    end, t or 10))
  end
  function h.kill()
    -- timeout passes the signal on to the command's whole group
    -- only while it runs: once the status is written the pid may be reused
    if h.pid and not H.read_file(rc) then
      os.execute("kill " .. h.pid .. " 2>/dev/null")
    end
  end
  function h.cleanup()
    -- the status file comes last, once the command has ended (a kill
    -- ends it within moments): wait for it, bounded, so none is left
    if h.pid then
      H.wait_until(function() return H.read_file(rc) end, 3, 0.02)
    end
    os.remove(out)
    os.remove(rc)
    os.remove(pidf)
  end
  return h
end

-- run Lua code in the background (as H.run_lua; opts.prefix, opts.args,
-- opts.timeout): a handle as H.spawn's.
function H.spawn_lua(code, opts)
  opts = opts or {}
  local file = script_file(code)
  local args = {}
  for i, a in ipairs(opts.args or {}) do args[i] = q(a) end
  local cmd = (opts.prefix and (opts.prefix .. " ") or "")
    .. env_prefix() .. H.lua .. " " .. q(file) .. " " .. table.concat(args, " ")
  return H.also_cleanup(H.spawn(cmd, opts.timeout or 30),
                        function() os.remove(file) end)
end

-- h (a handle of H.spawn) whose cleanup() also runs fn afterwards
function H.also_cleanup(h, fn)
  local cleanup = h.cleanup
  function h.cleanup()
    cleanup()
    fn()
  end
  return h
end

--[[
H.interrupts(h, settle [, slow]): the child of handle 'h' (H.spawn_lua)
writes "pid <its pid>" then "ready" just before it blocks; after
'settle' seconds more, Ctrl-C (SIGINT) must end it within 3 s (times
'slow') with status 1 and "interrupted!" (the standalone lua's handler).
The child is killed and its files removed whatever happens.
]]
function H.interrupts(h, settle, slow)
  slow = slow or 1
  local ok, err = pcall(function()
    local pid = H.wait_until(function()
      local out = h.output()
      return out:find("ready\n", 1, true) and out:match("^pid (%d+)\n")
    end, 10)
    -- (plain asserts: a module required by a spec sees no busted's)
    assert(pid, "the child did not start: " .. h.output())
    H.sleep(settle)   -- into its wait
    os.execute("kill -INT " .. pid)
    local t0 = H.now()
    local status = h:wait(5 * slow)
    assert(status == 1, "not stopped by SIGINT (status " .. tostring(status)
           .. "): " .. h.output())
    local secs = H.now() - t0
    assert(secs < 3 * slow, "SIGINT took " .. secs .. " s")
    assert(h.output():find("interrupted!", 1, true), "no 'interrupted!': " .. h.output())
  end)
  h.kill()
  h.cleanup()
  assert(ok, err)
end

-- }======================================================


-- {====================================================== assertions

-- the usual shape of a failure: nil, message, code
-- (returns message and code for further checks)
function H.fails(ok, msg, code)
  assert(ok == nil, "expected nil, msg, code; got " .. tostring(ok))
  assert(type(msg) == "string", "message is not a string: " .. tostring(msg))
  assert(type(code) == "string", "code is not a string: " .. tostring(code))
  return msg, code
end

-- the text of the error that fn(...) raises (without "file:line: ")
function H.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return (tostring(err):gsub("^[^:\n]*:%d+: ", ""))
end

-- escape magic characters for string.find/match
function H.pat(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- }======================================================

return H
