--[[
bench/mmsg.lua — UDP echo on 127.0.0.1, batched against one datagram per
call, in the same run: what recvmany/sendmany (recvmmsg/sendmmsg) buy.

  lua5.4 bench/mmsg.lua          (from the repository root; make first)

Modes, each an echo server in a child process and a client here, both
through the sockit Lua layer (endpoints, blocking style):
  single   server: ep:recvfrom + ep:sendto per datagram;
           client: WINDOW ep:sendto, then WINDOW ep:recvfrom
  batched  server: ep:sendmany(ep:recvmany(64)) (its entries are items);
           client: one ep:sendmany of WINDOW, then ep:recvmany until all
  serve    server: sockit.serve("udp4") with an echo handler (batches by
           itself); client as batched
  core-single, core-batched   the same as single and batched with bare
           sockit.core calls on both sides (no address strings): what the
           system calls alone give, without the Lua layer's share

The client keeps WINDOW datagrams of SIZE bytes in flight and counts the
echoes that come back in SECONDS; a datagram lost (none here, usually)
ends its window at a short timeout and is counted. The modes take turns
within each repetition, and the table shows medians. The server and the
client share CPU 0 (taskset, as bench/run.lua's default), so a datagram's
rate is its CPU cost: system calls and the Lua work around them.

What the gain is made of, on the 2-CPU VM this was written on (Linux
6.18, Firecracker). Batching saves system calls (about 0.3 us each here)
and the Lua layer's per-call work, but most of an echo's cost is the
kernel's work per datagram: udp_sendmsg, ip_make_skb, the route lookup,
loopback_xmit, process_backlog, the receive queue, some 3.5 us per
datagram, twice per echo. With sendmmsg alone that stays, and batching
gained 1.34x through the Lua layer and ~1.15x with bare core calls
(54296a6). sendmany now also sends each run of equal-length datagrams to
one destination as one UDP_SEGMENT message (src/batch.c): the sending
kernel walks UDP and IP once per run, and the receiving one cuts the run
into datagrams as it queues them. That is where the 3x and more comes
from. It needs runs: a batch that answers 64 different peers, one datagram
each, has none, and keeps only sendmmsg's share (the 1.34x above; this
bench has one client, so it does not measure that case).
The client checks every echo: it must be one of the datagrams sent,
whole (the "every echo checked" line), so no run was merged or cut.

Environment: MMSG_REPS (default 5), MMSG_SECONDS (default 1),
MMSG_WINDOW (default 64), MMSG_SIZE (default 64), MMSG_CPUS ("same" or
"none"), MMSG_STRICT (1: exit 1 if batched / single < 1.5). Bounded:
every receive has a timeout, every server ends at the client's "stop"
datagram, and runs under timeout(1), which ends it after 60 s otherwise.
]]

local REPS = math.tointeger(tonumber(os.getenv("MMSG_REPS") or "5"))
local SECONDS = tonumber(os.getenv("MMSG_SECONDS") or "1")
local WINDOW = math.tointeger(tonumber(os.getenv("MMSG_WINDOW") or "64"))
local SIZE = math.tointeger(tonumber(os.getenv("MMSG_SIZE") or "64"))
local CPUS = os.getenv("MMSG_CPUS") or "same"
assert(REPS and REPS >= 1 and REPS <= 50, "MMSG_REPS must be 1..50")
assert(SECONDS and SECONDS > 0 and SECONDS <= 30, "MMSG_SECONDS must be in (0, 30]")
assert(WINDOW and WINDOW >= 1 and WINDOW <= 1024, "MMSG_WINDOW must be 1..1024")
assert(SIZE and SIZE >= 1 and SIZE <= 8192, "MMSG_SIZE must be 1..8192")
assert(CPUS == "same" or CPUS == "none", "MMSG_CPUS must be same or none")

package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local sockit = require "sockit"

-- {=====  the server (a child process: lua5.4 bench/mmsg.lua --server MODE)

if arg[1] == "--server" then
  local mode = arg[2]
  if mode == "core-single" or mode == "core-batched" then
    local s = assert(sockit.core.socket("inet", "dgram"))
    assert(s:bind("127.0.0.1", 0))
    print(("127.0.0.1:%d"):format(select(2, s:getsockname())))
    io.stdout:flush()
    if mode == "core-single" then
      while true do
        local data, host, port = assert(s:recvfrom())
        if data == "stop" then break end
        s:sendto(data, host, port)
      end
    else
      local stop = false
      while not stop do
        local list = assert(s:recvmany(64))
        if list[#list][1] == "stop" then list[#list], stop = nil, true end
        if #list > 0 then s:sendmany(list) end  -- {data, host, port} each
      end
    end
    return
  end
  if mode == "serve" then
    local server
    server = assert(sockit.serve("udp4", "127.0.0.1:0", function (data, peer, ep)
      if data == "stop" then server:close() return end
      ep:sendto(data, peer)
    end))
    print(server:addr())
    io.stdout:flush()
    sockit.run()
    return
  end
  local ep = assert(sockit.bind("udp4", "127.0.0.1:0"))
  print(ep:addr())
  io.stdout:flush()
  if mode == "single" then
    while true do
      local data, peer = assert(ep:recvfrom())
      if data == "stop" then break end
      ep:sendto(data, peer)
    end
  else
    local stop = false
    while not stop do
      local list = assert(ep:recvmany(64))
      if list[#list][1] == "stop" then list[#list], stop = nil, true end
      if #list > 0 then ep:sendmany(list) end   -- {data, peer}: an item each
    end
  end
  return
end

-- }=====

-- {=====  the client and the table

local function q (s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local lua = arg[-1] or "lua5.4"
local pin = ""
if CPUS == "same" and os.execute("command -v taskset >/dev/null 2>&1") then
  local f = assert(io.open("/proc/self/stat"))
  local pid = math.tointeger(f:read("n"))
  f:close()
  os.execute("taskset -p -c 0 " .. pid .. " >/dev/null")
  pin = "taskset -c 0 "
end

-- start a server; returns its address and the popen handle
local function start (mode)
  local p = assert(io.popen(pin .. "timeout -k 2 60 " .. lua .. " " .. q(arg[0])
                            .. " --server " .. mode))
  local address = p:read("l")
  assert(address and address:match(":%d+$"), "the " .. mode .. " server did not start")
  return address, p
end

-- a window of distinct datagrams of SIZE bytes; every echo is checked to
-- be one of them, whole (so that batching cannot merge or cut any)
local window, valid = {}, {}
for i = 1, WINDOW do
  local d = (("%d:"):format(i) .. ("x"):rep(SIZE)):sub(1, SIZE)
  window[i], valid[d] = d, true
end
local bad = 0            -- echoes that are not one of the window's datagrams

-- echoes per second from one run of SECONDS, and how many were lost.
-- 'side' is the client's side of a mode: sendto(data), recvfrom() -> data,
-- sendmany(list), recvmany(n) -> list, close(); the loop is the same for
-- every mode, only the calls differ
local function drive (batched, side)
  local echoed, lost = 0, 0
  local t0 = sockit.now()
  local deadline = t0 + SECONDS
  while sockit.now() < deadline do
    local got = 0
    if not batched then
      for i = 1, WINDOW do assert(side.sendto(window[i])) end
      while got < WINDOW do
        local data = side.recvfrom()
        if not data then break end
        if not valid[data] then bad = bad + 1 end
        got = got + 1
      end
    else
      assert(side.sendmany(window))
      while got < WINDOW do
        local list = side.recvmany(WINDOW)
        if not list then break end
        for i = 1, #list do
          if not valid[list[i][1]] then bad = bad + 1 end
        end
        got = got + #list
      end
    end
    echoed = echoed + got
    lost = lost + (WINDOW - got)
  end
  local rate = echoed / (sockit.now() - t0)
  side.sendto("stop")
  side.close()
  return rate, lost
end

-- the client of each mode: the core modes with bare core calls (no
-- address strings), the others through the Lua layer's endpoint
local function client (mode, address)
  local batched = not mode:find("single$")
  if mode:find("^core") then
    local host, port = address:match("^(.*):(%d+)$")
    port = tonumber(port)
    local s = assert(sockit.core.socket("inet", "dgram"))
    assert(s:bind("127.0.0.1", 0))
    s:settimeout(0.2)
    return drive(batched, {
      sendto = function (data) return s:sendto(data, host, port) end,
      recvfrom = function () return (s:recvfrom()) end,
      sendmany = function (list) return s:sendmany(list, host, port) end,
      recvmany = function (n) return (s:recvmany(n)) end,
      close = function () s:close() end,
    })
  end
  local ep = assert(sockit.bind("udp4", "127.0.0.1:0"))
  ep:settimeout(0.2)
  return drive(batched, {
    sendto = function (data) return ep:sendto(data, address) end,
    recvfrom = function () return (ep:recvfrom()) end,
    sendmany = function (list) return ep:sendmany(list, address) end,
    recvmany = function (n) return (ep:recvmany(n)) end,
    close = function () ep:close() end,
  })
end

local MODES = {"single", "batched", "serve", "core-single", "core-batched"}
local rates, losses = {}, {}
for _, m in ipairs(MODES) do rates[m], losses[m] = {}, 0 end

io.stderr:write(("mmsg: %d reps x %d modes x %.1f s, window %d, %d-byte datagrams\n")
                :format(REPS, #MODES, SECONDS, WINDOW, SIZE))
for rep = 1, REPS do
  for _, mode in ipairs(MODES) do
    local address, p = start(mode)
    local rate, lost = client(mode, address)
    local ok = p:close()                     -- the server ends at "stop"
    assert(ok, "the " .. mode .. " server failed")
    rates[mode][rep] = rate
    losses[mode] = losses[mode] + lost
    io.stderr:write(("  rep %d %-8s %10.0f datagrams/s\n"):format(rep, mode, rate))
  end
end

local function median (t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function spread (t)
  local m = median(t)
  local lo, hi = math.min(table.unpack(t)), math.max(table.unpack(t))
  return (hi - lo) / 2 / m * 100
end

local function commas (n)
  local s = ("%d"):format(math.floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local base = median(rates.single)
print(("UDP echo on 127.0.0.1, %d-byte datagrams, window %d, CPUs: %s; medians of %d runs of %.1f s")
      :format(SIZE, WINDOW, CPUS, REPS, SECONDS))
print()
print("| mode         | server                             | datagrams/s | ratio | ±half range | lost |")
print("|--------------|------------------------------------|------------:|------:|------------:|-----:|")
local WHAT = {
  single = "recvfrom + sendto, one per call",
  batched = "recvmany(64) + sendmany",
  serve = "sockit.serve (batches)",
  ["core-single"] = "core recvfrom + sendto",
  ["core-batched"] = "core recvmany(64) + sendmany",
}
for _, mode in ipairs(MODES) do
  local m = median(rates[mode])
  print(("| %-12s | %-34s | %11s | %5.2f | %10.0f%% | %4d |"):format(mode, WHAT[mode],
        commas(m), m / base, spread(rates[mode]), losses[mode]))
end
print()
local ratio = median(rates.batched) / base
local core_ratio = median(rates["core-batched"]) / median(rates["core-single"])
print(("batched / single = %.2f (wanted: at least 1.5); with bare core calls %.2f")
      :format(ratio, core_ratio))
print(("every echo checked: %d not one of the datagrams sent, whole"):format(bad))
if ratio < 1.5 then
  print("below 1.5: the kernel's own cost per datagram dominates here (see the note at the top)")
end
if bad > 0 then
  io.stderr:write("mmsg: echoes that were not datagrams sent: batching broke one\n")
  os.exit(1)
end
-- MMSG_STRICT=1: the exit status says whether the 1.5 was reached
if os.getenv("MMSG_STRICT") == "1" and ratio < 1.5 then os.exit(1) end

-- }=====
