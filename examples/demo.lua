-- demo.lua — run every example, each in a child process, and sum up.
--
--   make demo            (builds sockit first), or: lua5.4 examples/demo.lua
--
-- Each example runs as `lua5.4 examples/NAME.lua`, bounded by `timeout 20`;
-- its output is shown indented. The table at the end says which kinds of
-- socket worked. The exit status is 1 if any example failed.

if not pcall(require, "sockit") then      -- not installed: use this checkout
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./?.so;" .. package.cpath
end
local now = require("sockit").now          -- the monotonic clock, for timings

local lua = arg[-1] or "lua5.4"
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local LIMIT = 20                   -- seconds per example

local examples = {
  {"core_tour",     "sockit.core directly: calls, options, timeouts, errors"},
  {"tcp_echo",      "TCP echo server and clients on the event loop"},
  {"tcp_blocking",  "the same in blocking style, client in a child process"},
  {"udp_echo",      "UDP echo: sendto/recvfrom and a connected endpoint"},
  {"unix_echo",     "unix stream echo: a socket file and an abstract name"},
  {"unixgram_echo", "unix datagram echo: bound and autobound clients"},
  {"chat_server",   "a chat room: three clients, lines go to all others"},
  {"http_hello",    "HTTP/1.1 keep-alive hello, and curl against it"},
  {"file_server",   "HTTP file server: bodies by sendfile, ranges, curl"},
  {"pass_fd",       "a listening socket handed to a child process (SCM_RIGHTS)"},
  {"multicast_chat", "three members chat over IPv4 multicast on the loopback"},
}

local passed = {}

for _, e in ipairs(examples) do
  local name, what = e[1], e[2]
  print(("== %s.lua — %s"):format(name, what))
  local t0 = now()
  local cmd = ("timeout %d %s %s/%s.lua 2>&1"):format(LIMIT, lua, dir, name)
  local p = assert(io.popen(cmd))
  for line in p:lines() do print("   " .. line) end
  local ok, _, status = p:close()
  local took = now() - t0
  passed[name] = ok == true
  if ok then
    print(("== %s: ok (%.2f s)\n"):format(name, took))
  elseif status == 124 then
    print(("== %s: FAILED: still running after %d s\n"):format(name, LIMIT))
  else
    print(("== %s: FAILED: exit status %s\n"):format(name, tostring(status)))
  end
end

-- which kinds of socket worked, and by which examples
local rows = {
  {"inet  stream  (tcp)",      {"tcp_echo", "tcp_blocking", "core_tour"}},
  {"inet  dgram   (udp)",      {"udp_echo", "core_tour"}},
  {"unix  stream  (unix)",     {"unix_echo"}},
  {"unix  dgram   (unixgram)", {"unixgram_echo"}},
  {"chat  (many clients)",     {"chat_server"}},
  {"http  (keep-alive, curl)", {"http_hello"}},
  {"sendfile (files over HTTP)", {"file_server"}},
  {"fd passing (to a child)",  {"pass_fd"}},
  {"multicast (loopback)",     {"multicast_chat"}},
}
local failed = 0
print(("%-26s %-6s %s"):format("what", "result", "shown by"))
print(("-"):rep(72))
for _, r in ipairs(rows) do
  local ok = true
  for _, name in ipairs(r[2]) do ok = ok and passed[name] end
  print(("%-26s %-6s %s"):format(r[1], ok and "PASS" or "FAIL",
                                 table.concat(r[2], ", ")))
end
for _, e in ipairs(examples) do
  if not passed[e[1]] then failed = failed + 1 end
end
print(("-"):rep(72))
print(("%d of %d examples passed"):format(#examples - failed, #examples))
os.exit(failed == 0 and 0 or 1)
