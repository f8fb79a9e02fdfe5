-- The loop's and serve's own specs once more, on the poll(2) backend
-- (build/poll/sockit/core.so, built by make test), in a child run of the
-- suite: there the loop is level-triggered, its interest follows the
-- waiting tasks, and conn:recv's wait goes through park (the task in
-- readers[fd]) rather than the coroutine in rdco. Without this, that
-- backend's loop would be tested only under injected faults.

local H = require "support.helpers"

describe("the event loop on the poll(2) fallback", function()
  it("passes spec/loop_spec.lua and spec/serve_spec.lua", function()
    local dir = H.root .. "/build/poll"
    assert.is_true(H.exists(dir .. "/sockit/core.so"),
                   "build the fallback: make build/poll/sockit/core.so")
    local out, status = H.sh("cd " .. H.quote(H.root) .. " && SOCKIT_CORE="
      .. H.quote(dir) .. " timeout -k 5 300 sh tools/test.sh"
      .. " spec/loop_spec.lua spec/serve_spec.lua 2>&1")
    local passed, failed = out:match("(%d+) passed, (%d+) failed[^\n]*\n?$")
    assert.are.equal(0, status, out)
    assert.are.equal("0", failed, out)
    -- every test of both files ran (not an early stop that failed none)
    assert.is_true(tonumber(passed) >= 27, out)
  end)
end)
