-- Regressions in sockit.core, each named after the bug it pins (STYLE 15).

local H = require "support.helpers"
local core = require "sockit.core"

describe("core regressions", function()
  -- sendto on an unconnected unix datagram socket whose receiver's queue
  -- is full: poll says writable, sendto says EAGAIN again at once, and the
  -- retry loop spun at 85% CPU forever, past any timeout
  it("sendto-full-unix-queue-spins: times out on time and does not spin", function()
    local dir = H.tmpdir()
    local r = assert(core.socket("unix", "dgram"))
    assert(r:bind(dir .. "/r"))
    r:setoption("rcvbuf", 1)
    local s = assert(core.socket("unix", "dgram"))
    s:settimeout(0)
    local filled = false
    for _ = 1, 10000 do   -- fill the receiver's queue
      local ok, _, code = s:sendto(("x"):rep(100), dir .. "/r")
      if not ok then assert.are.equal("EAGAIN", code); filled = true; break end
    end
    assert.is_true(filled)
    s:settimeout(0.3)
    local t0, c0 = core.now(), os.clock()
    local ok, msg, code = s:sendto("y", dir .. "/r")
    local wall, cpu = core.now() - t0, os.clock() - c0
    r:close(); s:close(); H.rmdir(dir)
    assert.is_nil(ok)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("^sendto .*/r: timed out$", msg)
    assert.is_true(wall >= 0.29 and wall < 0.3 * 5 * H.slow, "took " .. wall)
    assert.is_true(cpu < wall / 2, ("cpu %.3f s of %.3f s"):format(cpu, wall))
  end)

  -- getpeercred on a socket with no peer answered the kernel's "nobody"
  -- (pid 0, uid and gid 4294967295) as if they were credentials
  it("getpeercred-without-peer: ENOTCONN, not pid 0 and uid -1", function()
    local s = assert(core.socket("unix", "dgram"))
    local ok, msg, code = s:getpeercred()
    s:close()
    assert.is_nil(ok)
    assert.are.equal("ENOTCONN", code)
    assert.are.equal("getpeercred: the kernel has no credentials for this peer "
      .. "(a unix datagram socket, or not connected)", msg)
  end)

  -- a received descriptor that is not a socket (a passed file) could not
  -- be closed from Lua: fromfd refuses it and io cannot adopt it
  it("received-file-cannot-be-closed: core.closefd closes it, once", function()
    local a, b = core.socketpair()
    local f = assert(io.open("/etc/hostname"))
    assert(a:sendfds("x", f))
    local data, fds = assert(b:recvfds())
    assert.are.equal("x", data)
    local fd = fds[1]
    assert.is_true(H.fd_target(fd) ~= nil)
    assert.is_true(core.closefd(fd))
    local ok, msg, code = core.closefd(fd)
    assert.is_nil(ok)
    assert.are.equal("EBADF", code)
    assert.are.equal("closefd fd " .. fd .. ": Bad file descriptor", msg)
    f:close(); a:close(); b:close()
  end)
end)
