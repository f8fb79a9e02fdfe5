--[[
bench/sendfile.lua — a 100 MiB file over a unix socket and over TCP on
127.0.0.1: conn:sendfile against reading it in Lua and writing it, in the
same run.

  lua5.4 bench/sendfile.lua          (from the repository root; make first)

The sender is this process, through the sockit Lua layer (blocking
style): one connection per transfer, then shutdown("w"), then it waits
for the receiver's count of bytes, so a transfer's time ends when every
byte has arrived. Methods:
  sendfile    conn:sendfile(f): the kernel copies from the page cache to
              the socket; no byte passes through Lua
  read+write  f:read(CHUNK) and conn:write(chunk) until the end of the
              file (CHUNK 256 KiB: generous to this side)
The receiver is a child process: bench/c/sink.c (built here with cc into
the temporary directory), which reads each connection to its end with
read(2) into a 1 MiB buffer and answers with the count: one copy per
byte, so the receiver is not what limits the rate and the sender's cost
shows. Without cc, a Lua receiver (sockit.serve, conn:recv(1 MiB)) does
the same, but it copies every byte twice (into the core's buffer, then
into a Lua string) and then the two methods look alike. The file is read
once before the runs, so both methods find it in the page cache. The
methods and networks take turns within each repetition; the table shows
medians of the rate, and of the sender's CPU time (os.clock) per file.

Where cc is found, two more methods run the same transfers from plain C
(bench/c/sfsend.c): "C sendfile" (sendfile(2) in a loop, blocking) and
"C copy" (pread(2) into 256 KiB, write(2)). They tell sockit's share
from the kernel's.

What it shows, on the 2-CPU VM this was written on (Linux 6.18, ext4):
over unix sockets sendfile is some 1.5-2x faster than read+write, with
half the sender's CPU. Over TCP on the loopback it is slower, about
0.8x, and so is sendfile(2) itself: in the same run conn:sendfile and C's
sendfile(2) move the same MiB/s (1478 and 1484), and C's sendfile(2) is
0.74x C's own copy loop. The kernel decides this, not the Lua layer. On
the loopback the receiver's copy is the work that limits the rate, and
sendfile hands the receiver the file's page-cache pages (cold: 100 MiB
is more than the caches) as 4 KiB fragments, through the splice
machinery. perf over 4 transfers, samples on CPU 0: the receiver's
_copy_to_iter alone (175) costs about what both copies of read+write do
(182), handle_softirqs doubles (102 against 52), and splice_to_socket,
page_cache_pipe_buf_* and skb_splice_from_iter add some 60 of their own.
With read+write the sender's read does the cold reading and hands TCP
hot data in 32 KiB page fragments. Across a real network the NIC reads
the pages by DMA and no local receiver pays for them: that is where
sendfile's zero copy shows over TCP. SPEC §4 defines s:sendfile as zero
copy, so sockit does not swap in a copy loop for loopback peers.

Environment: SENDFILE_REPS (default 5), SENDFILE_MIB (default 100),
SENDFILE_CHUNK (bytes per read of read+write, default 262144),
SENDFILE_SNDBUF (the sender's SO_SNDBUF in bytes, both methods; default:
the kernel's autotuning), SENDFILE_CPUS ("same": sender and receiver on
CPU 0, the default, as
bench/run.lua's, for steady figures; "split"; "none"). Bounded:
every connection has a 60 s timeout, the receiver runs under timeout(1)
and ends after the last transfer, and the temporary directory (the file,
the socket) is removed at the end, also after an error.
]]

local REPS = math.tointeger(tonumber(os.getenv("SENDFILE_REPS") or "5"))
local MIB = math.tointeger(tonumber(os.getenv("SENDFILE_MIB") or "100"))
local CHUNK = math.tointeger(tonumber(os.getenv("SENDFILE_CHUNK") or "262144"))
local CPUS = os.getenv("SENDFILE_CPUS") or "same"
-- SENDFILE_SNDBUF: bytes of SO_SNDBUF on the sender's socket, for both
-- methods (default: the kernel's, autotuned up to net.ipv4.tcp_wmem's max)
local SNDBUF = os.getenv("SENDFILE_SNDBUF") and
               math.tointeger(tonumber(os.getenv("SENDFILE_SNDBUF")))
assert(REPS and REPS >= 1 and REPS <= 50, "SENDFILE_REPS must be 1..50")
assert(MIB and MIB >= 1 and MIB <= 4096, "SENDFILE_MIB must be 1..4096")
assert(CHUNK and CHUNK >= 1024, "SENDFILE_CHUNK must be at least 1024")
assert(CPUS == "same" or CPUS == "split" or CPUS == "none",
       "SENDFILE_CPUS must be same, split or none")
local SIZE = MIB * 1024 * 1024

package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local sockit = require "sockit"

-- {=====  the receiver (a child: lua5.4 bench/sendfile.lua --sink DIR N)

if arg[1] == "--sink" then
  local dir, left = arg[2], tonumber(arg[3])
  local servers
  local function sink (conn)
    local n, c0 = 0, os.clock()
    while true do
      local data, _, code = conn:recv(1 << 20)
      if not data then
        if code ~= "EOF" then return end
        break
      end
      n = n + #data
    end
    conn:write(n, " ", math.floor((os.clock() - c0) * 1e6), "\n")
    left = left - 1
    if left == 0 then for _, s in ipairs(servers) do s:close() end end
  end
  servers = {
    assert(sockit.serve("unix", dir .. "/sink.sock", sink, {timeout = 60})),
    assert(sockit.serve("tcp4", "127.0.0.1:0", sink, {timeout = 60})),
  }
  print(servers[1]:addr())
  print(servers[2]:addr())
  io.stdout:flush()
  sockit.run()
  return
end

-- }=====

local function q (s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local lua = arg[-1] or "lua5.4"

-- CPU placement: "same" puts sender and receiver on CPU 0, "split" the
-- receiver on CPU 1, "none" leaves it to the scheduler
local sinkpin = ""
if CPUS ~= "none" and os.execute("command -v taskset >/dev/null 2>&1") then
  local f = assert(io.open("/proc/self/stat"))
  local pid = math.tointeger(f:read("n"))
  f:close()
  os.execute("taskset -p -c 0 " .. pid .. " >/dev/null")
  sinkpin = CPUS == "same" and "taskset -c 0 " or "taskset -c 1 "
end
local dir = assert(io.popen("mktemp -d /tmp/sockit-bench.XXXXXX")):read("l")
local path = dir .. "/file.bin"

local NETWORKS = {"unix", "tcp4"}
local METHODS = {"sendfile", "read+write"}
-- the same two in plain C (bench/c/sfsend.c), when cc is there: what the
-- kernel gives each method with no Lua at all
local CMETHODS = {["C sendfile"] = "sendfile", ["C copy"] = "copy"}
local sfsend             -- the built sfsend, or nil

-- one transfer: seconds until the receiver had it all, the sender's and
-- the receiver's CPU seconds
local function transfer (network, address, method)
  if CMETHODS[method] then
    local target = network == "unix" and "unix:" .. address or "tcp:" .. address
    local p = assert(io.popen(("timeout -k 2 120 %s %s %s %s %s"):format(q(sfsend),
      CMETHODS[method], q(target), q(path), SNDBUF and tostring(SNDBUF) or "")))
    local line = p:read("l")
    assert(p:close() and line, "sfsend failed")
    local took, cpu, count, rcpu = line:match("^(%S+) (%S+) (%d+) (%d+)$")
    assert(tonumber(count) == SIZE, "the receiver said " .. line)
    return tonumber(took), tonumber(cpu), tonumber(rcpu) / 1e6
  end
  local conn = assert(sockit.connect(network, address, {timeout = 60}))
  if SNDBUF then assert(conn.socket:setoption("sndbuf", SNDBUF)) end
  local f = assert(io.open(path, "rb"))
  local c0, t0 = os.clock(), sockit.now()
  if method == "sendfile" then
    assert(assert(conn:sendfile(f)) == SIZE, "sendfile sent less than the file")
  else
    while true do
      local chunk = f:read(CHUNK)
      if not chunk then break end
      assert(conn:write(chunk))
    end
  end
  assert(conn:shutdown("w"))
  local line = assert(conn:read("l"))
  local took, cpu = sockit.now() - t0, os.clock() - c0
  local count, rcpu = line:match("^(%d+) (%d+)$")
  assert(tonumber(count) == SIZE, "the receiver said " .. line)
  f:close()
  conn:close()
  return took, cpu, tonumber(rcpu) / 1e6
end

local function median (t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- the receiver's command: the C sink if it builds, else this script
local function sink_command (n)
  local src = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/c/sink.c"
  local bin = dir .. "/sink"
  if os.execute(("cc -O2 -Wall -o %s %s 2>/dev/null"):format(q(bin), q(src))) then
    return ("%s %s %d"):format(q(bin), q(dir .. "/sink.sock"), n), "bench/c/sink.c (C, read(2))"
  end
  return ("%s %s --sink %s %d"):format(lua, q(arg[0]), q(dir), n),
         "Lua (sockit.serve, conn:recv): cc was not found"
end

local function run ()
  io.stderr:write(("sendfile: making a %d MiB file in %s\n"):format(MIB, dir))
  assert(os.execute(("head -c %d /dev/urandom > %s && cat %s > /dev/null")
                    :format(SIZE, q(path), q(path))))
  do   -- the C senders, if they build
    local src = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/c/sfsend.c"
    local bin = dir .. "/sfsend"
    if os.execute(("cc -O2 -Wall -o %s %s 2>/dev/null"):format(q(bin), q(src))) then
      sfsend = bin
      METHODS[#METHODS + 1] = "C sendfile"
      METHODS[#METHODS + 1] = "C copy"
    end
  end
  local cmd, receiver = sink_command(REPS * #NETWORKS * #METHODS)
  local sink = assert(io.popen(sinkpin .. "timeout -k 2 600 " .. cmd))
  local addresses = {unix = sink:read("l"), tcp4 = sink:read("l")}
  assert(addresses.unix and addresses.tcp4, "the receiver did not start")

  local rates, cpus, rcpus = {}, {}, {}
  for _, n in ipairs(NETWORKS) do
    rates[n], cpus[n], rcpus[n] = {}, {}, {}
    for _, m in ipairs(METHODS) do rates[n][m], cpus[n][m], rcpus[n][m] = {}, {}, {} end
  end
  for rep = 1, REPS do
    for _, n in ipairs(NETWORKS) do
      for _, m in ipairs(METHODS) do
        local took, cpu, rcpu = transfer(n, addresses[n], m)
        rates[n][m][rep] = MIB / took
        cpus[n][m][rep], rcpus[n][m][rep] = cpu, rcpu
        io.stderr:write(("  rep %d %-5s %-12s %8.0f MiB/s, CPU: sender %.3f s, receiver %.3f s\n")
                        :format(rep, n, m, MIB / took, cpu, rcpu))
      end
    end
  end
  assert(sink:close(), "the receiver failed")

  print(("%d MiB file, one connection per transfer, medians of %d runs; read+write reads %d KiB "
         .. "at a time; CPUs: %s; sender SO_SNDBUF: %s"):format(MIB, REPS, CHUNK // 1024, CPUS,
         SNDBUF and (SNDBUF .. " bytes") or "the kernel's (autotuned)"))
  print("receiver: " .. receiver)
  print()
  print("ratio: to read+write in Lua on the same network; C rows: bench/c/sfsend.c")
  print()
  print("| network | method       |  MiB/s | ratio | ±half range | CPU per file: sender | receiver |")
  print("|---------|--------------|-------:|------:|------------:|---------------------:|---------:|")
  local verdict, cverdict = {}, {}
  for _, n in ipairs(NETWORKS) do
    local base = median(rates[n]["read+write"])
    for _, m in ipairs(METHODS) do
      local r = rates[n][m]
      local med = median(r)
      local lo, hi = math.min(table.unpack(r)), math.max(table.unpack(r))
      print(("| %-7s | %-12s | %6.0f | %5.2f | %10.0f%% | %18.3f s | %6.3f s |"):format(
            n == "tcp4" and "tcp" or n, m, med, med / base, (hi - lo) / 2 / med * 100,
            median(cpus[n][m]), median(rcpus[n][m])))
    end
    verdict[#verdict + 1] = ("%s %.2fx"):format(n == "tcp4" and "tcp" or n,
                                                median(rates[n].sendfile) / base)
    if sfsend then
      cverdict[#cverdict + 1] = ("%s %.2fx"):format(n == "tcp4" and "tcp" or n,
        median(rates[n]["C sendfile"]) / median(rates[n]["C copy"]))
    end
  end
  print()
  print("sendfile / read+write: " .. table.concat(verdict, ", ")
        .. " (sendfile must not be slower)")
  if sfsend then
    print("in plain C, sendfile(2) / pread+write(2): " .. table.concat(cverdict, ", "))
  end
end

local ok, err = pcall(run)
os.execute("rm -rf " .. q(dir))
if not ok then io.stderr:write("bench/sendfile.lua: ", tostring(err), "\n"); os.exit(1) end
