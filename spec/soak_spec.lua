-- spec/soak_spec.lua — the soak test (issue 5): 100 connections x 10,000
-- messages of random length (seeded) through a `serve` line echo server
-- in a child process. Every message comes back byte for byte, in order,
-- nothing lost or duplicated: the client compares each line it reads with
-- the message it sent, and at the end of each connection the server
-- reports what it received on it — lines, bytes and a checksum — which
-- must equal what the client sent. Writes are pipelined (a batch of
-- messages in one write, then their answers) so that a million round
-- trips fit in seconds.
--
-- SOCKIT_SOAK=connections:messages changes the volume (make valgrind
-- scales it down by itself); SOCKIT_SEED the seed.

local H = require "support.helpers"
local sockit = require "sockit"

local now = sockit.now
local SLOW = tonumber(os.getenv("SOCKIT_SLOW") or "") or 1
local SEED = tonumber(os.getenv("SOCKIT_SEED") or "") or 20240505
local CONNS, MESSAGES = 100, 10000
do
  local c, m = (os.getenv("SOCKIT_SOAK") or ""):match("^(%d+):(%d+)$")
  if c then CONNS, MESSAGES = tonumber(c), tonumber(m)
  elseif SLOW > 1 then CONNS, MESSAGES = 20, 200 end
end
local BATCH = 100                -- messages per write
local MAXLEN = 200               -- a message's random part: 0..MAXLEN-1 bytes

-- the checksum both sides compute: Fletcher-64 over the stream's 8-byte
-- words (integer arithmetic wraps), fed in pieces of any size; order
-- matters, so a reordering or a duplicate shows
local CHECKSUM = [[
local unpack = string.unpack
local function feed(st, s)
  if st[3] ~= "" then s = st[3] .. s end
  local a, b = st[1], st[2]
  local n = #s
  local full = n - n % 32
  local pos = 1
  while pos <= full do
    local w1, w2, w3, w4 = unpack("<i8i8i8i8", s, pos)
    a = a + w1; b = b + a
    a = a + w2; b = b + a
    a = a + w3; b = b + a
    a = a + w4; b = b + a
    pos = pos + 32
  end
  st[1], st[2], st[3] = a, b, (pos <= n) and s:sub(pos) or ""
end
local function final(st)
  local tail = st[3] .. ("\0"):rep(32 - #st[3])
  local s = {st[1], st[2], ""}
  feed(s, tail)
  return ("%016x%016x"):format(s[1], s[2])
end
]]

local SERVER = CHECKSUM .. [[
local sockit = require "sockit"
local server = assert(sockit.serve("tcp", "127.0.0.1:0", function(conn)
  local st, lines, bytes = {0, 0, ""}, 0, 0
  while true do
    local line, msg, code = conn:read("L")
    if not line then
      if code ~= "EOF" then error("read: " .. msg) end
      break
    end
    feed(st, line)
    lines, bytes = lines + 1, bytes + #line
    assert(conn:write(line))
  end
  assert(conn:write(("SUM %d %d %s\n"):format(lines, bytes, final(st))))
end, {backlog = 1024}))
print("ADDR " .. server:addr())
io.stdout:flush()
sockit.run()
]]

local feed, final = assert(load(CHECKSUM .. " return feed, final"))()

-- a seeded generator per connection (xorshift64): reproducible whatever
-- order the tasks run in
local function generator(seed)
  local x = seed * 2654435761 + 1
  return function(n)
    x = x ~ (x << 13)
    x = x ~ (x >> 7)
    x = x ~ (x << 17)
    return (x >> 1) % n
  end
end

-- random text the messages are cut from (printable, no "\n")
local TEXT
do
  local r, t = generator(SEED), {}
  for i = 1, 8192 do t[i] = string.char(32 + r(95)) end
  TEXT = table.concat(t)
end

describe("soak", function()
  it("has a checksum that ignores how the stream is cut, not order or duplicates", function()
    local rand = generator(7)
    local msgs = {}
    for i = 1, 300 do msgs[i] = i .. " " .. TEXT:sub(1, rand(MAXLEN)) .. "\n" end
    local function sum(list, cuts)
      local st = {0, 0, ""}
      local s = table.concat(list)
      local pos = 1
      while pos <= #s do
        local k = cuts and (rand(97) + 1) or #s
        feed(st, s:sub(pos, pos + k - 1))
        pos = pos + k
      end
      return final(st)
    end
    local whole = sum(msgs)
    assert.are.equal(whole, sum(msgs, true))
    local swapped = {table.unpack(msgs)}
    swapped[10], swapped[11] = swapped[11], swapped[10]
    assert.are_not.equal(whole, sum(swapped))
    local dup = {table.unpack(msgs)}
    table.insert(dup, 20, msgs[20])
    assert.are_not.equal(whole, sum(dup))
    local lost = {table.unpack(msgs)}
    table.remove(lost, 5)
    assert.are_not.equal(whole, sum(lost))
  end)

  it(("echoes %d connections x %d messages, every byte back in order"):format(CONNS, MESSAGES), function()
    local srv = H.spawn_lua(SERVER, {timeout = 300 * SLOW})
    local ok, err = pcall(function()
      assert(H.wait_until(function() return srv.output():find("ADDR %S+") end, 10 * SLOW),
             "the server did not start: " .. srv.output())
      local addr = srv.output():match("ADDR (%S+)")
      local failures, done, total_bytes = {}, 0, 0
      local t0 = now()
      for i = 1, CONNS do
        sockit.spawn(function()
          local rand = generator(SEED + i)
          local c, msg = sockit.connect("tcp", addr, {timeout = 60 * SLOW})
          if not c then failures[#failures + 1] = "connect: " .. msg; done = done + 1; return end
          local st, bytes = {0, 0, ""}, 0
          local seq = 0
          while seq < MESSAGES and #failures == 0 do
            local n = math.min(BATCH, MESSAGES - seq)
            local msgs = {}
            for j = 1, n do
              local len = rand(MAXLEN)
              local at = rand(#TEXT - len) + 1
              local m = i .. " " .. (seq + j) .. " " .. TEXT:sub(at, at + len - 1) .. "\n"
              msgs[j] = m
              feed(st, m)
              bytes = bytes + #m
            end
            local wok, wmsg = c:write(table.concat(msgs))
            if not wok then failures[#failures + 1] = ("conn %d: write: %s"):format(i, wmsg); break end
            for j = 1, n do
              local got, rmsg = c:read("L")
              if got ~= msgs[j] then
                failures[#failures + 1] = ("conn %d message %d: got %q, want %q"):format(
                  i, seq + j, tostring(got or rmsg), msgs[j])
                break
              end
            end
            seq = seq + n
          end
          if #failures == 0 then
            -- the end: the server's count and checksum of what it got
            c:shutdown("w")
            local sum = c:read("l")
            local want = ("SUM %d %d %s"):format(MESSAGES, bytes, final(st))
            if sum ~= want then
              failures[#failures + 1] = ("conn %d: server says %q, client sent %q"):format(i, tostring(sum), want)
            end
            local rest = c:read("a")
            if rest ~= "" then failures[#failures + 1] = ("conn %d: %d bytes more"):format(i, #rest) end
            total_bytes = total_bytes + bytes
          end
          c:close()
          done = done + 1
        end)
      end
      -- a watchdog, so that a stuck run ends
      sockit.spawn(function()
        local deadline = now() + 240 * SLOW
        while done < CONNS and now() < deadline do sockit.sleep(0.05) end
        if done < CONNS then
          failures[#failures + 1] = ("timed out with %d of %d connections done"):format(done, CONNS)
          sockit.stop()
        end
      end)
      sockit.run()
      local secs = now() - t0
      assert.are.same({}, failures)
      assert.are.equal(CONNS, done)
      io.stderr:write(("\nsoak: %d connections x %d messages = %d messages, %.1f MB each way, "
        .. "echoed and checked in %.1f s (%.0f messages/s), seed %d\n"):format(
        CONNS, MESSAGES, CONNS * MESSAGES, total_bytes / 1e6, secs, CONNS * MESSAGES / secs, SEED))
    end)
    srv.kill()
    srv:wait(5)
    local out = srv.output()
    srv.cleanup()
    assert(ok, tostring(err) .. "\n" .. out)
    assert.is_nil(out:find("sockit.serve"), out)     -- no handler raised
  end)
end)
