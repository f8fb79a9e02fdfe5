--[[
bench/run.lua — `make bench`: sockit against a C epoll server, LuaSocket,
luv and cqueues, on the same workloads, with the same load generator.

  lua5.4 bench/run.lua              every workload, then c10k
  lua5.4 bench/run.lua c10k         the c10k run alone
  lua5.4 bench/run.lua KEY...       some workloads (rt-tcp rt-unix conc
                                    idle http c10k)

Environment: BENCH_REPS (repetitions, default 5), BENCH_SECONDS (seconds
of load per loadgen run, default 2), BENCH_WRK_SECONDS (default 3),
BENCH_IMPLS (a comma list of c,sockit,luasocket,luv,cqueues; C always
runs), BENCH_SOCKIT_B (another built checkout, also run, as "sockit B"),
BENCH_CPUS (same, split or none; see below), BENCH_NICE=0 (as
root the servers and the load run at nice -10, so that other work on the
machine disturbs them less; this turns that off).

Each server runs as a child process (single process, single thread) that
prints its address when ready; bench/out/loadgen (C, epoll) or wrk drives
it; the server is then killed and its peak RSS (VmHWM) and CPU time read
from /proc. Within each repetition the implementations take turns, so
that machine noise hits all of them alike; the table shows medians.

CPUs (BENCH_CPUS): "same" (the default) runs the server and the load
generator on CPU 0 both. On this kind of machine (a 2-CPU VM) a wake-up
across CPUs costs some 60 us, so with the two on different CPUs a server
that is fast enough to go idle pays that on every wake-up and loses to a
slower one that never sleeps, and the rates swing 2x from minute to
minute. On one CPU a round trip costs load generator + server + context
switches, and runs repeat within a few percent. The price: the load
generator's share dilutes the ratios toward 1, so the table also gives
the server's own CPU time per round trip (or request), which is not
diluted. "split" puts the load on CPU 1 (for machines where that is
sound), "none" leaves placement to the scheduler.

Everything is bounded: every child runs under timeout(1), every wait has
a deadline, and every child is killed at the end, also on error.
]]

local REPS = math.tointeger(tonumber(os.getenv("BENCH_REPS") or "5"))
local SECONDS = tonumber(os.getenv("BENCH_SECONDS") or "2")
local WRK_SECONDS = math.tointeger(tonumber(os.getenv("BENCH_WRK_SECONDS") or "3"))
local CPUS = os.getenv("BENCH_CPUS") or "same"
assert(REPS and REPS >= 1 and REPS <= 100, "BENCH_REPS must be 1..100")
assert(SECONDS and SECONDS > 0 and SECONDS <= 60, "BENCH_SECONDS must be in (0, 60]")
assert(CPUS == "same" or CPUS == "split" or CPUS == "none",
       "BENCH_CPUS must be same, split or none")
assert(WRK_SECONDS and WRK_SECONDS >= 1 and WRK_SECONDS <= 60,
       "BENCH_WRK_SECONDS must be 1..60")

local C10K = 10000          -- connections of the c10k run
local C10K_HOLD = 1         -- seconds they are all held open
local SAFETY = 900          -- seconds after which timeout(1) kills a server

local function q (s)        -- a shell word
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function capture (cmd)   -- stdout+stderr of a shell command, ok
  local f = assert(io.popen(cmd .. " 2>&1"))
  local out = f:read("a")
  local ok = f:close()
  return out, ok
end

local function readfile (path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function sleep (s)
  os.execute("sleep " .. s)
end

local function uptime ()    -- wall clock, seconds (10 ms resolution)
  return tonumber(readfile("/proc/uptime"):match("^[%d.]+"))
end

local ROOT = capture("cd " .. q((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/..") ..
                     " && pwd"):match("[^\n]+")
local OUT = ROOT .. "/bench/out"
local LUA = "lua5.4"

--[[ {======================================================
Implementations: how to start each server
=======================================================]]

local SOCKIT_ENV = ("env LUA_PATH=%s LUA_CPATH=%s "):format(
  q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"), q(ROOT .. "/?.so;;"))

local IMPLS = {
  {key = "c", name = "C epoll",
   cmd = function (kind, fam, where)
     return ("%s %s %s %s"):format(q(OUT .. "/echo_server"), kind, fam, q(where))
   end},
}
for _, lib in ipairs{{"sockit", "sockit"}, {"luasocket", "LuaSocket"},
                     {"luv", "luv"}, {"cqueues", "cqueues"}} do
  local key = lib[1]
  IMPLS[#IMPLS + 1] = {key = key, name = lib[2],
    cmd = function (kind, fam, where)
      return ("%s%s %s %s %s %s"):format(key == "sockit" and SOCKIT_ENV or "",
        LUA, q(ROOT .. "/bench/servers/" .. key .. ".lua"), kind, fam, q(where))
    end}
end

-- BENCH_SOCKIT_B=DIR: also run the sockit of another checkout (built,
-- with its own lua/ and sockit/core.so), as "sockit B": an A/B test of a
-- change, measured side by side in the same run. BENCH_B_SERVER=FILE runs
-- that server script as "sockit B" instead of servers/sockit.lua (to
-- measure a floor of bench/analysis/ against the library).
local B = os.getenv("BENCH_SOCKIT_B")
local BSERVER = os.getenv("BENCH_B_SERVER") or ROOT .. "/bench/servers/sockit.lua"
if B then
  local env = ("env LUA_PATH=%s LUA_CPATH=%s "):format(
    q(B .. "/lua/?.lua;" .. B .. "/lua/?/init.lua;;"), q(B .. "/?.so;;"))
  table.insert(IMPLS, 3, {key = "sockitb", name = "sockit B",
    cmd = function (kind, fam, where)
      return ("%s%s %s %s %s %s"):format(env, LUA, q(BSERVER), kind, fam,
                                         q(where))
    end})
end

do   -- BENCH_IMPLS restricts the list (C stays: the ratios need it)
  local only = os.getenv("BENCH_IMPLS")
  if only then
    local keep = {}
    for _, impl in ipairs(IMPLS) do
      if impl.key == "c" or impl.key == "sockitb" or ("," .. only .. ","):find("," .. impl.key .. ",", 1, true) then
        keep[#keep + 1] = impl
      end
    end
    IMPLS = keep
  end
end

-- }======================================================


--[[ {======================================================
Child processes
=======================================================]]

local live = {}     -- servers still running: server record -> true
local tmpdir        -- for unix sockets

-- as root, servers and load run at nice -10: other work on the machine
-- (builds, tests) then takes less from them, and from all of them alike
local NICE = os.getenv("BENCH_NICE") ~= "0" and capture("id -u"):match("^0\n") and
             "nice -n -10 " or ""

-- the prefix that pins (and renices) a server ("server") or a load generator ("load")
local function pin (role)
  if CPUS == "none" then return NICE end
  return NICE .. ("taskset -c %d "):format((role == "load" and CPUS == "split") and 1 or 0)
end

local function alive (pid)
  local stat = readfile("/proc/" .. pid .. "/stat")
  return stat ~= nil and not stat:match("^%d+ %(.-%) [ZX]")
end

local function status (pid, field)     -- a kB field of /proc/PID/status
  local s = readfile("/proc/" .. pid .. "/status")
  return s and tonumber(s:match(field .. ":%s*(%d+)"))
end

local function cputime (pid)           -- utime + stime, seconds
  local s = readfile("/proc/" .. pid .. "/stat")
  if not s then return nil end
  local rest = s:match("^%d+ %(.-%) (.*)$")
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- fields[1] is field 3 (state); utime, stime are fields 14, 15
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

local function stop (srv)
  if not live[srv] then return end
  live[srv] = nil
  for _, pid in ipairs{srv.pid, srv.tpid} do
    if pid then os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
  end
  for _ = 1, 40 do                     -- up to 2 s to go
    if not (srv.pid and alive(srv.pid)) and not alive(srv.tpid) then return end
    sleep(0.05)
  end
  for _, pid in ipairs{srv.pid, srv.tpid} do
    if pid then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  end
end

local function stop_all ()
  for srv in pairs(live) do stop(srv) end
end

-- the first line the server wrote on stderr, for a failure report
local function server_error (srv)
  return (readfile(srv.errfile) or ""):match("[^\n]+")
end

--[[
start(impl, kind, family) -> server record {pid, addr, ...} | nil, reason
kind "echo" or "http"; family "tcp" or "unix".
]]
local function start (impl, kind, family)
  local where = family == "unix" and (tmpdir .. "/" .. impl.key .. ".sock")
                or "127.0.0.1:0"
  local outfile, errfile = OUT .. "/server.out", OUT .. "/server.err"
  os.remove(outfile)
  local line = ("ulimit -n $(ulimit -Hn); %stimeout -s KILL %d %s >%s 2>%s </dev/null & echo $!")
    :format(pin("server"), SAFETY, impl.cmd(kind, family, where), q(outfile), q(errfile))
  local f = assert(io.popen(line))
  local tpid = tonumber(f:read("l"))
  f:close()
  local srv = {tpid = tpid, errfile = errfile}
  live[srv] = true
  for _ = 1, 200 do                    -- up to 10 s to say its address
    local out = readfile(outfile)
    local addr = out and out:match("^([^\n]+)\n")
    if addr then
      local kids = readfile(("/proc/%d/task/%d/children"):format(tpid, tpid)) or ""
      srv.pid = tonumber(kids:match("%d+"))
      srv.addr = addr
      if not srv.pid then
        stop(srv)
        return nil, "cannot find the server's pid"
      end
      return srv
    end
    if not alive(tpid) then break end
    sleep(0.05)
  end
  local why = server_error(srv) or "did not start"
  stop(srv)
  return nil, why
end

-- }======================================================


--[[ {======================================================
Workloads
=======================================================]]

local function kv (line)
  local t = {}
  for k, v in line:gmatch('(%w+)="([^"]*)"') do t[k] = v end
  for k, v in line:gmatch('(%w+)=([^%s"]+)') do t[k] = tonumber(v) or v end
  return t
end

local function loadgen (srv, family, mode, conns, seconds)
  local target = (family == "unix" and "unix:" or "tcp:") .. srv.addr
  local out = capture(("%stimeout -s KILL %d %s %s %s %d %s"):format(
    pin("load"), math.ceil(seconds) + 120, q(OUT .. "/loadgen"), mode, q(target),
    conns, seconds))
  local line = out:match("(mode=[^\n]*)")
  if not line then return nil, "loadgen: " .. (out:match("[^\n]+") or "no output") end
  return kv(line)
end

local WORKLOADS = {
  {key = "rt-tcp", title = "1 conn tcp, round trips/s", kind = "echo",
   family = "tcp", mode = "rt", conns = 1},
  {key = "rt-unix", title = "1 conn unix, round trips/s", kind = "echo",
   family = "unix", mode = "rt", conns = 1},
  {key = "conc", title = "1,000 conns tcp, round trips/s", kind = "echo",
   family = "tcp", mode = "rt", conns = 1000},
  {key = "idle", title = "1,000 idle + 1 busy tcp, busy round trips/s",
   kind = "echo", family = "tcp", mode = "idle", conns = 1000},
  {key = "http", title = ("HTTP hello, wrk -t1 -c50 -d%ds, requests/s"):format(WRK_SECONDS),
   kind = "http", family = "tcp", wrk = true},
}

local function run_wrk (srv)
  local out = capture(("%stimeout -s KILL %d wrk -t1 -c50 -d%ds http://%s/"):format(
    pin("load"), WRK_SECONDS + 60, WRK_SECONDS, srv.addr))
  local rate = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
  if not rate then return nil, "wrk: " .. (out:match("[^\n]+") or "no output") end
  local bad = out:match("Non%-2xx or 3xx responses:%s*(%d+)")
  local sock = out:match("Socket errors:([^\n]*)")
  local errors = (tonumber(bad) or 0)
  if sock then
    for n in sock:gmatch("%d+") do errors = errors + tonumber(n) end
  end
  return {rate = rate, errors = errors, requests = tonumber(out:match("(%d+) requests in")),
          error = errors > 0 and ("wrk:" .. (sock or "") .. (bad and " non-2xx " .. bad or "")) or ""}
end

--[[
measure(impl, wl) -> {rate, cpu, hwm} | nil, reason
One run of one workload against a fresh server.
]]
local function measure (impl, wl)
  local srv, why = start(impl, wl.kind, wl.family)
  if not srv then return nil, why end
  local ok, res, err = pcall(function ()
    local cpu0, t0 = cputime(srv.pid), uptime()
    local r, e
    if wl.wrk then
      r, e = run_wrk(srv)
      if r then r.ops = r.requests end
    else
      r, e = loadgen(srv, wl.family, wl.mode, wl.conns, SECONDS)
      if r then r.ops = r.roundtrips end
    end
    if not r then return nil, e end
    local cpu1, t1 = cputime(srv.pid), uptime()
    r.hwm = status(srv.pid, "VmHWM")
    if cpu0 and cpu1 and t1 > t0 then r.cpu = (cpu1 - cpu0) / (t1 - t0) end
    if cpu0 and cpu1 and r.ops and r.ops > 0 then r.us = (cpu1 - cpu0) / r.ops * 1e6 end
    if not alive(srv.pid) then return nil, "server died: " .. (server_error(srv) or "?") end
    if r.errors ~= 0 or (r.idle_ok and r.idle_ok ~= wl.conns) then
      return nil, ("%s errors (%s)"):format(r.errors, r.error ~= "" and r.error or
                                               ("idle answered " .. tostring(r.idle_ok)))
    end
    return r
  end)
  local last = server_error(srv)
  stop(srv)
  if not ok then error(res, 0) end
  if not res and last and not err:find(last, 1, true) then err = err .. "; server: " .. last end
  return res, err
end

--[[
c10k(impl) -> {served, hwm0, hwm1, per, setup} | nil, reason
C10K connections to one server, all held open at once.
]]
local function c10k (impl)
  local srv, why = start(impl, "echo", "tcp")
  if not srv then return nil, why end
  local ok, res, err = pcall(function ()
    sleep(0.2)
    local hwm0 = status(srv.pid, "VmHWM")
    local r, e = loadgen(srv, "tcp", "c10k", C10K, C10K_HOLD)
    if not r then return nil, e end
    r.hwm0, r.hwm1 = hwm0, status(srv.pid, "VmHWM")
    if not alive(srv.pid) then return nil, "server died: " .. (server_error(srv) or "?") end
    if r.hwm0 and r.hwm1 then r.per = (r.hwm1 - r.hwm0) / C10K end
    r.served = r.served or 0
    if r.served ~= C10K then
      return nil, ("served %d of %d (%s)"):format(r.served, C10K,
                                                 r.error ~= "" and r.error or "?")
    end
    return r
  end)
  local last = server_error(srv)
  stop(srv)
  if not ok then error(res, 0) end
  if not res and last and not err:find(last, 1, true) then err = err .. "; server: " .. last end
  return res, err
end

-- }======================================================


--[[ {======================================================
Statistics and the table
=======================================================]]

local function median (list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function thousands (x)
  local s = ("%d"):format(math.floor(x + 0.5))
  local r
  repeat
    s, r = s:gsub("^(%d+)(%d%d%d)", "%1,%2")
  until r == 0
  return s
end

local function mib (kb)
  return kb and ("%.1f MiB"):format(kb / 1024) or "?"
end

local report = {}     -- lines of the results file

local function out (line)
  report[#report + 1] = line
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

local function progress (fmt, ...)
  io.stderr:write(fmt:format(...), "\n")
end

local function brief (why)   -- a failure reason short enough for a cell
  why = tostring(why):gsub("^server died: ", "")
  why = why:gsub("^lua5%.4: ", ""):gsub("^[^:]*/", "")
  if #why > 80 then why = why:sub(1, 77) .. "..." end
  return why
end

local function width (s)
  return utf8.len(s) or #s
end

local function table_out (header, rows, right)
  local w = {}
  for i, h in ipairs(header) do w[i] = width(h) end
  for _, row in ipairs(rows) do
    for i, c in ipairs(row) do w[i] = math.max(w[i], width(c)) end
  end
  local function line (cells)
    local parts = {}
    for i, c in ipairs(cells) do
      local pad = (" "):rep(w[i] - width(c))
      parts[i] = right[i] and (pad .. c) or (c .. pad)
    end
    return "| " .. table.concat(parts, " | ") .. " |"
  end
  out(line(header))
  local sep = {}
  for i = 1, #header do
    sep[i] = right[i] and (("-"):rep(w[i] + 1) .. ":") or ("-"):rep(w[i] + 2)
  end
  out("|" .. table.concat(sep, "|") .. "|")
  for _, row in ipairs(rows) do out(line(row)) end
end

-- }======================================================


--[[ {======================================================
Main
=======================================================]]

local function build ()
  local msg, ok = capture(("mkdir -p %s && cc -O2 -Wall -o %s %s && cc -O2 -Wall -o %s %s"):format(
    q(OUT), q(OUT .. "/echo_server"), q(ROOT .. "/bench/c/echo_server.c"),
    q(OUT .. "/loadgen"), q(ROOT .. "/bench/c/loadgen.c")))
  if not ok then error("building the C programs failed:\n" .. msg, 0) end
  msg, ok = capture("make -s -C " .. q(ROOT) .. " all")
  if not ok then error("building sockit failed:\n" .. msg, 0) end
  for _, tool in ipairs{"wrk", "timeout", "taskset"} do
    if not capture("command -v " .. tool) :match("/") then
      error(tool .. " is missing (sh bench/deps.sh installs what the bench needs)", 0)
    end
  end
end

local function machine ()
  local cpu = (readfile("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "?"
  local ncpu = capture("nproc"):match("%d+") or "?"
  local kernel = capture("uname -r"):match("[^\n]+")
  local versions = {}
  for _, p in ipairs{"lua5.4", "lua-socket", "lua-luv", "lua-cqueues", "wrk", "gcc"} do
    local v = capture("dpkg-query -W -f='${Version}' " .. p):match("^[^\n]+")
    versions[#versions + 1] = p .. " " .. (v and not v:match("no packages") and v or "?")
  end
  local rev = capture("git -C " .. q(ROOT) .. " describe --always --dirty"):match("[^\n]+")
  return ("%s, %s CPUs, Linux %s; sockit %s; %s"):format(cpu, ncpu, kernel, rev or "?",
                                                         table.concat(versions, ", "))
end

local function loadavg ()   -- the 1-minute load average (other processes make noise)
  return (readfile("/proc/loadavg") or "?"):match("^(%S+)") or "?"
end

local function run_workloads (selected)
  local results = {}    -- wl.key -> impl.key -> {rates, cpus, hwms, fails}
  for _, wl in ipairs(selected) do
    results[wl.key] = {}
    for _, impl in ipairs(IMPLS) do
      results[wl.key][impl.key] = {rates = {}, cpus = {}, us = {}, hwms = {}, fails = {}}
    end
    for rep = 1, REPS do
      for _, impl in ipairs(IMPLS) do
        local r, why = measure(impl, wl)
        local slot = results[wl.key][impl.key]
        if r then
          slot.rates[#slot.rates + 1] = r.rate
          slot.cpus[#slot.cpus + 1] = r.cpu
          slot.us[#slot.us + 1] = r.us
          slot.hwms[#slot.hwms + 1] = r.hwm
          progress("[%s %d/%d] %-9s %s/s  server cpu %s, %s us/op", wl.key, rep, REPS,
                   impl.name, thousands(r.rate), r.cpu and ("%.0f%%"):format(r.cpu * 100) or "?",
                   r.us and ("%.2f"):format(r.us) or "?")
        else
          slot.fails[#slot.fails + 1] = why
          progress("[%s %d/%d] %-9s failed: %s", wl.key, rep, REPS, impl.name, why)
        end
      end
    end
  end
  return results
end

local function print_workloads (selected, results)
  local rows, checks = {}, {}
  for _, wl in ipairs(selected) do
    local cmed = median(results[wl.key].c.rates)
    local meds = {}
    for _, impl in ipairs(IMPLS) do
      local slot = results[wl.key][impl.key]
      local med = median(slot.rates)
      meds[impl.key] = med
      local n = #slot.rates
      local cell, ratio, spread = "n/a (" .. brief(slot.fails[1]) .. ")", "", ""
      if med then
        cell = thousands(med)
        ratio = cmed and ("%.2f"):format(med / cmed) or "?"
        local lo, hi = math.huge, -math.huge
        for _, v in ipairs(slot.rates) do lo, hi = math.min(lo, v), math.max(hi, v) end
        spread = ("%d/%d, ±%.0f%%"):format(n, REPS, (hi - lo) / 2 / med * 100)
        if #slot.fails > 0 then spread = spread .. " (failed: " .. brief(slot.fails[1]) .. ")" end
      end
      local us = median(slot.us)
      rows[#rows + 1] = {wl.title, impl.name, cell, ratio,
                         us and ("%.2f"):format(us) or "",
                         med and mib(median(slot.hwms)) or "", spread}
    end
    local s = meds.sockit
    if s then
      local behind = {}
      for _, impl in ipairs(IMPLS) do
        if impl.key ~= "c" and impl.key ~= "sockit" and impl.key ~= "sockitb"
           and meds[impl.key]
           and meds[impl.key] >= s then
          behind[#behind + 1] = ("%s %s"):format(impl.name, thousands(meds[impl.key]))
        end
      end
      checks[#checks + 1] = ("- %s: sockit %s every peer%s"):format(wl.title,
        #behind == 0 and "ahead of" or "NOT ahead of",
        #behind == 0 and "" or (" (" .. table.concat(behind, ", ") .. ")"))
      if wl.key == "conc" and cmed then
        checks[#checks + 1] = ("- %s: sockit at %.2f× C (target ≥ 0.90×): %s"):format(
          wl.title, s / cmed, s / cmed >= 0.9 and "met" or "NOT met")
      end
    end
  end
  table_out({"workload", "implementation", "median", "ratio to C", "server µs/op",
             "peak RSS", "runs, ±half range"}, rows,
            {false, false, true, true, true, true, false})
  if #checks > 0 then
    out("")
    for _, c in ipairs(checks) do out(c) end
  end
end

local function run_c10k ()
  local reps = math.min(REPS, 3)
  out("")
  out(("c10k: %d concurrent connections to one server, each answers a round trip, "
       .. "then all are held %ds and each answers again; RSS per connection = "
       .. "(VmHWM with them - VmHWM idle) / %d; median of %d run%s"):format(
       C10K, C10K_HOLD, C10K, reps, reps == 1 and "" or "s"))
  out("")
  local rows = {}
  local verdict
  for _, impl in ipairs(IMPLS) do
    local got, fails = {}, {}
    for rep = 1, reps do
      local r, why = c10k(impl)
      if r then
        got[#got + 1] = r
        progress("[c10k %d/%d] %-9s served %d, %.2f KiB/conn, setup %.2fs", rep, reps,
                 impl.name, r.served, r.per or -1, r.setup or -1)
      else
        fails[#fails + 1] = why
        progress("[c10k %d/%d] %-9s failed: %s", rep, reps, impl.name, why)
        if impl.key ~= "sockit" then break end   -- a peer that cannot: once is enough
      end
    end
    if #got > 0 then
      local function med (k)
        local l = {}
        for _, r in ipairs(got) do l[#l + 1] = r[k] end
        return median(l)
      end
      local per = med("per")
      rows[#rows + 1] = {impl.name, ("%d/%d"):format(med("served"), C10K),
                         mib(med("hwm0")), mib(med("hwm1")),
                         per and ("%.2f KiB"):format(per) or "?",
                         ("%.2f s"):format(med("setup")),
                         ("%d/%d"):format(#got, #got + #fails)}
      if impl.key == "sockit" then
        verdict = ("- c10k: sockit served %d/%d at %.2f KiB per connection (target < 8, aim 4): %s"):format(
          med("served"), C10K, per or -1,
          (med("served") == C10K and per and per < 8) and "met" or "NOT met")
      end
    else
      rows[#rows + 1] = {impl.name, "n/a (" .. brief(fails[1]) .. ")", "", "", "", "", ""}
      if impl.key == "sockit" then verdict = "- c10k: sockit FAILED: " .. tostring(fails[1]) end
    end
  end
  table_out({"implementation", "served", "RSS idle", "RSS with 10k", "per conn",
             "open+1st round trip", "runs"}, rows,
            {false, true, true, true, true, true, false})
  if verdict then
    out("")
    out(verdict)
  end
end

local function main ()
  local want = {}
  for i = 1, #arg do want[arg[i]] = true end
  local selected = {}
  for _, wl in ipairs(WORKLOADS) do
    if next(want) == nil or want[wl.key] then selected[#selected + 1] = wl end
  end
  local do_c10k = next(want) == nil or want.c10k
  for k in pairs(want) do
    local known = k == "c10k"
    for _, wl in ipairs(WORKLOADS) do known = known or wl.key == k end
    if not known then error("unknown workload " .. k, 0) end
  end

  build()
  tmpdir = capture("mktemp -d /tmp/sockit-bench.XXXXXX"):match("[^\n]+")
  local env = ("BENCH_REPS=%d BENCH_SECONDS=%s"):format(REPS, SECONDS)
  if WRK_SECONDS ~= 3 then env = env .. " BENCH_WRK_SECONDS=" .. WRK_SECONDS end
  if os.getenv("BENCH_IMPLS") then env = env .. " BENCH_IMPLS=" .. os.getenv("BENCH_IMPLS") end
  if CPUS ~= "same" then env = env .. " BENCH_CPUS=" .. CPUS end
  if os.getenv("BENCH_NICE") == "0" then env = env .. " BENCH_NICE=0" end
  out("# sockit benchmark")
  out("")
  out(("command: `%s lua5.4 bench/run.lua%s`%s"):format(env,
    #arg > 0 and (" " .. table.concat(arg, " ")) or "",
    (#arg == 0 and REPS == 5 and SECONDS == 2 and WRK_SECONDS == 3 and CPUS == "same" and os.getenv("BENCH_NICE") ~= "0"
     and not os.getenv("BENCH_IMPLS")) and " (what `make bench` runs)" or ""))
  out("machine: " .. machine())
  out(("date: %s; load average at start: %s"):format(os.date("!%Y-%m-%d %H:%M UTC"), loadavg()))
  out("")
  if #selected > 0 then
    out(("Medians of %d runs, %gs of load each (wrk: %ds); one server process, one thread; "
         .. "64-byte messages; ratio = median / C's median; server µs/op = the server's CPU time "
         .. "(user + system) per round trip or request; peak RSS = the server's VmHWM; "
         .. "CPUs: %s%s (see bench/run.lua)."):format(REPS, SECONDS, WRK_SECONDS, CPUS,
         NICE ~= "" and ", nice -10" or ""))
    out("")
    print_workloads(selected, run_workloads(selected))
  end
  if do_c10k then run_c10k() end
  out("")
  out("load average at the end: " .. loadavg())
  local f = io.open(OUT .. "/results.md", "w")
  if f then
    f:write(table.concat(report, "\n"), "\n")
    f:close()
    progress("saved %s", OUT .. "/results.md")
  end
end

local ok, err = xpcall(main, debug.traceback)
stop_all()
if tmpdir then os.execute("rm -rf " .. q(tmpdir)) end
if not ok then
  io.stderr:write("bench: ", tostring(err), "\n")
  os.exit(1)
end
