-- spec/sockit_read_diff_spec.lua — conn:read and conn:lines against Lua's
-- own file:read and file:lines (SPEC §3 "Conn", docs/API.md "conn").
--
-- Random contents (seeded: SOCKIT_SEED=n repeats a run; every failure
-- message names the seed) go to a temp file and through a socket, cut
-- into random chunks with pauses, inside tasks and with blocking calls
-- outside them. The same random read calls go to f:read(...) and
-- conn:read(...); what they return must be the same, value for value and
-- in number, except for what docs/API.md states:
--   * a failure is nil, msg, code (the file: nil alone);
--   * "l" drops a "\r" before the "\n" (the file keeps it);
--   * a line longer than max_line is "EMSGSIZE" and stays buffered;
--   * "n" that is not a numeral is "EINVAL" and leaves buffered what the
--     file's reader consumed (everything but the white space skipped).
-- Then the ends: reads after the end of the stream, and reads that fail
-- (EMSGSIZE, a timeout) leave the buffered bytes readable.

local sockit = require "sockit"
local H = require "support.helpers"

local BASE = tonumber(os.getenv("SOCKIT_SEED")) or os.time()
local pack, unpack = table.pack, table.unpack

-- a private xorshift generator (math.random's state is global)
local function prng(seed)
  local s = (seed * 2654435761 + 88172645463325252) | 1
  return function(a, b)
    s = s ~ (s << 13); s = s ~ (s >> 7); s = s ~ (s << 17)
    return a + (s >> 1) % (b - a + 1)
  end
end

-- what io.read("n") accepts, rejects, or reads a prefix of
local NUMERALS = {
  "0", "00", "-0", "+7", "42", "-17", "3.25", ".5", "5.", "-.5", "1e10",
  "1E+5", "2.5e-3", "1e", "1e+", "e5", "0x", "0X", "0x1F", "0xff", "-0x10",
  "0x.8p1", "0X1P-2", "0x1p", "0xg", "0xA.8", "inf", "-inf", "nan", "NaN",
  "1..2", "1.5e3.2", "123abc", "-", "+", ".", "+-1", "0e", "9223372036854775807",
  "9223372036854775808", "0x7fffffffffffffff", "0xffffffffffffffffff",
  string.rep("9", 200), string.rep("1", 201), "-" .. string.rep("1", 199),
  "-" .. string.rep("2", 200), string.rep("3", 199) .. ".",
  "0x" .. string.rep("f", 198), "0x" .. string.rep("f", 199),
  "1" .. string.rep("0", 190) .. "e-190",
}
local SPACES = {"", " ", "  ", "\t", "\n", " \r\n ", "\v\f", "\n\n"}
local EOLS = {"\n", "\n", "\n", "\r\n", "\r\n", "", " ", "\r", "\0"}

-- random contents for line limit ml
local function contents(rnd, ml)
  if rnd(1, 25) == 1 then return "" end
  local out = {}
  local numeric = rnd(1, 3) == 1        -- mostly numerals, for "n"
  for _ = 1, rnd(1, 50) do
    local k = rnd(1, 12)
    local p
    if numeric and rnd(1, 4) > 1 then k = 4 end
    if k == 1 then
      p = ""
    elseif k <= 3 then
      local w = {}
      for j = 1, rnd(0, 12) do w[j] = string.char(rnd(97, 122)) end
      p = table.concat(w)
    elseif k <= 6 then
      p = SPACES[rnd(1, #SPACES)] .. NUMERALS[rnd(1, #NUMERALS)]
        .. SPACES[rnd(1, #SPACES)]
    elseif k <= 8 then
      local b = {}
      for j = 1, rnd(1, 20) do b[j] = string.char(rnd(0, 255)) end
      p = table.concat(b)
    elseif k <= 10 then           -- near and above max_line
      p = string.rep(string.char(rnd(65, 90)), ml + rnd(-2, 3))
      if rnd(1, 3) == 1 then p = p .. "\r" end
    else
      p = string.rep(" \t", rnd(1, 3))
    end
    out[#out + 1] = p .. EOLS[rnd(1, #EOLS)]
  end
  local s = table.concat(out)
  if rnd(1, 2) == 1 then s = s:gsub("\n$", "") end
  return s
end

-- random formats for one read call (lines: no "n", no "a")
local function formats(rnd, ml, forlines)
  local fmts = {}
  for i = 1, (rnd(1, 3) == 1 and rnd(2, 4) or 1) do
    local k = rnd(1, 100)
    local f
    if k <= 28 then f = "l"
    elseif k <= 48 then f = "L"
    elseif k <= 66 and not forlines then f = "n"
    elseif k <= 69 and not forlines then f = "a"
    elseif k <= 74 then f = forlines and 1 or 0
    elseif k <= 90 then f = rnd(1, 8)
    else f = rnd(ml - 3, 3 * ml) end
    if type(f) == "string" and rnd(1, 8) == 1 then f = "*" .. f end
    fmts[i] = f
  end
  return fmts
end

local function show(v)
  if type(v) == "string" then
    if #v > 60 then return string.format("%q...(%d bytes)", v:sub(1, 60), #v) end
    return string.format("%q", v)
  end
  if math.type(v) then return math.type(v) .. " " .. string.format("%.17g", v) end
  return tostring(v)
end

local function showall(t, n)
  local s = {}
  for i = 1, n do s[i] = show(t[i]) end
  return "(" .. table.concat(s, ", ") .. ")"
end

local function same(a, b)
  if type(a) == "number" and type(b) == "number" then
    return math.type(a) == math.type(b) and a == b
  end
  return a == b
end

-- the text of a line (from "L") as conn counts it: without "\n" and one
-- "\r" before it
local function linetext(full)
  if full:sub(-1) == "\n" then
    full = full:sub(1, -2)
    if full:sub(-1) == "\r" then full = full:sub(1, -2) end
  end
  return full
end

--[[
What conn:read(fmts) must return, read from the file: the values conn
returns, the values file:read returned, and on a failure its index,
code, and the bytes conn keeps buffered that the file has taken (EMSGSIZE:
the line; EINVAL: what the file's numeral reader consumed). The file is
left where conn is after reading those kept bytes.
]]
local function expect(f, content, ml, fmts)
  local vals, fvals = {}, {}
  for i, fmt in ipairs(fmts) do
    local f1 = type(fmt) == "string" and fmt:match("^%*?(.)") or fmt
    local pos0 = f:seek()
    local v = f:read(fmt)
    fvals[i] = v
    if f1 == "l" or f1 == "L" then
      if v == nil then return vals, fvals, i, "EOF" end
      f:seek("set", pos0)
      local full = f:read("L")
      local text = linetext(full)
      if #text > ml then return vals, fvals, i, "EMSGSIZE", full end
      if f1 == "l" then
        -- documented: the file keeps the "\r" of "\r\n", conn drops it
        assert(v == text or (full:sub(-2) == "\r\n" and v == text .. "\r"))
        v = text
      end
    elseif f1 == "n" then
      if v == nil then
        local ws = content:find("[^ \t\n\v\f\r]", pos0 + 1)
        if not ws then return vals, fvals, i, "EOF" end
        return vals, fvals, i, "EINVAL", content:sub(ws, f:seek())
      end
    elseif v == nil then
      return vals, fvals, i, "EOF"
    end
    vals[i] = v
  end
  return vals, fvals
end

--[[
The differential run on conn 'c' (max_line ml) and file 'path' holding
'content'. Raises with the seed and the recent calls on a difference.
]]
local function differential(seed, rnd, c, path, content, ml)
  local f = assert(io.open(path, "rb"))
  local log = {}
  local function fail(what)
    error(string.format("seed %d: %s\n  calls so far (latest last):\n    %s",
      seed, what, table.concat(log, "\n    ", math.max(1, #log - 40))), 0)
  end
  local function check(ok, what) if not ok then fail(what) end end
  local function desc(fmts)
    local s = {}
    for i, x in ipairs(fmts) do s[i] = show(x) end
    return table.concat(s, ", ")
  end

  -- the bytes conn kept after a failure: the next read takes them
  local function resync(keep, code)   -- (the file is past them: expect)
    local got = pack(c:read(#keep))
    check(got.n == 1 and got[1] == keep,
      code .. " did not leave the bytes buffered: read(" .. #keep .. ") gave "
      .. showall(got, got.n) .. ", want " .. show(keep))
  end

  local function compare(what, fmts, r, vals, fi, code, keep)
    if not fi then
      check(r.n == #fmts, what .. ": " .. r.n .. " values, want " .. #fmts
        .. ": " .. showall(r, r.n) .. " vs " .. showall(vals, #fmts))
      for i = 1, #fmts do
        check(same(r[i], vals[i]), what .. ": value " .. i .. " is " .. show(r[i])
          .. ", want " .. show(vals[i]))
      end
      return
    end
    check(r.n == fi + 2, what .. ": " .. r.n .. " values " .. showall(r, r.n)
      .. ", want " .. (fi - 1) .. " then nil, msg, " .. code)
    for i = 1, fi - 1 do
      check(same(r[i], vals[i]), what .. ": value " .. i .. " is " .. show(r[i])
        .. ", want " .. show(vals[i]))
    end
    check(r[fi] == nil and type(r[fi + 1]) == "string" and r[fi + 2] == code,
      what .. ": failure " .. showall(r, r.n) .. ", want nil, msg, " .. code)
    if keep then resync(keep, code) end
  end

  local function one_read(fmts)
    local what = "read(" .. desc(fmts) .. ")"
    log[#log + 1] = what
    -- file:read with several formats is the formats one after the other
    local pos = f:seek()
    local whole = pack(f:read(unpack(fmts)))
    f:seek("set", pos)
    local vals, fvals, fi, code, keep = expect(f, content, ml, fmts)
    if code ~= "EMSGSIZE" then
      local n = fi or #fmts
      check(whole.n == n, "file:read gave " .. whole.n .. " values")
      for i = 1, n do check(same(whole[i], fvals[i]), "file:read value " .. i) end
    end
    local r = pack(c:read(unpack(fmts)))
    log[#log] = what .. " -> " .. showall(r, r.n)
    compare(what, fmts, r, vals, fi, code, keep)
  end

  -- an iterator of conn:lines against file:lines, up to 'times' calls
  local function some_lines(fmts, times)
    local what = "lines(" .. desc(fmts) .. ")"
    log[#log + 1] = what .. " x" .. times
    local it = c:lines(unpack(fmts))
    for _ = 1, times do
      local pos = f:seek()
      local fr = pack(f:lines(unpack(fmts))())
      f:seek("set", pos)
      local vals, fvals, fi, code, keep = expect(f, content, ml, fmts)
      if code ~= "EMSGSIZE" then    -- file:lines is file:read, once
        local n = fi == 1 and 0 or fi or #fmts
        check(fr.n == n, "file:lines gave " .. fr.n .. " values")
        for i = 1, n do check(same(fr[i], fvals[i]), "file:lines value " .. i) end
      end
      local ok, r = pcall(function() return pack(it()) end)
      log[#log + 1] = "  -> " .. (ok and showall(r, r.n) or tostring(r))
      if fi and code ~= "EOF" then
        -- docs/API.md: any failure but the end of the stream raises
        check(not ok and tostring(r):find("max_line", 1, true),
          what .. ": " .. code .. " at format " .. fi .. " did not raise: "
          .. (ok and showall(r, r.n) or tostring(r)))
        resync(keep, code)
        return
      end
      check(ok, what .. " raised: " .. tostring(r))
      if fi == 1 then             -- the end: the loop ends, as file:lines
        check(r.n == 0, what .. " at the end gave " .. showall(r, r.n))
        return
      end
      compare(what, fmts, r, vals, fi, code, keep)
      if fi then return end
    end
  end

  local ops = 0
  while f:seek() < #content and ops < 300 do
    ops = ops + 1
    if rnd(1, 8) == 1 then
      some_lines(formats(rnd, ml, true), rnd(1, 4))
    else
      one_read(formats(rnd, ml, false))
    end
  end
  -- at the end of the stream: every format, again and again, as the file
  check(f:seek() == #content, "300 calls did not reach the end")
  for _, fmt in ipairs{"l", "L", "n", "a", 0, 5, "a", "l", {"a", "a"},
                       {"a", "l"}, {0, "a"}, "L"} do
    one_read(type(fmt) == "table" and fmt or {fmt})
  end
  some_lines({"L"}, 2)
  some_lines({"l", 3}, 1)
  f:close()
end

-- the chunks the writer cuts the contents into: sizes 1..max, some
-- followed by a pause (seconds)
local function plan(rnd, len)
  -- (at most some 2000 chunks)
  local max = math.max(({1, 3, 16, 200, 5000})[rnd(1, 5)], len // 1000)
  local chunks, at = {}, 0
  while at < len do
    local n = math.min(rnd(1, max), len - at)
    chunks[#chunks + 1] = {n, rnd(1, 6) == 1 and rnd(0, 3) / 1000 or false}
    at = at + n
  end
  return chunks
end

describe("conn:read against file:read (seed " .. BASE .. ")", function()
  local dir
  local serial = 0
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  local function address(network)
    serial = serial + 1
    if network == "unix" then return dir .. "/s" .. serial end
    return "127.0.0.1:0"
  end

  local function case(seed, ml)
    local rnd = prng(seed)
    local content = contents(rnd, ml)
    local path = dir .. "/c" .. seed
    H.write_file(path, content)
    return rnd, content, path, plan(rnd, #content)
  end

  -- writer and reader as two tasks of one loop
  local function in_tasks(seed, ml)
    local rnd, content, path, chunks = case(seed, ml)
    local network = seed % 2 == 0 and "tcp" or "unix"
    local l = assert(sockit.listen(network, address(network)))
    local err
    sockit.spawn(function()
      local c = assert(sockit.connect(network, l:addr(), {timeout = 10}))
      local at = 1
      for _, ch in ipairs(chunks) do
        if not c:write(content:sub(at, at + ch[1] - 1)) then break end
        at = at + ch[1]
        if ch[2] then sockit.sleep(ch[2]) end
      end
      c:close()
    end)
    sockit.spawn(function()
      l:settimeout(10)
      local s = assert(l:accept())
      l:close()
      s:settimeout(10)
      if ml ~= 65536 then s.max_line = ml end
      local ok, e = pcall(differential, seed, rnd, s, path, content, ml)
      s:close()
      if not ok then err = e end
    end)
    sockit.run()
    os.remove(path)
    assert(not err, err)
  end

  it("inside tasks, max_line 40, tcp and unix", function()
    local t0 = H.now()
    for i = 1, 40 do
      in_tasks(BASE * 1000 + i, 40)
      if H.now() - t0 > 6 * H.slow then break end   -- bounded in time
    end
  end)

  it("inside tasks, the default max_line (lines near 64 KiB)", function()
    for i = 1, 2 do in_tasks(BASE * 1000 + 100 + i, 65536) end
  end)

  it("blocking, outside tasks, the writer in another process", function()
    local t0 = H.now()
    for i = 1, 5 do
      local seed = BASE * 1000 + 200 + i
      local rnd, content, path, chunks = case(seed, 40)
      local network = i % 2 == 0 and "tcp" or "unix"
      local l = assert(sockit.listen(network, address(network)))
      local p = {}
      for j, ch in ipairs(chunks) do p[j] = ch[1] .. " " .. (ch[2] or 0) end
      H.write_file(path .. ".plan", table.concat(p, "\n"))
      local h = H.spawn_lua([[
        local sockit = require "sockit"
        local network, address, path = ...
        local f = assert(io.open(path, "rb"))
        local c = assert(sockit.connect(network, address, {timeout = 10}))
        for line in io.lines(path .. ".plan") do
          local n, pause = line:match("^(%d+) (%S+)$")
          assert(c:write(f:read(tonumber(n))))
          if tonumber(pause) > 0 then sockit.sleep(tonumber(pause)) end
        end
        c:close()
      ]], {args = {network, l:addr(), path}, timeout = 20})
      l:settimeout(10)
      local s = l:accept()
      l:close()
      local ok, err = false, "accept failed: " .. h.output()
      if s then
        s:settimeout(10)
        s.max_line = 40
        ok, err = pcall(differential, seed, rnd, s, path, content, 40)
        s:close()
      end
      h:wait(10)
      local out = h.output()
      h.kill()
      h.cleanup()
      os.remove(path)
      os.remove(path .. ".plan")
      assert(ok, err)
      assert.equal("", out)
      if H.now() - t0 > 5 * H.slow then break end
    end
  end)
end)

-- the failures of the differential, and the ends: what docs/API.md says a
-- failed read leaves buffered, and where conn:lines differs from
-- file:lines (regressions of what the differential found)
describe("conn:read failures keep the buffer (seed " .. BASE .. ")", function()
  local objs = {}
  after_each(function()
    for _, o in ipairs(objs) do o:close() end
    objs = {}
  end)

  -- client conn c (timeout t, max_line ml), server conn s
  local function pair(t, ml)
    local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
    objs[#objs + 1] = l
    local c = assert(sockit.connect("tcp", l:addr(), {timeout = 5}))
    objs[#objs + 1] = c
    local s = assert(l:accept())
    objs[#objs + 1] = s
    c:settimeout(t)
    if ml then c.max_line = ml end
    return c, s
  end

  local function timesout(...)
    local r = pack(...)
    assert.equal("ETIMEDOUT", r[r.n], "want a timeout, got " .. showall(r, r.n))
    assert.is_nil(r[r.n - 2])
    return r
  end

  it("a timeout loses nothing, whatever the format", function()
    local c, s = pair(0.1)
    s:write("abc")
    timesout(c:read("l"))
    s:write("def\r\nx")
    assert.equal("abcdef", c:read("l"))
    timesout(c:read(3))
    s:write("yz")
    assert.equal("xyz", c:read(3))
    -- "n": the white space skipped is consumed (as the file's reader
    -- does), the numeral so far stays
    s:write(" \t 1e")
    timesout(c:read("n"))
    assert.equal("1e", c:read(2))
    s:write("  -12")
    timesout(c:read("n"))
    s:write("5 ")
    assert.equal(-125, c:read("n"))
    assert.equal(" ", c:read(1))
    -- several formats: the values read come back, the failed one keeps
    s:write("a\nb")
    local r = timesout(c:read("l", "l"))
    assert.equal(4, r.n)
    assert.equal("a", r[1])
    timesout(c:read(0, "L"))
    s:write("\n")
    assert.equal("b\n", c:read("L"))
    -- "a" keeps what came before the deadline
    s:write("rest")
    timesout(c:read("a"))
    s:write("!")
    s:shutdown("w")
    assert.equal("rest!", c:read("a"))
    assert.equal("", c:read("a"))
  end)

  it("EMSGSIZE keeps the line, at once or at the end of the stream", function()
    local c, s = pair(0.2, 5)
    s:write("abcdef")               -- too long before its end came
    local v, msg, code = c:read("l")
    assert.equal("EMSGSIZE", select(2, H.fails(v, msg, code)))
    s:write("\nabcde\r")            -- a "\r" past the limit waits
    assert.equal("abcdef\n", c:read(7))
    timesout(c:read("L"))
    s:write("\n12345\r\r\nxyzuvw")
    assert.equal("abcde", c:read("l"))
    v, msg, code = c:read("L", "l")
    assert.equal("EMSGSIZE", select(2, H.fails(v, msg, code)))
    c.max_line = 6
    assert.equal("12345\r", c:read("l"))
    c.max_line = 5
    s:shutdown("w")
    -- the last line, without "\n", too long: EMSGSIZE, then a count takes it
    v, msg, code = c:read("l")
    assert.equal("EMSGSIZE", select(2, H.fails(v, msg, code)))
    assert.equal("xyzuvw", c:read(100))
    v, msg, code = c:read("l")
    assert.equal("EOF", select(2, H.fails(v, msg, code)))
  end)

  it("a numeral of more than 200 characters is EINVAL and stays", function()
    local c, s = pair(5)
    local long = string.rep("7", 250)
    s:write("  " .. long)           -- fails without waiting for its end
    local v, msg, code = c:read("n")
    assert.equal("EINVAL", select(2, H.fails(v, msg, code)))
    assert.equal(long, c:read(250))
  end)

  it("lines() with several formats raises a failure of a later one", function()
    -- a regression: the values read before it came back and the failure
    -- went unseen (the loop went on, one line out of step)
    local c, s = pair(0.1, 5)
    s:write("a\nlong line\nb\n")
    local it = c:lines("l", "l")
    local ok, err = pcall(it)
    assert.is_false(ok)
    assert.matches("max_line", err)
    assert.equal("long line\n", c:read(10))    -- still buffered
    s:write("c")
    ok, err = pcall(it)                        -- "b", then a timeout
    assert.is_false(ok)
    assert.matches("recv: timed out$", err)
    assert.equal("c", c:read(1))
    s:write("d\ne")
    s:shutdown("w")
    -- the end of the stream after a value: as the file, the values and nil
    local r = pack(it())
    assert.equal("d", r[1])
    assert.equal("e", r[2])
    r = pack(it())
    assert.equal(0, r.n)                       -- the end: no values
  end)

  it("lines() ends with no values, as file:lines", function()
    local c, s = pair(5)
    s:write("x\n")
    s:shutdown("w")
    assert.equal("x", c:read())
    for _, fmts in ipairs{{"l"}, {"L"}, {"l", 1}} do
      local it = c:lines(unpack(fmts))
      local r = pack(it())
      assert.equal(0, r.n, "lines(" .. table.concat(fmts, ", ") .. ")")
    end
    local it = c:lines("a")
    assert.equal("", it())
    assert.equal(0, select("#", it()))
  end)

  it("differs from file:lines as docs/API.md says: 'a', 'n'", function()
    local path = os.tmpname()
    H.write_file(path, "p\nq")
    local f = assert(io.open(path, "rb"))
    local fit, n = f:lines("a"), 0
    assert.equal("p\nq", fit())
    for _ = 1, 3 do if fit() == "" then n = n + 1 end end
    assert.equal(3, n)              -- file:lines("a") gives "" forever
    f:close()
    H.write_file(path, "1 x")
    local fnums = {}
    for v in io.lines(path, "n") do fnums[#fnums + 1] = v end
    assert.same({1}, fnums)         -- a non-numeral ends file:lines
    os.remove(path)
    local c, s = pair(5)
    s:write("p\nq")
    s:shutdown("w")
    local got = {}
    for v in c:lines("a") do got[#got + 1] = v end
    assert.same({"p\nq"}, got)      -- conn:lines("a"): one read, then the end
    c, s = pair(5)
    s:write("1 x")
    s:shutdown("w")
    local nums = {}
    local ok, err = pcall(function()
      for v in c:lines("n") do nums[#nums + 1] = v end
    end)
    assert.is_false(ok)             -- conn:lines("n") raises it
    assert.matches("not a numeral", err)
    assert.same({1}, nums)
    assert.equal("x", c:read("a"))
  end)
end)
