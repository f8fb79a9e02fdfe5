--[[
spec/support/timers_prop.lua — the randomized property test of the event
loop's timers and deadlines (spec/loop_timers_spec.lua runs it in a child
lua5.4, on the epoll core and on the poll(2) fallback).

    lua5.4 timers_prop.lua PART SEED SLOW

PART: "order" (sleepers, spawned up front and from running tasks, in
rounds), "stop" (the same with sockit.stop() from random tasks and run()
again), "io" (sleepers while tasks wait with a deadline in conn reads,
accept and recvfrom and are woken early by data or a close: timers taken
out of the middle of the heap; and serve's idle timeout), "race" (the
same waits with the data arriving within a few milliseconds of the
deadline). Prints "ok PART ..." and exits 0, or raises "FAIL ... seed N"
(exit 1). Every loop is bounded in count, and a watchdog task ends the
child after a bound in time.
]]

local sockit = require "sockit"
local loop = require "sockit.loop"
local core = require "sockit.core"

local now = sockit.now
local part, seed, slow = arg[1], assert(math.tointeger(tonumber(arg[2]))),
  tonumber(arg[3]) or 1
local backend = assert(core.poller()):backend()
math.randomseed(seed)
local R = math.random

local function check(cond, what, fmt, ...)
  if not cond then
    error(("FAIL %s/%s on %s, seed %d: " .. fmt):format(part, what, backend,
          seed, ...), 0)
  end
end

-- every task we spawn, to see that the loop keeps none alive once done
local alive = setmetatable({}, {__mode = "k"})
local function spawn(fn, ...)
  local task = sockit.spawn(fn, ...)
  alive[task] = true
end

-- a watchdog: ends the child if the loop has not finished in time (a
-- lost timer would otherwise hang it until the parent's timeout)
local function watchdog(seconds)
  local limit = now() + seconds
  spawn(function()
    while loop.count() > 1 do
      if now() > limit then
        io.stderr:write(("FAIL %s/watchdog on %s, seed %d: %d tasks left"
          .. " after %.1f s\n"):format(part, backend, seed, loop.count() - 1,
          seconds))
        os.exit(3)
      end
      sockit.sleep(0.05)
    end
  end)
end

-- run() until every task has ended; at most 'maxruns' runs
local function drive(what, maxruns)
  local runs = 0
  while loop.count() > 0 do
    runs = runs + 1
    check(runs <= maxruns, what, "run() returned %d times, %d tasks left",
          runs, loop.count())
    sockit.run()
  end
  return runs
end

local function nothing_alive(what)
  for _ = 1, 3 do collectgarbage() end
  local n = 0
  for _ in pairs(alive) do n = n + 1 end
  check(n == 0, what, "%d finished tasks still alive after collectgarbage", n)
end


--[[ {====================================================== sleepers
A sleeper records when it started, its deadline (its task's field t, as
the loop set it), when it woke and in what place. The model is the list
of every deadline, sorted: the wake order must follow it (ties in any
order), every sleeper must wake exactly once, never before its deadline.
]]

local DUPS = {0.01, 0.05, 0.1, 0.15, 0.2}

local function duration(lo)
  local k = R(12)
  if k == 1 then return 0
  elseif k == 2 then return -R() * 0.1                   -- taken as 0
  elseif k == 3 then return DUPS[R(#DUPS)]               -- same durations
  elseif k == 4 then return DUPS[R(#DUPS)] + R(1, 9) * 1e-9   -- just after
  elseif k == 5 then return DUPS[R(#DUPS)] - R(1, 9) * 1e-9   -- just before
  end
  return (lo or 0) + R() * (0.3 - (lo or 0))
end

local recs, nrecs, seq = {}, 0, 0

local function sleep_recorded(d)
  nrecs = nrecs + 1
  local id = nrecs
  local r = {d = d, t0 = now()}
  recs[id] = r
  local ok, a, b = sockit.sleep(d)
  r.t1 = now()
  check(ok == true and a == nil and b == nil, "sleep", "sleep(%.9g) gave %s %s %s",
        d, tostring(ok), tostring(a), tostring(b))
  r.dl = loop.current().t
  check(r.seq == nil, "once", "sleeper %d woke twice", id)
  seq = seq + 1
  r.seq = seq
end

local function verify_sleepers(what, expected)
  local byseq, n = {}, 0
  local late = 2 * slow + 0.5
  for id = 1, nrecs do
    local r = recs[id]
    n = n + 1
    check(r.seq, what, "sleeper %d (sleep %.9g) never woke", id, r.d)
    check(r.dl >= r.t0 + math.max(r.d, 0), what,
          "sleeper %d: deadline %.9f before start %.9f + %.9g", id, r.dl,
          r.t0, r.d)
    check(r.t1 >= r.dl, what, "sleeper %d woke %.6f s before its deadline",
          id, r.dl - r.t1)
    check(r.t1 - r.dl <= late, what, "sleeper %d woke %.3f s late", id,
          r.t1 - r.dl)
    check(byseq[r.seq] == nil, what, "two sleepers woke as #%d", r.seq)
    byseq[r.seq] = r
  end
  check(n == expected and seq == n, what, "%d sleepers, %d woke, %d expected",
        n, seq, expected)
  local model = {}
  for k = 1, n do model[k] = byseq[k].dl end
  table.sort(model)
  for k = 1, n do
    check(byseq[k].dl == model[k], what,
          "wake #%d had deadline %.9f, the model's #%d is %.9f", k,
          byseq[k].dl, k, model[k])
  end
end

-- 'total' sleepers: some spawned from outside, the rest by running tasks
-- (up to 'rounds' generations), each task sleeping once or twice;
-- stopping: the chance that a task calls sockit.stop() after a sleep
local function sleepers(total, rounds, stopping)
  local spawned = 0
  local body
  function body(gen)
    for _ = 1, R(1, 2) do
      sleep_recorded(duration())
      if stopping and R() < stopping then sockit.stop() end
    end
    if gen < rounds then
      for _ = 1, R(0, 3) do
        if spawned >= total then break end
        spawned = spawned + 1
        spawn(body, gen + 1)
      end
    end
  end
  for _ = 1, total // 3 do
    spawned = spawned + 1
    spawn(body, 1)
  end
  return function() return spawned end
end

-- }======================================================


--[[ {====================================================== waits with a deadline
Each case: a task waits with a deadline T (conn read, accept, recvfrom;
one to three waiters on a listener or an endpoint) while an actor task
sleeps A and then acts: sends, ends the stream, closes the waited-on
object, or does nothing. The first result must fit the action (data /
EOF / EBADF) when A is well before T, be ETIMEDOUT when A is well after
T (or there is no action), and may be either in between; after an
ETIMEDOUT the data is still there, whole, for the next wait.
]]

local function timings(race)
  local T = 0.05 + R() * 0.35
  local A
  if race then A = T + (R() - 0.5) * 0.004 else A = R() * 0.5 end
  return T, A
end

local margin = 0.1 * slow

-- part "iostop": tasks call sockit.stop() now and then, and the loop is
-- run again at once
local stop_chance = part == "iostop" and 0.05 or 0
local function maybe_stop()
  if R() < stop_chance then sockit.stop() end
end

-- what the first result may be: "act", "timeout" or "either"
local function expect(action, T, A)
  if action == "none" or A > T + margin then return "timeout" end
  if A + margin < T then return "act" end
  return "either"
end

local function conn_case(l, race, results)
  local c = assert(sockit.connect("tcp", l:addr()))
  local s = assert(l:accept())
  local T, A = timings(race)
  local actions = {"write", "write", "shut", "close", "none"}
  local action = actions[R(#actions)]
  local op = ({"recv", "read_n", "read_l", "recv_nt"})[R(4)]
  -- (recv_nt: conn:recv with no timeout, the loop's other way to wait;
  -- something must then happen)
  if op == "recv_nt" and action == "none" then action = "write" end
  local msg = ("m%d-%d"):format(R(1e6), R(1e6))
  local r = {what = "conn " .. op .. "/" .. action, T = T, A = A}
  results[#results + 1] = r
  if op == "recv_nt" then T = math.huge else s:settimeout(T) end
  local function readop()
    if op == "recv" or op == "recv_nt" then return s:recv()
    elseif op == "read_n" then return s:read(#msg)
    else return s:read("l") end
  end
  spawn(function()
    local data, emsg, code = readop()
    r.first = data and "data" or code
    maybe_stop()
    local want = expect(action, T, A)
    local acted = action == "write" and "data" or action == "shut" and "EOF"
                  or action == "close" and "EBADF"
    if want == "act" then
      check(r.first == acted, r.what, "T %.4f A %.4f: %s (%s), expected %s",
            T, A, r.first, tostring(emsg), acted)
    elseif want == "timeout" then
      check(r.first == "ETIMEDOUT", r.what, "T %.4f A %.4f: %s (%s), expected"
            .. " ETIMEDOUT", T, A, r.first, tostring(emsg))
    else
      check(r.first == acted or r.first == "ETIMEDOUT", r.what,
            "T %.4f A %.4f: %s (%s)", T, A, r.first, tostring(emsg))
    end
    if action == "write" then
      -- after a timeout the same read again finds the data, whole
      s:settimeout(3 * slow)
      if not data then
        data, emsg, code = readop()
        check(data, r.what, "data lost after %s: %s %s", r.first,
              tostring(emsg), tostring(code))
      end
      -- (recv: whatever has arrived, maybe a part)
      for _ = 1, #msg do
        if #data >= #msg then break end
        local more, m2, c2 = s:recv()
        check(more, r.what, "data lost after %s: %s %s (had %q)", r.first,
              tostring(m2), tostring(c2), data)
        data = data .. more
      end
      check(data == msg, r.what, "read %q, sent %q", data, msg)
      -- nothing more: the peer ends the stream after its message
      local rest, _, c3 = s:recv()
      check(rest == nil and c3 == "EOF", r.what, "more after the message: %s %s",
            tostring(rest), tostring(c3))
    elseif action == "shut" then
      s:settimeout(3 * slow)
      local rest, _, c3 = s:recv()
      check(rest == nil and c3 == "EOF", r.what, "after %s: %s %s, expected EOF",
            r.first, tostring(rest), tostring(c3))
    end
    r.done = true
    s:close()
  end)
  spawn(function()
    sockit.sleep(A)
    maybe_stop()
    if action == "write" then
      assert(c:write(op == "read_l" and msg .. "\n" or msg))
      c:close()
    elseif action == "shut" then
      c:close()
    elseif action == "close" then
      s:close()
    end
    r.acted = true
    -- (wait for the reader: "none" keeps c open until it timed out)
    for _ = 1, 1000 do
      if r.done or r.first == "EBADF" or (action == "none" and r.first) then
        break
      end
      sockit.sleep(0.01)
    end
    c:close()
  end)
end

-- one to three acceptors on a listener; the actor connects once, closes
-- the listener, or does nothing
-- the verdict on one waiter of accept_case/recvfrom_case: 'res' is
-- 'success' (a conn, data), or the code it failed with; what the action
-- (close, none, or one that brings 'success') allows, given the deadline
-- Ti and the action's time A
local function judge(r, action, Ti, A, who, success, res, emsg)
  local want = expect(action, Ti, A)
  if action == "close" then
    check(res == "EBADF" or res == "ETIMEDOUT", r.what, "%s: %s %s", who, res,
          tostring(emsg))
    if want == "act" then
      check(res == "EBADF", r.what, "%s: %s (T %.4f A %.4f)", who, res, Ti, A)
    end
  elseif action == "none" then
    check(res == "ETIMEDOUT", r.what, "%s: %s %s", who, res, tostring(emsg))
  else
    check(res == success or res == "ETIMEDOUT", r.what, "%s: %s %s", who, res,
          tostring(emsg))
    if res == "ETIMEDOUT" and want == "act" then r.missed = true end
  end
end

local function accept_case(race, results)
  local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
  local n = R(1, 3)
  local T, A = timings(race)
  local action = ({"connect", "connect", "close", "none"})[R(4)]
  local r = {what = "accept x" .. n .. "/" .. action, T = T, A = A, got = 0,
             left = n}
  results[#results + 1] = r
  for i = 1, n do
    spawn(function()
      -- each acceptor its own deadline (settimeout applies to the accepts
      -- that start after it): the first T, the others later, behind it
      local Ti = T
      if i > 1 then Ti = T + R() * 0.2 end
      l:settimeout(Ti)
      local c, emsg, code = l:accept()
      local res = c and "conn" or code
      maybe_stop()
      judge(r, action, Ti, A, "acceptor " .. i, "conn", res, emsg)
      if c then
        r.got = r.got + 1
        c:close()
      end
      r.left = r.left - 1
      if r.left == 0 then
        if action == "connect" then
          -- the connection waits in the backlog if every acceptor timed out
          -- (an acceptor that was still waiting well after the connect
          -- must not have timed out with it pending)
          check(r.got == 1 or not r.missed, r.what, "an acceptor timed out "
                .. "with the connection pending (T %.4f A %.4f)", T, A)
          if r.got == 0 then
            l:settimeout(3 * slow)
            local c2, m2, c2code = l:accept()
            check(c2, r.what, "the connection was lost: %s %s", tostring(m2),
                  tostring(c2code))
            c2:close()
            r.got = 1
          end
          check(r.got == 1, r.what, "%d acceptors got the one connection", r.got)
        end
        r.done = true
        l:close()
      end
    end)
  end
  spawn(function()
    sockit.sleep(A)
    if action == "connect" then
      local c = assert(sockit.connect("tcp", l:addr()))
      for _ = 1, 1000 do
        if r.done then break end
        sockit.sleep(0.01)
      end
      c:close()
    elseif action == "close" then
      l:close()
    end
  end)
end

-- one or two receivers on an endpoint; the actor sends one datagram,
-- closes the endpoint, or does nothing
local function dgram_case(race, results)
  local ep = assert(sockit.bind("udp", "127.0.0.1:0"))
  local n = R(1, 2)
  local T, A = timings(race)
  local action = ({"send", "send", "close", "none"})[R(4)]
  local r = {what = "recvfrom x" .. n .. "/" .. action, T = T, A = A, got = 0,
             left = n}
  results[#results + 1] = r
  local msg = ("d%d"):format(R(1e9))
  for i = 1, n do
    spawn(function()
      local Ti = T
      if i > 1 then Ti = T + R() * 0.2 end
      ep:settimeout(Ti)
      local data, emsg, code = ep:recvfrom()
      local res = data and "data" or code
      maybe_stop()
      judge(r, action, Ti, A, "receiver " .. i, "data", res, emsg)
      if data then
        check(data == msg, r.what, "got %q, sent %q", data, msg)
        r.got = r.got + 1
      end
      r.left = r.left - 1
      if r.left == 0 then
        if action == "send" then
          check(r.got == 1 or not r.missed, r.what, "a receiver timed out "
                .. "with the datagram pending (T %.4f A %.4f)", T, A)
          if r.got == 0 then
            ep:settimeout(3 * slow)
            local d2, m2, c2 = ep:recvfrom()
            check(d2 == msg, r.what, "the datagram was lost: %s %s %s",
                  tostring(d2), tostring(m2), tostring(c2))
            r.got = 1
          end
          check(r.got == 1, r.what, "%d receivers got the one datagram", r.got)
          ep:settimeout(0)
          local d3 = ep:recvfrom()
          check(d3 == nil, r.what, "a second datagram: %q", tostring(d3))
        end
        r.done = true
        ep:close()
      end
    end)
  end
  spawn(function()
    sockit.sleep(A)
    if action == "send" then
      local sender = assert(sockit.bind("udp", "127.0.0.1:0"))
      assert(sender:sendto(msg, ep:addr()))
      sender:close()
    elseif action == "close" then
      ep:close()
    end
  end)
end

--[[
Writers taking turns on one conn (wait.queue: loop.suspend with a
deadline, loop.resume when the turn passes): the peer reads nothing
until A, each of three writers sends its own byte, 'size' of them, with
its own timeout. A writer either sent all of it, or timed out having sent
a prefix (maybe none); in the stream each writer's bytes are one run,
whole for those that succeeded.
]]
local function writers_case(l, race, results)
  local c = assert(sockit.connect("tcp", l:addr()))
  local s = assert(l:accept())
  -- (small buffers: the writers must wait for room)
  assert(c.socket:setoption("sndbuf", 8192))
  assert(s.socket:setoption("rcvbuf", 8192))
  local T, A = timings(race)
  local n = 3
  local sizes = {}
  for i = 1, n do sizes[i] = ({1000, 16384, 65536, 262144})[R(4)] end
  local r = {what = "writers", T = T, A = A, left = n, res = {}}
  results[#results + 1] = r
  for i = 1, n do
    spawn(function()
      local Ti = T + (i - 1) * R() * 0.1
      c:settimeout(Ti)
      local ok, emsg, code = c:write(string.rep(string.char(64 + i),
                                                sizes[i]))
      r.res[i] = ok and "ok" or code
      check(ok or code == "ETIMEDOUT", r.what, "writer %d: %s %s", i,
            tostring(emsg), tostring(code))
      maybe_stop()
      r.left = r.left - 1
      if r.left == 0 then c:close() end
    end)
  end
  spawn(function()
    sockit.sleep(A)
    s:settimeout(3 * slow + 1)
    local parts = {}
    for _ = 1, 10000 do
      local data, emsg, code = s:recv()
      if not data then
        check(code == "EOF", r.what, "reading: %s %s", tostring(emsg),
              tostring(code))
        break
      end
      parts[#parts + 1] = data
    end
    s:close()
    local stream = table.concat(parts)
    local seen, pos = {}, 1
    while pos <= #stream do
      local ch = stream:sub(pos, pos)
      local i = ch:byte() - 64
      local e = stream:find("[^" .. ch .. "]", pos) or #stream + 1
      check(i >= 1 and i <= n and not seen[i], r.what,
            "writer %s's bytes in two runs, or a stranger's", ch)
      seen[i] = e - pos
      pos = e
    end
    for i = 1, n do
      if r.res[i] == "ok" then
        check(seen[i] == sizes[i], r.what, "writer %d succeeded but sent %s bytes",
              i, tostring(seen[i]))
      else
        check((seen[i] or 0) < sizes[i], r.what, "writer %d timed out (%s) but "
              .. "sent everything", i, tostring(r.res[i]))
      end
    end
    r.done = true
  end)
end

-- serve's idle timeout: idle clients are closed after it, busy ones are
-- served, then closed once idle
local function serve_case(results)
  local Ts = 0.1 + R() * 0.15
  local server = assert(sockit.serve("tcp", "127.0.0.1:0", function(c)
    for line in c:lines() do assert(c:write(line, "\n")) end
  end, {timeout = Ts}))
  local n = 12
  local left = n
  local r = {what = "serve timeout", done = false}
  results[#results + 1] = r
  for i = 1, n do
    spawn(function()
      local c = assert(sockit.connect("tcp", server:addr()))
      c:settimeout(3 * slow + 1)
      local busy = i % 2 == 0 and R(1, 3) or 0
      for k = 1, busy do
        sockit.sleep(R() * Ts * 0.3)
        assert(c:write("x", k, "\n"))
        local echo, emsg = c:read("l")
        check(echo == "x" .. k, r.what, "client %d: echo %s (%s)", i,
              tostring(echo), tostring(emsg))
      end
      local t0 = now()
      local data, emsg, code = c:read("l")
      local idle = now() - t0
      check(data == nil and code == "EOF", r.what, "client %d: %s %s %s, "
            .. "expected EOF", i, tostring(data), tostring(emsg), tostring(code))
      check(idle >= Ts * 0.5, r.what, "client %d closed after %.3f s idle "
            .. "(timeout %.3f)", i, idle, Ts)
      c:close()
      left = left - 1
      if left == 0 then
        r.done = true
        server:close()
      end
    end)
  end
end

-- }======================================================


local t0 = now()
if part == "order" or part == "stop" then
  local stopping = part == "stop" and 0.01 or nil
  local count = sleepers(1400, 4, stopping)
  watchdog(20 * slow)
  local runs = drive(part, part == "stop" and 2000 or 1)
  verify_sleepers(part, nrecs)
  nothing_alive(part)
  print(("ok %s on %s: %d sleepers in %d tasks, %d runs, %.2f s"):format(part,
        backend, nrecs,
        count(), runs, now() - t0))
elseif part == "io" or part == "race" or part == "iostop" then
  local race = part == "race"
  local results = {}
  -- the background: sleepers with deadlines all over the waits' own
  local nsleep = race and 1000 or 3000
  for _ = 1, nsleep do spawn(function() sleep_recorded(duration()) end) end
  local l = assert(sockit.listen("tcp", "127.0.0.1:0", {backlog = 512}))
  local ncases = race and 150 or 80
  for _ = 1, ncases do conn_case(l, race, results) end
  for _ = 1, race and 30 or 20 do accept_case(race, results) end
  for _ = 1, race and 30 or 20 do dgram_case(race, results) end
  for _ = 1, 4 do writers_case(l, race, results) end
  if not race then serve_case(results) end
  watchdog(20 * slow)
  local runs = drive(part, part == "iostop" and 1000 or 1)
  l:close()
  for i, r in ipairs(results) do
    check(r.done or r.first == "EBADF" or r.first == "ETIMEDOUT"
          or r.first == "data" or r.first == "EOF", r.what,
          "case %d never finished", i)
  end
  verify_sleepers(part, nsleep)
  nothing_alive(part)
  local n = {}
  for _, r in ipairs(results) do
    local k = r.first or "-"
    n[k] = (n[k] or 0) + 1
    for _, w in pairs(r.res or {}) do n["w" .. w] = (n["w" .. w] or 0) + 1 end
  end
  print(("ok %s on %s: %d sleepers, %d cases (reads: data %d, ETIMEDOUT %d, EOF %d,"
         .. " EBADF %d; writes: whole %d, ETIMEDOUT %d), %d runs, %.2f s")
         :format(part, backend, nsleep, #results, n.data or 0, n.ETIMEDOUT or 0,
         n.EOF or 0, n.EBADF or 0, n.wok or 0, n.wETIMEDOUT or 0, runs,
         now() - t0))
else
  error("unknown part " .. tostring(part))
end
