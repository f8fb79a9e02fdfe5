-- spec/support/faults_run.lua — run by spec/faults_spec.lua in a child
-- lua5.4 whose sockit.core is the fault-injection build (src/faults.c).
--
--   lua5.4 faults_run.lua RULES MODE SEED DIR [SCALE]
--
-- RULES  what core._faults takes ("send:short:2,recv:eintr:3")
-- MODE   "loop": every scenario on the event loop, reader and writer as
--        separate tasks, payloads of megabytes;
--        "blocking": no tasks, the writer writes a step (at most 48 KiB,
--        which the kernel's buffers hold) and then the reader reads it
-- SEED   for math.randomseed: every payload is reproducible
-- DIR    a private directory for unix socket paths
-- SCALE  payload sizes are multiplied by it (default 1; < 1 under valgrind)
--
-- Each scenario checks every byte it receives against what was sent. The
-- output is one line per scenario, "ok NAME" or "FAIL NAME: why", then
-- "injected TOTAL" and "rule RULE N" for each rule. Exit status 0 only
-- if every scenario passed.

local sockit = require "sockit"
local core = require "sockit.core"

local rules, mode, seed, dir, scale = ...
scale = tonumber(scale) or 1
assert(core._faults, "this core is not the fault-injection build")
assert(mode == "loop" or mode == "blocking", "mode: loop or blocking")
math.randomseed(tonumber(seed))
local rand = math.random
local insert, concat, unpack = table.insert, table.concat, table.unpack

local LOOP = mode == "loop"
local STEP = 48 * 1024            -- blocking mode: the most one step writes
local function size(n)            -- a payload size, scaled
  return math.max(1, math.floor(n * scale))
end

-- {====================================================== payloads

-- 64 KiB of random bytes; payloads are slices of it, so that making
-- megabytes costs little
local BLOCK
do
  local t = {}
  for i = 1, 65536 do t[i] = string.char(rand(0, 255)) end
  BLOCK = concat(t)
end

local function bytes(n)
  local parts, have = {}, 0
  while have < n do
    local k = math.min(n - have, rand(1, 65536))
    local at = rand(1, 65536 - k + 1)
    parts[#parts + 1] = BLOCK:sub(at, at + k - 1)
    have = have + k
  end
  return concat(parts)
end

local TEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_"
local function line(n)
  local at = rand(1, #TEXT)
  local s = (TEXT:sub(at) .. TEXT):rep(n // #TEXT + 1)
  return s:sub(1, n)
end

-- }======================================================


-- {====================================================== running

-- run fn(...) now: as a task in loop mode (the caller runs the loop),
-- as a plain call in blocking mode
local function go(fn, ...)
  if LOOP then return sockit.spawn(fn, ...) end
  return fn(...)
end

local function run()
  if LOOP then sockit.run() end
end

local function check(cond, what, ...)
  if not cond then error(string.format(what, ...), 2) end
end

-- where two strings first differ (for failure messages)
local function differ(a, b)
  if a == b then return "equal" end
  if type(a) ~= "string" or type(b) ~= "string" then
    return ("got %s, want %d bytes"):format(tostring(a), #b)
  end
  if #a < 200 and #b > 200 then return ("got %q, want %d bytes"):format(a, #b) end
  local n = math.min(#a, #b)
  local i = 1
  while i <= n and a:byte(i) == b:byte(i) do i = i + 1 end
  return ("got %d bytes, want %d; first difference at byte %d"):format(#a, #b, i)
end

-- a connected pair of conns (client, server) over a listener, both ends
-- made by sockit.connect and listener:accept (so accept and connect meet
-- the faults too); in loop mode inside tasks
local function pair(listener, network, address)
  local c, s, err
  if LOOP then
    local t1 = go(function()
      local msg
      c, msg = sockit.connect(network, address, {timeout = 20, nodelay = true})
      if not c then err = "connect: " .. tostring(msg) end
    end)
    local t2 = go(function()
      local msg
      listener:settimeout(20)
      s, msg = listener:accept()
      if not s then err = "accept: " .. tostring(msg) end
    end)
    run()
    assert(t1.done and t2.done)
  else
    local msg
    -- (nodelay: short writes make small segments, which Nagle's
    -- algorithm would hold for the peer's delayed ACK)
    c, msg = sockit.connect(network, address, {timeout = 20, nodelay = true})
    if not c then err = "connect: " .. tostring(msg) end
    listener:settimeout(20)
    s, msg = listener:accept()
    if not s then err = "accept: " .. tostring(msg) end
  end
  if err then error(err, 2) end
  c:settimeout(30); s:settimeout(30)
  return c, s
end

--[[
A stream scenario is a list of steps, each
  {args = {...}  what the writer passes to one conn:write,
   read = function(conn, want) -> got   how the reader takes it back}
In loop mode the writer task writes every step and the reader task reads
every step, concurrently; in blocking mode each step is written, then read.
A step's 'want' is the concatenation of its args.
]]
local function stream(w, r, steps, last)
  local failure
  local function writer()
    for i, st in ipairs(steps) do
      local ok, msg, code, sent = w:write(unpack(st.args, 1, st.n or #st.args))
      if not ok then
        failure = failure or ("write step %d: %s %s (sent %s)"):format(i, msg, code, tostring(sent))
        return
      end
      if not LOOP then
        local got = st.read(r, st.want)
        if got ~= st.want then
          failure = failure or ("step %d (%s): %s"):format(i, st.kind, differ(got, st.want))
          return
        end
      end
    end
    if last then
      local ok, msg, code = w:write(unpack(last.args))
      if not ok then
        failure = failure or ("write last: %s %s"):format(msg, code)
        return
      end
      assert(w:shutdown("w"))
      if not LOOP then
        local got = last.read(r)
        if got ~= last.want then failure = failure or ("last (%s): %s"):format(last.kind, differ(got, last.want)) end
      end
    end
  end
  local function reader()
    for i, st in ipairs(steps) do
      local got = st.read(r, st.want)
      if got ~= st.want then
        failure = failure or ("step %d (%s): %s"):format(i, st.kind, differ(got, st.want))
        r:close()                   -- the writer fails at once, not at its timeout
        return
      end
    end
    if last then
      local got = last.read(r)
      if got ~= last.want then failure = failure or ("last (%s): %s"):format(last.kind, differ(got, last.want)) end
    end
  end
  if LOOP then
    go(writer); go(reader); run()
  else
    writer()
  end
  if failure then error(failure, 0) end
end

-- }======================================================


-- {====================================================== the steps

-- conn:write of many arguments (strings and numbers): writev, 1024
-- pieces per call at most, so that a write of more pieces loops
local function step_args(total)
  local args, want, have = {}, {}, 0
  while have < total do
    local v
    if rand(10) == 1 then v = rand(-1000000, 1000000)
    else v = bytes(math.min(rand(0, 3000), total - have + 1)) end
    args[#args + 1] = v
    want[#want + 1] = tostring(v)
    have = have + #tostring(v)
  end
  want = concat(want)
  return {kind = "write(" .. #args .. " args)", args = args, n = #args, want = want,
          read = function(c, w) return (c:read(#w)) end}
end

-- one large string, read back with read(n) of random sizes
local function step_big(total)
  local data = bytes(total)
  return {kind = "write(" .. total .. " bytes), read(n)", args = {data}, want = data,
          read = function(c, w)
            local parts, have = {}, 0
            while have < #w do
              local n = math.min(#w - have, rand(1, 200000))
              local got, msg = c:read(n)
              if not got then return "read(n): " .. tostring(msg) end
              parts[#parts + 1] = got
              have = have + #got
            end
            return concat(parts)
          end}
end

-- lines, read with "l" and "L" ("\r\n" ends some), and read(0)
local function step_lines(count)
  local lines, ends, args = {}, {}, {}
  for i = 1, count do
    lines[i] = line(rand(0, 400))
    ends[i] = rand(3) == 1 and "\r\n" or "\n"
    args[#args + 1] = lines[i] .. ends[i]
  end
  local want = concat(args)
  -- send as a few large strings, cut at random places (not at line ends)
  local cut, pos = {}, 1
  while pos <= #want do
    local k = rand(1, 100000)
    cut[#cut + 1] = want:sub(pos, pos + k - 1)
    pos = pos + k
  end
  return {kind = count .. " lines", args = cut, n = #cut, want = want,
          read = function(c)
            local out, i = {}, 1
            while i <= count do
              local f = rand(3)
              if f == 1 then
                local l, msg = c:read("l")
                if not l then return "read l: " .. tostring(msg) end
                if l ~= lines[i] then return "line " .. i .. " differs" end
                out[i] = l .. ends[i]
              elseif f == 2 or i == count then
                local l, msg = c:read("L")
                if not l then return "read L: " .. tostring(msg) end
                out[i] = l
              else
                -- read(0) peeks; then two formats in one call
                local z = c:read(0)
                if z ~= "" then return "read(0) gave " .. tostring(z) end
                local l, l2 = c:read("L", "l")
                if not l or not l2 then return "read L, l failed" end
                if l2 ~= lines[i + 1] then return "line " .. (i + 1) .. " differs" end
                out[i], out[i + 1] = l, l2 .. ends[i + 1]
                i = i + 1
              end
              i = i + 1
            end
            return concat(out)
          end}
end

-- conn:recv(max) with random max until every byte is in
local function step_recv(total)
  local data = bytes(total)
  return {kind = "recv(" .. total .. ")", args = {data}, want = data,
          read = function(c, w)
            local parts, have = {}, 0
            while have < #w do
              -- (no more than this step's bytes: in loop mode the next
              -- step's may already be there)
              local got, msg = c:recv(math.min(rand(1, 100000), #w - have))
              if not got then return "recv: " .. tostring(msg) end
              if #got > #w - have then return "recv took more than was sent" end
              parts[#parts + 1] = got
              have = have + #got
            end
            return concat(parts)
          end}
end

-- the end: read("a") until the writer's shutdown
local function last_all(total)
  local data = bytes(total)
  return {kind = "read(a) of " .. total, args = {data}, want = data,
          read = function(c)
            local got, msg = c:read("a")
            if not got then return "read a: " .. tostring(msg) end
            local again = c:read("a")
            if again ~= "" then return "read a at the end gave " .. tostring(again) end
            return got
          end}
end

-- the end: conn:lines("L") until the writer's shutdown
local function last_lines(count)
  local args = {}
  for i = 1, count do args[i] = line(rand(0, 200)) .. "\n" end
  local want = concat(args)
  return {kind = "lines() of " .. count, args = {want}, want = want,
          read = function(c)
            local out = {}
            for l in c:lines("L") do out[#out + 1] = l end
            return concat(out)
          end}
end

-- a random plan of steps; blocking mode keeps each under STEP bytes
local function plan()
  local steps = {}
  local big = LOOP and size(4 * 1024 * 1024) or STEP
  insert(steps, step_args(LOOP and size(1500000) or STEP - 4000))
  insert(steps, step_big(big))
  insert(steps, step_lines(LOOP and size(6000) or 150))
  insert(steps, step_recv(LOOP and size(1024 * 1024) or STEP))
  if not LOOP then
    -- many smaller steps as well, so that blocking mode moves megabytes too
    for _ = 1, math.max(1, math.floor(40 * scale)) do
      local k = rand(4)
      if k == 1 then insert(steps, step_args(rand(1, STEP - 4000)))
      elseif k == 2 then insert(steps, step_big(rand(1, STEP)))
      elseif k == 3 then insert(steps, step_lines(rand(1, 150)))
      else insert(steps, step_recv(rand(1, STEP))) end
    end
  end
  -- with the last steps before the end of the stream
  return steps
end

-- }======================================================


-- {====================================================== scenarios

local scenarios = {}
local function scenario(name, fn) scenarios[#scenarios + 1] = {name, fn} end

local function streams(network, address)
  local l = assert(sockit.listen(network, address, {nodelay = true}))
  local where = l:addr()
  for _, ending in ipairs({"all", "lines"}) do
    local c, s = pair(l, network, where)
    -- both directions, one after the other
    for dir_ = 1, 2 do
      local w, r = c, s
      if dir_ == 2 then w, r = s, c end
      local last
      if dir_ == 2 then
        last = ending == "all" and last_all(LOOP and size(2 * 1024 * 1024) or STEP)
               or last_lines(LOOP and size(4000) or 100)
      end
      stream(w, r, plan(), last)
    end
    c:close(); s:close()
  end
  l:close()
end

scenario("tcp streams", function() streams("tcp", "127.0.0.1:0") end)
scenario("unix streams", function() streams("unix", dir .. "/stream.sock") end)

-- connections made and used one after another: accept and connect under faults
local function churn(network, address)
  local l = assert(sockit.listen(network, address))
  local where = l:addr()
  for i = 1, math.max(5, math.floor(60 * scale)) do
    local c, s = pair(l, network, where)
    local msg = ("hello %d %s\n"):format(i, line(rand(0, 100)))
    local got
    if LOOP then
      go(function() assert(c:write(msg)) end)
      go(function() got = s:read("L") end)
      run()
    else
      assert(c:write(msg))
      got = s:read("L")
    end
    check(got == msg, "connection %d: %s", i, differ(got, msg))
    c:close(); s:close()
  end
  l:close()
end

scenario("tcp accept/connect", function() churn("tcp", "127.0.0.1:0") end)
scenario("unix accept/connect", function() churn("unix", dir .. "/churn.sock") end)

-- datagrams: sendto/recvfrom between two endpoints, and send/recv of a
-- connected endpoint; every datagram whole and in order
local function datagrams(network, a_addr, b_addr)
  local a = assert(sockit.bind(network, a_addr))
  local b = assert(sockit.bind(network, b_addr))
  a:settimeout(20); b:settimeout(20)
  local c = assert(sockit.connect(network, b:addr(), network == "unixgram"
                                  and {bind = dir .. "/dgram-c", timeout = 20} or {timeout = 20}))
  local failure
  go(function()
    for i = 1, math.max(20, math.floor(400 * scale)) do
      local d = bytes(rand(0, 1400))
      if rand(5) == 1 then d = "" end
      local n, msg = a:sendto(d, b:addr())
      if n ~= #d then failure = "sendto " .. i .. ": " .. tostring(msg); return end
      local got, from = b:recvfrom()
      if got ~= d then failure = "recvfrom " .. i .. ": " .. differ(got, d); return end
      if from ~= a:addr() then failure = "recvfrom " .. i .. " from " .. tostring(from); return end
      -- connected: send, and the answer back with recv
      local e = bytes(rand(1, 1400))
      n, msg = c:send(e)
      if n ~= #e then failure = "send " .. i .. ": " .. tostring(msg); return end
      got, from = b:recvfrom()
      if got ~= e then failure = "recvfrom(connected) " .. i .. ": " .. differ(got, e); return end
      assert(b:sendto(e:reverse(), from))
      got = c:recv()
      if got ~= e:reverse() then failure = "recv " .. i .. ": " .. differ(got, e:reverse()); return end
    end
  end)
  run()
  a:close(); b:close(); c:close()
  if failure then error(failure, 0) end
end

scenario("udp datagrams", function()
  datagrams("udp", "127.0.0.1:0", "127.0.0.1:0")
end)
scenario("unixgram datagrams", function()
  datagrams("unixgram", dir .. "/dgram-a", dir .. "/dgram-b")
end)

-- a serve echo server (loop mode): its accept loop, reads and writes
-- under the faults, each client's lines back whole and in order
if LOOP then
  scenario("serve echo", function()
    local server = assert(sockit.serve("tcp", "127.0.0.1:0", function(conn)
      for l in conn:lines("L") do assert(conn:write(l)) end
    end))
    local where = server:addr()
    local failure, done = nil, 0
    local N, M = math.max(3, math.floor(30 * scale)), 50
    for i = 1, N do
      go(function()
        local c, msg = sockit.connect("tcp", where, {timeout = 20})
        if c then
          local msgs = {}
          for j = 1, M do msgs[j] = ("%d %d %s\n"):format(i, j, line(rand(0, 2000))) end
          assert(c:write(unpack(msgs)))
          for j = 1, M do
            local got = c:read("L")
            if got ~= msgs[j] then
              failure = failure or ("client %d line %d: %s"):format(i, j, differ(got, msgs[j]))
              break
            end
          end
          c:close()
        else
          failure = failure or ("connect: " .. tostring(msg))
        end
        done = done + 1
        if done == N then server:close() end
      end)
    end
    run()
    if failure then error(failure, 0) end
  end)
end

-- }======================================================


core._faults(rules)
local failed = 0
for _, sc in ipairs(scenarios) do
  local ok, err = pcall(sc[2])
  if ok then
    print("ok " .. sc[1])
  else
    failed = failed + 1
    print("FAIL " .. sc[1] .. ": " .. tostring(err))
  end
  io.stdout:flush()
end
local counts, total = core._faults()
core._faults("")
print("injected " .. total)
for rule, n in pairs(counts) do print("rule " .. rule .. " " .. n) end
os.exit(failed == 0 and 0 or 1)
