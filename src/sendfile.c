/*
** sendfile.c — s:sendfile(file, offset, count): bytes from a file to a
** stream socket without passing through Lua (sendfile(2)).
*/
#include "sockit.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>


/* a Lua file (io.open) or an integer descriptor */
static int checkfilefd (lua_State *L, int arg) {
  luaL_Stream *f;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    lua_Integer fd = luaL_checkinteger(L, arg);
    luaL_argcheck(L, 0 <= fd && fd <= INT_MAX, arg, "invalid descriptor");
    return (int)fd;
  }
  f = (luaL_Stream *)luaL_testudata(L, arg, LUA_FILEHANDLE);
  if (f == NULL)
    return luaL_typeerror(L, arg, "file or integer descriptor");
  luaL_argcheck(L, f->closef != NULL && f->f != NULL, arg,
                "attempt to use a closed file");
  return fileno(f->f);
}


/*
** s:sendfile(file, [offset [, count]]) -> bytes sent
** offset defaults to 0; count to the rest of the file. Sends until count
** bytes are sent or the file ends, waiting per the socket's timeout; if
** the wait fails after some bytes went, the count so far is returned
** (with timeout 0: whatever the socket took). The file's own position is
** not used or moved.
*/
static int sock_sendfile (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  int in;
  if (s->type != SOCK_STREAM)
    return sockit_kinderror(L, "sendfile", "stream socket",
                            sockit_typename(s->type));
  in = checkfilefd(L, 2);
  lua_Integer off = luaL_optinteger(L, 3, 0);
  lua_Integer count = 0;
  off_t pos;
  lua_Integer total = 0;
  Wait wt = WAIT_INIT(L);
  SysNoPipe np;
  int err = 0;
  struct stat st;
  luaL_argcheck(L, off >= 0, 3, "offset must not be negative");
  if (!lua_isnoneornil(L, 4)) {
    count = luaL_checkinteger(L, 4);
    luaL_argcheck(L, count >= 0, 4, "count must not be negative");
  }
  if (fstat(in, &st) != 0)
    return sockit_fail(L, errno, "sendfile", NULL);
  if (lua_isnoneornil(L, 4))
    count = (S_ISREG(st.st_mode) && st.st_size > off)
          ? (lua_Integer)(st.st_size - off)
          : (S_ISREG(st.st_mode) ? 0 : LUA_MAXINTEGER);
  else if (S_ISREG(st.st_mode) && st.st_size <= off)
    count = 0;   /* at or past the end: 0, never the kernel's EOVERFLOW or
                    EINVAL for an offset near its limit */
  pos = (off_t)off;
  if ((err = sys_nopipe_begin(&np)) != 0)
    return sockit_fail(L, err, "sendfile", NULL);
  while (total < count) {
    lua_Integer left = count - total;
    size_t chunk = (left > (1 << 30)) ? (size_t)1 << 30 : (size_t)left;
    size_t n;
    err = sys_sendfile(&np, s->fd, in, &pos, chunk, &n);
    if (err == 0 && n > 0) {
      total += (lua_Integer)n;
      continue;
    }
    if (err == 0)   /* the file ended */
      break;
    if (err == EAGAIN) {
      if (s->timeout == 0 || (err = sockit_waitfor(s, POLLOUT, &wt)) != 0) {
        if (total > 0) err = 0;   /* report what went */
        break;
      }
      continue;
    }
    if (total > 0 && err != EPIPE && err != ECONNRESET)
      err = 0;   /* report what went; the next call says why */
    break;
  }
  sys_nopipe_end(&np);   /* (nothing above raises) */
  if (err != 0)
    return sockit_fail(L, err, "sendfile", NULL);
  lua_pushinteger(L, total);
  return 1;
}


void sockit_opensendfile (lua_State *L) {
  luaL_getmetatable(L, SOCKIT_SOCKET);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, sock_sendfile);
  lua_setfield(L, -2, "sendfile");
  lua_pop(L, 2);
}
