-- Packaging: the rockspec lists every source, and `luarocks make` installs
-- sockit into an empty tree from which it loads in another directory.

local H = require "support.helpers"

local function rockspec_text()
  return assert(H.read_file(H.root .. "/rockspec/sockit-scm-1.rockspec"))
end

describe("packaging", function()
  it("lists every C source and Lua module in the rockspec", function()
    local text = rockspec_text()
    local missing = {}
    for _, f in ipairs(H.ls(H.root .. "/src")) do
      if f:match("%.c$") and not text:find('"src/' .. f .. '"', 1, true) then
        missing[#missing + 1] = "src/" .. f
      end
    end
    for _, f in ipairs(H.ls(H.root .. "/lua/sockit")) do
      if f:match("%.lua$") and not text:find('"lua/sockit/' .. f .. '"', 1, true) then
        missing[#missing + 1] = "lua/sockit/" .. f
      end
    end
    assert.are.same({}, missing)
  end)

  it("installs with luarocks into an empty tree and loads from another directory", function()
    assert.is_true(H.have("luarocks"), "luarocks is needed")
    local tree = H.tmpdir()
    local elsewhere = H.tmpdir()
    -- the system's PATH: make sanitize puts a wrapper lua5.4 first, and
    -- luarocks would look for Lua's headers beside it
    local out, status = H.sh("cd " .. H.quote(H.root) .. " && PATH=/usr/local/bin:/usr/bin:/bin "
      .. "luarocks --lua-version=5.4 make --tree="
      .. H.quote(tree) .. " rockspec/sockit-scm-1.rockspec 2>&1")
    assert.are.equal(0, status, out)
    -- a clean environment: only the tree's paths, from another directory
    local script = [[
      local sockit = require "sockit"
      local where = package.searchpath("sockit.core", package.cpath)
      local l = assert(sockit.listen("tcp", "127.0.0.1:0"))
      sockit.spawn(function() local c = assert(sockit.connect("tcp", l:addr())); c:write("installed\n"); c:close() end)
      sockit.spawn(function() local c = assert(l:accept()); print(c:read("l")); c:close(); l:close() end)
      sockit.run()
      print(sockit._VERSION, where)
    ]]
    local cmd = "cd " .. H.quote(elsewhere) .. " && eval \"$(luarocks --lua-version=5.4 --tree="
      .. H.quote(tree) .. " path)\" && env -u LUA_PATH_5_4 lua5.4 -e " .. H.quote(script) .. " 2>&1"
    out, status = H.sh("env -u LUA_PATH -u LUA_CPATH sh -c " .. H.quote(cmd))
    H.rmdir(tree)
    H.rmdir(elsewhere)
    assert.are.equal(0, status, out)
    assert.matches("^installed\nsockit 0%.1%.0\t" .. H.pat(tree), out)
  end)
end)
