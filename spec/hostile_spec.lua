-- spec/hostile_spec.lua — peers that misbehave (issue 5). A `serve` line
-- echo server runs in a child process (idle timeout, max_line 64 KiB);
-- while well-behaved clients keep talking to it, every byte checked,
-- other peers
--   * reset the connection (SO_LINGER 0 and close) in the middle of a
--     line the server is reading, and while the server is blocked
--     writing to them,
--   * are killed with SIGKILL in the middle of a transfer,
--   * half-close (shutdown "w") and wait for the rest of their answer,
--   * send a 10 MiB line (three at once),
--   * send one byte a second (twenty of them), or nothing at all,
--   * connect and reset at once.
-- The server must end each of those connections for the right reason
-- (its log says which: "END <peer> read ETIMEDOUT", ...), keep serving
-- everyone else meanwhile and afterwards, and keep its memory bounded:
-- its Lua heap (sampled every 5 ms) and its peak RSS (VmHWM).

local H = require "support.helpers"
local sockit = require "sockit"
local core = require "sockit.core"

local now = sockit.now
local SLOW = tonumber(os.getenv("SOCKIT_SLOW") or "") or 1
-- a sanitizer or valgrind build keeps freed memory in quarantine: RSS
-- says nothing there, the Lua heap still does
local RSS_MEANINGFUL = os.getenv("SOCKIT_CORE") == nil and SLOW == 1

-- the server's idle timeout (per read or write); longer under valgrind,
-- where the good clients' round trips are slower too
local TIMEOUT = 2.5 * (SLOW > 1 and 2 or 1)
local MAX_LINE = 65536
local LUA_HEAP_BOUND = 4 * 1024         -- KiB: the server's Lua heap, at its peak
local RSS_GROWTH_BOUND = 16 * 1024      -- KiB: peak RSS over RSS at the start

local SERVER = [[
local sockit = require "sockit"
local timeout, max_line = tonumber(arg[1]), tonumber(arg[2])
local peak = collectgarbage("count")
local server
local function log(...)
  io.stdout:write(table.concat({...}, " "), "\n")
  io.stdout:flush()
end
server = assert(sockit.serve("tcp", "127.0.0.1:0", function(conn, peer)
  while true do
    local line, _, code = conn:read("L")
    if not line then return log("END", peer, "read", code) end
    if line == "STATS\n" then
      line = ("STATS active=%d accepted=%d lua_kb=%.0f peak_kb=%.0f\n"):format(
        server.active, server.accepted, collectgarbage("count"), peak)
    elseif line == "QUIT\n" then
      server:close()
      line = "BYE\n"
    end
    local ok, _, wcode = conn:write(line)
    if not ok then return log("END", peer, "write", wcode) end
  end
end, {timeout = timeout, max_line = max_line, backlog = 512,
      on_error = function(err, peer) log("RAISED", peer, (tostring(err):gsub("\n", " "))) end}))
local pid = io.open("/proc/self/stat"):read("n")
log("ADDR", server:addr())
log("PID", math.tointeger(pid))
-- the Lua heap's peak, sampled
sockit.spawn(function()
  while not server.closed do
    local kb = collectgarbage("count")
    if kb > peak then peak = kb end
    sockit.sleep(0.005)
  end
end)
sockit.run()
log("STOPPED")
]]

-- the peak and current RSS of a process, in KiB
local function rss(pid)
  local s = H.read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(s:match("VmHWM:%s*(%d+)")), tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- a raw core socket connected to host:port, non-blocking (timeout 0), so
-- that a task can wait on it with sockit.sleep; opts: rcvbuf
local function raw_connect(address, opts)
  local host, port = address:match("^(.*):(%d+)$")
  local s = assert(core.socket("inet", "stream"))
  if opts and opts.rcvbuf then assert(s:setoption("rcvbuf", opts.rcvbuf)) end
  assert(s:connect(host, tonumber(port)))
  s:settimeout(0)
  local lhost, lport = s:getsockname()
  return s, lhost .. ":" .. lport
end

-- send all of data on a raw non-blocking socket; true, or nil, code, sent
local function raw_send_all(s, data, deadline)
  local sent = 0
  while sent < #data do
    local n, _, code = s:send(data, sent + 1)
    if n then
      sent = sent + n
    elseif code == "EAGAIN" then
      if now() > deadline then return nil, "ETIMEDOUT", sent end
      sockit.sleep(0.002)
    else
      return nil, code, sent
    end
  end
  return true
end

-- RST: SO_LINGER 0, then close
local function reset(s)
  assert(s:setoption("linger", 0))
  s:close()
end

describe("a serve server and peers that misbehave", function()
  local server, addr, pid

  setup(function()
    server = H.spawn_lua(SERVER, {args = {tostring(TIMEOUT), tostring(MAX_LINE)},
                                  timeout = 120 * SLOW})
    local ok = H.wait_until(function() return server.output():find("PID %d+") end, 10 * SLOW)
    assert(ok, "the server did not start: " .. server.output())
    addr = server.output():match("ADDR (%S+)")
    pid = tonumber(server.output():match("PID (%d+)"))
  end)

  teardown(function()
    server.kill()
    server:wait(5)
    server.cleanup()
  end)

  -- the server's log lines "END peer op code" for a peer
  local function ended(peer)
    return server.output():match("END " .. H.pat(peer) .. " (%a+ %S+)")
  end

  it("ends each misbehaving connection for its reason and keeps serving everyone else", function()
    local _, rss0 = rss(pid)
    local t0 = now()
    local bad = {}              -- failures of the well-behaved clients
    local rounds = {}           -- rounds each good client completed
    local peers = {}            -- name -> {peer = address, ...} what each misbehaviour saw
    local running = 0           -- misbehaving peers still going
    local stop_good = false

    local function misbehave(name, fn)
      running = running + 1
      sockit.spawn(function()
        local r = {}
        peers[name] = r
        local ok, err = pcall(fn, r)
        if not ok then r.error = tostring(err) end
        running = running - 1
      end)
    end

    -- well-behaved clients, all along
    local GOOD = 5
    for i = 1, GOOD do
      rounds[i] = 0
      sockit.spawn(function()
        local c = assert(sockit.connect("tcp", addr, {timeout = 10 * SLOW}))
        local r = 0
        while not stop_good do
          r = r + 1
          local msgs = {}
          for j = 1, math.random(1, 3) do
            msgs[j] = ("good %d round %d part %d %s\n"):format(i, r, j, ("g"):rep(math.random(0, 2000)))
          end
          local ok, msg = c:write(table.unpack(msgs))
          if not ok then bad[#bad + 1] = "good " .. i .. " write: " .. msg; break end
          for j = 1, #msgs do
            local got, err = c:read("L")
            if got ~= msgs[j] then
              bad[#bad + 1] = ("good %d round %d: %s"):format(i, r, tostring(got or err))
              stop_good = true
            end
          end
          rounds[i] = r
          sockit.sleep(0.01)
        end
        c:close()
      end)
    end

    -- says nothing at all: cut by the idle timeout
    misbehave("silent", function(r)
      local c = assert(sockit.connect("tcp", addr, {timeout = 20 * SLOW}))
      r.peer = c:addr()
      local t = now()
      r.got, r.msg, r.code = c:read("a")
      r.after = now() - t
      c:close()
    end)

    -- one byte a second, twenty of them: a read has one deadline, however
    -- the bytes trickle in, so each is cut after TIMEOUT too
    for k = 1, 20 do
      misbehave("slow" .. k, function(r)
        local c = assert(sockit.connect("tcp", addr, {timeout = 20 * SLOW}))
        r.peer = c:addr()
        local t = now()
        r.bytes = 0
        for _ = 1, 30 do
          if not c:write("s") then break end
          r.bytes = r.bytes + 1
          -- wait a second, or less if the server closed us meanwhile
          c:settimeout(1)
          local got, _, code = c:read(1)
          c:settimeout(20 * SLOW)
          if got or code ~= "ETIMEDOUT" then r.code = code; break end
        end
        r.after = now() - t
        c:close()
      end)
    end

    -- a 10 MiB line, three at once: max_line stops each
    for k = 1, 3 do
      misbehave("huge" .. k, function(r)
        local s
        s, r.peer = raw_connect(addr)
        local chunk = ("x"):rep(65536)
        r.sent = 0
        local deadline = now() + 20 * SLOW
        for _ = 1, 160 do                       -- 160 x 64 KiB = 10 MiB
          local ok, code, sent = raw_send_all(s, chunk, deadline)
          r.sent = r.sent + (ok and #chunk or sent)
          if not ok then r.code = code; break end
        end
        s:close()
      end)
    end

    -- RST in the middle of a line the server is reading
    misbehave("rst-read", function(r)
      local s
      s, r.peer = raw_connect(addr)
      assert(raw_send_all(s, "half a line that never ends", now() + 5))
      sockit.sleep(0.2)                        -- the server waits for the rest
      reset(s)
    end)

    -- RST while the server is blocked writing to us: we send lines and
    -- never read, until the server's answers fill both buffers
    misbehave("rst-write", function(r)
      local s
      s, r.peer = raw_connect(addr, {rcvbuf = 4096})
      local line = ("w"):rep(1023) .. "\n"
      local stuck_since
      for _ = 1, 100000 do
        local n, _, code = s:send(line)
        if n then
          stuck_since = nil
        elseif code == "EAGAIN" then
          stuck_since = stuck_since or now()
          if now() - stuck_since > 0.3 then break end
          sockit.sleep(0.005)
        else
          r.code = code
          break
        end
      end
      reset(s)
    end)

    -- connects and resets at once
    misbehave("rst-at-once", function(r)
      local s
      s, r.peer = raw_connect(addr)
      reset(s)
    end)

    -- half-close: the answer to everything sent still comes back
    misbehave("half-close", function(r)
      local c = assert(sockit.connect("tcp", addr, {timeout = 10 * SLOW}))
      r.peer = c:addr()
      assert(c:write("first half\n", "second half\n"))
      assert(c:shutdown("w"))
      r.got, r.msg, r.code = c:read("a")
      c:close()
    end)

    -- killed with SIGKILL in the middle of a transfer (python3: not sockit)
    misbehave("sigkill", function(r)
      local py = H.spawn("exec python3 -c " .. H.quote([[
import os, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
print("PID %d PEER %s:%d" % ((os.getpid(),) + s.getsockname()), flush=True)
chunk = b"k" * 60000 + b"\n"
n = 0
while True:
    s.sendall(chunk)
    got = 0
    while got < len(chunk):
        got += len(s.recv(65536))
    n += 1
    if n == 20:
        print("streaming", flush=True)
]]) .. " " .. addr, 30 * SLOW)
      for _ = 1, 500 * SLOW do
        if py.output():find("streaming") then break end
        sockit.sleep(0.01)
      end
      r.streaming = py.output():find("streaming") ~= nil
      local kpid = tonumber(py.output():match("PID (%d+)"))
      r.peer = py.output():match("PEER (%S+)")
      if kpid then os.execute("kill -KILL " .. kpid) end
      py:wait(5)
      py.cleanup()
    end)

    -- the watchdog: stop the good clients once every misbehaving peer is
    -- done and the server has logged them, or after 30 s at most
    sockit.spawn(function()
      local deadline = now() + 30 * SLOW
      while now() < deadline do
        if running == 0 then
          local all = true
          for _, r in pairs(peers) do
            if r.peer and not ended(r.peer) then all = false end
          end
          if all then break end
        end
        sockit.sleep(0.05)
      end
      stop_good = true
    end)
    sockit.run()
    local elapsed = now() - t0

    -- the good clients were served all along
    assert.are.same({}, bad)
    for i = 1, GOOD do
      assert.is_true(rounds[i] >= 20, "good client " .. i .. " made " .. rounds[i] .. " rounds")
    end
    for name, r in pairs(peers) do assert.is_nil(r.error, name .. ": " .. tostring(r.error)) end

    -- each misbehaving connection ended for its reason
    local log = server.output()
    local function why(name)
      local r = peers[name]
      assert.is_string(r.peer, name)
      local e = ended(r.peer)
      assert.is_truthy(e, name .. " (" .. r.peer .. ") not ended:\n" .. log)
      return e
    end
    assert.are.equal("read ETIMEDOUT", why("silent"))
    assert.are.equal("", peers.silent.got)                -- then end of stream
    assert.is_true(peers.silent.after >= TIMEOUT * 0.9 and peers.silent.after < TIMEOUT + 3 * SLOW,
                   "silent cut after " .. peers.silent.after)
    for k = 1, 20 do
      local r = peers["slow" .. k]
      assert.are.equal("read ETIMEDOUT", why("slow" .. k))
      assert.is_true(r.bytes >= 2 and r.bytes <= math.ceil(TIMEOUT) + 2,
                     "slow" .. k .. " sent " .. r.bytes .. " bytes")
      assert.is_true(r.after < TIMEOUT + 3 * SLOW, "slow" .. k .. " lasted " .. r.after)
    end
    for k = 1, 3 do
      local r = peers["huge" .. k]
      assert.are.equal("read EMSGSIZE", why("huge" .. k))
      -- the server stopped reading: far from all 10 MiB got in
      assert.is_true(r.sent < 10 * 1024 * 1024, "huge" .. k .. " sent it all")
      assert.is_truthy(r.code == "ECONNRESET" or r.code == "EPIPE", tostring(r.code))
    end
    assert.are.equal("read ECONNRESET", why("rst-read"))
    assert.matches("^write E[CP][OI][NP]", why("rst-write"))  -- ECONNRESET or EPIPE
    assert.matches("^read E", why("rst-at-once"))             -- EOF or ECONNRESET
    assert.are.equal("read EOF", why("half-close"))
    assert.are.equal("first half\nsecond half\n", peers["half-close"].got)
    assert.is_true(peers.sigkill.streaming, "the python peer never got going")
    local k = why("sigkill")
    assert.is_truthy(k == "read ECONNRESET" or k == "write ECONNRESET" or k == "write EPIPE"
                     or k == "read EOF", k)
    assert.is_nil(log:find("RAISED"), log)

    -- afterwards: a new client is served, nothing is left open but it
    local c = assert(sockit.connect("tcp", addr, {timeout = 5 * SLOW}))
    assert(c:write("after all that\n", "STATS\n"))
    assert.are.equal("after all that", c:read("l"))
    local stats = assert(c:read("l"), server.output())
    local active, peak = stats:match("active=(%d+) accepted=%d+ lua_kb=%d+ peak_kb=(%d+)")
    assert.are.equal("1", active, stats)
    peak = tonumber(peak)
    assert.is_true(peak < LUA_HEAP_BOUND, "Lua heap peaked at " .. peak .. " KiB")
    local hwm = rss(pid)
    io.stderr:write(("\nhostile: %d misbehaving peers survived in %.1f s; %d good clients served "
      .. "%d rounds meanwhile; server Lua heap peak %d KiB, RSS %d -> peak %d KiB\n")
      :format(#(function() local t = {} for n in pairs(peers) do t[#t + 1] = n end return t end)(),
              elapsed, GOOD, (function() local s = 0 for i = 1, GOOD do s = s + rounds[i] end return s end)(),
              peak, rss0 or -1, hwm or -1))
    if RSS_MEANINGFUL then
      assert.is_true(hwm - rss0 < RSS_GROWTH_BOUND, ("RSS grew from %d to %d KiB"):format(rss0, hwm))
    end
    assert(c:write("QUIT\n"))
    assert.are.equal("BYE", c:read("l"))
    c:close()
    assert.is_truthy(server:wait(10 * SLOW), "the server did not stop")
    assert.matches("STOPPED", server.output())
  end)
end)
