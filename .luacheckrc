-- luacheck configuration: Lua 5.4 everywhere, busted's globals in specs
std = "lua54"
files["spec"] = { std = "+busted" }
