-- spec/resolve_spec.lua — name resolution that does not block (SPEC §3,
-- §4): core._resolve runs getaddrinfo on a bounded pool of worker
-- threads, and wait.resolve waits for it as for a socket, under
-- connect's deadline.
--
-- Regression: a DNS server that never answered made
-- sockit.connect("tcp", "slow.example.test:80", {timeout = 1}) take 6 s
-- and say EAI_AGAIN, and inside a task it froze the whole loop (a ticker
-- task got no tick during the lookup).
--
-- The slow DNS server is hermetic: the child lua5.4 runs in its own mount
-- and network namespaces (unshare -mn), where /etc/resolv.conf is a bind
-- mount of a temporary file naming 127.0.0.1, and the child itself binds
-- UDP 127.0.0.1:53 and never reads it (or answers from a task). Nothing
-- of the machine's is changed; the namespaces end with the child.
-- Skipped, with the reason, only where namespaces cannot be made.

local H = require "support.helpers"
local core = require "sockit.core"

local SLOW = H.slow

-- can this machine make the namespaces? (once)
local ns_ok, ns_why
local function can_unshare()
  if ns_ok == nil then
    if not H.is_root() then
      ns_ok, ns_why = false, "not root: cannot make mount namespaces"
    elseif not H.have("unshare") or not H.have("ip") then
      ns_ok, ns_why = false, "unshare (util-linux) or ip (iproute2) is missing"
    else
      local out, code = H.sh("unshare -mn sh -c 'ip link set lo up' 2>&1")
      ns_ok = (code == 0)
      ns_why = "unshare -mn failed here: " .. out:gsub("%s+$", "")
    end
  end
  return ns_ok, ns_why
end

-- what every child in the namespaces starts with: the silent DNS server
local PRELUDE = [[
io.stdout:setvbuf("no")
local sockit = require "sockit"
local core = require "sockit.core"
local wait = require "sockit.wait"
local H = require "support.helpers"
local hole = assert(core.socket("inet", "dgram"))
assert(hole:bind("127.0.0.1", 53))
local threads = H.threads
]]

--[[
Run 'code' (after PRELUDE) in a child lua5.4 in new namespaces whose
resolver asks 127.0.0.1 once, waiting 'dnswait' seconds (default 3).
opts: args, timeout, dnswait, spawn (H.spawn_lua's handle instead),
head (code to run before PRELUDE).
Returns H.run_lua's stdout, status, stderr.
]]
local function in_ns(code, opts)
  opts = opts or {}
  local dir = H.tmpdir()
  local conf = dir .. "/resolv.conf"
  H.write_file(conf, "nameserver 127.0.0.1\noptions timeout:"
               .. (opts.dnswait or 3) .. " attempts:1\n")
  local prefix = "unshare -mn sh -c " .. H.quote("ip link set lo up && mount --bind "
    .. H.quote(conf) .. " /etc/resolv.conf && exec \"$@\"") .. " sh"
  local o = {prefix = prefix, args = opts.args, timeout = opts.timeout or 30}
  code = (opts.head or "") .. PRELUDE .. code
  if opts.spawn then
    return H.also_cleanup(H.spawn_lua(code, o), function() H.rmdir(dir) end)
  end
  local out, status, err = H.run_lua(code, o)
  H.rmdir(dir)
  return out, status, err
end

local function need_ns()
  local ok, why = can_unshare()
  if not ok then pending(why) end
  return ok
end

-- the values of 'out' lines "key value"
local function fields(out)
  local t = {}
  for k, v in out:gmatch("(%S+) ([^\n]*)\n") do t[k] = v end
  return t
end


describe("core._resolve", function()
  -- every case of core.getaddrinfo, through a job
  local CASES = {
    {"localhost", 80}, {"localhost", 80, "inet", "stream"},
    {"localhost", 443, "inet6", "dgram"}, {"127.0.0.1", 80},
    {"::1", 80}, {"::1", 80, "inet"}, {"127.0.0.1", 80, "inet6"},
    {nil, 80}, {nil, 80, "inet6", "stream"}, {"", 80},
    {"localhost", "http"}, {"localhost", "nosuchservice"},
    {"127.0.0.1", "8080"}, {"localhost", 80, "unix"},
    {"localhost", 80, nil, "seqpacket"}, {"nosuch.invalid", 80},
  }

  it("gives the same results as core.getaddrinfo (lists and failures)", function()
    for _, c in ipairs(CASES) do
      local job = core._resolve(c[1], c[2], c[3], c[4])
      assert.is_truthy(job:wait("r", 10 * SLOW), "not done: " .. tostring(c[1]))
      local got = table.pack(job:result())
      local want = table.pack(core.getaddrinfo(c[1], c[2], c[3], c[4]))
      assert.are.same(want, got, "for " .. tostring(c[1]) .. " " .. tostring(c[2]))
      job:close()
    end
  end)

  it("raises for the misuse core.getaddrinfo raises for, with the same words", function()
    local BAD = {
      {"a\0b", 80}, {"localhost", 70000}, {"localhost", -1}, {"localhost", "70000"},
      {"localhost", "ht\0tp"}, {}, {"localhost", 80, "ipx"},
      {"localhost", 80, "inet", "raw"}, {{}, 80},
    }
    for _, b in ipairs(BAD) do
      local ok1, e1 = pcall(core.getaddrinfo, table.unpack(b, 1, 4))
      local ok2, e2 = pcall(core._resolve, table.unpack(b, 1, 4))
      assert.is_false(ok1)
      assert.is_false(ok2)
      local function words(e) return (tostring(e):gsub("to '[^']*'", "to 'f'")) end
      assert.are.equal(words(e1), words(e2))
    end
  end)

  it("answers a numeric host, or none, at once (no thread)", function()
    for _, c in ipairs{{"127.0.0.1", 80}, {"::1", 443, "inet6"}, {nil, 80},
                       {"fe80::1%lo", 80, "inet6"}, {"", 80}} do
      local job <close> = core._resolve(c[1], c[2], c[3])
      local list, _, code = job:result()
      assert.are_not.equal("EAGAIN", code, tostring(c[1]))
      assert.is_truthy(list or code)
      assert.matches("done}$", tostring(job))
    end
  end)

  it("says EAGAIN until done, then is readable; close is idempotent", function()
    local job = core._resolve("localhost", 80, "inet", "stream")
    local fd = job:fileno()
    assert.is_true(math.type(fd) == "integer" and fd >= 0)
    assert.are.equal("r", job:wait("r", 10 * SLOW))
    local list = assert(job:result())
    assert.are.equal("127.0.0.1", list[1].host)
    assert.are.same(list, job:result())   -- asked again: the same answer
    assert.is_true(job:close())
    assert.is_true(job:close())
    assert.are.equal("sockit.resolve{closed}", tostring(job))
    assert.matches("attempt to use a closed resolve job", H.raises(job.result, job))
    assert.matches("attempt to use a closed resolve job", H.raises(job.fileno, job))
  end)
end)


describe("wait.resolve", function()
  local wait = require "sockit.wait"

  it("fails as before for a name that does not exist, naming op and address", function()
    local list, msg, code = wait.resolve("nosuch.invalid", 80, nil, "stream", "connect",
                                         core.now() + 30)
    assert.is_nil(list)
    assert.matches("^connect nosuch%.invalid:80: ", msg)
    local _, want, wcode = core.getaddrinfo("nosuch.invalid", 80, nil, "stream")
    assert.are.equal(want:gsub("^getaddrinfo nosuch%.invalid: ", ""),
                     (msg:gsub("^connect nosuch%.invalid:80: ", "")))
    assert.are.equal(wcode, code)
  end)

  it("200 tasks resolving at once all succeed on at most 8 threads, none left after", function()
    local out, status, err = H.run_lua([[
      local sockit = require "sockit"
      local wait = require "sockit.wait"
      local threads = require("support.helpers").threads
      local before, most, ok, done = threads(), 0, 0, 0
      for i = 1, 200 do
        sockit.spawn(function()
          local list = wait.resolve("localhost", 1000 + i, "inet", "stream",
                                    "connect", sockit.now() + 20)
          if list and list[1].host == "127.0.0.1" and list[1].port == 1000 + i then
            ok = ok + 1
          end
          done = done + 1
        end)
      end
      sockit.spawn(function()
        for _ = 1, 2000 do
          local n = threads()
          if n > most then most = n end
          if done == 200 then break end
          sockit.sleep(0.001)
        end
      end)
      sockit.run()
      local after
      for _ = 1, 500 do
        after = threads()
        if after == 1 then break end
        sockit.sleep(0.01)
      end
      print("before " .. before)
      print("ok " .. ok)
      print("most " .. most)
      print("after " .. after)
    ]], {timeout = 60 * SLOW})
    assert.are.equal(0, status, err)
    local f = fields(out)
    assert.are.equal("1", f.before)
    assert.are.equal("200", f.ok)
    assert.is_true(tonumber(f.most) <= 1 + 8, "threads at most: " .. f.most)
    assert.are.equal("1", f.after)
  end)
end)


describe("resolution with a DNS server that never answers", function()
  it("connect's timeout covers it outside a task: ETIMEDOUT after ~1 s", function()
    if not need_ns() then return end
    local out, status, err = in_ns([[
      local t0 = core.now()
      local c, msg, code = sockit.connect("tcp", "slow.example.test:80", {timeout = 1})
      print("secs " .. (core.now() - t0))
      print("result " .. tostring(c) .. "|" .. msg .. "|" .. code)
    ]])
    assert.are.equal(0, status, err)
    local f = fields(out)
    assert.are.equal("nil|connect slow.example.test:80: timed out|ETIMEDOUT", f.result)
    local secs = tonumber(f.secs)
    assert.is_true(secs >= 0.9 and secs < 2.5 * SLOW, "took " .. f.secs .. " s")
  end)

  -- a task connects to the slow name (connect's opts as Lua text) while
  -- another ticks every 50 ms; prints the ticks seen during the connect,
  -- its time and its result
  local function ticking(opts)
    return [[
      local ticks, during, secs, result = 0, nil, nil, nil
      sockit.spawn(function()
        local t0 = core.now()
        local c, msg, code = sockit.connect("tcp", "slow.example.test:80", ]] .. opts .. [[)
        secs = core.now() - t0
        during = ticks
        result = tostring(c) .. "|" .. msg .. "|" .. code
      end)
      sockit.spawn(function()
        for _ = 1, 200 do
          if result then break end
          ticks = ticks + 1
          sockit.sleep(0.05)
        end
      end)
      sockit.run()
      print("secs " .. secs)
      print("ticks " .. during)
      print("result " .. result)
    ]]
  end

  it("suspends only its task: another task ticks during the lookup", function()
    if not need_ns() then return end
    local out, status, err = in_ns(ticking("{timeout = 1}"))
    assert.are.equal(0, status, err)
    local f = fields(out)
    assert.are.equal("nil|connect slow.example.test:80: timed out|ETIMEDOUT", f.result)
    assert.is_true(tonumber(f.secs) < 2.5 * SLOW, "took " .. f.secs .. " s")
    assert.is_true(tonumber(f.ticks) >= 5, "ticks during the lookup: " .. f.ticks)
  end)

  it("without a timeout, waits for the resolver's answer, in its task only", function()
    if not need_ns() then return end
    local out, status, err = in_ns(ticking("nil"), {dnswait = 1})
    assert.are.equal(0, status, err)
    local f = fields(out)
    assert.are.equal("nil|connect slow.example.test:80: Temporary failure in name "
                     .. "resolution|EAI_AGAIN", f.result)
    assert.is_true(tonumber(f.ticks) >= 10, "ticks during the lookup: " .. f.ticks)
  end)

  it("gets NXDOMAIN from a DNS server that is a task of the same loop", function()
    if not need_ns() then return end
    -- the server answers every query (A, AAAA) with NXDOMAIN: possible
    -- only if the lookup leaves the loop running
    local out, status, err = in_ns([[
      hole:close()
      local dns = assert(core.socket("inet", "dgram"))
      assert(dns:bind("127.0.0.1", 53))
      dns:settimeout(0)
      local result
      sockit.spawn(function()
        for _ = 1, 20 do
          local q, host, port = dns:recvfrom()
          if not q then
            local ok = wait.wait(dns, "r", core.now() + 0.2)
            if not ok and result then break end
          else
            -- header: the query's id, QR RD RA and RCODE 3; its question
            dns:sendto(q:sub(1, 2) .. "\x81\x83" .. q:sub(5, 6) .. ("\0"):rep(6)
                       .. q:sub(13), host, port)
          end
        end
      end)
      sockit.spawn(function()
        local c, msg, code = sockit.connect("tcp", "nosuch.example.test:80", {timeout = 10})
        result = tostring(c) .. "|" .. msg .. "|" .. code
      end)
      sockit.run()
      print("result " .. result)
    ]])
    assert.are.equal(0, status, err)
    assert.are.equal("nil|connect nosuch.example.test:80: Name or service not known|EAI_NONAME",
                     fields(out).result)
  end)

  -- regression: ep:sendto(data, "name:port") left the name to the core's
  -- sendto, which ran getaddrinfo in the caller: a slow resolver froze
  -- the whole loop (no tick) and ignored the endpoint's timeout
  it("ep:sendto to a name suspends only its task, under the endpoint's timeout", function()
    if not need_ns() then return end
    local out, status, err = in_ns([[
      local ep = assert(sockit.bind("udp", "127.0.0.1:0"))
      local cu = assert(sockit.connect("udp", ep:addr()))
      local ticks, done, lines = 0, false, {}
      sockit.spawn(function()
        for _ = 1, 200 do
          if done then break end
          ticks = ticks + 1
          sockit.sleep(0.05)
        end
      end)
      sockit.spawn(function()
        for i, e in ipairs{ep, cu} do
          e:settimeout(1)
          local t0, before = core.now(), ticks
          local n, msg, code = e:sendto("x", "slow.example.test:9")
          lines[#lines + 1] = ("ep%d %s|%s|%s %.2f %d"):format(i, tostring(n),
            msg, code, core.now() - t0, ticks - before)
        end
        -- sendmany too: the items before the one whose name fails go
        local t0, before = core.now(), ticks
        local n, msg, code, sent = ep:sendmany({{"one", ep:addr()},
                                                {"two", "slow.example.test:9"}})
        lines[#lines + 1] = ("many %s|%s|%s|%s %.2f %d"):format(tostring(n), msg,
          code, tostring(sent), core.now() - t0, ticks - before)
        lines[#lines + 1] = "first " .. tostring(ep:recvfrom())
        -- a name that resolves (/etc/hosts) still gets there
        assert(ep:sendto("hi", "localhost:" .. ep:addr():match("%d+$")))
        ep:settimeout(2)
        lines[#lines + 1] = "got " .. tostring(ep:recvfrom())
        done = true
      end)
      sockit.run()
      for _, l in ipairs(lines) do print(l) end
    ]])
    assert.are.equal(0, status, err)
    local f = fields(out)
    for _, k in ipairs{"ep1", "ep2", "many"} do
      local result, secs, ticks = f[k]:match("^(.*) (%S+) (%S+)$")
      assert.are.equal(k == "many"
        and "nil|sendmany slow.example.test:9: timed out|ETIMEDOUT|1"
        or "nil|sendto slow.example.test:9: timed out|ETIMEDOUT", result)
      assert.is_true(tonumber(secs) >= 0.9 and tonumber(secs) < 2.5 * SLOW,
                     k .. " took " .. secs .. " s")
      assert.is_true(tonumber(ticks) >= 5, k .. ": ticks during the lookup: " .. ticks)
    end
    assert.are.equal("one", f.first)
    assert.are.equal("hi", f.got)
  end)

  it("abandoned lookups, running or queued, leak no descriptor or thread", function()
    if not need_ns() then return end
    local out, status, err = in_ns([[
      local pid = H.pid()
      local fds0, jobs = H.count_fds(pid), {}
      for i = 1, 20 do jobs[i] = core._resolve("slow" .. i .. ".example.test", 80) end
      H.sleep(0.3)
      print("busy " .. threads())
      print("pending " .. select(3, jobs[1]:result()))
      for i = 1, 10 do jobs[i]:close() end
      jobs = nil
      collectgarbage()   -- the other ten by __gc
      local t0 = core.now()
      H.wait_until(function() return threads() == 1 end, 10, 0.05)
      print("idle " .. threads())
      print("secs " .. (core.now() - t0))
      print("fds " .. (H.count_fds(pid) - fds0))
    ]], {dnswait = 1})
    assert.are.equal(0, status, err)
    local f = fields(out)
    assert.are.equal("9", f.busy)          -- the pool's bound, and the main thread
    assert.are.equal("EAGAIN", f.pending)
    assert.are.equal("1", f.idle)
    assert.are.equal("0", f.fds)
    -- the twelve queued were dropped: one round of lookups, not three
    assert.is_true(tonumber(f.secs) < 2.5 * SLOW, "took " .. f.secs .. " s")
  end)

  -- regression: eight lookups abandoned at connect's deadline kept the
  -- pool's eight threads until the resolver gave up on them, and every
  -- later lookup, even of localhost, waited in line behind them
  it("abandoned lookups do not hold the pool: localhost still resolves at once", function()
    if not need_ns() then return end
    local out, status, err = in_ns([[
      local l = assert(sockit.listen("tcp4", "127.0.0.1:0"))
      local port = l:addr():match(":(%d+)$")
      for i = 1, 8 do
        local _, msg, code = sockit.connect("tcp", "bad" .. i .. ".example.test:80",
                                            {timeout = 0.05})
        assert(code == "ETIMEDOUT", msg)
      end
      local t0 = core.now()
      local c, msg, code = sockit.connect("tcp4", "localhost:" .. port, {timeout = 2})
      print("connected " .. tostring(c ~= nil) .. " " .. tostring(code or msg))
      print("secs " .. (core.now() - t0))
    ]], {dnswait = 3})
    assert.are.equal(0, status, err)
    local f = fields(out)
    assert.are.equal("true nil", f.connected)
    assert.is_true(tonumber(f.secs) < 1, "took " .. f.secs .. " s")
  end)

  it("Ctrl-C (SIGINT) stops a blocking resolution in the standalone lua", function()
    if not need_ns() then return end
    local h = in_ns([[
      io.write("pid ", io.open("/proc/self/stat"):read("n"), "\nready\n")
      print(sockit.connect("tcp", "slow.example.test:80"))
    ]], {spawn = true, dnswait = 10, timeout = 30})
    H.interrupts(h, 0.3, SLOW)
  end)

  it("valgrind: an abandoned lookup and exit while one runs lose nothing", function()
    if not need_ns() then return end
    if not H.have("valgrind") then return pending("valgrind is not installed") end
    if SLOW > 1 then return pending("already under valgrind (make valgrind)") end
    if os.getenv("SOCKIT_CORE") then
      return pending("the core under test is another build (make sanitize: ASan "
                     .. "and valgrind do not run together)")
    end
    local dir = H.tmpdir()
    local conf, script, log = dir .. "/resolv.conf", dir .. "/t.lua", dir .. "/vg.log"
    H.write_file(conf, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    H.write_file(script, PRELUDE .. [[
      local a = core._resolve("slow.example.test", 80)
      local b = core._resolve("localhost", 80)
      H.sleep(0.2)
      a:close()                                   -- abandoned while it runs
      assert(b:wait("r", 30)); assert(b:result()); b:close()
      H.wait_until(function() return threads() == 1 end, 30, 0.05)
      local c = core._resolve("slow2.example.test", 80)   -- runs at exit
      H.sleep(0.2)
      print("threads " .. threads(), c)
    ]])
    local cmd = "unshare -mn sh -c " .. H.quote("ip link set lo up && mount --bind "
      .. H.quote(conf) .. " /etc/resolv.conf && exec \"$@\"") .. " sh env LUA_PATH="
      .. H.quote(H.LUA_PATH) .. " LUA_CPATH=" .. H.quote(H.LUA_CPATH)
      .. " timeout -k 2 120 valgrind --quiet --error-exitcode=97 --leak-check=full"
      .. " --show-leak-kinds=definite --errors-for-leak-kinds=definite --log-file="
      .. H.quote(log) .. " lua5.4 " .. H.quote(script) .. " 2>&1"
    local out, status = H.sh(cmd)
    local vg = H.read_file(log) or ""
    H.rmdir(dir)
    assert.are.equal(0, status, out .. vg)
    assert.matches("threads 2", out)
    assert.is_nil(vg:find("definitely lost: [1-9]"), vg)
    assert.is_nil(vg:find("Invalid"), vg)
  end)
end)


describe("resolution and fork (the faults core's core._fork)", function()
  local FCORE = os.getenv("SOCKIT_FAULTS_CORE") or (H.root .. "/build/faults")
  local FORK = [[
    package.cpath = ]] .. string.format("%q", FCORE .. "/?.so;") .. [[ .. package.cpath
  ]]

  it("a child forked while idle resolves; one forked mid-lookup fails it at once", function()
    if not need_ns() then return end
    assert.is_true(H.exists(FCORE .. "/sockit/core.so"), "make build/faults/sockit/core.so")
    local out, status, err = in_ns([[
      assert(core._fork, "not the faults core")
      local a, b = core.socketpair()
      -- idle: the pool has run and its threads are gone
      assert(wait.resolve("localhost", 80, "inet", "stream", "connect", core.now() + 10))
      H.wait_until(function() return threads() == 1 end, 10, 0.05)
      local pid = assert(core._fork())
      if pid == 0 then
        local list = wait.resolve("localhost", 80, "inet", "stream", "connect", core.now() + 10)
        b:send("idle " .. (list and list[1].host or "failed") .. "\n")
        os.exit(0)
      end
      b:settimeout(10)
      a:settimeout(10)
      io.write(a:recv())
      -- mid-lookup: the parent's goes on, the child's fails there at once
      local job = core._resolve("slow.example.test", 80)
      H.sleep(0.2)
      pid = assert(core._fork())
      if pid == 0 then
        local t0 = core.now()
        local ok = job:wait("r", 5)
        local _, msg, code = job:result()
        local list = wait.resolve("localhost", 80, "inet", "stream", "connect", core.now() + 10)
        b:send(("child %s %.1f|%s|%s|%s\n"):format(tostring(ok), core.now() - t0, msg, code,
                                                   list and list[1].host or "failed"))
        os.exit(0)
      end
      io.write(a:recv())
      print("parent " .. select(3, job:result()) .. " " .. tostring(job:wait("r", 0)))
      assert(job:wait("r", 10))
      print("later " .. select(3, job:result()))
    ]], {dnswait = 2, head = FORK})
    assert.are.equal(0, status, err)
    local f = fields(out)
    assert.are.equal("127.0.0.1", f.idle)
    assert.are.equal("r 0.0|getaddrinfo slow.example.test: the process forked while the "
                     .. "lookup ran|ECANCELED|127.0.0.1", f.child)
    assert.are.equal("EAGAIN nil", f.parent)   -- the child did not wake it
    assert.are.equal("EAI_AGAIN", f.later)
  end)

  it("with no thread to be had, resolves in the caller (fault: thread:eagain:1)", function()
    assert.is_true(H.exists(FCORE .. "/sockit/core.so"), "make build/faults/sockit/core.so")
    local out, status, err = H.run_lua(FORK .. [[
      local core = require "sockit.core"
      local wait = require "sockit.wait"
      core._faults("thread:eagain:1")
      local list = wait.resolve("localhost", 80, "inet", "stream", "connect", core.now() + 10)
      print("host " .. list[1].host)
      print("faults " .. select(2, core._faults()))
    ]])
    assert.are.equal(0, status, err)
    local f = fields(out)
    assert.are.equal("127.0.0.1", f.host)
    assert.are.equal("1", f.faults)
  end)
end)
