-- multicast_chat.lua — three members chat over IPv4 multicast on the
-- loopback: each line one sends to the group reaches every member that
-- joined it, with no server in between.
--
--   lua5.4 examples/multicast_chat.lua      three members talk, then it ends
--
-- Every member binds the same port (reuseaddr), joins the group on the
-- loopback's interface, and sends with multicast_if set to it, so nothing
-- leaves this machine. A socket hears only the groups it joined itself
-- (sockit turns Linux's IP_MULTICAST_ALL off): a fourth socket on the same
-- port that did not join hears nothing.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local sockit = require "sockit"

local GROUP, LO = "239.255.42.99", "127.0.0.1"

-- a member: an endpoint on the group's port that joined the group
local function member (port)
  local ep = assert(sockit.bind("udp4", "0.0.0.0:" .. port, {reuseaddr = true}))
  assert(ep.socket:setoption("add_membership", {GROUP, LO}))  -- hear the group on lo
  assert(ep.socket:setoption("multicast_if", LO))             -- send on lo
  assert(ep.socket:setoption("multicast_loop", true))         -- and hear ourselves
  return ep
end

-- {=====  three members on a free port, five lines in all  =====

local first = member(0)                         -- the kernel picks a port
local port = first:addr():match(":(%d+)$")
local to = GROUP .. ":" .. port
print(("group %s, port %s, on the loopback"):format(GROUP, port))
do                                 -- can this machine do it at all?
  first:settimeout(1)
  local ok, msg, code = first:sendto("probe", to)
  if ok then ok, msg, code = first:recvfrom() end
  if not ok then
    print(("skipped: no multicast on the loopback here (%s, %s)"):format(msg, code))
    os.exit(0)
  end
end
local members = {ann = first, bob = member(port), cy = member(port)}
local deaf = assert(sockit.bind("udp4", "0.0.0.0:" .. port, {reuseaddr = true}))

local LINES = {ann = {"hi all", "who's there?"}, bob = {"bob here"},
               cy = {"cy too", "bye"}}
local total = 0
for _, lines in pairs(LINES) do total = total + #lines end

local heard = {}
for name, ep in pairs(members) do
  ep:settimeout(2)                  -- multicast is UDP: never wait forever
  heard[name] = {}
  -- listen: every line of the group, ours included (multicast_loop)
  sockit.spawn(function ()
    for _ = 1, total do
      local text, from = ep:recvfrom()
      if not text then print(name .. ": " .. from) break end
      local who = text:match("^(%a+):")
      if who ~= name then heard[name][#heard[name] + 1] = text end
    end
  end)
  -- speak: one line at a time, as people do
  sockit.spawn(function ()
    for _, line in ipairs(LINES[name]) do
      sockit.sleep(0.02 + math.random() * 0.02)
      assert(ep:sendto(name .. ": " .. line, to))
    end
  end)
end
deaf:settimeout(0.5)
sockit.spawn(function ()
  local text, msg = deaf:recvfrom()
  print("not a member, same port: " .. (text and ("heard " .. text) or msg))
  assert(not text, "a socket that did not join heard the group")
end)

sockit.run()

local failed = false
for _, name in ipairs{"ann", "bob", "cy"} do
  local others = total - #LINES[name]
  print(("%s heard %d of %d: %s"):format(name, #heard[name], others,
        table.concat(heard[name], " | ")))
  failed = failed or #heard[name] ~= others
end
for _, ep in pairs(members) do ep:close() end
deaf:close()
if failed then os.exit(1) end
print("done")
-- }=====
