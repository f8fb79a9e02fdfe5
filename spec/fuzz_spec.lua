-- The fuzz target (fuzz/fuzz_parsers.c, libFuzzer) replays every seed and
-- every regression input without a finding, and survives a short run.
-- `make fuzz` runs it for longer.

local H = require "support.helpers"

local fuzzer = H.root .. "/build/fuzz/fuzz_parsers"
-- the fuzzer carries clang's ASan runtime: under make sanitize, the
-- LD_PRELOAD of gcc's (meant for lua5.4) must not reach it ("Your
-- application is linked against incompatible ASan runtimes")
local run_fuzzer = "env -u LD_PRELOAD " .. H.quote(fuzzer)

describe("fuzz target", function()
  it("is built (make test builds it with clang)", function()
    assert.is_true(H.exists(fuzzer), "missing " .. fuzzer)
  end)

  -- regress-cmsg-len-overflow: sys_cmsg_fds added a huge cmsg_len to a
  -- pointer (undefined behaviour, UBSan: "pointer overflow"); the walk
  -- now uses bounded offsets
  it("replays every seed, regressions included, cleanly", function()
    local seeds = {}
    for _, f in ipairs(H.ls(H.root .. "/fuzz/seeds")) do
      seeds[#seeds + 1] = H.quote(H.root .. "/fuzz/seeds/" .. f)
    end
    assert.is_true(#seeds >= 9)
    local out, status = H.sh(run_fuzzer .. " " .. table.concat(seeds, " ") .. " 2>&1")
    assert.are.equal(0, status, out)
    assert.is_nil(out:find("runtime error", 1, true))
    assert.is_nil(out:find("ERROR: AddressSanitizer", 1, true))
  end)

  it("survives 20,000 fresh mutations", function()
    local corpus = H.tmpdir()
    local out, status = H.sh(run_fuzzer .. " -runs=20000 -timeout=5 -seed=1 "
      .. H.quote(corpus) .. " " .. H.quote(H.root .. "/fuzz/seeds") .. " 2>&1")
    H.rmdir(corpus)
    assert.are.equal(0, status, out)
    assert.matches("Done 20000 runs", out)
  end)
end)
