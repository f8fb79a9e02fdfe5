-- spec/addr_property_spec.lua — a seeded property test of the Lua layer's
-- address parser (issue 5): 100,000 random and mutated inputs, each given
-- to sockit.addr.parse for every network, and those that are safe to use
-- (loopback literals, unix paths in a temp dir, abstract names) to the
-- public calls listen/bind/connect as well. Every outcome must be
--   * a value (and then a well-formed one, which parses back the same), or
--   * nil, message, code (two strings), or
--   * an error "bad argument #n to 'f' (...)"
-- — never any other error, a crash or a hang. A failure prints the input
-- (%q) and the seed; SOCKIT_SEED=n replays another seed, SOCKIT_CASES=n
-- changes the count.
--
-- No traffic leaves the machine: a host that is not a loopback literal
-- never reaches an I/O call (the parse of a bad address raises before
-- any I/O), so no name is ever resolved.

local H = require "support.helpers"
local sockit = require "sockit"
local addr = require "sockit.addr"

local SEED = tonumber(os.getenv("SOCKIT_SEED") or "") or 20240505
-- (make valgrind, SOCKIT_SLOW: a tenth; the parser is pure Lua, which
-- memcheck only slows down)
local CASES = tonumber(os.getenv("SOCKIT_CASES") or "")
  or ((tonumber(os.getenv("SOCKIT_SLOW") or "") or 1) > 1 and 10000 or 100000)
-- a call running longer than this is taken for a hang
local HANG = 2 * (tonumber(os.getenv("SOCKIT_SLOW") or "") or 1)
-- at most this many inputs go on to a real listen/bind/connect
local IO_CASES = 3000
local NETWORKS = {"tcp", "tcp4", "tcp6", "udp", "udp4", "udp6",
                  "unix", "unixgram", "unixpacket"}

local ARGERR = "^[^\n]*bad argument #%d+ to '[%w_]+' %(.*%)$"

-- {====================================================== inputs

local SPECIAL = {"[", "]", ":", "%", "@", "\0", "/", ".", "0", "9", "6",
                 "5", "-", " ", "\n", "\r", "\255", "::", "]:", "[::1]",
                 "65535", "65536", "99999999999999999999", "0x10", "+1",
                 "-1", "1e3", "1.5", "%d", "%", ".*", "(", ")"}

local function corpus(dir)
  return {
    "127.0.0.1:80", "127.0.0.1:0", "[::1]:8080", "[::1]:0", ":0", ":65535",
    "localhost:65535", "[fe80::1%eth0]:80", "[fe80::1%lo]:0", "[::]:0",
    "0.0.0.0:1", "example.org:443", "1.2.3.4:1", "host-name.example:12345",
    "[2001:db8::1]:53", "[::ffff:127.0.0.1]:7", "127.1.2.3:4242",
    dir .. "/s", dir .. "/sock.0", "@abstract", "@", "\0name", "rel:80",
    "", ":", "[]:1", "a:b:c", "[::1]", "[::1]:", "127.0.0.1:",
  }
end

-- one random byte, biased to the characters the parser cares about
local function rbyte(rand)
  local r = rand(10)
  if r <= 4 then return SPECIAL[rand(#SPECIAL)] end
  if r <= 7 then return string.char(rand(32, 126)) end
  return string.char(rand(0, 255))
end

local function mutate(rand, s, pool)
  for _ = 1, rand(3) do
    local n = #s
    local i = rand(0, n)
    local k = rand(9)
    if k == 1 then                                  -- insert
      s = s:sub(1, i) .. rbyte(rand) .. s:sub(i + 1)
    elseif k == 2 and n > 0 then                    -- delete a run
      local j = math.min(n, i + rand(0, 3))
      s = s:sub(1, i - 1) .. s:sub(j + 1)
    elseif k == 3 and n > 0 then                    -- replace one byte
      local p = rand(n)
      s = s:sub(1, p - 1) .. rbyte(rand) .. s:sub(p + 1)
    elseif k == 4 then                              -- truncate
      s = s:sub(1, i)
    elseif k == 5 and n > 0 then                    -- duplicate a slice
      local a = rand(n)
      local b = rand(a, n)
      s = s:sub(1, b) .. s:sub(a, b) .. s:sub(b + 1)
    elseif k == 6 then                              -- splice another entry
      local o = pool[rand(#pool)]
      s = s:sub(1, i) .. o:sub(rand(0, #o))
    elseif k == 7 then                              -- a long run
      s = s:sub(1, i) .. rbyte(rand):rep(rand(1, 300)) .. s:sub(i + 1)
    elseif k == 8 then                              -- a long port
      s = s:gsub(":(%d*)$", function () return ":" .. ("9"):rep(rand(1, 40)) end)
    else                                            -- swap two halves
      s = s:sub(i + 1) .. s:sub(1, i)
    end
  end
  return s
end

local function random_input(rand)
  local t = {}
  for i = 1, rand(0, 24) do t[i] = rbyte(rand) end
  return table.concat(t)
end

-- }======================================================


-- {====================================================== outcomes

-- "" when the outcome is allowed, otherwise what is wrong with it
local function judge(ok, ...)
  if not ok then
    local err = ...
    if type(err) ~= "string" then return "raised a " .. type(err) end
    if not err:find(ARGERR) then return "raised: " .. err end
    return ""
  end
  local v, msg, code = ...
  if v ~= nil then return "" end
  if type(msg) ~= "string" or type(code) ~= "string" then
    return ("returned nil, %s, %s"):format(type(msg), type(code))
  end
  return ""
end

-- a parse result must be well formed and parse back the same
local function check_value(netname, net, input, host, port)
  if net.unix then
    if type(host) ~= "string" then return "path is a " .. type(host) end
    if input:byte(1) == 64 and host:byte(1) ~= 0 then
      return "'@' did not become the abstract namespace"
    end
    local back = addr.format("unix", host)
    local again = addr.parse(net, back, 2, "connect", 1)
    if again ~= host then return "format/parse round trip: " .. ("%q"):format(back) end
    return ""
  end
  if host ~= nil and (type(host) ~= "string" or host == "") then
    return "host is " .. ("%q"):format(tostring(host))
  end
  if math.type(port) ~= "integer" or port < 0 or port > 65535 then
    return "port is " .. tostring(port)
  end
  local text = addr.join(host, port)
  local ok, h2, p2 = pcall(addr.parse, net, text, 2, "connect", 1)
  if not ok then return "join " .. ("%q"):format(text) .. " does not parse: " .. h2 end
  if h2 ~= host or p2 ~= port then
    return ("%s: join %q parses as %q %s"):format(netname, text, tostring(h2), tostring(p2))
  end
  return ""
end

-- }======================================================


describe("the address parser (seeded property test)", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() if dir then H.rmdir(dir) end end)

  it(("gives a value, nil+msg+code or a bad argument error for %d inputs"):format(CASES), function()
    math.randomseed(SEED)
    local rand = math.random
    local pool = corpus(dir)
    local nets = {}
    for i, name in ipairs(NETWORKS) do nets[i] = addr.network(name, 1, "connect", 1) end

    -- a guard against hangs: any single call running over 2 s raises
    -- "hang" (which is not a bad argument error, so it fails the case)
    local call_started = H.now()
    debug.sethook(function()
      if H.now() - call_started > HANG then error("hang: a call ran over " .. HANG .. " s", 2) end
    end, "", 100000)

    local failures, counts = {}, {value = 0, fail = 0, raise = 0, io = 0, nonstring = 0}
    local seen = {}
    local function record(what, input, netname)
      if seen[input] then return end        -- one line per input
      seen[input] = true
      if #failures < 20 then
        failures[#failures + 1] = ("%s %q: %s"):format(netname, input, what)
      end
    end

    -- only loopback literals and paths inside our temp dir reach I/O
    local function io_safe(net, host, input)
      if net.unix then
        if host:byte(1) == 0 then return not host:find("\0", 2, true) end
        return host:sub(1, #dir + 1) == dir .. "/" and not host:find("..", 1, true)
          and not host:find("\0", 1, true) and not input:find("\n", 1, true)
      end
      if host == nil then return true end
      return host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
    end

    local function try_io(netname, net, input)
      counts.io = counts.io + 1
      local fn, opts
      if net.type == "dgram" then fn = sockit.bind
      else fn = sockit.listen end
      for round = 1, 2 do
        if round == 2 then
          if net.type == "dgram" and net.unix then break end
          fn, opts = sockit.connect, {timeout = 0.2}
        end
        call_started = H.now()
        local r = table.pack(pcall(fn, netname, input, opts))
        local bad = judge(table.unpack(r, 1, r.n))
        if bad ~= "" then record((round == 1 and "listen/bind " or "connect ") .. bad, input, netname) end
        if r[1] and r[2] ~= nil then r[2]:close() end
      end
    end

    local t0 = H.now()
    for case = 1, CASES do
      local input
      local k = rand(20)
      if k == 1 then
        -- not a string at all: must raise a bad argument error
        local others = {nil, 42, 4.5, true, {}, print}
        input = others[rand(6)]
      elseif k <= 8 then
        input = random_input(rand)
      else
        input = mutate(rand, pool[rand(#pool)], pool)
      end
      if type(input) ~= "string" then counts.nonstring = counts.nonstring + 1 end
      local shown = type(input) == "string" and input or tostring(input)
      local did_io = false
      for i, net in ipairs(nets) do
        call_started = H.now()
        local r = table.pack(pcall(addr.parse, net, input, 2, "connect", 1))
        -- (parse's value may be nil, port: ":80" has no host)
        local bad = r[1] and "" or judge(table.unpack(r, 1, r.n))
        if bad ~= "" then
          record(bad, shown, NETWORKS[i])
        elseif r[1] then
          counts.value = counts.value + 1
          local wrong = check_value(NETWORKS[i], net, input, r[2], r[3])
          if wrong ~= "" then record(wrong, shown, NETWORKS[i]) end
          if not did_io and counts.io < IO_CASES and wrong == ""
             and io_safe(net, r[2], input) then
            did_io = true
            try_io(NETWORKS[i], net, input)
          end
        else
          counts.raise = counts.raise + 1
          -- the public calls must raise the same way, before any I/O
          if (case % 7) == 0 then
            call_started = H.now()
            local f = (net.type == "dgram") and sockit.bind or sockit.connect
            local r2 = table.pack(pcall(f, NETWORKS[i], input))
            if r2[1] then
              record("parse raised but the public call did not", shown, NETWORKS[i])
              if r2[2] ~= nil then r2[2]:close() end
            elseif not tostring(r2[2]):find(ARGERR) then
              record("public call raised: " .. tostring(r2[2]), shown, NETWORKS[i])
            end
          end
        end
      end
      if H.now() - t0 > 600 then
        record("out of time after " .. case .. " cases", "", "-")
        break
      end
    end
    debug.sethook()
    local secs = H.now() - t0
    io.stderr:write(("\naddr property: seed %d, %d inputs x %d networks in %.1f s: "
      .. "%d values, %d raised bad argument, %d real listen/bind/connect calls\n")
      :format(SEED, CASES, #nets, secs, counts.value, counts.raise, counts.io))
    assert.are.same({}, failures, "seed " .. SEED)
    assert.is_true(counts.value > CASES // 100 and counts.raise > CASES // 100
                   and counts.io > math.min(100, CASES // 100))
  end)

  -- regress-bracket-in-host: "[[]:1" parsed as the host "[", which no
  -- address string gives back ("[:1" does not parse); a '[' or ']' in a
  -- host now raises, as Go's SplitHostPort says "unexpected '['"
  it("raises on a '[' or ']' inside the host (regression)", function()
    local tcp = addr.network("tcp", 1, "connect", 1)
    for _, bad in ipairs({"[[]:1", "[[::1]:80", "a]b:80", "a[b:80", "x]:1"}) do
      local ok, err = pcall(addr.parse, tcp, bad, 2, "connect", 1)
      assert.is_false(ok, bad)
      assert.matches("bad argument #2 to 'connect' %(unexpected '[%[%]]' in address", err)
    end
    assert.matches("unexpected '%[' in address '%[%[%]:1'",
                   H.raises(sockit.connect, "tcp", "[[]:1"))
  end)
end)
