-- spec/api_argfuzz_spec.lua — every public function and method, with every
-- argument position set to each of a fixed list of odd values, works,
-- returns nil, msg, CODE or raises a documented message (SPEC §1,
-- docs/API.md "What raises and what returns"): never an internal error
-- ("attempt to index ..."), a crash, a hang or a leaked descriptor.
--
-- The calls are made by spec/support/argfuzz.lua (its VALUES, KINDS and
-- the loop), one child lua5.4 per receiver kind, under a timeout; a crash
-- or a hang names the call it died in (the child's last "call" line).
-- To reproduce one kind by hand:
--     lua5.4 spec/support/argfuzz.lua conn.tcp /tmp/somedir

local H = require "support.helpers"

local KINDS = {
  "core", "sockit", "sock.tcp", "sock.tcpfresh", "sock.listen6", "sock.udp",
  "sock.unix", "sock.seqpacket", "sock.unixgram", "sock.closed", "poller",
  "conn.tcp", "conn.unix", "listener.tcp", "listener.unix", "endpoint.udp",
  "endpoint.udpconn", "endpoint.unixgram", "endpoint.unixpacket",
  "server.tcp", "server.udp",
}

local script = H.read_file(H.root .. "/spec/support/argfuzz.lua")

describe("argument fuzz of the public API", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  for _, kind in ipairs(KINDS) do
    it(kind .. ": every call works, fails or raises as documented", function()
      if kind == "sock.listen6" and not H.have_ipv6() then return end
      local out, status, err = H.run_lua(script,
        {args = {kind, dir}, timeout = 10 * H.slow})
      local problems = {}
      for line in out:gmatch("[^\n]+") do
        local k, name, pos, value, what = line:match("^V\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
        if k then
          problems[#problems + 1] = ("%s %s arg %s = %s: %s"):format(k, name, pos, value, what)
        end
      end
      if status ~= 0 or not out:find("\nCALLS\t%d+\n$") and not out:find("^CALLS\t%d+\n$") then
        local last = "(before the first call)"
        for l in err:gmatch("[^\n]+") do
          if l:find("^call ") then last = l:sub(6) end
        end
        local rest = err:gsub("call [^\n]*\n", ""):sub(1, 600)
        problems[#problems + 1] = ("the child ended with status %d%s in: %s\n%s")
          :format(status, status == 124 and " (a hang)" or "", last, rest)
      end
      assert(#problems == 0, #problems .. " violation(s):\n" .. table.concat(problems, "\n"))
    end)
  end
end)
