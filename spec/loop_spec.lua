-- The event loop: sockit.spawn, run, stop, sleep (SPEC §3 "Event loop").

local H = require "support.helpers"
local sockit = require "sockit"

local now = sockit.now

-- a listener, a conn to it and the peer it accepted (blocking, outside
-- any task)
local function connected()
  local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
  local c = assert(sockit.connect("tcp", l:addr()))
  return l, c, assert(l:accept())
end

-- run the loop with a watchdog that stops it after 'seconds' (the
-- watchdog ends as soon as it is the last task left)
local function run_bounded(seconds)
  local loop = require "sockit.loop"
  local deadline = now() + seconds
  sockit.spawn(function()
    while now() < deadline and loop.count() > 1 do sockit.sleep(0.01) end
    if loop.count() > 1 then sockit.stop() end
  end)
  sockit.run()
end

describe("sockit event loop", function()
  it("two tasks exchange messages over tcp", function()
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    local got = {}
    sockit.spawn(function()
      local c = assert(l:accept())
      for i = 1, 5 do
        local line = assert(c:read("l"))
        got[#got + 1] = line
        assert(c:write("pong ", i, "\n"))
      end
      c:close()
    end)
    local replies = {}
    sockit.spawn(function()
      local c = assert(sockit.connect("tcp", l:addr()))
      for i = 1, 5 do
        assert(c:write("ping ", i, "\n"))
        replies[i] = assert(c:read("l"))
      end
      c:close()
    end)
    sockit.run()
    l:close()
    assert.are.same({"ping 1", "ping 2", "ping 3", "ping 4", "ping 5"}, got)
    assert.are.same({"pong 1", "pong 2", "pong 3", "pong 4", "pong 5"}, replies)
  end)

  -- regression: a loop whose tasks only sleep crashed ("attempt to index
  -- a nil value (upvalue 'poller')") when no socket had made the poller yet
  it("runs a fresh process whose tasks only sleep", function()
    local out, status, err = H.run_lua([[
      local sockit = require "sockit"
      local t0 = sockit.now()
      sockit.spawn(function() sockit.sleep(0.1) end)
      sockit.run()
      print(("slept %.1f"):format(sockit.now() - t0))
    ]])
    assert.are.equal(0, status, err)
    assert.are.equal("slept 0.1\n", out)
  end)

  it("overlaps sleeps: two tasks sleeping 0.3 s end well under 0.6 s", function()
    local t0 = now()
    local ends = {}
    for i = 1, 2 do
      sockit.spawn(function() sockit.sleep(0.3); ends[i] = now() - t0 end)
    end
    sockit.run()
    local total = now() - t0
    assert.is_true(ends[1] >= 0.29 and ends[2] >= 0.29, "slept too little")
    assert.is_true(total < 0.5, "took " .. total)
  end)

  it("fires a timeout inside a task with ETIMEDOUT while other tasks run", function()
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    local ticks, result = 0, nil
    local done = false
    sockit.spawn(function()
      local c = assert(sockit.connect("tcp", l:addr()))
      c:settimeout(0.2)
      local t0 = now()
      result = {c:read("l")}
      result.elapsed = now() - t0
      done = true
      c:close()
    end)
    sockit.spawn(function()
      local peer = assert(l:accept())   -- accepts, then says nothing
      for _ = 1, 200 do
        if done then break end
        sockit.sleep(0.01)
        ticks = ticks + 1
      end
      peer:close()
    end)
    sockit.run()
    l:close()
    assert.is_nil(result[1])
    assert.are.equal("ETIMEDOUT", result[3])
    assert.matches("timed out", result[2])
    assert.is_true(result.elapsed >= 0.19 and result.elapsed < 1, "elapsed " .. result.elapsed)
    assert.is_true(ticks >= 8, "the other task ran only " .. ticks .. " times")
  end)

  it("runs the same code outside a task, blocking", function()
    local a, b = sockit.core.socketpair()
    b:send("x")
    local t0 = now()
    sockit.sleep(0.05)
    assert.is_true(now() - t0 >= 0.045)
    assert.are.equal("x", a:recv())
    a:close(); b:close()
  end)

  it("connect and accept suspend only their task", function()
    local order = {}
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    sockit.spawn(function()
      local c = assert(l:accept())
      order[#order + 1] = "accepted"
      c:close()
    end)
    sockit.spawn(function()
      order[#order + 1] = "other task ran"
      sockit.sleep(0.05)
      local c = assert(sockit.connect("tcp", l:addr()))
      order[#order + 1] = "connected"
      c:close()
    end)
    sockit.run()
    l:close()
    assert.are.equal("other task ran", order[1])
    assert.are.equal(3, #order)
  end)

  it("stops with sockit.stop and continues on the next run", function()
    local steps = 0
    sockit.spawn(function()
      for _ = 1, 3 do
        steps = steps + 1
        if steps == 2 then sockit.stop() end
        sockit.sleep(0.01)
      end
    end)
    sockit.run()
    assert.are.equal(2, steps)
    sockit.run()
    assert.are.equal(3, steps)
  end)

  -- the loop resumes a task woken by its socket while it walks the
  -- poller's events; a stop() from one of them must leave the others of
  -- that same poll suspended, for the next run, not resumed or lost
  it("a stop() from a task woken by I/O leaves the others woken with it for the next run", function()
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    local clients, servers = {}, {}
    for i = 1, 3 do
      clients[i] = assert(sockit.connect("tcp", l:addr()))
      servers[i] = assert(l:accept())
    end
    local ran = {}
    for i = 1, 3 do
      sockit.spawn(function()
        local data = assert(servers[i]:recv())
        ran[#ran + 1] = data
        sockit.stop()
      end)
    end
    -- the first run starts the three tasks, which park in recv; a
    -- second turn could only come from the sockets: send to all three,
    -- so that one poll wakes them together
    sockit.spawn(function()
      for i = 1, 3 do assert(clients[i]:write("m" .. i)) end
    end)
    sockit.run()
    assert.are.equal(1, #ran)
    sockit.run()
    assert.are.equal(2, #ran)
    sockit.run()
    assert.are.equal(3, #ran)
    table.sort(ran)
    assert.are.same({"m1", "m2", "m3"}, ran)
    assert.are.equal(0, require("sockit.loop").count())
    for i = 1, 3 do clients[i]:close(); servers[i]:close() end
    l:close()
  end)

  -- regression: the loop remembered the last task it resumed (to find
  -- the running task without a look-up) and so kept a finished task,
  -- its coroutine and what they held, alive until another task ran
  it("keeps nothing of a finished task alive", function()
    local weak = setmetatable({}, {__mode = "k"})
    local task = sockit.spawn(function() sockit.sleep(0.001) end)
    weak[task] = true
    task = nil  -- luacheck: ignore 311
    sockit.run()
    collectgarbage(); collectgarbage()
    assert.is_nil(next(weak))
  end)

  -- the same for a task resumed straight from the poller's report (the
  -- loop remembers the coroutine it resumed last): a task that raises
  -- keeps its stack for the traceback, and the loop must not keep that
  it("keeps nothing of a task that raised after a wait in conn:recv", function()
    local l, c, peer = connected()
    local weak = setmetatable({}, {__mode = "k"})
    local loop = require "sockit.loop"
    local saved = loop.onerror
    loop.onerror = function() end
    local task = sockit.spawn(function()
      local held = {}
      weak[held] = true
      assert(c:recv())
      error(held)       -- (a table: its stack keeps 'held' in two slots)
    end)
    sockit.spawn(function() sockit.sleep(0.01); assert(peer:write("x")) end)
    sockit.run()
    loop.onerror = saved
    assert.is_true(task.done)
    task = nil  -- luacheck: ignore 311
    collectgarbage(); collectgarbage()
    assert.is_nil(next(weak))
    c:close(); peer:close(); l:close()
  end)

  it("reports a task that raises and keeps running the others", function()
    local loop = require "sockit.loop"
    local reported
    local saved = loop.onerror
    loop.onerror = function(_, err) reported = err end
    local finished = false
    sockit.spawn(function() sockit.sleep(0.01); error("task exploded") end)
    sockit.spawn(function() sockit.sleep(0.05); finished = true end)
    sockit.run()
    loop.onerror = saved
    assert.is_true(finished)
    assert.matches("task exploded", reported)
  end)

  it("raises on misuse", function()
    assert.matches("bad argument #1 to 'spawn' %(function expected, got nil%)",
                   H.raises(sockit.spawn, nil))
    assert.matches("bad argument #1 to 'sleep'", H.raises(sockit.sleep, "x"))
    -- (a NaN deadline would never pass, and would stall every timer)
    assert.matches("bad argument #1 to 'sleep' %(seconds is NaN%)", H.raises(sockit.sleep, 0/0))
    local err
    sockit.spawn(function() err = H.raises(sockit.run) end)
    sockit.run()
    assert.matches("inside a task", err)
  end)

  it("a read waiting in one task sees EBADF when another task closes the conn", function()
    local l, c, peer = connected()
    local r
    sockit.spawn(function() r = {c:read("l")} end)
    sockit.spawn(function() sockit.sleep(0.02); c:close() end)
    sockit.run()
    peer:close(); l:close()
    assert.is_nil(r[1])
    assert.are.equal("EBADF", r[3])
  end)

  -- conn:recv waits through its own hook (the task's coroutine in the
  -- loop's rdco, not its table): the same rules as every other wait
  it("a conn:recv waiting in one task sees EBADF when another task closes the conn", function()
    local l, c, peer = connected()
    local r
    sockit.spawn(function() r = {c:recv()} end)
    sockit.spawn(function() sockit.sleep(0.02); c:close() end)
    sockit.run()
    peer:close(); l:close()
    assert.is_nil(r[1])
    assert.are.equal("recv: socket closed while waiting", r[2])
    assert.are.equal("EBADF", r[3])
  end)

  -- the poller found the socket ready, and in the same turn another task,
  -- resumed first, closes the conn: the woken call must still see EBADF
  -- (it raised "attempt to use a closed socket" from c_sendv / c_recv:
  -- examples/chat_server.lua, a writer to a client that had just gone)
  for _, op in ipairs{"write", "read", "recv"} do
    it("a " .. op .. " made ready and closed before it resumes sees EBADF", function()
      for _, writer_first in ipairs{true, false} do
        local l, a, b = connected()
        local c = assert(sockit.connect("tcp", l:addr()))
        local d = assert(l:accept())
        local r
        local function waiter()
          if op == "write" then r = {pcall(a.write, a, string.rep("x", 8 * 1024 * 1024))}
          else r = {pcall(a[op], a)} end
        end
        local function closer() c:read(1); a:close() end
        if writer_first then sockit.spawn(waiter); sockit.spawn(closer)
        else sockit.spawn(closer); sockit.spawn(waiter) end
        sockit.spawn(function()   -- wakes both before the loop's next poll
          sockit.sleep(0.05)
          assert(d:write("!"))    -- the closer's event first, then the waiter's
          if op == "write" then
            local n = 0      -- make room: drain what a sent, without waiting
            while n < 8 * 1024 * 1024 do
              local s = b.socket:recv(1 << 20)
              if not s then break end
              n = n + #s
            end
          else
            assert(b:write("line\n"))
          end
        end)
        run_bounded(10)
        assert.is_true(r[1], tostring(r[2]))
        if r[2] == nil then assert.are.equal("EBADF", r[4]) end
        b:close(); c:close(); d:close(); l:close()
      end
    end)
  end

  it("a second reader of a conn gets EBUSY, whichever way the first waits", function()
    local l, c, peer = connected()
    for _, first in ipairs{"recv", "read"} do
      local got, busy = {}, {}
      sockit.spawn(function()   -- waits first: recv (its own hook) or read("l")
        if first == "recv" then got = {c:recv()} else got = {c:read("l")} end
      end)
      sockit.spawn(function()
        sockit.sleep(0.01)
        busy[1] = {c:recv()}
        busy[2] = {c:read("l")}
        assert(peer:write("line\n"))
      end)
      sockit.run()
      assert.are.equal(first == "recv" and "line\n" or "line", got[1])
      for i = 1, 2 do
        assert.is_nil(busy[i][1])
        assert.matches("another task is already reading this socket", busy[i][2])
        assert.are.equal("EBUSY", busy[i][3])
      end
    end
    c:close(); peer:close(); l:close()
  end)

  it("writers of one conn take turns: every write arrives whole, none says EBUSY", function()
    local l, c, peer = connected()
    peer.max_line = 4 * 1024 * 1024
    local N, SIZE = 5, 2 * 1024 * 1024   -- each far more than the buffers hold
    local results = {}
    for i = 1, N do
      sockit.spawn(function()
        local ch = string.char(64 + i)
        local r, msg, code = c:write(string.rep(ch, SIZE - 1), "\n")
        results[i] = r == c and "ok" or (tostring(msg) .. " " .. tostring(code))
      end)
    end
    local lines = {}
    sockit.spawn(function()
      sockit.sleep(0.05)          -- every writer is under way by now
      for k = 1, N do
        local line = assert(peer:read("l"))
        local ch = line:sub(1, 1)
        lines[k] = (line == string.rep(ch, SIZE - 1)) and ch or "mixed"
      end
    end)
    run_bounded(20)
    assert.are.same({"ok", "ok", "ok", "ok", "ok"}, results)
    table.sort(lines)
    assert.are.same({"A", "B", "C", "D", "E"}, lines)
    c:close(); peer:close(); l:close()
  end)

  it("a writer waiting its turn times out with ETIMEDOUT, or sees EBADF when the conn closes", function()
    local l, c, peer = connected()
    local big = string.rep("x", 8 * 1024 * 1024)   -- nobody reads: it waits
    local first, second, third
    sockit.spawn(function() first = {c:write(big)} end)
    sockit.spawn(function()
      sockit.sleep(0.02)
      c:settimeout(0.2)
      local t0 = now()
      second = {c:write("in line\n")}
      second.after = now() - t0
      c:settimeout(nil)
      third = sockit.spawn(function() third = {c:write("and closed\n")} end)
      sockit.sleep(0.05)
      c:close()
    end)
    run_bounded(10)
    assert.are.same({nil, "send: timed out", "ETIMEDOUT", 0}, {second[1], second[2], second[3], second[4]})
    assert.is_true(second.after >= 0.15 and second.after < 2, tostring(second.after))
    assert.are.same({nil, "send: socket closed while waiting", "EBADF", 0}, third)
    assert.is_nil(first[1])
    assert.are.equal("EBADF", first[3])
    peer:close(); l:close()
  end)

  it("several tasks accept on one listener, and receive on one datagram endpoint", function()
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    local accepted = {}
    for i = 1, 3 do
      sockit.spawn(function()
        local s = assert(l:accept())
        accepted[#accepted + 1] = i
        s:write("hi\n"); s:close()
      end)
    end
    local replies = {}
    sockit.spawn(function()
      sockit.sleep(0.02)          -- all three wait in accept by now
      for k = 1, 3 do
        local c = assert(sockit.connect("tcp", l:addr(), {timeout = 5}))
        replies[k] = c:read("l")
        c:close()
      end
    end)
    local ep = assert(sockit.bind("udp", "127.0.0.1:0"))
    local received = {0, 0}
    for i = 1, 2 do
      sockit.spawn(function()
        while true do
          local d, _, code = ep:recvfrom()
          if not d then received.code = code return end
          received[i] = received[i] + 1
        end
      end)
    end
    sockit.spawn(function()
      local s = assert(sockit.bind("udp", "127.0.0.1:0"))
      for _ = 1, 20 do s:sendto("d", ep:addr()); sockit.sleep(0.002) end
      sockit.sleep(0.05)
      s:close(); ep:close()
    end)
    run_bounded(10)
    l:close()
    table.sort(accepted)
    assert.are.same({1, 2, 3}, accepted)
    assert.are.same({"hi", "hi", "hi"}, replies)
    assert.are.equal(20, received[1] + received[2])
    assert.are.equal("EBADF", received.code)
  end)

  -- regression: a task waiting in accept or a read on a listener or conn
  -- whose .socket the user closed directly (not through the object) was
  -- never woken: run() hung (the loop did not know the socket had gone)
  it("wakes the tasks waiting on a .socket closed directly: EBADF", function()
    local out, status, err = H.run_lua([[
      local sockit = require "sockit"
      local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
      local l2 = assert(sockit.listen("tcp", "127.0.0.1:0"))
      local c = assert(sockit.connect("tcp", l2:addr()))
      local s = assert(l2:accept())
      local got = {}
      sockit.spawn(function() got[1] = {l:accept()} end)
      sockit.spawn(function() got[2] = {c:recv()} end)
      sockit.spawn(function() got[3] = {s:read("l")} end)
      sockit.spawn(function()
        sockit.sleep(0.05)
        l.socket:close(); c.socket:close(); s.socket:close()
      end)
      sockit.run()
      for i = 1, 3 do print(got[i][1], got[i][2], got[i][3]) end
      l:close(); l2:close()
    ]], {timeout = 5})
    assert.are.equal(0, status, err)
    assert.are.equal("nil\taccept: socket closed while waiting\tEBADF\n" ..
                     "nil\trecv: socket closed while waiting\tEBADF\n" ..
                     "nil\trecv: socket closed while waiting\tEBADF\n", out)
  end)

  -- regression (review): a close hook that raised left the socket open
  it("closes a watched socket even when the close hook raises", function()
    local out, status, err = H.run_lua([[
      local core = require "sockit.core"
      local a, b = core.socketpair()
      core._closehook(function() error("hook failed") end)
      a:_watch()
      local ok, e = pcall(a.close, a)
      print(ok, e:match("hook failed") ~= nil, tostring(a))
      print(pcall(a.fileno, a))
      core._closehook(nil)
      b:_watch()
      print(b:close(), tostring(b))
    ]], {timeout = 5})
    assert.are.equal(0, status, err)
    assert.are.equal("false\ttrue\tsockit.socket{closed}\n" ..
                     "false\tattempt to use a closed socket\n" ..
                     "true\tsockit.socket{closed}\n", out)
  end)

  it("says a task waiting in conn:recv is waiting", function()
    local l, c, peer = connected()
    local self_seen
    local reader
    reader = sockit.spawn(function()
      self_seen = tostring(reader)              -- itself, while it runs
      assert(c:recv())
    end)
    local seen
    sockit.spawn(function()
      sockit.sleep(0.01)
      seen = tostring(reader)
      assert(peer:write("x"))
    end)
    assert.matches("^sockit.task{ready}$", tostring(reader))
    sockit.run()
    assert.are.equal("sockit.task{waiting}", seen)
    assert.are.equal("sockit.task{running}", self_seen)
    assert.are.equal("sockit.task{done}", tostring(reader))
    c:close(); peer:close(); l:close()
  end)

  -- regression: sleep returned true, nil, nil in a task and true outside
  it("sleep returns true alone, in a task and outside", function()
    assert.are.equal(1, select("#", sockit.sleep(0)))
    local n
    sockit.spawn(function() n = select("#", sockit.sleep(0.001)) end)
    sockit.run()
    assert.are.equal(1, n)
  end)

  it("a plain coroutine.yield() in a task is resumed with nothing", function()
    local n, v = -1, nil
    sockit.spawn(function()
      n = select("#", coroutine.yield())
      sockit.sleep(0.001)
      v = select("#", coroutine.yield())
    end)
    sockit.run()
    assert.are.equal(0, n)
    assert.are.equal(0, v)
  end)
end)
