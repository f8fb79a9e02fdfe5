--[[
sockit.loop — tasks, timers and the poller: the event loop.

A task is a coroutine. When a task's socket operation would block, the
Lua layer calls wait.wait, whose hook (installed here) parks the task:
it records which descriptor and events it waits for and, if it has a
deadline, puts its timer in a binary heap. run() resumes ready tasks, then
waits on the poller until the earliest deadline, wakes the tasks whose
descriptors became ready, and the tasks whose deadlines passed.

Costs: with epoll each descriptor is registered once, edge-triggered, for
"r", and for "rw" from the first time a task waits to write on it (see
enroll; tasks wait only after EAGAIN, so no edge is missed); a wait then
costs no system call of its own, and a poller wait costs O(ready). Timers
are an indexed heap: O(log n) to add or cancel, nothing per wait without a
deadline. A task is its own timer record (fields t and pos), so a steady
loop allocates little. With the poll(2) backend the loop falls back to
level-triggered interest that follows the waiting tasks.

Outside a task (the main coroutine, or a coroutine the loop did not make)
the hook answers "not mine" and wait.wait blocks as before.
]]

local M = {}

local core = require "sockit.core"
local wait = require "sockit.wait"

local co_create, co_resume, co_running, co_yield, co_status =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.yield,
  coroutine.status
local now = core.now
local traceback = debug.traceback
local error, setmetatable, type, select, tostring, pairs =
  error, setmetatable, type, select, tostring, pairs
local io_stderr = io.stderr
local math_max = math.max


local poller          -- created on first need
local edge            -- true with epoll: register once, edge-triggered
local tasks = {}      -- coroutine -> task
local ntasks = 0
local ready, nready = {}, 0       -- tasks to resume, in order
local spare = {}                  -- the other ready array, swapped in
local readers, writers = {}, {}   -- fd -> task parked for "r" / "w"
-- fd -> the other tasks parked for "r" / "w" behind readers[fd] /
-- writers[fd], when the wait may be shared (park's 'shared': two
-- acceptors of one listener, two receivers of one datagram endpoint)
local rmore, wmore = {}, {}
-- fd -> the coroutine of a task parked by park_recv (edge mode, no
-- deadline): the commonest wait, kept apart so that neither parking nor
-- waking touches the task's table (a cold line or two per message at a
-- thousand connections: bench/README.md)
local rdco = {}
local nparked_io = 0              -- tasks parked on a descriptor
local registered = setmetatable({}, {__mode = "v"})  -- fd -> socket
-- socket -> its descriptor, once the socket is registered with the
-- poller (edge mode; in level mode as soon as a task waits on it): one
-- look-up per wait both finds the descriptor and says that the poller
-- has it (a socket's descriptor never changes while it is open; weak keys)
local fdof = setmetatable({}, {__mode = "k"})
local p_wait                      -- the poller's wait method
local levelmask = {}              -- fd -> mask registered (level mode)
-- fd -> true once its edge registration includes "w" (edge mode: a
-- descriptor is registered for "r" until a task first waits to write on
-- it; see enroll)
local edgew = {}
local heap, nheap = {}, 0         -- timers: tasks, by their field t
local running, stopping = false, false
-- the task the loop resumed last: park finds it here without a look-up
-- in 'tasks' (a cold line of a big table at ten thousand tasks), after
-- checking that its coroutine is the one running
local current = false
-- the coroutine the loop resumed last: park_recv knows a task of this
-- loop is running when co_running() is this one, without a look-up
local curco = false
-- what a task yields when it parks (any other yield: "run again later")
local PARKED = setmetatable({}, {__name = "sockit.loop.parked"})


--[[ {======================================================
Timers: a binary heap of tasks, by deadline (task.t); task.pos is the
task's place in the heap, 0 when it is not there
=======================================================]]

local function heap_up (i)
  local e = heap[i]
  local t = e.t
  while i > 1 do
    local p = i // 2
    local pe = heap[p]
    if pe.t <= t then break end
    heap[i] = pe
    pe.pos = i
    i = p
  end
  heap[i] = e
  e.pos = i
end

local function heap_down (i)
  local e = heap[i]
  local t = e.t
  while true do
    local c = 2 * i
    if c > nheap then break end
    local ce = heap[c]
    if c < nheap and heap[c + 1].t < ce.t then
      c = c + 1
      ce = heap[c]
    end
    if ce.t >= t then break end
    heap[i] = ce
    ce.pos = i
    i = c
  end
  heap[i] = e
  e.pos = i
end

local function timer_add (e, t)
  e.t = t
  nheap = nheap + 1
  heap[nheap] = e
  heap_up(nheap)
end

local function timer_remove (e)
  local i = e.pos
  if i == 0 then return end
  e.pos = 0
  local last = heap[nheap]
  heap[nheap] = nil
  nheap = nheap - 1
  if i <= nheap then
    heap[i] = last
    last.pos = i
    if i > 1 and heap[i // 2].t > last.t then heap_up(i) else heap_down(i) end
  end
end

-- }======================================================


--[[ {======================================================
Parking and waking
=======================================================]]

local function getpoller ()
  if not poller then
    poller = assert(core.poller())
    edge = poller:backend() == "epoll"
    p_wait = poller.wait
    -- evs as 1, 2, 3 ("r", "w", "rw"): compared inline by the VM
    poller:_numeric()
  end
  return poller
end

-- level mode: make the poller's interest in fd follow its waiting tasks
local function level_update (fd)
  local want = (readers[fd] and 1 or 0) + (writers[fd] and 2 or 0)
  local have = levelmask[fd] or 0
  if want == have then return end
  local ev = want == 1 and "r" or want == 2 and "w" or "rw"
  if want == 0 then
    poller:remove(fd)
    levelmask[fd] = nil
  elseif have == 0 then
    assert(poller:add(fd, ev))
    levelmask[fd] = want
  else
    assert(poller:modify(fd, ev))
    levelmask[fd] = want
  end
end

--[[
A task waits in one of two ways.
- To read, with no deadline, in edge mode (park_recv: the commonest wait):
  its coroutine is in rdco[fd], and the poller's report resumes it at
  once (poll_once). Its table is not touched either way; its field
  'parked' stays false.
- Otherwise (park, suspend): its field 'parked' is true, the task is in
  readers[fd] / writers[fd] and the heap as it waits, and wake() queues it
  with its field 'why': false (ready), "timeout" or "closed".
Every park yields PARKED; a resume hands the parked coroutine the reason
it was woken (nothing when it is ready), which its park returns.
]]

-- put 'task' at the end of the ready queue
local function queue (task)
  nready = nready + 1
  ready[nready] = task
end

local wake

--[[
'task', first of those parked on fd for one direction ('first' readers or
writers, 'more' rmore or wmore), is woken for 'why'. Readiness and a close
concern every task behind it too: each is woken and tries its operation
again (one wins, the others park again). A timeout is the task's own: the
next in line becomes the first.
]]
local function wake_more (first, more, fd, why)
  local list = more[fd]
  if why == "timeout" then
    first[fd] = table.remove(list, 1)
    if not list[1] then more[fd] = nil end
  else
    more[fd] = nil
    for i = 1, #list do wake(list[i], why) end
  end
end

-- a task parked behind the first leaves the line (its own timeout)
local function leave_more (more, fd, task)
  local list = more[fd]
  if not list then return end
  for i = 1, #list do
    if list[i] == task then
      table.remove(list, i)
      if not list[1] then more[fd] = nil end
      return
    end
  end
end

-- 'task' parks on fd: first (readers or writers) if no other task is
-- there, else at the end of the line behind it ('more')
local function enpark (first, more, fd, task)
  local t = first[fd]
  if not t or t == task then
    first[fd] = task
    return
  end
  local list = more[fd]
  if not list then list = {}; more[fd] = list end
  list[#list + 1] = task
end

-- 'task', parked on fd, is woken for 'why': out of 'first' (readers or
-- writers) or the line behind it ('more': rmore or wmore)
local function unpark (first, more, fd, task, why)
  if first[fd] == task then
    first[fd] = nil
    if more[fd] then wake_more(first, more, fd, why) end
  elseif more[fd] then
    leave_more(more, fd, task)
  end
end

-- wake a parked task, with why false (ready), "timeout" or "closed";
-- true if it was parked
function wake (task, why)
  if not task.parked then return false end
  task.parked = false
  task.why = why
  local fd = task.fd
  if fd then
    unpark(readers, rmore, fd, task, why)
    unpark(writers, wmore, fd, task, why)
    task.fd = false
    nparked_io = nparked_io - 1
    if not edge and poller then level_update(fd) end
  end
  if task.pos ~= 0 then timer_remove(task) end
  queue(task)
  return true
end

--[[
The first wait on 'sock' (for 'events'): in edge mode register its
descriptor with the poller, once, for "r", or "rw" when the wait is to
write; then note the descriptor in fdof. Returns the descriptor, or nil,
msg, code.

Why not "rw" from the start: a unix socket's peer that reads what we sent
frees our send buffer, and the kernel then signals "writable" on our
socket every time, whether we wait to write or not. Registered for "w",
each such signal wakes the loop from its poller wait for nothing: one
context switch more per message on a unix socket. So "w" is added
(ensure_w) only once a task has to wait for room, which is rare.
]]
local function enroll (sock, events)
  local fd = sock:fileno()
  local p = getpoller()
  if edge and registered[fd] ~= sock then
    local ev = events == "r" and "r" or "rw"
    local ok, msg, code = p:add(fd, ev, true)
    if not ok and code == "EEXIST" then   -- fd number reused: a stale entry
      ok, msg, code = p:modify(fd, ev, true)
    end
    if not ok then return nil, msg, code end
    registered[fd] = sock
    edgew[fd] = ev == "rw" or nil
  end
  fdof[sock] = fd
  -- a core socket closed directly (conn.socket:close()) calls 'closing'
  -- through the core's close hook (a resolve job has no such hook: only
  -- wait.close closes it)
  local watch = sock._watch
  if watch then watch(sock) end
  return fd
end

--[[
M.enroll(sock): watch a socket for reading now, as its first wait would
(serve does it for each connection it accepts, in its accept task: the
handler's first receive then parks without this call, whose C calls
would need more than a task's first 40 stack slots; see spawn). A
failure is left for that first wait to meet and report.
]]
function M.enroll (sock)
  if not fdof[sock] then enroll(sock, "r") end
end

-- edge mode: add "w" to fd's registration (not there yet: edgew) before
-- a task waits to write (a modify re-checks readiness, so no edge is lost)
local function ensure_w (fd)
  local ok, msg, code = poller:modify(fd, "rw", true)
  if not ok then return nil, msg, code end
  edgew[fd] = true
  return true
end

--[[
A task may ask to be told just before it parks (M.before_park): a UDP
server sends the replies it has queued before its handler sleeps. The
hook is off while it runs, so a park it causes itself does not call it.
]]
local nbefore = 0   -- tasks with a before_park: none, no look-up per park
local function before_park (task)
  local fn = task.before_park
  if fn then
    task.before_park = nil
    fn()
    task.before_park = fn
  end
end

-- the task of this loop running now, or nil
local function running_task ()
  local co = co_running()
  local task = current
  if task and task.co == co then return task end
  return tasks[co]
end

-- what a parked task says when it is resumed for 'why' (not readiness)
local function woken (why, sock)
  if why == "timeout" then
    if sock then return nil, "timed out", "ETIMEDOUT" end
    return true
  end
  return nil, "socket closed while waiting", "EBADF"
end

--[[
The hook of wait.wait: park the running task until 'sock' is ready for
'events' or 'deadline' passes. Returns false ("not in a task") when the
caller is not a task of this loop, so that wait.wait blocks instead.
A second task waiting on the same socket for the same direction fails
with "EBUSY", unless 'shared' (an operation that takes one unit whole,
as accept or a datagram's receive, and keeps no state of its own across
the wait): then it parks behind the first (rmore, wmore).
]]
local function park (sock, events, deadline, shared)
  local task = running_task()
  if not task then return false end
  if task.before_park then before_park(task) end
  if sock then
    local fd, msg, code = fdof[sock]
    if not fd then fd, msg, code = enroll(sock, events) end
    if not fd then return nil, msg, code end
    if edge and events ~= "r" and not edgew[fd] then
      local ok
      ok, msg, code = ensure_w(fd)
      if not ok then return nil, msg, code end
    end
    if events ~= "w" then
      local r = readers[fd]
      if rdco[fd] or (r and r ~= task and not (shared and events == "r")) then
        return nil, "another task is already reading this socket", "EBUSY"
      end
      enpark(readers, rmore, fd, task)
    end
    if events ~= "r" then
      local w = writers[fd]
      if w and w ~= task and not (shared and events == "w") then
        if readers[fd] == task then readers[fd] = nil end
        return nil, "another task is already writing this socket", "EBUSY"
      end
      enpark(writers, wmore, fd, task)
    end
    if not edge then level_update(fd) end
    task.fd = fd
    nparked_io = nparked_io + 1
  end
  if deadline then timer_add(task, deadline) end
  task.parked = true
  local why = co_yield(PARKED)
  if why then return woken(why, sock) end
  -- made ready, then closed by a task that ran first ('closing' forgot
  -- it): as if closed while waiting, for every caller of the hook
  if sock and not fdof[sock] then
    return nil, "socket closed while waiting", "EBADF"
  end
  return true
end

--[[
The hook of conn:recv (wait.recvhook): once a receive on 'sock' has said
EAGAIN, park the task until it is readable and receive again, up to 'max'
bytes, until data, the end or an error; the same as
wait.hook(sock, "r", nil) and a receive in a loop, in fewer steps.
conn:recv reaches it by a tail call, so that a resumed task returns
straight to the handler: the frame of conn:recv is not on its stack (on
a resume every frame is a cold line or two: bench/README.md). Outside a
task it tail-calls fallback(conn, max), conn:recv's way of blocking.

In edge mode the task's coroutine waits in rdco, and the poller's report
resumes it at once (poll_once): neither side touches the task's table.
]]
local c_recv = core.methods.recv
local function park_recv (sock, max, conn, fallback)
  local co = co_running()
  if co ~= curco and not tasks[co] then return fallback(conn, max) end
  while true do
    if not edge then
      local ok, msg, code = park(sock, "r", nil)
      if not ok then return nil, "recv: " .. msg, code end
    else
      if nbefore > 0 then
        local task = running_task()
        if task.before_park then before_park(task) end
      end
      local fd, msg, code = fdof[sock]
      if not fd then
        fd, msg, code = enroll(sock, "r")
        if not fd then return nil, "recv: " .. msg, code end
      end
      if rdco[fd] or readers[fd] then
        return nil, "recv: another task is already reading this socket", "EBUSY"
      end
      rdco[fd] = co
      nparked_io = nparked_io + 1
      local why = co_yield(PARKED)
      if why then
        local _, wmsg, wcode = woken(why, sock)
        return nil, "recv: " .. wmsg, wcode
      end
    end
    -- ready, but closed by a task that ran first: as if closed while waiting
    if conn._closed then return nil, "recv: socket closed while waiting", "EBADF" end
    local data, msg, code = c_recv(sock, max)
    if data then return data end
    if code ~= "EAGAIN" then return nil, msg, code end
  end
end


--[[
The closing hook: 'sock' is about to be closed. The core calls it from
the close of a socket the loop watches (core._closehook, enroll), and
wait.close for a resolve job. Take its descriptor out of the poller
first (STYLE.md 11) and wake whoever waits on it, so that a task blocked
in accept or read sees "EBADF".
]]
local function closing (sock)
  local fd = fdof[sock] or sock:fileno()
  fdof[sock] = nil
  local co = rdco[fd]
  if co then   -- parked by park_recv: queue it, told "closed"
    rdco[fd] = nil
    nparked_io = nparked_io - 1
    local task = tasks[co]
    task.why = "closed"
    queue(task)
  end
  local r, w = readers[fd], writers[fd]
  if r then wake(r, "closed") end
  if w then wake(w, "closed") end
  if poller then
    if registered[fd] == sock then
      registered[fd] = nil
      edgew[fd] = nil
      poller:remove(fd)
    elseif levelmask[fd] then
      levelmask[fd] = nil
      poller:remove(fd)
    end
  end
end

-- }======================================================


--[[ {======================================================
Tasks
=======================================================]]

local taskmeta = {__name = "sockit.task"}
local unpack = table.unpack

-- coroutine -> what to call when that task ends (M.spawn_ended)
local enders = {}
-- (no __index: a task's absent field, before_park mostly, is then a
-- cheap miss)

-- whether 't' waits in rdco (a scan: for printing only)
local function inrdco (t)
  for _, co in pairs(rdco) do
    if co == t.co then return true end
  end
  return false
end

function taskmeta.__tostring (t)
  return ("sockit.task{%s}"):format(t.done and "done" or
    (t.co == co_running() and "running") or
    ((t.parked or inrdco(t)) and "waiting" or "ready"))
end

--[[
M.spawn(fn, ...) -> task. fn(...) runs as a new task at the next turn of
the loop. A task that raises is reported on stderr (with a traceback) and
ends; the loop goes on. task.done is true once it has ended, task.error
holds what it raised.
]]
local spawn
function M.spawn (fn, ...)
  if type(fn) ~= "function" then
    error(("bad argument #1 to 'spawn' (function expected, got %s)")
          :format(type(fn)), 2)
  end
  return spawn(fn, ...)
end

--[[
The coroutine runs fn itself, with no frame of ours below it: a task's
stack then stays at Lua's first 40 slots (a coroutine's stack doubles,
to 80, the first time a call needs more) whenever the calls under a C
function's 20 reserved slots take 20 or fewer, as a serve handler's
do, and every collection walks (and clears) each task's whole stack
(bench/README.md).
]]
function spawn (fn, ...)
  -- the count and the arguments wait in the task's own array part until
  -- the first resume hands them to fn: no closure, no argument table. A
  -- task's eight fields fit the smallest table that holds eight (c10k:
  -- bench/README.md); before_park is set rarely.
  local task = setmetatable({select("#", ...), ...}, taskmeta)
  task.fn, task.parked, task.done, task.t, task.pos = fn, false, false, 0, 0
  task.fd, task.why = false, false
  task.co = co_create(fn)
  tasks[task.co] = task
  ntasks = ntasks + 1
  queue(task)
  return task
end

--[[
M.spawn_ended(ended, fn, ...) -> task (for serve): spawn fn(...), and
when it ends call ended(task, ok, err) from the loop, outside any task:
ok true when fn returned, else err is what it raised, with the task's
traceback when it is a string, a number or nil (as xpcall(fn,
debug.traceback) gives).
The arguments stay in task[2..task[1] + 1] for ended. The task itself
then counts as ended quietly, as a task whose body caught the error.
]]
function M.spawn_ended (ended, fn, ...)
  local task = spawn(fn, ...)
  enders[task.co] = ended
  return task
end

-- the task running now, or nil outside any task
function M.current ()
  return running_task()
end

--[[
M.describe(v) -> string: tostring(v) for a report, even when v's
__tostring raises or returns no string (an error object may be anything:
its report must not take the loop down with it).
]]
function M.describe (v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return "(a " .. type(v) .. " whose __tostring failed)"
end

M.onerror = function (task, err)
  io_stderr:write("sockit: task failed: ", M.describe(err), "\n")
  io_stderr:flush()
  return task
end

-- what follows a resume of 'task' that did not park (did not yield
-- PARKED): it yielded, ended or raised
local function resumed (task, ok, res)
  local co = task.co
  if ok and co_status(co) == "suspended" then
    queue(task)   -- a plain coroutine.yield(): run again later
    return
  end
  tasks[co] = nil
  ntasks = ntasks - 1
  task.done = true
  if task.before_park then
    task.before_park = nil
    nbefore = nbefore - 1
  end
  -- let it be collected (a coroutine that raised keeps its stack)
  if current == task then current = false end
  if curco == co then curco = false end
  local ended = enders[co]
  if ended then
    enders[co] = nil
    -- (a number too: traceback, as xpcall's handler, takes it as a string)
    local t = type(res)
    if not ok and (t == "nil" or t == "string" or t == "number") then
      res = traceback(co, res)
    end
    local eok, err = pcall(ended, task, ok, res)
    if not eok then M.onerror(task, M.describe(err)) end
  elseif not ok then
    task.error = res
    M.onerror(task, traceback(co, M.describe(res)))
  end
end

-- resume a started task (poll_once does this inline for the tasks it
-- resumes straight from the poller's report)
local function step (task)
  local co, why = task.co, task.why
  current, curco = task, co
  local ok, res
  if why then
    task.why = false
    ok, res = co_resume(co, why)
  else
    ok, res = co_resume(co)
  end
  if res ~= PARKED then resumed(task, ok, res) end
end

-- the first resume of 'task': start its body with its arguments
local function start (task)
  local co, n = task.co, task[1] + 1
  task.fn = false
  current, curco = task, co
  local ok, res = co_resume(co, unpack(task, 2, n))
  if not enders[co] then
    for i = 1, n do task[i] = nil end
  end
  if res ~= PARKED then resumed(task, ok, res) end
end

--[[
M.spawn_now(fn, ...) -> task (for serve, from an 'ended' of spawn_ended):
spawn fn(...) and start it at once, until it first waits, as if the task
that ended ran on into it: a handler's report then comes before run()
returns, also when the handler called stop() and raised.
]]
function M.spawn_now (fn, ...)
  local task = spawn(fn, ...)
  ready[nready] = nil   -- (spawn queued it last)
  nready = nready - 1
  start(task)
  return task
end

-- }======================================================


--[[ {======================================================
The loop
=======================================================]]

-- put 'task' and batch[i+1..n] back at the front of the ready queue
local function requeue (batch, i, n, task)
  local rest = {task}
  for j = i + 1, n do
    rest[#rest + 1] = batch[j]
    batch[j] = nil
  end
  for j = 1, nready do rest[#rest + 1] = ready[j] end
  for j = 1, #rest do ready[j] = rest[j] end
  nready = #rest
end

local function poll_once (timeout)
  -- (the poller may not exist yet when every task only sleeps)
  local p = poller or getpoller()   -- (sets p_wait)
  local n, objs, evs = p_wait(p, timeout)
  if not n then error("sockit.run: " .. tostring(objs), 0) end
  local rc, rd, wr = rdco, readers, writers   -- in registers
  for i = 1, n do
    local fd, ev = objs[i], evs[i]     -- ev: 1 "r", 2 "w", 3 "rw"
    if ev ~= 2 then
      local co = rc[fd]
      if co then
        -- the usual case, a task parked by park_recv (edge mode: no
        -- interest to update), is resumed here, not queued for the next
        -- turn; after stop() it is queued
        rc[fd] = nil
        nparked_io = nparked_io - 1
        if stopping then
          queue(tasks[co])
        else
          curco = co
          local ok, res = co_resume(co)
          if res ~= PARKED then resumed(tasks[co], ok, res) end
        end
      else
        local t = rd[fd]
        if t then wake(t, false) end
      end
    end
    if ev ~= 1 then
      local t = wr[fd]
      if t then wake(t, false) end
    end
    if not edge then level_update(fd) end
  end
end

local function expire_timers ()
  if nheap == 0 then return end
  local t = now()
  while nheap > 0 and heap[1].t <= t do
    wake(heap[1], "timeout")
  end
end

--[[
M.run() runs until no task is left, or M.stop() is called: the task that
called it runs on until it waits or yields, then the loop returns; every
other task stays suspended, and a later run() continues them.
]]
function M.run ()
  if tasks[co_running()] then error("sockit.run: called inside a task", 2) end
  if running then error("sockit.run: the loop is already running", 2) end
  running, stopping = true, false
  local ok, err = pcall(function ()
    while ntasks > 0 and not stopping do
      if nready > 0 then
        -- resume every task that is ready now; those made ready
        -- meanwhile wait for the next turn, after I/O has been polled
        local batch, n = ready, nready
        ready, nready, spare = spare, 0, batch
        for i = 1, n do
          local task = batch[i]
          batch[i] = nil
          if stopping then
            -- stop() from a task of this batch: the rest of it waits for
            -- the next run, ahead of the tasks made ready meanwhile
            requeue(batch, i, n, task)
            break
          end
          if task.fn then start(task) else step(task) end
        end
        if ntasks == 0 or stopping then break end
      end
      if nready == 0 and nheap == 0 then
        -- the usual turn of a server: only sockets to wait for
        if nparked_io == 0 then
          error("sockit.run: every task is waiting for something no " ..
                "one will do (no timer, no socket)", 0)
        end
        poll_once(nil)
      else
        local timeout = 0
        if nready == 0 then timeout = math_max(0, heap[1].t - now()) end
        if nparked_io > 0 or timeout ~= 0 then poll_once(timeout) end
        if nheap > 0 then expire_timers() end
      end
    end
  end)
  running = false
  if not ok then error(err, 0) end
end

function M.stop ()
  stopping = true
end

-- number of live tasks (for tests and servers)
function M.count ()
  return ntasks
end

--[[
M.sleep(seconds): inside a task, suspends only that task; outside, blocks.
]]
function M.sleep (seconds)
  if type(seconds) ~= "number" then
    error(("bad argument #1 to 'sleep' (number expected, got %s)")
          :format(type(seconds)), 2)
  end
  if seconds ~= seconds then   -- NaN: no deadline would ever pass
    error("bad argument #1 to 'sleep' (seconds is NaN)", 2)
  end
  if seconds < 0 then seconds = 0 end
  local ok, msg, code = wait.wait(nil, nil, now() + seconds)
  if ok then return true end   -- one value, in a task or not
  return nil, msg, code
end

--[[
M.park(deadline) / M.wake(task): a task waits for another task's signal
(servers use it for max_connections). park returns true when woken, or
nil, "timed out", "ETIMEDOUT" at the deadline.
]]
function M.suspend (deadline)
  local task = running_task()
  if not task then error("sockit: suspend outside a task", 2) end
  if task.before_park then before_park(task) end
  if deadline then timer_add(task, deadline) end
  task.parked = true
  local why = co_yield(PARKED)
  if why == "timeout" then return nil, "timed out", "ETIMEDOUT" end
  return true
end

function M.resume (task)
  return wake(task, false)
end

--[[
M.before_park(fn) -> the previous fn: the running task calls fn() each
time just before it parks (waits for a socket, a timer or a resume);
nil stops it. Outside a task it raises.
]]
function M.before_park (fn)
  local task = running_task()
  if not task then error("sockit: before_park outside a task", 2) end
  local old = task.before_park
  task.before_park = fn
  if fn and not old then nbefore = nbefore + 1
  elseif old and not fn then nbefore = nbefore - 1 end
  return old
end

-- }======================================================

wait.hook = park
wait.recvhook = park_recv
wait.closing = closing
core._closehook(closing)
wait.task = running_task
wait.suspend = M.suspend
wait.resume = M.resume

return M
