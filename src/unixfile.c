/*
** unixfile.c — the socket files of unix listeners: what the Lua layer
** needs to set their permissions (listen's opts.mode) and to remove
** only the file it made (never a file someone else put there since).
*/
#include "sockit.h"

#include <errno.h>
#include <sys/stat.h>


/*
** core.chmod(path, mode) -> true | nil, msg, code
** 'mode' an integer (0660 is written 432 in Lua, or tonumber("660", 8)).
*/
static int mod_chmod (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer mode = luaL_checkinteger(L, 2);
  luaL_argcheck(L, 0 <= mode && mode <= 07777, 2, "mode out of range");
  if (chmod(path, (mode_t)mode) != 0)
    return sockit_fail(L, errno, "chmod", path);
  lua_pushboolean(L, 1);
  return 1;
}


/*
** core.fileid(path) -> id, kind | nil, msg, code
** 'id' a string naming this very file ("dev:inode:ctime"), so that a
** later call tells whether the path still names it: the change time (in
** nanoseconds) tells apart a new file that got a freed inode number
** again; 'kind' is "socket", "file", "directory", "fifo" or "other".
** lstat: a link is not followed.
*/
static int mod_fileid (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  const char *kind;
  if (lstat(path, &st) != 0)
    return sockit_fail(L, errno, "fileid", path);
  kind = S_ISSOCK(st.st_mode) ? "socket" : S_ISREG(st.st_mode) ? "file"
       : S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "fifo"
       : "other";
  lua_pushfstring(L, "%I:%I:%I.%I", (lua_Integer)st.st_dev,
                  (lua_Integer)st.st_ino, (lua_Integer)st.st_ctim.tv_sec,
                  (lua_Integer)st.st_ctim.tv_nsec);
  lua_pushstring(L, kind);
  return 2;
}


static const luaL_Reg funcs[] = {
  {"chmod", mod_chmod},
  {"fileid", mod_fileid},
  {NULL, NULL}
};


void sockit_openunixfile (lua_State *L) {
  luaL_setfuncs(L, funcs, 0);
}
