--[[
sockit.wait — the one place where the Lua layer blocks.

Every core socket the Lua layer owns has timeout 0: a core call never
waits, it says "EAGAIN" (or "EINPROGRESS"/"EALREADY" for connect). Each
operation of conn, listener and dgram is then:

    try the core call
    on EAGAIN: wait.wait(sock, events, deadline), then try again

until it succeeds, fails for another reason, or the deadline passes.
Deadlines are absolute values of core.now() (the monotonic clock).

Today wait.wait blocks in poll(2) through the core's sock:wait. The event
loop (next issue) sets the hooks below so that the very same calls suspend
the running task instead, without any change to conn, listener or dgram.
]]

local M = {}

local core = require "sockit.core"

local assert, error = assert, error
local find, match = string.find, string.match

local now = core.now


--[[
Hooks. nil means "block the whole process", which is right outside any
task. The event loop installs them (it may install them once and decide
inside whether the caller is a task: a hook that is not in a task simply
does what the default does).

M.hook(sock, events, deadline, shared) -> true | nil, msg, code | false
    Suspend until the core socket 'sock' is ready for 'events' ("r", "w"
    or "rw"), or until 'deadline' (nil: no deadline) has passed, then
    return nil, "timed out", "ETIMEDOUT"; false when the caller is not a
    task, so that wait.wait blocks as usual. 'sock' nil is a pure timer:
    return true at the deadline (this is sleep). 'msg' carries no
    operation name: the caller prefixes it ("recv: timed out"). The hook
    is never called with a deadline of false (non-blocking): wait.wait
    answers that itself.

M.recvhook(sock, max, conn, fallback) -> data | nil, msg, code
    For conn:recv, the commonest wait of all, once its receive on 'sock'
    (a stream socket) said EAGAIN: waits as M.hook(sock, "r", nil) and
    receives again, up to 'max' bytes, until data, the end ("EOF") or an
    error. Wait errors carry the prefix "recv: ". Outside a task it
    returns fallback(conn, max). conn:recv calls it as a tail call (the
    loop sets M.hook and M.recvhook both or neither).

M.closing(sock)
    Called just before the Lua layer closes a core socket, so that the
    loop can drop the descriptor from its poller first (STYLE.md 11) and
    wake any task still waiting on it.

M.resolver(host, port, family, type) -> list | nil, msg, code
    Replaces the lookup of M.resolve (core.getaddrinfo's arguments and
    results; the specs use it to fake answers). nil: core._resolve, on
    a worker thread whose descriptor M.wait waits for.
]]
M.hook = nil
M.recvhook = nil
M.closing = nil
M.resolver = nil
--[[
M.task() -> the running task of the loop, or nil
M.suspend(deadline) -> true | nil, "timed out", "ETIMEDOUT"
M.resume(task) -> true if the task was waiting (and now runs again)
    The loop's own, for tasks that wait in line (M.queue).
]]
M.task = nil
M.suspend = nil
M.resume = nil


--[[
M.deadline(timeout) -> nil | false | number
The deadline of an operation that starts now under 'timeout' seconds:
nil for no timeout (wait forever; 'timeout' nil or false: the objects
of the Lua layer store "no timeout" as false), false for timeout 0 (never
wait: a call that would block returns "EAGAIN" at once), otherwise now +
timeout.
]]
function M.deadline (timeout)
  if not timeout then return nil end
  if timeout == 0 then return false end
  return now() + timeout
end


local sleeper   -- a poller with nothing in it: waiting on it is sleeping

--[[
M.wait(sock, events, deadline [, shared]) -> true | nil, msg, code
Wait until 'sock' is ready for 'events' or 'deadline' passes
("ETIMEDOUT"). With deadline false, do not wait: "EAGAIN". With sock nil,
sleep until the deadline and return true. 'shared': other tasks may wait
on 'sock' for the same at once (the loop's hook says "EBUSY" otherwise);
only for an operation that takes one unit whole and keeps no state of
the object's across the wait: accept, a datagram or record.
]]
function M.wait (sock, events, deadline, shared)
  if deadline == false then
    return nil, "Resource temporarily unavailable", "EAGAIN"
  end
  local hook = M.hook
  if hook then
    -- the loop's hook parks the running task; false means "not a task"
    local ok, msg, code = hook(sock, events, deadline, shared)
    if ok ~= false then return ok, msg, code end
  end
  local remaining
  if deadline then
    remaining = deadline - now()
    if remaining <= 0 then
      if sock == nil then return true end
      return nil, "timed out", "ETIMEDOUT"
    end
  end
  if sock == nil then
    if remaining == nil then
      error("sockit: internal error: a sleep without a deadline", 2)
    end
    if not sleeper then sleeper = assert(core.poller()) end
    -- the poller may return early (a signal): sleep the rest, bounded
    for _ = 1, 1000 do
      sleeper:wait(remaining)
      remaining = deadline - now()
      if remaining <= 0 then break end
    end
    return true
  end
  local ok, msg, code = sock:wait(events, remaining)
  if ok then return true end
  if code == "ETIMEDOUT" then return nil, "timed out", code end
  return nil, msg, code
end


--[[
Lines. Several tasks may write to one conn; their bytes must not mix, so
while one write waits for room (conn.lua: _wbusy) the others wait in the
conn's line, an array of tasks, and go one at a time.
M.queue(line, deadline) -> true | nil, msg, code | false
    The running task waits at the end of 'line' until M.handon gives it
    the turn (true), or until the deadline ("ETIMEDOUT"; it leaves the
    line). false outside a task: there is no one to wait for.
M.handon(line)
    Every task waiting in 'line' goes on, in order: each looks again
    (the first finds the way free, the others find it busy again and
    queue anew), so a task that raises or gives up cannot strand the rest.
]]
function M.queue (line, deadline)
  local task = M.task and M.task()
  if not task then return false end
  line[#line + 1] = task
  local ok, msg, code = M.suspend(deadline)
  if ok then return true end
  for i = 1, #line do
    if line[i] == task then
      table.remove(line, i)
      break
    end
  end
  return nil, msg, code
end

function M.handon (line)
  local resume = M.resume
  for i = 1, #line do
    local task = line[i]
    line[i] = nil
    resume(task)
  end
end

--[[
M.expired(obj, msg, code) -> msg
A wait of a conn or endpoint failed with 'msg' (the operation's name
included): a timeout marks 'obj' (obj._expired = msg, which every wait
of it clears first), so that serve can tell its idle close from a
handler's failure (serve.lua, idle_expiry).
]]
function M.expired (obj, msg, code)
  if code == "ETIMEDOUT" then obj._expired = msg end
  return msg
end

-- M.sleep(seconds): wait on nothing for 'seconds' (in a task, yields)
function M.sleep (seconds)
  return M.wait(nil, nil, now() + seconds)
end


--[[
M.pause(deadline, delay) -> true | nil, msg, code
For the few cases that have no readiness to wait for (a unix connect to
a full backlog, a sendto into a full unix datagram queue: poll says
"writable" at once): sleep 'delay' seconds, but not past the deadline;
"ETIMEDOUT" once it has passed, "EAGAIN" for deadline false. Callers
double 'delay' up to a bound between tries.
]]
function M.pause (deadline, delay)
  if deadline == false then
    return nil, "Resource temporarily unavailable", "EAGAIN"
  end
  local t = now()
  if deadline then
    if t >= deadline then return nil, "timed out", "ETIMEDOUT" end
    if t + delay < deadline then deadline = t + delay end
  else
    deadline = t + delay
  end
  return M.wait(nil, nil, deadline)
end


--[[
M.resolve(host, port, family, type, op [, deadline]) -> list | nil, msg, code
core.getaddrinfo's answer, without blocking the loop: the lookup runs on
a worker thread (core._resolve; a numeric host answers at once), and the
caller waits for its descriptor as for a socket's, through M.wait: in a
task only that task is suspended, outside one the process blocks (Ctrl-C
stops it, as any wait). At 'deadline' (nil: none) the lookup is
abandoned: "<op> host:port: timed out", "ETIMEDOUT". A failure reads
"<op> host:port: <reason>" ("connect nosuch.invalid:80: Name or service
not known"). M.resolver, when set, is called instead (synchronously).
]]
local function lookup (host, port, family, socktype, deadline)
  local resolver = M.resolver
  if resolver then return resolver(host, port, family, socktype) end
  local job, jmsg, jcode = core._resolve(host, port, family, socktype)
  if not job then return nil, jmsg, jcode end
  local list, msg, code = job:result()
  if code ~= "EAGAIN" then   -- answered at once (a numeric host): no wait,
    job:close()              -- so no descriptor for the loop to forget
    return list, msg, code
  end
  -- the descriptor is readable only once the job is done: a second turn
  -- finds the answer (the bound is for safety)
  for _ = 1, 100 do
    local ok, wmsg, wcode = M.wait(job, "r", deadline)
    if not ok then
      list, msg, code = nil, wmsg, wcode
      break
    end
    list, msg, code = job:result()
    if code ~= "EAGAIN" then break end
  end
  M.close(job)   -- (the loop forgets its descriptor first)
  return list, msg, code
end

function M.resolve (host, port, family, socktype, op, deadline)
  local list, msg, code = lookup(host, port, family, socktype, deadline)
  if list then return list end
  local text = find(host, ":", 1, true) and ("[" .. host .. "]:" .. port)
               or (host .. ":" .. port)
  return nil, op .. " " .. text .. ": " .. (match(msg, "^getaddrinfo .-: (.*)$")
                                            or msg), code
end


-- M.close(sock): close a core socket or a resolve job, the loop told
-- first; returns true
function M.close (sock)
  -- a core socket the loop waits on tells the loop itself, from its own
  -- close (the core's close hook, set by loop.lua); a resolve job has no
  -- hook, so the loop is told here
  local closing = M.closing
  if closing and sock._watch == nil then closing(sock) end
  sock:close()
  return true
end

return M
