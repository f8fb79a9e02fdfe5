/*
** addr.c — socket addresses between Lua values and struct sockaddr.
**
** Lua side (SPEC §2): inet/inet6 addresses are two values, host and port;
** unix addresses are one value, the path ("\0..." is Linux's abstract
** namespace, "" is an unnamed socket). Nothing is ever truncated: a path
** that does not fit sun_path is ENAMETOOLONG.
*/
#include "sockit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define SUN_PATH_SIZE  (sizeof(((struct sockaddr_un *)0)->sun_path))


/*
** The port at 'idx' (a number, or a string Lua converts to one: "80",
** "8e1"): PORT_OK with *port set, or why not: PORT_TYPE (no number),
** PORT_FRACTION (a fraction or NaN), PORT_RANGE (a whole number outside
** 0..65535, even one too large for an integer: "99999999999999999999").
** The one port check: sockit_checkport, and batch.c's list items.
*/
int sockit_toport (lua_State *L, int idx, int *port) {
  int isnum;
  lua_Integer i = lua_tointegerx(L, idx, &isnum);
  if (!isnum) {
    lua_Number n = lua_tonumberx(L, idx, &isnum);
    if (!isnum)
      return PORT_TYPE;
    return (n == floor(n)) ? PORT_RANGE : PORT_FRACTION;   /* (inf: range) */
  }
  if (i < 0 || i > 65535)
    return PORT_RANGE;
  *port = (int)i;
  return PORT_OK;
}


/*
** A port is an integer 0..65535; anything else is a programming error.
*/
int sockit_checkport (lua_State *L, int arg) {
  int port = 0;
  switch (sockit_toport(L, arg, &port)) {
    case PORT_OK:
      return port;
    case PORT_RANGE:
      return luaL_argerror(L, arg, "port out of range");
    default:   /* luaL_checkinteger's own words */
      return (int)luaL_checkinteger(L, arg);
  }
}


/*
** A host name or service string (or nil, when 'opt'): C sees it up to
** its first zero byte, so a string with one inside ("127.0.0.1\0junk")
** would name something else than the caller wrote. That is misuse.
*/
static const char *checkname (lua_State *L, int arg, int opt, const char *what) {
  size_t len;
  const char *s = opt ? luaL_optlstring(L, arg, NULL, &len)
                      : luaL_checklstring(L, arg, &len);
  if (s != NULL && strlen(s) != len)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s contains a zero byte", what));
  return s;
}


/*
** {======================================================
** sockaddr -> text and Lua values
** =======================================================
*/

static void fmt_inet6host (const struct sockaddr_in6 *sin6,
                           char *buf, size_t size) {
  char host[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)) == NULL)
    strcpy(host, "?");
  if (sin6->sin6_scope_id != 0) {
    char ifname[IF_NAMESIZE];
    if (if_indextoname(sin6->sin6_scope_id, ifname) != NULL)
      snprintf(buf, size, "%s%%%s", host, ifname);
    else
      snprintf(buf, size, "%s%%%u", host, (unsigned)sin6->sin6_scope_id);
  }
  else
    snprintf(buf, size, "%s", host);
}


/*
** Length of the path in a unix address of length 'len': abstract names
** are counted bytes; filesystem paths end at the first zero byte.
*/
static size_t unix_pathlen (const struct sockaddr_un *un, socklen_t len) {
  size_t n;
  if (len <= offsetof(struct sockaddr_un, sun_path))
    return 0;
  n = len - offsetof(struct sockaddr_un, sun_path);
  if (n > SUN_PATH_SIZE) n = SUN_PATH_SIZE;
  if (un->sun_path[0] == '\0')
    return n;
  return strnlen(un->sun_path, n);
}


/*
** 'n' bytes as text for messages: every byte, a zero byte written "\0"
** and a backslash "\\", so that the text is unambiguous ("ab\0cd"). At
** most 'size' bytes with the terminating zero (2 n + 1 is always enough);
** returns the length.
*/
size_t sockit_escape (const char *s, size_t n, char *buf, size_t size) {
  size_t i, k = 0;
  if (size == 0)
    return 0;
  for (i = 0; i < n; i++) {
    int esc = (s[i] == '\0' || s[i] == '\\');
    if (k + 1 + (size_t)esc >= size)
      break;
    if (esc) {
      buf[k++] = '\\';
      buf[k++] = (s[i] == '\0') ? '0' : '\\';
    }
    else
      buf[k++] = s[i];
  }
  buf[k] = '\0';
  return k;
}


/*
** An abstract unix name (the bytes after its leading zero) as text: "@"
** and the name, escaped ("\0ab\0cd" shows as "@ab\0cd"). At most 'size'
** bytes with the terminating zero (2 n + 2 is always enough).
*/
static size_t fmt_abstract (const char *name, size_t n,
                            char *buf, size_t size) {
  if (size < 2)
    return sockit_escape(name, 0, buf, size);
  buf[0] = '@';
  return 1 + sockit_escape(name, n, buf + 1, size - 1);
}


/*
** A textual address for messages and __tostring.
*/
void sockit_fmtaddr (const struct sockaddr *sa, socklen_t len,
                     char *buf, size_t size) {
  buf[0] = '\0';
  switch (sa->sa_family) {
    case AF_INET: {
      const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
      char host[INET_ADDRSTRLEN];
      if (inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) == NULL)
        strcpy(host, "?");
      snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
      break;
    }
    case AF_INET6: {
      const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
      char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
      fmt_inet6host(sin6, host, sizeof(host));
      snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
      break;
    }
    case AF_UNIX: {
      const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
      size_t n = unix_pathlen(un, len);
      if (n == 0)
        break;
      if (un->sun_path[0] == '\0')   /* abstract: shown as "@name" */
        fmt_abstract(un->sun_path + 1, n - 1, buf, size);
      else
        snprintf(buf, size, "%.*s", (int)n, un->sun_path);
      break;
    }
    default:
      break;
  }
}


/*
** Push an address as Lua values: host, port (2) or path (1). An address
** of no family (recvfrom on a connected stream) pushes nothing.
*/
int sockit_pushaddr (lua_State *L, const struct sockaddr *sa, socklen_t len) {
  if (len < sizeof(sa_family_t))
    return 0;
  switch (sa->sa_family) {
    case AF_INET: {
      const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
      char host[INET_ADDRSTRLEN];
      if (inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) == NULL)
        strcpy(host, "?");
      lua_pushstring(L, host);
      lua_pushinteger(L, ntohs(sin->sin_port));
      return 2;
    }
    case AF_INET6: {
      const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
      char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
      fmt_inet6host(sin6, host, sizeof(host));
      lua_pushstring(L, host);
      lua_pushinteger(L, ntohs(sin6->sin6_port));
      return 2;
    }
    case AF_UNIX: {
      const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
      lua_pushlstring(L, un->sun_path, unix_pathlen(un, len));
      return 1;
    }
    default:
      return 0;
  }
}

/* }====================================================== */


/*
** Whether a host in a message needs brackets before ":port": an IPv6
** address does, unless the caller wrote them already ("[::1]", which no
** lookup takes: the message should show what was passed, not "[[::1]]").
*/
static int needs_brackets (const char *host) {
  return host[0] != '[' && strchr(host, ':') != NULL;
}


/*
** {======================================================
** Lua values -> sockaddr
** =======================================================
*/

static int tounix (lua_State *L, int arg, const char *op, Addr *a) {
  size_t len;
  const char *path = luaL_checklstring(L, arg, &len);
  struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
  int abstract = (len > 0 && path[0] == '\0');
  luaL_argcheck(L, abstract || memchr(path, '\0', len) == NULL, arg,
                "unix path contains a zero byte");
  /* a filesystem path needs its terminating zero; an abstract name not */
  if (abstract ? len > SUN_PATH_SIZE : len >= SUN_PATH_SIZE) {
    if (abstract) {
      luaL_Buffer b;
      char *t = luaL_buffinitsize(L, &b, 2 * len + 2);
      luaL_pushresultsize(&b, fmt_abstract(path + 1, len - 1, t, 2 * len + 2));
    }
    else
      lua_pushvalue(L, arg);
    return sockit_failmsg(L, "ENAMETOOLONG", "%s %s: %s (%d bytes, at most %d)",
                          op, lua_tostring(L, -1), strerror(ENAMETOOLONG),
                          (int)len, (int)SUN_PATH_SIZE - (abstract ? 0 : 1));
  }
  memset(un, 0, sizeof(*un));
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path, len);
  if (len == 0)   /* unnamed: bind() autobinds, connect() says EINVAL */
    a->len = (socklen_t)offsetof(struct sockaddr_un, sun_path);
  else
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len
                         + (abstract ? 0 : 1));
  sockit_fmtaddr((struct sockaddr *)un, a->len, a->text, sizeof(a->text));
  return 0;
}


static int toinet (lua_State *L, int family, int arg, int passive,
                   const char *op, Addr *a) {
  const char *host = checkname(L, arg, 1, "host");
  int port = sockit_checkport(L, arg + 1);
  memset(&a->ss, 0, sizeof(a->ss));
  if (host == NULL || host[0] == '\0' || strcmp(host, "*") == 0)
    host = NULL;   /* every interface */
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    a->len = sizeof(*sin);
    if (host == NULL)
      sin->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
      goto resolve;
  }
  else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    a->len = sizeof(*sin6);
    if (host == NULL)
      sin6->sin6_addr = in6addr_any;
    else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
      goto resolve;
  }
  sockit_fmtaddr((struct sockaddr *)&a->ss, a->len, a->text, sizeof(a->text));
  return 0;

resolve: {  /* a name, or a literal inet_pton does not take ("fe80::1%lo") */
    struct addrinfo hints, *res;
    char serv[8];
    int rc;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
                   | (family == AF_INET6 ? AI_V4MAPPED : 0);
#ifdef SOCKIT_FUZZ
    hints.ai_flags |= AI_NUMERICHOST;   /* the fuzzer never asks DNS */
#endif
    snprintf(serv, sizeof(serv), "%d", port);
    rc = getaddrinfo(host, serv, &hints, &res);
    if (rc != 0) {
      int err = errno;
      lua_pushfstring(L, needs_brackets(host) ? "[%s]:%d" : "%s:%d", host, port);
      return sockit_gaifail(L, rc, err, op, lua_tostring(L, -1));
    }
    if (res->ai_addrlen > sizeof(a->ss)) {  /* cannot happen; be safe */
      freeaddrinfo(res);
      return sockit_fail(L, EAFNOSUPPORT, op, host);
    }
    memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
    a->len = res->ai_addrlen;
    freeaddrinfo(res);
    sockit_fmtaddr((struct sockaddr *)&a->ss, a->len, a->text, sizeof(a->text));
    return 0;
  }
}


/*
** Read the address at 'arg' (host, port at arg, arg+1; or a path) for a
** socket of 'family'. Returns 0 with 'a' filled, or pushes a failure
** (nil, msg, code) and returns its count. Misuse raises.
*/
int sockit_toaddr (lua_State *L, int family, int arg, int passive,
                   const char *op, Addr *a) {
  if (family == AF_UNIX)
    return tounix(L, arg, op, a);
  return toinet(L, family, arg, passive, op, a);
}

/* }====================================================== */


/*
** {======================================================
** core.getaddrinfo(host, port [, family [, type]])
** =======================================================
*/

static int same_entry (const struct addrinfo *x, const struct addrinfo *y) {
  return x->ai_family == y->ai_family && x->ai_socktype == y->ai_socktype
      && x->ai_addrlen == y->ai_addrlen
      && memcmp(x->ai_addr, y->ai_addr, x->ai_addrlen) == 0;
}


static int wanted (const struct addrinfo *ai) {
  return (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
      && (ai->ai_socktype == SOCK_STREAM || ai->ai_socktype == SOCK_DGRAM);
}


static const char *const gai_families[] = {"inet", "inet6", "unix", NULL};
static const int gai_familyvals[] = {AF_INET, AF_INET6, AF_UNIX};
static const char *const gai_types[] = {"stream", "dgram", "seqpacket", NULL};
static const int gai_typevals[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};


/*
** The result list is owned by a userdata box, so that a memory error
** while building the Lua table cannot leak it.
*/
#define SOCKIT_AIBOX  "sockit.addrinfo"

static int aibox_gc (lua_State *L) {
  struct addrinfo **box = (struct addrinfo **)luaL_checkudata(L, 1, SOCKIT_AIBOX);
  if (*box != NULL) {
    freeaddrinfo(*box);
    *box = NULL;
  }
  return 0;
}


/*
** The arguments of core.getaddrinfo (and core._resolve, resolve.c) at
** 1..4, checked: misuse raises. 'q->serv' may point into 'q' itself
** (portbuf), so 'q' is used where it was filled, never copied.
*/
void sockit_gaiquery (lua_State *L, GaiQuery *q) {
  q->host = checkname(L, 1, 1, "host");
  q->serv = NULL;
  memset(&q->hints, 0, sizeof(q->hints));
  /* a number, or a string Lua takes for one ("80", "8e1"), is a port,
     checked as bind checks it (glibc would take "70000" modulo 65536 and
     refuse "8e1"); another string is a service name: "http" */
  if (lua_isnumber(L, 2)) {
    snprintf(q->portbuf, sizeof(q->portbuf), "%d", sockit_checkport(L, 2));
    q->serv = q->portbuf;
    q->hints.ai_flags |= AI_NUMERICSERV;
  }
  else if (!lua_isnoneornil(L, 2))
    q->serv = checkname(L, 2, 0, "port");
  if (!lua_isnoneornil(L, 3))
    q->hints.ai_family = gai_familyvals[sockit_checkoption(L, 3, NULL, gai_families)];
  if (!lua_isnoneornil(L, 4))
    q->hints.ai_socktype = gai_typevals[sockit_checkoption(L, 4, NULL, gai_types)];
  if (q->host == NULL)
    q->hints.ai_flags |= AI_PASSIVE;
#ifdef SOCKIT_FUZZ
  q->hints.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
#endif
  luaL_argcheck(L, q->host != NULL || q->serv != NULL, 1, "host or port expected");
}


/*
** What getaddrinfo(host, serv) answered ('rc', errno 'err', the list
** 'res' when rc is 0) as core.getaddrinfo returns it: the array of
** entries, or nil, msg, code. 'res' stays the caller's: a memory error
** while the table is built must find it owned (a box, a resolve job).
*/
int sockit_gairesult (lua_State *L, const char *host, const char *serv,
                      int rc, int err, const struct addrinfo *res) {
  const struct addrinfo *ai;
  int n = 0;
  if (rc != 0) {
    /* name what failed: the service when it is the service
       ("getaddrinfo localhost:nosuchservice: Servname not supported"),
       and with no host to name, the port (":80", as the Lua layer
       writes it) */
    if (serv != NULL && (rc == EAI_SERVICE || host == NULL || host[0] == '\0'))
      lua_pushfstring(L, needs_brackets(host ? host : "") ? "[%s]:%s" : "%s:%s",
                      host ? host : "", serv);
    else
      lua_pushstring(L, (host[0] != '\0') ? host : "\"\"");
    return sockit_gaifail(L, rc, err, "getaddrinfo", lua_tostring(L, -1));
  }
  lua_newtable(L);
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    const struct addrinfo *prev;
    int dup = 0;
    if (!wanted(ai))
      continue;
    for (prev = res; prev != ai && !dup; prev = prev->ai_next)
      dup = wanted(prev) && same_entry(prev, ai);
    if (dup)
      continue;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, sockit_familyname(ai->ai_family));
    lua_setfield(L, -2, "family");
    lua_pushstring(L, sockit_typename(ai->ai_socktype));
    lua_setfield(L, -2, "type");
    sockit_pushaddr(L, ai->ai_addr, ai->ai_addrlen);  /* host, port */
    lua_setfield(L, -3, "port");
    lua_setfield(L, -2, "host");
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}


int mod_getaddrinfo (lua_State *L) {
  GaiQuery q;
  struct addrinfo *res = NULL, **box;
  int rc, err, nres;
  sockit_gaiquery(L, &q);
  box = (struct addrinfo **)lua_newuserdatauv(L, sizeof(*box), 0);
  *box = NULL;
  if (luaL_newmetatable(L, SOCKIT_AIBOX)) {
    lua_pushcfunction(L, aibox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  rc = getaddrinfo(q.host, q.serv, &q.hints, &res);
  err = errno;
  if (rc == 0)
    *box = res;
  nres = sockit_gairesult(L, q.host, q.serv, rc, err, res);
  if (rc == 0) {
    *box = NULL;
    freeaddrinfo(res);
  }
  return nres;
}

/* }====================================================== */
