rockspec_format = "3.0"
package = "sockit"
version = "scm-1"
source = {
   url = "git+https://example.invalid/sockit.git",
}
description = {
   summary = "BSD sockets for Lua 5.4: a C core, buffered connections and a coroutine event loop",
   detailed = [[
sockit.core is a thin, faithful binding of the socket system calls (inet,
inet6 and unix; stream, dgram and seqpacket). sockit is the Lua layer on top:
connect/listen/bind with Go's network names, buffered connections, servers.
]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4",
}
build = {
   type = "builtin",
   modules = {
      ["sockit.core"] = {
         sources = {
            "src/addr.c",
            "src/batch.c",
            "src/core.c",
            "src/errors.c",
            "src/faults.c",
            "src/fdpass.c",
            "src/options.c",
            "src/poller.c",
            "src/resolve.c",
            "src/sendfile.c",
            "src/socket.c",
            "src/sys.c",
            "src/unixfile.c",
         },
         defines = { "_GNU_SOURCE" },
         -- src/resolve.c: worker threads (in libc since glibc 2.34)
         libraries = { "pthread" },
      },
      ["sockit.addr"] = "lua/sockit/addr.lua",
      ["sockit.conn"] = "lua/sockit/conn.lua",
      ["sockit.connect"] = "lua/sockit/connect.lua",
      ["sockit.dgram"] = "lua/sockit/dgram.lua",
      ["sockit.fdpass"] = "lua/sockit/fdpass.lua",
      ["sockit"] = "lua/sockit/init.lua",
      ["sockit.listener"] = "lua/sockit/listener.lua",
      ["sockit.loop"] = "lua/sockit/loop.lua",
      ["sockit.open"] = "lua/sockit/open.lua",
      ["sockit.serve"] = "lua/sockit/serve.lua",
      ["sockit.wait"] = "lua/sockit/wait.lua",
   },
}
