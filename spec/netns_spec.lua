-- spec/netns_spec.lua — two hosts: two network namespaces joined by a veth
-- pair, a sockit.core server in one and a client in the other, over TCP
-- and UDP (IPv4, and IPv6 with ULA addresses), real data checked.
--
-- The addresses (10.251.k.0/30, fd00:251:k::/64) exist only inside the
-- namespaces, which have no route anywhere else; nothing is sent from the
-- host's own namespace. Namespaces and links are removed afterwards, even
-- when a test fails. Skipped, with the reason, only when namespaces cannot
-- be made (not root, or `ip netns add` fails).

local H = require "support.helpers"

local pid = H.pid()
local k = pid % 250 + 1
local NS_A, NS_B = "sockit-a-" .. pid, "sockit-b-" .. pid
local IF_A, IF_B = "skv" .. pid .. "a", "skv" .. pid .. "b"   -- at most 15 bytes
local A4, B4 = "10.251." .. k .. ".1", "10.251." .. k .. ".2"
local A6, B6 = "fd00:251:" .. k .. "::1", "fd00:251:" .. k .. "::2"

local function sh(cmd)
  local out, code = H.sh(cmd .. " 2>&1")
  return code == 0, out
end

local function teardown_net()
  sh("ip netns del " .. NS_A)
  sh("ip netns del " .. NS_B)
  -- should a link have stayed in this namespace (a failed move), drop it
  sh("ip link del " .. IF_A)
end

-- make the two hosts; returns true, or false and why not
local function setup_net()
  if not H.is_root() then return false, "not root: cannot create network namespaces" end
  if not H.have("ip") then return false, "the ip command (iproute2) is missing" end
  local ok, out = sh("ip netns add " .. NS_A)
  if not ok then return false, "ip netns add failed: " .. out:gsub("%s+$", "") end
  local steps = {
    "ip netns add " .. NS_B,
    "ip link add " .. IF_A .. " type veth peer name " .. IF_B,
    "ip link set " .. IF_A .. " netns " .. NS_A,
    "ip link set " .. IF_B .. " netns " .. NS_B,
    "ip -n " .. NS_A .. " link set lo up",
    "ip -n " .. NS_B .. " link set lo up",
    "ip -n " .. NS_A .. " addr add " .. A4 .. "/30 dev " .. IF_A,
    "ip -n " .. NS_B .. " addr add " .. B4 .. "/30 dev " .. IF_B,
    "ip -n " .. NS_A .. " link set " .. IF_A .. " up",
    "ip -n " .. NS_B .. " link set " .. IF_B .. " up",
  }
  for _, step in ipairs(steps) do
    local done, why = sh(step)
    if not done then
      -- this is a failure of the test host, not a reason to skip
      error("netns setup: `" .. step .. "` failed: " .. why)
    end
  end
  -- IPv6 is optional inside the namespaces (nodad: usable at once)
  local v6 = sh("ip -n " .. NS_A .. " addr add " .. A6 .. "/64 dev " .. IF_A .. " nodad")
    and sh("ip -n " .. NS_B .. " addr add " .. B6 .. "/64 dev " .. IF_B .. " nodad")
  return true, nil, v6
end

local SERVER = [[
io.stdout:setvbuf("line")
local core = require "sockit.core"
local N = require "support.net"
local proto, host = ...
local family = host:find(":", 1, true) and "inet6" or "inet"
if proto == "tcp" then
  local l = assert(core.socket(family, "stream"))
  assert(l:setoption("reuseaddr", true))
  assert(l:bind(host, 0))
  assert(l:listen())
  local _, port = l:getsockname()
  print(port)
  l:settimeout(15)
  local c, peer, pport = l:accept()
  assert(c, peer)
  c:settimeout(15)
  local total = 0
  for _ = 1, 1000000 do
    local d, msg, code = c:recv()
    if not d then
      if code ~= "EOF" then print("error " .. msg) os.exit(1) end
      break
    end
    assert(N.send_all(c, d))
    total = total + #d
  end
  c:close()
  print("peer " .. peer .. " " .. pport)
  print("echoed " .. total)
else
  local s = assert(core.socket(family, "dgram"))
  assert(s:bind(host, 0))
  local _, port = s:getsockname()
  print(port)
  s:settimeout(15)
  local n = 0
  for _ = 1, 100 do
    local d, phost, pport = s:recvfrom()
    assert(d, phost)
    n = n + 1
    assert(s:sendto("echo:" .. d, phost, pport))
    if d == "bye" then print("peer " .. phost .. " " .. pport) break end
  end
  print("datagrams " .. n)
end
]]

local CLIENT = [[
io.stdout:setvbuf("line")
local core = require "sockit.core"
local N = require "support.net"
local proto, host, port = ...
port = math.tointeger(tonumber(port))
local family = host:find(":", 1, true) and "inet6" or "inet"
if proto == "tcp" then
  local c = assert(core.socket(family, "stream"))
  c:settimeout(10)
  assert(c:connect(host, port))
  local parts = {}
  for i = 1, 65536 do parts[i] = string.format("%015d\n", i) end
  local data = table.concat(parts)            -- 1 MiB
  local back, msg = N.exchange(c, data, #data, 20)
  -- the names, while the connection is still there
  local lhost, lport = c:getsockname()
  local phost, pport = c:getpeername()
  assert(c:shutdown("w"))
  c:settimeout(10)
  local _, emsg, code = c:recv()
  print("sent " .. #data .. " back " .. #back .. " same " .. tostring(back == data)
    .. " end " .. tostring(code) .. " " .. tostring(msg or emsg))
  print("local " .. lhost .. " " .. lport)
  print("peer " .. phost .. " " .. pport)
else
  local s = assert(core.socket(family, "dgram"))
  s:settimeout(1)
  local got = {}
  for _, word in ipairs({ "one", "two", "three", "bye" }) do
    local reply
    for _ = 1, 5 do                             -- a lost datagram is sent again
      assert(s:sendto(word, host, port))
      local d, phost, pport = s:recvfrom()
      if d then
        assert(phost == host and pport == port, "reply from " .. tostring(phost))
        reply = d
        break
      end
    end
    got[#got + 1] = tostring(reply)
  end
  print(table.concat(got, ","))
  print("local " .. table.concat({ s:getsockname() }, " "))
end
]]

describe("netns: two hosts on a veth pair", function()
  local ready, why, v6

  setup(function()
    teardown_net()           -- leftovers of an earlier run with this pid
    ready, why, v6 = setup_net()
    if ready then
      -- both ends of the link are up before the tests use it (bounded)
      local up = H.wait_until(function()
        local _, show = sh("ip -n " .. NS_A .. " link show " .. IF_A)
        return show:find("state UP", 1, true)
      end, 5, 0.1)
      assert(up, "the veth link did not come up")
    end
  end)

  teardown(function()
    teardown_net()
    -- and nothing is left behind
    local _, list = sh("ip netns list")
    assert(not list:find(NS_A, 1, true) and not list:find(NS_B, 1, true),
      "namespaces left behind: " .. list)
  end)

  local function need_net()
    if not ready then
      pending(tostring(why))     -- the summary prints this reason
    end
  end

  local function run_pair(proto, server_host, client_host)
    local server = H.spawn_lua(SERVER, {
      prefix = "ip netns exec " .. NS_A, args = { proto, server_host }, timeout = 40 })
    finally(function() server.kill(); server.cleanup() end)
    local port = H.wait_until(function()
      return tonumber(server.output():match("^(%d+)\n"))
    end, 10)
    assert.is_truthy(port, "server did not start: " .. server.output())
    local out, status, err = H.run_lua(CLIENT, {
      prefix = "ip netns exec " .. NS_B, args = { proto, server_host, port }, timeout = 40 })
    assert.equal(0, status, "client failed: " .. out .. err)
    assert.equal(0, server:wait(20), "server failed: " .. server.output())
    return out, server.output(), port, client_host
  end

  it("TCP over IPv4: 1 MiB echoed from one namespace to the other", function()
    need_net()
    local out, sout, port = run_pair("tcp", A4, B4)
    assert.equal("sent 1048576 back 1048576 same true end EOF recv: end of stream\n", out:match("^[^\n]*\n"))
    local lport = tonumber(out:match("\nlocal " .. H.pat(B4) .. " (%d+)\n"))
    assert.is_truthy(lport, out)
    assert.matches("\npeer " .. H.pat(A4) .. " " .. port .. "\n", out)
    assert.matches("peer " .. H.pat(B4) .. " " .. lport .. "\n", sout)
    assert.matches("echoed 1048576\n", sout)
  end)

  it("UDP over IPv4: datagrams there and back, with the sender's address", function()
    need_net()
    local out, sout = run_pair("udp", A4, B4)
    local first = out:match("^[^\n]*")
    assert.equal("echo:one,echo:two,echo:three,echo:bye", first)
    -- the client never bound: the kernel gave it the wildcard and a port
    local lport = tonumber(out:match("\nlocal 0%.0%.0%.0 (%d+)"))
    assert.is_truthy(lport, out)
    assert.matches("peer " .. H.pat(B4) .. " " .. lport .. "\n", sout)
    assert.matches("datagrams %d+\n", sout)
  end)

  it("TCP over IPv6 (ULA addresses inside the namespaces)", function()
    need_net()
    if not v6 then pending("IPv6 addresses could not be added inside the namespaces") end
    local out, sout, port = run_pair("tcp", A6, B6)
    assert.equal("sent 1048576 back 1048576 same true end EOF recv: end of stream\n", out:match("^[^\n]*\n"))
    assert.matches("\npeer " .. H.pat(A6) .. " " .. port .. "\n", out)
    assert.matches("peer " .. H.pat(B6) .. " %d+\n", sout)
  end)

  it("UDP over IPv6", function()
    need_net()
    if not v6 then pending("IPv6 addresses could not be added inside the namespaces") end
    local out, sout = run_pair("udp", A6, B6)
    assert.equal("echo:one,echo:two,echo:three,echo:bye", out:match("^[^\n]*"))
    assert.matches("peer " .. H.pat(B6) .. " %d+\n", sout)
  end)
end)
