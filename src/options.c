/*
** options.c — s:setoption(name, value) and s:getoption(name).
** One table of {name, level, option, kind} (STYLE.md 7).
*/
#include "sockit.h"

#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <string.h>


enum optkind { OPT_BOOL, OPT_INT, OPT_LINGER, OPT_ERROR };

typedef struct Option {
  const char *name;
  int level;
  int opt;
  int kind;
} Option;

static const Option options[] = {
  {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, OPT_BOOL},
  {"reuseport", SOL_SOCKET, SO_REUSEPORT, OPT_BOOL},
  {"keepalive", SOL_SOCKET, SO_KEEPALIVE, OPT_BOOL},
  {"broadcast", SOL_SOCKET, SO_BROADCAST, OPT_BOOL},
  {"linger", SOL_SOCKET, SO_LINGER, OPT_LINGER},
  {"rcvbuf", SOL_SOCKET, SO_RCVBUF, OPT_INT},
  {"sndbuf", SOL_SOCKET, SO_SNDBUF, OPT_INT},
  {"error", SOL_SOCKET, SO_ERROR, OPT_ERROR},
  {"nodelay", IPPROTO_TCP, TCP_NODELAY, OPT_BOOL},
  {"v6only", IPPROTO_IPV6, IPV6_V6ONLY, OPT_BOOL},
  {NULL, 0, 0, 0}
};


static const Option *checkoption (lua_State *L, int arg) {
  const char *name = luaL_checkstring(L, arg);
  const Option *o;
  for (o = options; o->name != NULL; o++)
    if (strcmp(o->name, name) == 0)
      return o;
  luaL_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
  return NULL;
}


int sock_setoption (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  const Option *o = checkoption(L, 2);
  int ival = 0;
  struct linger lg;
  const void *val = &ival;
  socklen_t len = sizeof(ival);
  switch (o->kind) {
    case OPT_BOOL:
      luaL_checktype(L, 3, LUA_TBOOLEAN);
      ival = lua_toboolean(L, 3);
      break;
    case OPT_INT: {
      lua_Integer v = luaL_checkinteger(L, 3);
      luaL_argcheck(L, 0 <= v && v <= INT_MAX, 3, "value out of range");
      ival = (int)v;
      break;
    }
    case OPT_LINGER:
      memset(&lg, 0, sizeof(lg));
      if (lua_isboolean(L, 3)) {
        luaL_argcheck(L, !lua_toboolean(L, 3), 3,
                      "seconds or false expected");
      }
      else {
        lua_Integer v = luaL_checkinteger(L, 3);
        luaL_argcheck(L, 0 <= v && v <= INT_MAX, 3, "value out of range");
        lg.l_onoff = 1;
        lg.l_linger = (int)v;
      }
      val = &lg;
      len = sizeof(lg);
      break;
    default:
      return luaL_argerror(L, 2, lua_pushfstring(L,
                           "option '%s' is read-only", o->name));
  }
  if (setsockopt(s->fd, o->level, o->opt, val, len) != 0)
    return sockit_fail(L, errno, "setoption", o->name);
  lua_pushboolean(L, 1);
  return 1;
}


int sock_getoption (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  const Option *o = checkoption(L, 2);
  int ival = 0;
  struct linger lg;
  void *val = &ival;
  socklen_t len = sizeof(ival);
  if (o->kind == OPT_LINGER) {
    val = &lg;
    len = sizeof(lg);
  }
  if (getsockopt(s->fd, o->level, o->opt, val, &len) != 0)
    return sockit_fail(L, errno, "getoption", o->name);
  switch (o->kind) {
    case OPT_BOOL:
      lua_pushboolean(L, ival != 0);
      break;
    case OPT_INT:
      lua_pushinteger(L, ival);
      break;
    case OPT_LINGER:
      if (lg.l_onoff)
        lua_pushinteger(L, lg.l_linger);
      else
        lua_pushboolean(L, 0);
      break;
    default:   /* OPT_ERROR: the pending error's code, or false */
      if (ival == 0)
        lua_pushboolean(L, 0);
      else
        lua_pushstring(L, sockit_errname(ival));
      break;
  }
  return 1;
}
