/*
** options.c — s:setoption(name, value) and s:getoption(name).
** One table of {name, level, option, kind} (STYLE.md 7).
*/
#include "sockit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <string.h>


enum optkind {
  OPT_BOOL, OPT_INT, OPT_LINGER, OPT_ERROR,
  OPT_HOPS,      /* multicast_ttl: 0..255, a TTL (inet) or hop limit (inet6) */
  OPT_MIF,       /* multicast_if: an address (inet) or interface (inet6) */
  OPT_MEMBER,    /* add_membership / drop_membership: write-only */
  OPT_INHERIT    /* inheritable: FD_CLOEXEC cleared (fcntl, not sockopt) */
};

/*
** 'level6'/'opt6', when not 0, are what an inet6 socket uses instead
** (the multicast options differ between IPv4 and IPv6).
*/
typedef struct Option {
  const char *name;
  int level;
  int opt;
  int kind;
  int level6;
  int opt6;
} Option;

static const Option options[] = {
  {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, OPT_BOOL, 0, 0},
  {"reuseport", SOL_SOCKET, SO_REUSEPORT, OPT_BOOL, 0, 0},
  {"keepalive", SOL_SOCKET, SO_KEEPALIVE, OPT_BOOL, 0, 0},
  {"broadcast", SOL_SOCKET, SO_BROADCAST, OPT_BOOL, 0, 0},
  {"linger", SOL_SOCKET, SO_LINGER, OPT_LINGER, 0, 0},
  {"rcvbuf", SOL_SOCKET, SO_RCVBUF, OPT_INT, 0, 0},
  {"sndbuf", SOL_SOCKET, SO_SNDBUF, OPT_INT, 0, 0},
  {"error", SOL_SOCKET, SO_ERROR, OPT_ERROR, 0, 0},
  {"nodelay", IPPROTO_TCP, TCP_NODELAY, OPT_BOOL, 0, 0},
  {"v6only", IPPROTO_IPV6, IPV6_V6ONLY, OPT_BOOL, 0, 0},
  {"multicast_loop", IPPROTO_IP, IP_MULTICAST_LOOP, OPT_BOOL,
   IPPROTO_IPV6, IPV6_MULTICAST_LOOP},
  {"multicast_ttl", IPPROTO_IP, IP_MULTICAST_TTL, OPT_HOPS,
   IPPROTO_IPV6, IPV6_MULTICAST_HOPS},
  {"multicast_if", IPPROTO_IP, IP_MULTICAST_IF, OPT_MIF,
   IPPROTO_IPV6, IPV6_MULTICAST_IF},
  {"add_membership", IPPROTO_IP, IP_ADD_MEMBERSHIP, OPT_MEMBER,
   IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP},
  {"drop_membership", IPPROTO_IP, IP_DROP_MEMBERSHIP, OPT_MEMBER,
   IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP},
  {"inheritable", 0, 0, OPT_INHERIT, 0, 0},
  {NULL, 0, 0, 0, 0, 0}
};


/* as sockit_checkoption, for the table of options */
static const Option *checkoption (lua_State *L, int arg) {
  size_t len;
  const char *name = luaL_checklstring(L, arg, &len);
  const Option *o;
  if (strlen(name) == len)
    for (o = options; o->name != NULL; o++)
      if (strcmp(o->name, name) == 0)
        return o;
  sockit_badoption(L, arg);
  return NULL;
}


/* the level and option for this socket's family */
static void optfor (const Socket *s, const Option *o, int *level, int *opt) {
  if (s->family == AF_INET6 && o->level6 != 0) {
    *level = o->level6;
    *opt = o->opt6;
  }
  else {
    *level = o->level;
    *opt = o->opt;
  }
}


/*
** The type of the value at 'idx' as Lua's own argument errors name it:
** its metatable's __name ("sockit.socket", "FILE*") when it has one.
*/
static const char *typename_at (lua_State *L, int idx) {
  int t;
  idx = lua_absindex(L, idx);
  t = luaL_getmetafield(L, idx, "__name");   /* pushes it unless nil */
  if (t == LUA_TSTRING)
    return lua_tostring(L, -1);   /* (left on the stack: the caller raises) */
  if (t != LUA_TNIL)
    lua_pop(L, 1);
  return luaL_typename(L, idx);
}


/*
** An interface at stack index 'idx': a name ("lo"), an index, or (IPv4
** only) one of its addresses. Returns its index (0: none given) and, for
** an address, fills 'addr'. An unknown name is ENODEV, returned in
** '*err'. Misuse raises as argument 'arg' (setoption's value, which may
** be a table holding the interface), with 'where' after the text
** ("" or " at [2]").
*/
static unsigned checkiface (lua_State *L, int idx, int arg, const char *where,
                            int family, struct in_addr *addr, int *err) {
  const char *name;
  unsigned ifindex;
  *err = 0;
  switch (lua_type(L, idx)) {
    case LUA_TNONE: case LUA_TNIL:
      return 0;
    case LUA_TNUMBER: {
      int isint;
      lua_Integer i = lua_tointegerx(L, idx, &isint);
      if (!isint || i < 0 || i > INT_MAX)
        luaL_argerror(L, arg, lua_pushfstring(L,
          "invalid interface index%s", where));
      return (unsigned)i;
    }
    case LUA_TSTRING:
      break;
    default:
      luaL_argerror(L, arg, lua_pushfstring(L,
        "interface (a name, index or address) expected%s, got %s", where,
        typename_at(L, idx)));
  }
  name = lua_tostring(L, idx);
  if (family == AF_INET && addr != NULL && inet_pton(AF_INET, name, addr) == 1)
    return 0;
  if ((ifindex = if_nametoindex(name)) == 0)
    *err = errno ? errno : ENODEV;
  return ifindex;
}


/*
** The group of a membership for a socket of 'family': fills 'g4' and
** returns 1 for an IPv4 group, fills 'g6' and returns 0 for an IPv6 one.
** An inet6 socket takes both: Linux lets an AF_INET6 socket join IPv4
** groups (at IPPROTO_IP), and a dual-stack one then receives their
** datagrams; a v4-mapped group ("::ffff:239.1.2.3") is the IPv4 one.
*/
static int checkgroup (lua_State *L, int family, const char *group,
                       struct in_addr *g4, struct in6_addr *g6) {
  if (family == AF_INET) {
    if (inet_pton(AF_INET, group, g4) != 1)
      luaL_argerror(L, 3, lua_pushfstring(L,
        "'%s' is not an IPv4 group address", group));
    return 1;
  }
  if (inet_pton(AF_INET6, group, g6) == 1) {
    if (!IN6_IS_ADDR_V4MAPPED(g6))
      return 0;
    memcpy(g4, &g6->s6_addr[12], sizeof(*g4));
    return 1;
  }
  if (inet_pton(AF_INET, group, g4) != 1)
    luaL_argerror(L, 3, lua_pushfstring(L,
      "'%s' is not an IPv4 or IPv6 group address", group));
  return 1;
}


/*
** add_membership / drop_membership: the value is a group address, or a
** table {group, interface} (interface as checkiface takes it: for an
** IPv4 group, an IPv4 address too).
*/
static int setmember (lua_State *L, Socket *s, const Option *o) {
  int err = 0;
  const char *group, *where = "";
  int ifidx;
  if (lua_istable(L, 3)) {
    if (lua_rawgeti(L, 3, 1) != LUA_TSTRING)
      return luaL_argerror(L, 3, lua_pushfstring(L,
               "group (a string) expected at [1], got %s",
               luaL_typename(L, -1)));
    lua_rawgeti(L, 3, 2);
    group = lua_tostring(L, -2);
    ifidx = lua_gettop(L);
    where = " at [2]";
  }
  else {
    if (lua_type(L, 3) != LUA_TSTRING)
      return luaL_typeerror(L, 3, "group or {group, interface}");
    group = lua_tostring(L, 3);
    lua_pushnil(L);
    ifidx = lua_gettop(L);
  }
  if (s->family == AF_INET || s->family == AF_INET6) {
    struct in_addr g4;
    struct in6_addr g6;
    if (checkgroup(L, s->family, group, &g4, &g6)) {
      struct ip_mreqn m;
      memset(&m, 0, sizeof(m));
      m.imr_multiaddr = g4;
      m.imr_ifindex = (int)checkiface(L, ifidx, 3, where, AF_INET,
                                      &m.imr_address, &err);
      if (err == 0 && setsockopt(s->fd, o->level, o->opt, &m, sizeof(m)) != 0)
        err = errno;
    }
    else {
      struct ipv6_mreq m;
      memset(&m, 0, sizeof(m));
      m.ipv6mr_multiaddr = g6;
      m.ipv6mr_interface = checkiface(L, ifidx, 3, where, AF_INET6, NULL,
                                      &err);
      if (err == 0 && setsockopt(s->fd, o->level6, o->opt6, &m, sizeof(m)) != 0)
        err = errno;
    }
  }
  else
    err = ENOPROTOOPT;
  if (err != 0) {
    lua_pushfstring(L, "%s %s", o->name, group);
    return sockit_fail(L, err, "setoption", lua_tostring(L, -1));
  }
  lua_pushboolean(L, 1);
  return 1;
}


/*
** multicast_if: an interface (name or index), or an IPv4 address. On an
** inet6 socket a name or index sets the interface of IPv6 sends and of
** IPv4 ones (a dual-stack socket's sends to an IPv4 group take the IPv4
** options); an IPv4 address sets the IPv4 one only.
*/
static int setmif (lua_State *L, Socket *s, const Option *o) {
  int err = 0, rc = 0;
  struct ip_mreqn m;
  luaL_checkany(L, 3);
  memset(&m, 0, sizeof(m));
  m.imr_ifindex = (int)checkiface(L, 3, 3, "", AF_INET, &m.imr_address, &err);
  if (err == 0 && s->family == AF_INET6 &&
      !(lua_type(L, 3) == LUA_TSTRING && m.imr_ifindex == 0)) {
    int idx = m.imr_ifindex;
    rc = setsockopt(s->fd, o->level6, o->opt6, &idx, sizeof(idx));
  }
  if (err == 0 && rc == 0)
    rc = setsockopt(s->fd, o->level, o->opt, &m, sizeof(m));
  if (err != 0 || rc != 0)
    return sockit_fail(L, err ? err : errno, "setoption", o->name);
  lua_pushboolean(L, 1);
  return 1;
}


/*
** inheritable: whether the descriptor survives exec (FD_CLOEXEC clear).
** Every sockit descriptor starts close-on-exec; a program that hands a
** socket to a child process it starts sets this to true first.
*/
static int inheritable (lua_State *L, Socket *s, int set) {
  int flags = fcntl(s->fd, F_GETFD);
  if (flags < 0)
    return sockit_fail(L, errno, set ? "setoption" : "getoption", "inheritable");
  if (!set) {
    lua_pushboolean(L, !(flags & FD_CLOEXEC));
    return 1;
  }
  luaL_checktype(L, 3, LUA_TBOOLEAN);
  flags = lua_toboolean(L, 3) ? (flags & ~FD_CLOEXEC) : (flags | FD_CLOEXEC);
  if (fcntl(s->fd, F_SETFD, flags) != 0)
    return sockit_fail(L, errno, "setoption", "inheritable");
  lua_pushboolean(L, 1);
  return 1;
}


int sock_setoption (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  const Option *o = checkoption(L, 2);
  int ival = 0, level, opt;
  struct linger lg;
  const void *val = &ival;
  socklen_t len = sizeof(ival);
  optfor(s, o, &level, &opt);
  switch (o->kind) {
    case OPT_MEMBER:
      return setmember(L, s, o);
    case OPT_MIF:
      return setmif(L, s, o);
    case OPT_INHERIT:
      return inheritable(L, s, 1);
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
    case OPT_HOPS: {   /* the kernel said EINVAL past 255: misuse, as -1 */
      lua_Integer v = luaL_checkinteger(L, 3);
      luaL_argcheck(L, 0 <= v && v <= 255, 3, "multicast_ttl must be 0..255");
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
  if (setsockopt(s->fd, level, opt, val, len) != 0)
    return sockit_fail(L, errno, "setoption", o->name);
  /* multicast_loop and multicast_ttl of an inet6 socket: the IPv4 ones
     too, which its sends to IPv4 groups (dual stack) go by */
  if (s->family == AF_INET6 && o->level6 != 0 &&
      setsockopt(s->fd, o->level, o->opt, val, len) != 0)
    return sockit_fail(L, errno, "setoption", o->name);
  lua_pushboolean(L, 1);
  return 1;
}


int sock_getoption (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  const Option *o = checkoption(L, 2);
  int ival = 0, level, opt;
  struct linger lg;
  struct in_addr ia;
  void *val = &ival;
  socklen_t len = sizeof(ival);
  optfor(s, o, &level, &opt);
  if (o->kind == OPT_MEMBER)
    return luaL_argerror(L, 2, lua_pushfstring(L,
                         "option '%s' is write-only", o->name));
  if (o->kind == OPT_INHERIT)
    return inheritable(L, s, 0);
  if (o->kind == OPT_LINGER) {
    val = &lg;
    len = sizeof(lg);
  }
  else if (o->kind == OPT_MIF && s->family == AF_INET) {
    val = &ia;
    len = sizeof(ia);
  }
  if (getsockopt(s->fd, level, opt, val, &len) != 0)
    return sockit_fail(L, errno, "getoption", o->name);
  switch (o->kind) {
    case OPT_BOOL:
      lua_pushboolean(L, ival != 0);
      break;
    case OPT_INT: case OPT_HOPS:
      lua_pushinteger(L, ival);
      break;
    case OPT_LINGER:
      if (lg.l_onoff)
        lua_pushinteger(L, lg.l_linger);
      else
        lua_pushboolean(L, 0);
      break;
    case OPT_MIF:
      if (s->family == AF_INET) {   /* the address, "0.0.0.0" for none */
        char buf[INET_ADDRSTRLEN];
        lua_pushstring(L, inet_ntop(AF_INET, &ia, buf, sizeof(buf)));
      }
      else {                         /* the interface's name, or 0 */
        char name[IF_NAMESIZE];
        if (ival != 0 && if_indextoname((unsigned)ival, name) != NULL)
          lua_pushstring(L, name);
        else
          lua_pushinteger(L, ival);
      }
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
