/*
** socket.c — the socket userdata and its methods.
**
** Every descriptor is non-blocking in the kernel; the timeout of SPEC §2
** is applied here with poll(2) against a monotonic deadline: nil waits
** forever, 0 never waits (EAGAIN / EINPROGRESS), t > 0 bounds each call.
** The Lua layer sets 0 and does its own waiting (STYLE.md 8).
*/
#include "sockit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>


/*
** {======================================================
** Names
** =======================================================
*/

static const char *const familynames[] = {"inet", "inet6", "unix", NULL};
static const int familyvals[] = {AF_INET, AF_INET6, AF_UNIX};
static const char *const typenames[] = {"stream", "dgram", "seqpacket", NULL};
static const int typevals[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
static const char *const statenames[] = {
  "fresh", "bound", "listening", "connecting", "connected"
};


/*
** luaL_checkoption, but a name with a zero byte inside matches nothing:
** strcmp saw only its prefix, so "inet\0x" was taken for "inet". Every
** name check of the core comes here (or to sockit_badoption).
*/
int sockit_checkoption (lua_State *L, int arg, const char *def,
                        const char *const lst[]) {
  size_t len;
  const char *name = (def != NULL) ? luaL_optlstring(L, arg, def, &len)
                                   : luaL_checklstring(L, arg, &len);
  int i;
  if (strlen(name) == len)
    for (i = 0; lst[i] != NULL; i++)
      if (strcmp(lst[i], name) == 0)
        return i;
  return sockit_badoption(L, arg);
}


/*
** Raise "bad argument #arg to 'f' (invalid option '...')" for the string
** at 'arg', every byte of it shown (a zero byte as \0).
*/
int sockit_badoption (lua_State *L, int arg) {
  size_t len;
  const char *name = lua_tolstring(L, arg, &len);
  luaL_Buffer b;
  char *t = luaL_buffinitsize(L, &b, 2 * len + 1);
  luaL_pushresultsize(&b, sockit_escape(name, len, t, 2 * len + 1));
  return luaL_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'",
                                               lua_tostring(L, -1)));
}


const char *sockit_familyname (int family) {
  int i;
  for (i = 0; familynames[i] != NULL; i++)
    if (familyvals[i] == family) return familynames[i];
  return "?";
}


const char *sockit_typename (int type) {
  int i;
  for (i = 0; typenames[i] != NULL; i++)
    if (typevals[i] == type) return typenames[i];
  return "?";
}

/* }====================================================== */


/*
** {======================================================
** The userdata (liolib's newprefile / tofile)
** =======================================================
*/

/*
** Every socket userdata carries the address of socket_tag, and a full
** userdata of exactly a Socket's size that carries it is a socket: the
** type test of every method call, without pushing the metatable and
** comparing it (liolib's luaL_checkudata, or a registry look-up: 200 to
** 300 instructions per call by callgrind, three calls per message on the
** event loop's hot path). Another library's userdata could only pass by
** holding this very address at that place; the size test comes first,
** so that reading 'tag' never goes past the end of a smaller block, and a
** light userdata has no size (0).
*/
static const char socket_tag = 0;

Socket *sockit_testsocket (lua_State *L, int arg) {
  Socket *s = (Socket *)lua_touserdata(L, arg);
  if (s != NULL && lua_rawlen(L, arg) == sizeof(Socket) &&
      s->tag == &socket_tag)
    return s;
  return NULL;
}


/*
** {======================================================
** The descriptors this Lua state's objects own (sockets, pollers): one
** bit per descriptor, in a userdata in the registry. core.fromfd and
** core.closefd refuse an owned one, so that no descriptor has two owners
** (the second close would close whatever had reused the number by then).
** Objects of other Lua states (threads) are not seen: a descriptor is
** shared by the whole process, this set only by one state.
** =======================================================
*/

static const char owned_key = 0;

/* the set's bytes and their count, or NULL */
static unsigned char *ownedset (lua_State *L, size_t *n) {
  unsigned char *b;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &owned_key);
  b = (unsigned char *)lua_touserdata(L, -1);
  *n = (b != NULL) ? lua_rawlen(L, -1) : 0;
  lua_pop(L, 1);   /* (the registry keeps it) */
  return b;
}

/*
** Grow the set to hold descriptor 'fd' (argument 1), as a protected call
** (sockit_own). The allocation may run finalizers, which may mark or
** clear bits and even grow the set: the set is read again after it.
*/
static int grow (lua_State *L) {
  size_t n, size, i = (size_t)lua_tointeger(L, 1) / 8;
  unsigned char *b, *nb;
  (void)ownedset(L, &n);
  size = (n > 0) ? n : 128;
  while (size <= i)
    size *= 2;
#ifdef SOCKIT_FAULTS
  if (fault_own())
    luaL_error(L, "not enough memory");
#endif
  nb = (unsigned char *)lua_newuserdatauv(L, size, 0);
  b = ownedset(L, &n);
  if (i < n)
    return 0;   /* a finalizer grew it meanwhile */
  if (n > 0)
    memcpy(nb, b, n);
  memset(nb + n, 0, size - n);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &owned_key);
  return 0;
}

/*
** Mark 'fd' owned, before an object holds it: LUA_OK, or the status of
** the error (memory, growing the set) with the error on top, 'fd'
** unmarked. The caller then closes a descriptor it made and raises: an
** object that held 'fd' unmarked until its __gc would let fromfd give
** the number a second owner, and then close it under that one.
*/
int sockit_own (lua_State *L, int fd) {
  size_t n, i = (size_t)fd / 8;
  unsigned char *b = ownedset(L, &n);
  if (i >= n) {
    int status;
    lua_pushcfunction(L, grow);
    lua_pushinteger(L, fd);
    if ((status = lua_pcall(L, 1, 0, 0)) != LUA_OK)
      return status;
    b = ownedset(L, &n);
  }
  b[i] |= (unsigned char)(1u << (fd % 8));
  return LUA_OK;
}

/* sockit_own for a descriptor just made: one that cannot be marked is
   closed, and the error raised */
void sockit_ownnew (lua_State *L, int fd) {
  if (sockit_own(L, fd) != LUA_OK) {
    (void)sys_close(fd);
    lua_error(L);
  }
}

void sockit_disown (lua_State *L, int fd) {
  size_t n, i = (size_t)fd / 8;
  unsigned char *b = ownedset(L, &n);
  if (i < n)
    b[i] &= (unsigned char)~(1u << (fd % 8));
}

int sockit_owned (lua_State *L, int fd) {
  size_t n, i = (size_t)fd / 8;
  unsigned char *b = ownedset(L, &n);
  return i < n && (b[i] & (1u << (fd % 8))) != 0;
}

/* }====================================================== */


/* what one message of a message socket is called in errors */
const char *sockit_unitname (const Socket *s) {
  return (s->type == SOCK_SEQPACKET) ? "record" : "datagram";
}


/*
** Push a new socket userdata that is still closed (fd -1), so that an
** error before the descriptor exists leaves a consistent object and a
** descriptor stored into it later is owned from that moment on. Its one
** user value is poller.c's: the pollers that hold it (nil while none).
*/
Socket *sockit_newsocket (lua_State *L, int family, int type) {
  Socket *s = (Socket *)lua_newuserdatauv(L, sizeof(Socket), 1);
  s->tag = &socket_tag;
  s->fd = -1;
  s->family = family;
  s->type = type;
  s->state = ST_FRESH;
  s->timeout = -1;
  s->gso = 0;
  s->npolled = 0;
  s->watched = 0;
  luaL_setmetatable(L, SOCKIT_SOCKET);
  return s;
}


/* a socket, open or closed (for close, __gc, __tostring) */
Socket *sockit_tosocket (lua_State *L, int arg) {
  Socket *s = sockit_testsocket(L, arg);
  if (s == NULL)
    luaL_typeerror(L, arg, SOCKIT_SOCKET);
  return s;
}


/*
** Is 'src' a chunk of sockit's Lua layer: a file "<dir>/sockit/<name>.lua"
** (or "sockit/<name>.lua" on a relative path)?
*/
static int inlayer (const char *src) {
  size_t len = strlen(src);
  const char *slash = strrchr(src, '/');
  if (src[0] != '@' || len < 5 || strcmp(src + len - 4, ".lua") != 0
      || slash == NULL || slash - src < 7)  /* room for "@sockit" before */
    return 0;
  return memcmp(slash - 6, "sockit", 6) == 0
         && (slash[-7] == '/' || slash[-7] == '@');
}


/*
** "attempt to use a closed socket", at the user's line. The caller of the
** method is the user, unless it is sockit's Lua layer: a conn whose
** .socket the user closed directly is found closed by the core call deep
** inside conn:read or conn:write, and the position would be a line of
** conn.lua. So the frames of the layer are skipped, up to the first one
** that is not (or the direct caller, if all are). Only this error path
** pays for the walk: the layer's hot paths check nothing more.
*/
static int closederror (lua_State *L) {
  lua_Debug ar;
  int level = 1;
  while (lua_getstack(L, level, &ar) && lua_getinfo(L, "S", &ar)
         && inlayer(ar.source))
    level++;
  if (!lua_getstack(L, level, &ar)) level = 1;
  luaL_where(L, level);
  lua_pushliteral(L, "attempt to use a closed socket");
  lua_concat(L, 2);
  return lua_error(L);
}


/* an open socket; a closed one is a programming error */
Socket *sockit_checksocket (lua_State *L, int arg) {
  Socket *s = sockit_tosocket(L, arg);
  if (s->fd == -1)
    closederror(L);
  return s;
}


/*
** The methods' upvalues (sockit_opensocket): the scratch receive buffer,
** and the parts of the commonest failure of all, a non-blocking recv or
** send that would block.
*/
enum { UP_SCRATCH = 1, UP_EAGAIN, UP_RECVAGAIN, UP_SENDAGAIN, NUP };

/* argument 1 of a method: an open socket */
#define checkself(L)  sockit_checksocket(L, 1)


/*
** nil, "recv: Resource temporarily unavailable", "EAGAIN" (or send's):
** what sockit_again returns, pushed from upvalues 'msg' and UP_EAGAIN,
** without its two registry look-ups (a pointer hash each: callgrind put
** them at 280 instructions per call, on the event loop's hottest path).
*/
static int again (lua_State *L, int msg) {
  lua_pushnil(L);
  lua_pushvalue(L, lua_upvalueindex(msg));
  lua_pushvalue(L, lua_upvalueindex(UP_EAGAIN));
  return 3;
}


/*
** A socket of a kind the method does not apply to (sendfds on inet,
** recvmany on a stream): misuse, raised in SPEC §1's form with the socket
** as argument #1, as core.methods.f(s, ...) counts it. (luaL_argerror
** would say "calling 'f' on bad self" for a method call.)
*/
int sockit_kinderror (lua_State *L, const char *fname, const char *expected,
                      const char *got) {
  return luaL_error(L, "bad argument #1 to '%s' (%s expected, got %s)",
                    fname, expected, got);
}


/* a socket or a plain integer descriptor (the poller takes both) */
int sockit_optfd (lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TNUMBER) {
    lua_Integer fd = luaL_checkinteger(L, arg);
    luaL_argcheck(L, 0 <= fd && fd <= INT_MAX, arg, "invalid descriptor");
    return (int)fd;
  }
  return sockit_checksocket(L, arg)->fd;
}


/*
** The event loop's close hook (lua/sockit/loop.lua sets it with
** core._closehook(fn), and marks each socket it waits on with
** s:_watch()): closing a watched socket calls fn(s) first, while the
** descriptor is still open, so that the loop takes it out of its poller
** and wakes the tasks waiting on it ("EBADF") — also when the user closes
** conn.socket or listener.socket directly rather than through the object.
** Not from __gc: a socket a task waits on is not garbage, and a finalizer
** should not run the loop's code.
*/
static const char closehook_key = 0;

static int mod_closehook (lua_State *L) {
  if (!lua_isnil(L, 1))
    luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &closehook_key);
  return 0;
}

/* s:_watch([on]) -> (nothing): mark (or, with false, unmark) 's' */
static int sock__watch (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  s->watched = lua_isnone(L, 2) || lua_toboolean(L, 2);
  return 0;
}

/*
** Call the hook for the socket at 1. Its error (a bug in the hook, or
** memory) must not leave the socket open: it stays on the stack, and
** sock_close closes first and raises it after. Returns whether it failed.
*/
static int closehook (lua_State *L, Socket *s) {
  s->watched = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &closehook_key) == LUA_TFUNCTION) {
    lua_pushvalue(L, 1);
    return lua_pcall(L, 1, 0, 0) != LUA_OK;
  }
  lua_pop(L, 1);
  return 0;
}


/*
** close, __gc and __close in one idempotent function (cqueues
** lso_destroy): mark closed first, then close(2). A socket some poller
** holds leaves it before: epoll's interest list holds the open file, so
** if the file lives on in another descriptor (a dup, a child, one passed
** with SCM_RIGHTS) the entry would outlive close(2) and be reported
** forever; and EPOLL_CTL_DEL needs the descriptor. A socket in no poller
** pays one compare.
*/
static int sock_close (lua_State *L) {
  Socket *s = sockit_tosocket(L, 1);
  int hookerr = 0;
  if (s->fd != -1 && s->watched)
    hookerr = closehook(L, s);   /* (its error, if any, on top) */
  if (s->fd != -1) {
    int fd = s->fd, err;
    if (s->npolled > 0)
      sockit_unpoll(L, 1, s);
    s->fd = -1;
    s->state = ST_FRESH;
    sockit_disown(L, fd);   /* before the number can be reused */
    if ((err = sys_close(fd)) != 0 && !hookerr)
      return sockit_fail(L, err, "close", NULL);
  }
  if (hookerr)
    return lua_error(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int sock_gc (lua_State *L) {
  sockit_tosocket(L, 1)->watched = 0;   /* no close hook (above) */
  return sock_close(L);
}


/*
** An IPv4-mapped IPv6 address (a v4 client of a dual-stack socket) as
** the IPv4 one, in place: what conn:peer() and conn:addr() show.
*/
static void unmap (struct sockaddr_storage *ss, socklen_t *len) {
  const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
  if (ss->ss_family == AF_INET6 && *len >= sizeof(*sin6) &&
      IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = sin6->sin6_port;
    memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12], sizeof(sin.sin_addr));
    memcpy(ss, &sin, sizeof(sin));
    *len = sizeof(sin);
  }
}


/* has the kernel given the socket a local address (a port, or a name)? */
static int isbound (const struct sockaddr_storage *ss, socklen_t len) {
  switch (ss->ss_family) {
    case AF_INET:
      return ((const struct sockaddr_in *)ss)->sin_port != 0;
    case AF_INET6:
      return ((const struct sockaddr_in6 *)ss)->sin6_port != 0;
    case AF_UNIX:
      return len > offsetof(struct sockaddr_un, sun_path);
    default:
      return 0;
  }
}


/*
** A connect sockit saw start, as the kernel has it now: "connected" when
** there is a peer, "connect failed" when the socket is writable without
** one (done, and failed), else "connecting". Reads no SO_ERROR, which
** would take the error away from connect and getoption("error").
*/
static const char *connecting (Socket *s, int haspeer) {
  struct pollfd p;
  int n;
  if (haspeer)
    return statenames[ST_CONNECTED];
  p.fd = s->fd; p.events = POLLOUT; p.revents = 0;
  while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
    ;
  return (n > 0) ? "connect failed" : statenames[ST_CONNECTING];
}


/*
** The state shown is what sockit saw the socket do, unless it saw no
** more than a bind: a socket adopted with core.fromfd, or bound by the
** kernel on a first sendto, may be bound, listening or connected
** already, and then the kernel says which. What sockit saw connect, or
** start to, may have ended since: the kernel says that too (a peer that
** reset the connection leaves it "disconnected", as conn.lua shows it).
*/
static int sock_tostring (lua_State *L) {
  Socket *s = sockit_tosocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len;
  char local[SOCKIT_ADDRSTRLEN], peer[SOCKIT_ADDRSTRLEN];
  const char *label;
  int state, bound = 0, connected = 0;
  if (s->fd == -1) {
    lua_pushliteral(L, SOCKIT_SOCKET "{closed}");
    return 1;
  }
  local[0] = peer[0] = '\0';
  len = sizeof(ss);
  if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0) {
    bound = isbound(&ss, len);
    unmap(&ss, &len);
    sockit_fmtaddr((struct sockaddr *)&ss, len, local, sizeof(local));
  }
  len = sizeof(ss);
  if (getpeername(s->fd, (struct sockaddr *)&ss, &len) == 0) {
    connected = 1;
    unmap(&ss, &len);
    sockit_fmtaddr((struct sockaddr *)&ss, len, peer, sizeof(peer));
  }
  state = s->state;
  if (state == ST_FRESH || state == ST_BOUND) {
    int listening = 0;
    socklen_t ilen = sizeof(listening);
    if (connected)
      state = ST_CONNECTED;
    else if (s->type != SOCK_DGRAM &&
             getsockopt(s->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) == 0
             && listening)
      state = ST_LISTENING;
    else if (bound)
      state = ST_BOUND;
  }
  if (state == ST_CONNECTING)
    label = connecting(s, connected);
  else if (state == ST_CONNECTED && !connected)
    label = "disconnected";
  else
    label = statenames[state];
  lua_pushfstring(L, SOCKIT_SOCKET "{%s %s fd=%d%s%s%s%s %s}",
                  sockit_familyname(s->family), sockit_typename(s->type),
                  s->fd, local[0] ? " " : "", local,
                  peer[0] ? " -> " : "", peer, label);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Waiting: the one place where the core blocks
** =======================================================
*/

/* sys_wait, and again after a signal unless an interrupt is pending */
static int waitfd (lua_State *L, int fd, int events, double deadline,
                   int *revents) {
  int err;
  while ((err = sys_wait(fd, events, deadline, revents)) == EINTR
         && !sockit_interrupted(L))
    ;
  return err;
}


/*
** After a call said EAGAIN: fail at once with timeout 0, otherwise wait
** for 'events' until the deadline (computed on first need, once per
** call, so that the fast path reads no clock). Returns 0 to retry, or
** an errno (EAGAIN, ETIMEDOUT, ...).
**
** Readiness does not always mean the call can go on: an unconnected unix
** datagram socket polls writable while the receiver's queue is full, so
** sendto says EAGAIN again at once. From the third wait of one call on,
** pause first (1, 2, 4 ... 50 ms) so that such a call neither spins nor
** outlives its deadline (it spun at 85% CPU forever before).
*/
int sockit_waitfor (Socket *s, int events, Wait *w) {
  if (s->timeout == 0)
    return EAGAIN;
  if (w->deadline == 0)
    w->deadline = sys_deadline(s->timeout);
  if (++w->waits > 2) {
    int ms = (w->waits - 3 < 6) ? 1 << (w->waits - 3) : 50;
    if (w->deadline >= 0) {
      double left = w->deadline - sys_now();
      if (left <= 0)
        return ETIMEDOUT;
      if (ms > left * 1000.0)
        ms = (int)(left * 1000.0) + 1;
    }
    if (poll(NULL, 0, ms) < 0) {
      int err = errno;
      if (err != EINTR || sockit_interrupted(w->L))
        return err;
    }
  }
  return waitfd(w->L, s->fd, events, w->deadline, NULL);
}


/*
** Whether an interrupt is pending in the Lua state: the standalone lua's
** SIGINT handler (lua.c, laction) sets a hook on the main thread that
** runs at the next instruction (count 1) and raises "interrupted!". A
** wait cut short by a signal (EINTR) is retried, SPEC §1, unless such a
** hook waits to run: then the wait fails with EINTR, the C function
** returns, and the hook raises. So Ctrl-C stops a blocking accept or
** read, a sleep or sockit.run(), as it stops any Lua code (LuaSocket's
** waits retry and do not stop). A hook that counts every instruction
** wants to run at once, whoever set it; line and call hooks (debuggers,
** coverage) and sparse count hooks (profilers) leave the retry alone.
*/
static int hookpending (lua_State *L) {
  return lua_gethook(L) != NULL && (lua_gethookmask(L) & LUA_MASKCOUNT)
         && lua_gethookcount(L) == 1;
}

int sockit_interrupted (lua_State *L) {
  lua_State *main;
  if (hookpending(L))
    return 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  return main != NULL && main != L && hookpending(main);
}


static const char *const eventnames[] = {"r", "w", "rw", NULL};
static const int eventvals[] = {POLLIN, POLLOUT, POLLIN | POLLOUT};

static void pushevents (lua_State *L, int revents) {
  int r = (revents & POLLIN) != 0, w = (revents & POLLOUT) != 0;
  lua_pushstring(L, (r && w) ? "rw" : (r ? "r" : "w"));
}


/*
** x:wait(events [, timeout]) -> "r"|"w"|"rw" or nil, msg, "ETIMEDOUT" on
** the descriptor 'fd' of argument 1 (a socket's; a resolve job's too,
** resolve.c), with its arguments at 2 and 3
*/
int sockit_fdwait (lua_State *L, int fd) {
  int events = eventvals[sockit_checkoption(L, 2, NULL, eventnames)];
  double timeout = luaL_optnumber(L, 3, -1);
  int revents = 0, err;
  if (lua_isnoneornil(L, 3))
    timeout = -1;
  else
    luaL_argcheck(L, timeout >= 0, 3,   /* (false for NaN too) */
                  timeout != timeout ? "timeout is NaN" : "timeout must not be negative");
  err = waitfd(L, fd, events, sys_deadline(timeout), &revents);
  if (err != 0)
    return sockit_fail(L, err, "wait", NULL);
  pushevents(L, revents);
  return 1;
}


/* s:wait(events [, timeout]) */
static int sock_wait (lua_State *L) {
  return sockit_fdwait(L, sockit_checksocket(L, 1)->fd);
}

/* }====================================================== */


/*
** {======================================================
** Addresses, listening, connecting
** =======================================================
*/

static int sock_bind (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  Addr a;
  int n = sockit_toaddr(L, s->family, 2, 1, "bind", &a);
  if (n != 0) return n;
  if (bind(s->fd, (struct sockaddr *)&a.ss, a.len) != 0)
    return sockit_fail(L, errno, "bind", a.text);
  s->state = ST_BOUND;
  lua_pushboolean(L, 1);
  return 1;
}


static int sock_listen (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  lua_Integer backlog = luaL_optinteger(L, 2, SOMAXCONN);
  luaL_argcheck(L, 0 <= backlog && backlog <= INT_MAX, 2, "backlog out of range");
  if (listen(s->fd, (int)backlog) != 0)
    return sockit_fail(L, errno, "listen", NULL);
  s->state = ST_LISTENING;
  lua_pushboolean(L, 1);
  return 1;
}


/* the local address as text, for messages about a listener */
static const char *localtext (Socket *s, char *buf, size_t size) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  buf[0] = '\0';
  if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0)
    sockit_fmtaddr((struct sockaddr *)&ss, len, buf, size);
  return buf;
}


static int sock_accept (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  Socket *c = sockit_newsocket(L, s->family, s->type);  /* closed for now */
  struct sockaddr_storage ss;
  socklen_t len;
  Wait wt = WAIT_INIT(L);
  int fd, n;
  for (;;) {
    len = sizeof(ss);
    fd = sk_accept4(s->fd, (struct sockaddr *)&ss, &len,
                 SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0)
      break;
    else {
      int err = errno;
      char buf[SOCKIT_ADDRSTRLEN];
      if (err == EINTR)
        continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        if ((err = sockit_waitfor(s, POLLIN, &wt)) == 0)
          continue;
      }
      return sockit_fail(L, err, "accept", localtext(s, buf, sizeof(buf)));
    }
  }
  sockit_ownnew(L, fd);
  c->fd = fd;
  c->state = ST_CONNECTED;
  n = sockit_pushaddr(L, (struct sockaddr *)&ss, len);
  if (n == 0 && s->family == AF_UNIX) {
    lua_pushliteral(L, "");
    n = 1;
  }
  return 1 + n;
}


/*
** A unix stream connect whose listener's backlog is full says EAGAIN
** and is not in progress: there is no readiness to wait for. With a
** timeout, let the kernel do the waiting: blocking connects bounded by
** SO_SNDTIMEO (which unix_stream_connect honours), then restore.
**
** Every slice is finite, UNIX_SLICE seconds at most, even with no
** deadline: a timeout too large for a timeval (math.huge) must not reach
** the conversion (undefined; the kernel said EDOM to what came out), and
** with no SO_SNDTIMEO a signal restarts the connect inside the kernel
** (SA_RESTART), so Ctrl-C never got its turn. With one, a signal ends
** the connect with EINTR, retried unless an interrupt is pending
** (sockit_interrupted), as every other wait does.
*/
#define UNIX_SLICE  3600.0

static int unix_blocking_connect (lua_State *L, Socket *s, Addr *a,
                                  double deadline) {
  int flags, err = 0;
  struct timeval tv;
  for (;;) {
    double left = UNIX_SLICE;
    if (deadline >= 0) {
      left = deadline - sys_now();
      if (left <= 0)
        return ETIMEDOUT;
      if (left > UNIX_SLICE)
        left = UNIX_SLICE;
    }
    tv.tv_sec = (time_t)left;
    tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6) + 1;
    if (tv.tv_usec >= 1000000) { tv.tv_sec++; tv.tv_usec -= 1000000; }
    if (setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
      return errno;
    if ((flags = fcntl(s->fd, F_GETFL)) < 0
        || fcntl(s->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
      return errno;
    err = (connect(s->fd, (struct sockaddr *)&a->ss, a->len) == 0) ? 0 : errno;
    tv.tv_sec = 0; tv.tv_usec = 0;
    if (fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) < 0
        || setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
      return errno;
    if (err == EINTR && !sockit_interrupted(L))
      continue;
    if (err == EAGAIN)   /* SO_SNDTIMEO expired: the deadline, or a slice */
      continue;
    return err;
  }
}


/*
** A connect that failed leaves the kernel's socket "connecting": the next
** connect(2) would only report ECONNABORTED and start nothing. Dissolve
** it (connect to AF_UNSPEC), so that trying again really tries, as it
** does on a blocking socket. If that fails, the socket stays as it was:
** the connect's own error is the one to report either way.
*/
static void connect_reset (Socket *s) {
  struct sockaddr sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_family = AF_UNSPEC;
  if (connect(s->fd, &sa, sizeof(sa)) != 0)
    return;   /* (nothing better to do: see above) */
}


/*
** Finish a connect in progress: wait for writability under the timeout,
** then the outcome is SO_ERROR; and when that is 0, whether there is a
** peer (the user may have read SO_ERROR, getoption "error", and so taken
** the failure away: ENOTCONN then, never a false "connected").
*/
static int finish_connect (lua_State *L, Socket *s, const char *text) {
  Wait wt = WAIT_INIT(L);
  int err = 0;
  socklen_t elen = sizeof(err);
  if (s->timeout == 0) {
    struct pollfd p;
    int n;
    p.fd = s->fd; p.events = POLLOUT; p.revents = 0;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
      ;
    if (n < 0)
      return sockit_fail(L, errno, "connect", text);
    if (n == 0)
      return sockit_fail(L, EALREADY, "connect", text);
  }
  else if ((err = sockit_waitfor(s, POLLOUT, &wt)) != 0)
    return sockit_fail(L, err, "connect", text);
  if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
    return sockit_fail(L, errno, "connect", text);
  if (err == 0) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    if (getpeername(s->fd, (struct sockaddr *)&peer, &plen) != 0)
      err = errno;
  }
  if (err != 0) {
    connect_reset(s);
    s->state = ST_FRESH;
    return sockit_fail(L, err, "connect", text);
  }
  s->state = ST_CONNECTED;
  lua_pushboolean(L, 1);
  return 1;
}


static int sock_connect (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  Addr a;
  int err;
  if (s->state == ST_CONNECTING) {   /* a second call finishes the first */
    a.text[0] = '\0';
    if (!lua_isnoneornil(L, 2)) {
      int n = sockit_toaddr(L, s->family, 2, 0, "connect", &a);
      if (n != 0) { lua_pop(L, n); a.text[0] = '\0'; }
    }
    return finish_connect(L, s, a.text);
  }
  else {
    int n = sockit_toaddr(L, s->family, 2, 0, "connect", &a);
    if (n != 0) return n;
  }
  /* a stream connected already: the kernel would say so only after the
     first connect(2) it did not see finish (a non-blocking connect ends
     without one), and then return 0 for any address */
  if (s->state == ST_CONNECTED && s->type != SOCK_DGRAM)
    return sockit_fail(L, EISCONN, "connect", a.text);
  if (sk_connect(s->fd, (struct sockaddr *)&a.ss, a.len) == 0) {
    s->state = ST_CONNECTED;
    lua_pushboolean(L, 1);
    return 1;
  }
  err = errno;
  if (err == EINPROGRESS || err == EINTR) {  /* EINTR: goes on async */
    s->state = ST_CONNECTING;
    if (s->timeout == 0)
      return sockit_fail(L, EINPROGRESS, "connect", a.text);
    return finish_connect(L, s, a.text);
  }
  if (err == EAGAIN && s->family == AF_UNIX && s->timeout != 0) {
    err = unix_blocking_connect(L, s, &a, sys_deadline(s->timeout));
    if (err == 0) {
      s->state = ST_CONNECTED;
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  return sockit_fail(L, err, "connect", a.text);
}

/* }====================================================== */


/*
** {======================================================
** Sending
** =======================================================
*/

/* string.sub's index rules (lstrlib's posrelatI and getendpos) */
static size_t startpos (lua_Integer pos, size_t len) {
  if (pos > 0) return (size_t)pos;
  else if (pos == 0) return 1;
  else if (pos < -(lua_Integer)len) return 1;
  else return len + (size_t)pos + 1;
}


static size_t endpos (lua_Integer pos, size_t len) {
  if (pos > (lua_Integer)len) return len;
  else if (pos >= 0) return (size_t)pos;
  else if (pos < -(lua_Integer)len) return 0;
  else return len + (size_t)pos + 1;
}


/* send 'len' bytes at 'data' with 'flags', waiting per the timeout */
static int sendloop (lua_State *L, Socket *s, const char *data, size_t len,
                     const Addr *to) {
  Wait wt = WAIT_INIT(L);
  for (;;) {
    ssize_t n = to ? sk_sendto(s->fd, data, len, MSG_NOSIGNAL,
                               (const struct sockaddr *)&to->ss, to->len)
                   : sk_sendto(s->fd, data, len, MSG_NOSIGNAL, NULL, 0);
    if (n >= 0) {
      lua_pushinteger(L, (lua_Integer)n);
      return 1;
    }
    else {
      int err = errno;
      if (err == EINTR)
        continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        if ((err = sockit_waitfor(s, POLLOUT, &wt)) == 0)
          continue;
        if (err == EAGAIN && to == NULL)
          return again(L, UP_SENDAGAIN);
      }
      return sockit_fail(L, err, to ? "sendto" : "send", to ? to->text : NULL);
    }
  }
}


static int sock_send (lua_State *L) {
  Socket *s = checkself(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  size_t i = startpos(luaL_optinteger(L, 3, 1), len);
  size_t j = endpos(luaL_optinteger(L, 4, -1), len);
  if (i > j)
    return sendloop(L, s, data, 0, NULL);
  return sendloop(L, s, data + i - 1, j - i + 1, NULL);
}


/*
** s:_write(conn, ...) — conn:write's commonest case in one call, for
** conn.lua (internal, not part of SPEC): exactly one argument after conn,
** a string, on a socket with timeout 0, sent by one send. Returns conn
** when the kernel took it all (an empty string sends nothing); false, n
** when it took its first n bytes only (0: it would block); nil, msg, code
** when the send failed; false alone when the case is another (several
** arguments, a number, a socket that may wait): conn.lua does it all. One
** C call instead of conn.lua's select, type and send (callgrind: some
** 500 instructions less per message).
*/
static int sock__write (lua_State *L) {
  Socket *s = checkself(L);
  size_t len;
  const char *data;
  ssize_t n;
  int err;
  if (lua_gettop(L) != 3 || lua_type(L, 3) != LUA_TSTRING || s->timeout != 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  data = lua_tolstring(L, 3, &len);
  if (len == 0) {
    lua_settop(L, 2);
    return 1;
  }
  do
    n = sk_sendto(s->fd, data, len, MSG_NOSIGNAL, NULL, 0);
  while (n < 0 && errno == EINTR);
  if (n >= 0 && (size_t)n == len) {
    lua_settop(L, 2);
    return 1;
  }
  err = (n < 0) ? errno : 0;
  if (n >= 0 || err == EAGAIN || err == EWOULDBLOCK) {
    lua_pushboolean(L, 0);
    lua_pushinteger(L, (n > 0) ? (lua_Integer)n : 0);
    return 2;
  }
  return sockit_fail(L, err, "send", NULL);
}


static int sock_sendto (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  Addr a;
  int n = sockit_toaddr(L, s->family, 3, 0, "sendto", &a);
  if (n != 0) return n;
  return sendloop(L, s, data, len, &a);
}


#define SOCKIT_IOVMAX  1024   /* IOV_MAX on Linux */

/*
** s:sendv(list [, skip]) — writev of the strings in 'list', skipping the
** first 'skip' bytes of their concatenation. Pieces stay on the Lua
** stack (numbers are converted there) until the system call is done.
*/
static int sock_sendv (lua_State *L) {
  Socket *s = checkself(L);
  lua_Integer skip = luaL_optinteger(L, 3, 0);
  struct iovec iov[SOCKIT_IOVMAX];
  struct msghdr msg;
  lua_Integer i, n;
  int cnt = 0;
  Wait wt = WAIT_INIT(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_argcheck(L, skip >= 0, 3, "skip must not be negative");
  n = luaL_len(L, 2);
  luaL_checkstack(L, SOCKIT_IOVMAX + 4, "too many pieces");
  for (i = 1; i <= n && cnt < SOCKIT_IOVMAX; i++) {
    size_t len;
    const char *p;
    int t = lua_rawgeti(L, 2, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      return luaL_argerror(L, 2, lua_pushfstring(L,
               "item %I is a %s, string expected", i, luaL_typename(L, -1)));
    p = lua_tolstring(L, -1, &len);
    if ((lua_Unsigned)skip >= len) {
      skip -= (lua_Integer)len;
      lua_pop(L, 1);
      continue;
    }
    iov[cnt].iov_base = (void *)(uintptr_t)(p + skip);  /* iovec is not const */
    iov[cnt].iov_len = len - (size_t)skip;
    skip = 0;
    cnt++;
  }
  if (cnt == 0) {
    lua_pushinteger(L, 0);
    return 1;
  }
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = iov;
  msg.msg_iovlen = (size_t)cnt;
  for (;;) {
    ssize_t sent = sk_sendmsg(s->fd, &msg, MSG_NOSIGNAL);
    if (sent >= 0) {
      lua_pushinteger(L, (lua_Integer)sent);
      return 1;
    }
    else {
      int err = errno;
      if (err == EINTR)
        continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        if ((err = sockit_waitfor(s, POLLOUT, &wt)) == 0)
          continue;
        if (err == EAGAIN)
          return again(L, UP_SENDAGAIN);
      }
      return sockit_fail(L, err, "send", NULL);
    }
  }
}

/* }====================================================== */


/*
** {======================================================
** Receiving
** =======================================================
*/

/*
** The sender's address for recvfrom, pushed: host, port or path. The
** kernel gives none for a connected stream; there it is the peer
** (getpeername), so that an inet stream too returns data, host, port,
** and "", 0 if the kernel has forgotten the peer already (a reset just
** after the data came). An unnamed unix peer is "".
*/
static int pushfrom (lua_State *L, Socket *s, struct sockaddr_storage *ss,
                     socklen_t len) {
  int k = sockit_pushaddr(L, (struct sockaddr *)ss, len);
  if (k != 0)
    return k;
  if (s->family == AF_UNIX) {
    lua_pushliteral(L, "");
    return 1;
  }
  len = sizeof(*ss);
  if (getpeername(s->fd, (struct sockaddr *)ss, &len) == 0
      && (k = sockit_pushaddr(L, (struct sockaddr *)ss, len)) != 0)
    return k;
  lua_pushliteral(L, "");
  lua_pushinteger(L, 0);
  return 2;
}


/*
** recv and recvfrom. A stream read of n bytes returns them; a datagram
** is received with MSG_TRUNC so that the kernel reports its real length:
** one longer than 'max' is EMSGSIZE, never silently cut. Small reads go
** through the module's scratch buffer (an upvalue), large ones through a
** luaL_Buffer.
*/
static int do_recv (lua_State *L, int from) {
  Socket *s = checkself(L);
  lua_Integer max = luaL_optinteger(L, 2, SOCKIT_RECVMAX);
  int stream = (s->type == SOCK_STREAM);
  size_t cap = stream ? SOCKIT_STREAM_CAP : SOCKIT_DGRAM_CAP;
  size_t want;
  Scratch *sc = (Scratch *)lua_touserdata(L, lua_upvalueindex(UP_SCRATCH));
  luaL_Buffer b;
  char *buf;
  struct sockaddr_storage ss;
  socklen_t sslen = 0;
  Wait wt = WAIT_INIT(L);
  ssize_t n;
  const char *op = from ? "recvfrom" : "recv";
  luaL_argcheck(L, max > 0, 2, "max must be positive");
  want = ((lua_Unsigned)max > cap) ? cap : (size_t)max;
  buf = (want <= sizeof(sc->buf)) ? sc->buf : luaL_buffinitsize(L, &b, want);
  for (;;) {
    sslen = sizeof(ss);
    n = sk_recvfrom(s->fd, buf, want, stream ? 0 : MSG_TRUNC,
                 from ? (struct sockaddr *)&ss : NULL, from ? &sslen : NULL);
    if (n >= 0)
      break;
    else {
      int err = errno;
      if (err == EINTR)
        continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        if ((err = sockit_waitfor(s, POLLIN, &wt)) == 0)
          continue;
        if (err == EAGAIN && !from)
          return again(L, UP_RECVAGAIN);
      }
      return sockit_fail(L, err, op, NULL);
    }
  }
  if (!stream && (size_t)n > want)
    return sockit_failmsg(L, "EMSGSIZE",
             "%s: %s of %I bytes is longer than max %I", op,
             sockit_unitname(s), (lua_Integer)n, (lua_Integer)want);
  if (n == 0 && s->type != SOCK_DGRAM)
    return sockit_failmsg(L, "EOF", "%s: end of stream", op);
  if (buf == sc->buf)
    lua_pushlstring(L, buf, (size_t)n);
  else
    luaL_pushresultsize(&b, (size_t)n);
  if (from)
    return 1 + pushfrom(L, s, &ss, sslen);
  return 1;
}


static int sock_recv (lua_State *L) {
  return do_recv(L, 0);
}


static int sock_recvfrom (lua_State *L) {
  return do_recv(L, 1);
}

/* }====================================================== */


/*
** {======================================================
** The rest
** =======================================================
*/

static int sock_shutdown (lua_State *L) {
  static const char *const hows[] = {"r", "w", "rw", NULL};
  static const int howvals[] = {SHUT_RD, SHUT_WR, SHUT_RDWR};
  Socket *s = sockit_checksocket(L, 1);
  int how = howvals[sockit_checkoption(L, 2, NULL, hows)];
  if (shutdown(s->fd, how) != 0)
    return sockit_fail(L, errno, "shutdown", NULL);
  lua_pushboolean(L, 1);
  return 1;
}


static int getname (lua_State *L, int peer) {
  Socket *s = sockit_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int n;
  memset(&ss, 0, sizeof(ss));
  if ((peer ? getpeername(s->fd, (struct sockaddr *)&ss, &len)
            : getsockname(s->fd, (struct sockaddr *)&ss, &len)) != 0)
    return sockit_fail(L, errno, peer ? "getpeername" : "getsockname", NULL);
  n = sockit_pushaddr(L, (struct sockaddr *)&ss, len);
  if (n == 0) {
    lua_pushliteral(L, "");
    n = 1;
  }
  return n;
}


static int sock_getsockname (lua_State *L) {
  return getname(L, 0);
}


static int sock_getpeername (lua_State *L) {
  return getname(L, 1);
}


static int sock_settimeout (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  if (lua_isnoneornil(L, 2))
    s->timeout = -1;
  else {
    double t = luaL_checknumber(L, 2);
    luaL_argcheck(L, t >= 0, 2,   /* (false for NaN too) */
                  t != t ? "timeout is NaN" : "timeout must not be negative");
    s->timeout = (t == 0) ? 0.0 : t;   /* -0.0 passes t >= 0: store 0 */
  }
  lua_pushboolean(L, 1);
  return 1;
}


static int sock_gettimeout (lua_State *L) {
  Socket *s = sockit_checksocket(L, 1);
  if (s->timeout < 0)
    lua_pushnil(L);
  else
    lua_pushnumber(L, s->timeout);
  return 1;
}


static int sock_fileno (lua_State *L) {
  lua_pushinteger(L, sockit_checksocket(L, 1)->fd);
  return 1;
}


static int sock_family (lua_State *L) {
  lua_pushstring(L, sockit_familyname(sockit_checksocket(L, 1)->family));
  return 1;
}


static int sock_type (lua_State *L) {
  lua_pushstring(L, sockit_typename(sockit_checksocket(L, 1)->type));
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Module functions that make sockets
** =======================================================
*/

/*
** Linux delivers to a datagram socket bound to a wildcard address the
** multicast of every group that any socket on the host joined
** (IP_MULTICAST_ALL, on by default). A socket should hear the groups it
** joined itself, as on BSD: turn it off. Kernels before 4.20 lack the
** IPv6 option, which is then no error.
*/
static int only_joined_groups (int fd, int family) {
  int off = 0;
  int rc = (family == AF_INET)
    ? setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &off, sizeof(off))
#ifdef IPV6_MULTICAST_ALL
    : setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &off, sizeof(off));
#else
    : 0;
#endif
  if (rc != 0 && errno != ENOPROTOOPT)
    return errno;
  return 0;
}


/* core.socket(family, type [, protocol]) */
static int mod_socket (lua_State *L) {
  int family = familyvals[sockit_checkoption(L, 1, NULL, familynames)];
  int type = typevals[sockit_checkoption(L, 2, NULL, typenames)];
  lua_Integer proto = luaL_optinteger(L, 3, 0);
  Socket *s;
  int err, fd;
  luaL_argcheck(L, 0 <= proto && proto <= INT_MAX, 3, "invalid protocol");
  s = sockit_newsocket(L, family, type);
  if ((err = sys_socket(family, type, (int)proto, &fd)) != 0) {
    lua_pushfstring(L, "%s %s", lua_tostring(L, 1), lua_tostring(L, 2));
    return sockit_fail(L, err, "socket", lua_tostring(L, -1));
  }
  sockit_ownnew(L, fd);
  s->fd = fd;
  if (type == SOCK_DGRAM && family != AF_UNIX
      && (err = only_joined_groups(fd, family)) != 0)
    return sockit_fail(L, err, "socket", "multicast_all");
  return 1;
}


/* core.socketpair([type]) */
static int mod_socketpair (lua_State *L) {
  int type = typevals[sockit_checkoption(L, 1, "stream", typenames)];
  Socket *a = sockit_newsocket(L, AF_UNIX, type);
  Socket *b = sockit_newsocket(L, AF_UNIX, type);
  int fds[2], err;
  if ((err = sys_socketpair(type, fds)) != 0)
    return sockit_fail(L, err, "socketpair", NULL);
  if (sockit_own(L, fds[0]) != LUA_OK) {
    (void)sys_close(fds[1]);
    (void)sys_close(fds[0]);
    return lua_error(L);
  }
  a->fd = fds[0];   /* (its __gc closes it if the next raises) */
  sockit_ownnew(L, fds[1]);
  b->fd = fds[1];
  a->state = b->state = ST_CONNECTED;
  return 2;
}


static int mod_now (lua_State *L) {
  lua_pushnumber(L, sys_now());
  return 1;
}

/* }====================================================== */


static const luaL_Reg sock_methods[] = {
  {"bind", sock_bind},
  {"listen", sock_listen},
  {"accept", sock_accept},
  {"connect", sock_connect},
  {"send", sock_send},
  {"sendv", sock_sendv},
  {"recv", sock_recv},
  {"sendto", sock_sendto},
  {"recvfrom", sock_recvfrom},
  {"shutdown", sock_shutdown},
  {"close", sock_close},
  {"getsockname", sock_getsockname},
  {"getpeername", sock_getpeername},
  {"setoption", sock_setoption},
  {"getoption", sock_getoption},
  {"settimeout", sock_settimeout},
  {"gettimeout", sock_gettimeout},
  {"fileno", sock_fileno},
  {"wait", sock_wait},
  {"family", sock_family},
  {"type", sock_type},
  {"_write", sock__write},
  {"_watch", sock__watch},
  {NULL, NULL}
};

static const luaL_Reg sock_metamethods[] = {
  {"__gc", sock_gc},
  {"__close", sock_close},
  {"__tostring", sock_tostring},
  {"__index", NULL},   /* placeholder */
  {NULL, NULL}
};

static const luaL_Reg mod_funcs[] = {
  {"socket", mod_socket},
  {"socketpair", mod_socketpair},
  {"getaddrinfo", mod_getaddrinfo},
  {"now", mod_now},
  {"_closehook", mod_closehook},
  {NULL, NULL}
};


/*
** Create the socket metatable (liolib's createmeta) and register the
** module functions into the table on top of the stack. Methods share
** the upvalues UP_*: the scratch receive buffer of this module instance
** and the EAGAIN results (again).
*/
void sockit_opensocket (lua_State *L) {
  lua_newuserdatauv(L, sizeof(Scratch), 0);
  luaL_newmetatable(L, SOCKIT_SOCKET);
  luaL_setfuncs(L, sock_metamethods, 0);
  luaL_newlibtable(L, sock_methods);
  lua_pushvalue(L, -3);                    /* the scratch buffer */
  lua_pushliteral(L, "EAGAIN");
  lua_pushfstring(L, "%s: %s", "recv", strerror(EAGAIN));
  lua_pushfstring(L, "%s: %s", "send", strerror(EAGAIN));
  luaL_setfuncs(L, sock_methods, NUP - 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -5, "methods");          /* core.methods */
  lua_setfield(L, -2, "__index");
  lua_pop(L, 2);                           /* metatable, scratch */
  luaL_setfuncs(L, mod_funcs, 0);
}
