/*
** poller.c — core.poller(): wait on many descriptors at once.
**
** epoll(7) on Linux; a poll(2) fallback elsewhere (or when built with
** -DSOCKIT_USE_POLL, which the specs do to test it). With epoll a wait
** costs O(ready): the kernel hands back only the ready entries, and each
** is mapped back to its object through the registry table, indexed by
** descriptor. The result tables 'objs' and 'evs' belong to the poller and
** are refilled in place, so a steady loop allocates nothing.
**
** Uservalues of the poller userdata:
**   1  registry: fd -> the object as it was added (weak values: a socket
**      that becomes garbage is closed by its __gc, which takes it out of
**      the poller: see "Sockets and their pollers")
**   2  objs    3  evs    (the reused result arrays)
*/
#include "sockit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__) && !defined(SOCKIT_USE_POLL)
#define SOCKIT_EPOLL 1
#include <sys/epoll.h>
#endif


#define R_REGISTRY  1
#define R_OBJS      2
#define R_EVS       3

#define EV_R     1
#define EV_W     2
#define EV_EDGE  4   /* edge-triggered (epoll only): see poller_add */

/* at most this many ready entries per wait; the rest come next time */
#define POLLER_BATCH  1024


typedef struct Poller {
  int closed;
  int nlast;            /* entries filled in objs/evs by the last wait */
  int numeric;          /* evs as 1, 2, 3 for "r", "w", "rw" (p:_numeric) */
#ifdef SOCKIT_EPOLL
  int epfd;
  struct epoll_event ev[POLLER_BATCH];
#else
  struct pollfd *pfd;   /* registered descriptors, in no order */
  int n, cap;
#endif
} Poller;


/*
** Argument 1 as a poller. The methods carry the poller metatable as
** upvalue 2 and compare with it (no registry look-up by name: wait is on
** the event loop's hot path, once per turn); the metamethods, which have
** no upvalue (that index then reads nil), go through luaL_checkudata.
*/
static Poller *topoller (lua_State *L) {
  Poller *p = (Poller *)lua_touserdata(L, 1);
  if (p != NULL && lua_getmetatable(L, 1)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(2));
    lua_pop(L, 1);
    if (same)
      return p;
  }
  return (Poller *)luaL_checkudata(L, 1, SOCKIT_POLLER);
}


static Poller *checkpoller (lua_State *L) {
  Poller *p = topoller(L);
  if (p->closed)
    luaL_error(L, "attempt to use a closed poller");
  return p;
}


static const char *const evnames[] = {"r", "w", "rw", NULL};
static const int evmasks[] = {EV_R, EV_W, EV_R | EV_W};

static int checkevents (lua_State *L, int arg) {
  return evmasks[sockit_checkoption(L, arg, NULL, evnames)];
}


/* milliseconds until 'deadline' for the kernel, rounded up; -1 forever */
static int ms_until (double deadline) {
  double left;
  if (deadline < 0) return -1;
  left = deadline - sys_now();
  if (left <= 0) return 0;
  if (left > 2000000.0) return 2000000000;
  return (int)ceil(left * 1000.0);
}


/*
** {======================================================
** Backends: each provides ctl(p, op, fd, mask) -> 0 or errno,
** and collect(p, deadline, fds, masks) -> count or -errno
** =======================================================
*/

enum { OP_ADD, OP_MOD, OP_DEL };

#ifdef SOCKIT_EPOLL

#define BACKEND "epoll"

static int backend_open (Poller *p) {
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  return (p->epfd < 0) ? errno : 0;
}


static int backend_close (Poller *p) {
  int fd = p->epfd;
  p->epfd = -1;
  return sys_close(fd);
}


static int backend_ctl (Poller *p, int op, int fd, int mask) {
  static const int ops[] = {EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL};
  struct epoll_event e;
  memset(&e, 0, sizeof(e));
  e.events = ((mask & EV_R) ? EPOLLIN : 0) | ((mask & EV_W) ? EPOLLOUT : 0)
           | ((mask & EV_EDGE) ? EPOLLET : 0);
  mask &= EV_R | EV_W;
  /* the asked mask rides along, so errors can be reported as it */
  e.data.u64 = ((uint64_t)(unsigned)mask << 32) | (uint32_t)fd;
  return (epoll_ctl(p->epfd, ops[op], fd, &e) == 0) ? 0 : errno;
}


/* n ready, or -errno (-EINTR too: poller_wait says whether to wait again) */
static int backend_wait (Poller *p, double deadline) {
  int n = epoll_wait(p->epfd, p->ev, POLLER_BATCH, ms_until(deadline));
  return (n >= 0) ? n : -errno;
}


static void backend_get (Poller *p, int i, int *fd, int *ready) {
  uint32_t e = p->ev[i].events;
  int asked = (int)(p->ev[i].data.u64 >> 32);
  *fd = (int)(uint32_t)p->ev[i].data.u64;
  if (e & (EPOLLERR | EPOLLHUP))
    *ready = asked;
  else
    *ready = ((e & EPOLLIN) ? EV_R : 0) | ((e & EPOLLOUT) ? EV_W : 0);
}


/* the descriptor of ready entry i (as backend_get reads it) */
static int backend_fd (Poller *p, int i) {
  return (int)(uint32_t)p->ev[i].data.u64;
}

#else  /* poll(2) fallback: O(registered) per wait */

#define BACKEND "poll"

static int backend_open (Poller *p) {
  p->pfd = NULL;
  p->n = p->cap = 0;
  return 0;
}


static int backend_close (Poller *p) {
  free(p->pfd);
  p->pfd = NULL;
  p->n = p->cap = 0;
  return 0;
}


static int findfd (Poller *p, int fd) {
  int i;
  for (i = 0; i < p->n; i++)
    if (p->pfd[i].fd == fd) return i;
  return -1;
}


static int backend_ctl (Poller *p, int op, int fd, int mask) {
  int i = findfd(p, fd);
  short events = (short)(((mask & EV_R) ? POLLIN : 0)
                       | ((mask & EV_W) ? POLLOUT : 0));
  if (fcntl(fd, F_GETFD) < 0)
    return errno;   /* EBADF, as epoll would say */
  switch (op) {
    case OP_ADD:
      if (i >= 0) return EEXIST;
      if (p->n == p->cap) {
        int ncap = p->cap ? p->cap * 2 : 64;
        struct pollfd *np;
        if (ncap > INT_MAX / 2 ||
            (np = (struct pollfd *)realloc(p->pfd, (size_t)ncap * sizeof(*np))) == NULL)
          return ENOMEM;
        p->pfd = np;
        p->cap = ncap;
      }
      p->pfd[p->n].fd = fd;
      p->pfd[p->n].events = events;
      p->pfd[p->n].revents = 0;
      p->n++;
      return 0;
    case OP_MOD:
      if (i < 0) return ENOENT;
      p->pfd[i].events = events;
      return 0;
    default:
      if (i < 0) return ENOENT;
      p->pfd[i] = p->pfd[--p->n];
      return 0;
  }
}


/*
** n ready, or -errno (-EINTR too: poller_wait says whether to wait again).
** The ready slots go to the front, in order. A slot whose descriptor was
** closed (POLLNVAL: it was never removed) is dropped: it would be ready
** at once in every wait, forever, for nothing anyone can read (epoll
** forgets such a descriptor by itself).
*/
static int backend_wait (Poller *p, double deadline) {
  int i = 0, k = 0;
  int n = poll(p->pfd, (nfds_t)p->n, ms_until(deadline));
  if (n < 0)
    return -errno;
  while (i < p->n && n > 0) {
    struct pollfd t = p->pfd[i];
    if (t.revents == 0) {
      i++;
      continue;
    }
    n--;
    if (t.revents & POLLNVAL) {
      p->pfd[i] = p->pfd[--p->n];   /* slot i: the last one, not seen yet */
      continue;
    }
    p->pfd[i++] = p->pfd[k];
    p->pfd[k++] = t;
  }
  return (k > POLLER_BATCH) ? POLLER_BATCH : k;
}


static void backend_get (Poller *p, int i, int *fd, int *ready) {
  short e = p->pfd[i].revents;
  short asked = p->pfd[i].events;
  *fd = p->pfd[i].fd;
  if (e & (POLLERR | POLLHUP))
    e |= asked;
  *ready = ((e & POLLIN) ? EV_R : 0) | ((e & POLLOUT) ? EV_W : 0);
  p->pfd[i].revents = 0;
}


/* the descriptor of ready entry i (as backend_get reads it) */
static int backend_fd (Poller *p, int i) {
  return p->pfd[i].fd;
}

#endif

/* }====================================================== */


/*
** {======================================================
** Sockets and their pollers
** =======================================================
*/

/*
** A socket added as an object is linked with the poller, so that closing
** it (close, __gc) can take it out first (sockit_unpoll): its count
** 'npolled' says how many pollers hold it, and its user value is the set
** of them, a table with weak keys (upvalue 3 of the methods is its
** metatable), made on first need and dropped when the count is back at
** 0. The links are Lua references, never C pointers: the poller holds
** the socket through the registry's weak value, the socket the poller
** through the set's weak key, so either can be collected first (and at
** lua_close both are still there, maybe closed, while __gc runs). A
** socket added by its descriptor (an integer) is not linked: whoever
** added the number removes it.
**
** The poller is at index 1, the socket at 'arg'.
*/
static void link_socket (lua_State *L, int arg, Socket *s) {
  arg = lua_absindex(L, arg);
  if (lua_getiuservalue(L, arg, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, arg, 1);
  }
  lua_pushvalue(L, 1);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  s->npolled++;
}


/* undo link_socket (allocates nothing, raises nothing: __gc calls it) */
static void unlink_socket (lua_State *L, int arg, Socket *s) {
  arg = lua_absindex(L, arg);
  if (s->npolled <= 0)
    return;
  if (--s->npolled == 0)
    lua_pushnil(L);   /* the set goes */
  else if (lua_getiuservalue(L, arg, 1) == LUA_TTABLE) {
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return;
  }
  lua_setiuservalue(L, arg, 1);
}


/*
** registry[fd] = nil, if it is the value at 'arg' or nothing already
** (the poller at 'pidx'; its registry is pushed and popped)
*/
static void unregister (lua_State *L, int pidx, int fd, int arg) {
  arg = lua_absindex(L, arg);
  lua_getiuservalue(L, pidx, R_REGISTRY);
  if (lua_rawgeti(L, -1, fd) == LUA_TNIL || lua_rawequal(L, -1, arg)) {
    lua_pushnil(L);
    lua_rawseti(L, -3, fd);
  }
  lua_pop(L, 2);
}


/*
** Take the socket at 'arg', about to be closed, out of every poller that
** holds it (sock_close calls this while s->fd is still open: epoll's
** interest list holds the open file, which may live on in another
** descriptor, and only EPOLL_CTL_DEL on this one removes the entry).
** Closed pollers are skipped. Raises nothing, allocates nothing.
*/
void sockit_unpoll (lua_State *L, int arg, Socket *s) {
  arg = lua_absindex(L, arg);
  if (lua_getiuservalue(L, arg, 1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      Poller *p = (Poller *)luaL_testudata(L, -2, SOCKIT_POLLER);
      lua_pop(L, 1);
      if (p != NULL && !p->closed) {
        (void)backend_ctl(p, OP_DEL, s->fd, 0);   /* ENOENT: wait dropped it */
        unregister(L, lua_absindex(L, -1), s->fd, arg);
      }
    }
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setiuservalue(L, arg, 1);
  s->npolled = 0;
}

/* }====================================================== */


/*
** {======================================================
** Methods
** =======================================================
*/

/*
** add, modify, remove. What the registry holds for fd changes on add and
** remove, and on a modify only where it holds nothing: wait reports the
** object as it was added (SPEC §2), and a modify may name it by its
** descriptor or the other way round. A socket that comes in is linked
** before the kernel is asked (linking allocates: a memory error then
** leaves nothing half done), and undone if the kernel says no.
*/
static int ctl (lua_State *L, int op, const char *name) {
  Poller *p = checkpoller(L);
  int fd = sockit_optfd(L, 2);
  Socket *s = sockit_testsocket(L, 2);   /* NULL: an integer */
  int mask = (op == OP_DEL) ? 0 : checkevents(L, 3);
  int err, replace, same, in;
#ifdef SOCKIT_EPOLL
  if (op != OP_DEL && lua_toboolean(L, 4))
    mask |= EV_EDGE;
#endif
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, R_REGISTRY);   /* 3 */
  lua_rawgeti(L, 3, fd);                 /* 4: what it holds for fd now */
  replace = (op != OP_MOD || lua_isnil(L, 4));
  same = lua_rawequal(L, 2, 4);
  in = (op != OP_DEL && replace && !same && s != NULL);
  if (in)
    link_socket(L, 2, s);
  if ((err = backend_ctl(p, op, fd, mask)) != 0) {
    char what[32];
    if (in)
      unlink_socket(L, 2, s);
    snprintf(what, sizeof(what), "fd %d", fd);
    return sockit_fail(L, err, name, what);
  }
  if (replace) {
    Socket *old = sockit_testsocket(L, 4);
    if (old != NULL && (op == OP_DEL || !same))
      unlink_socket(L, 4, old);
    if (op == OP_DEL)
      lua_pushnil(L);
    else
      lua_pushvalue(L, 2);
    lua_rawseti(L, 3, fd);
  }
  lua_pushboolean(L, 1);
  return 1;
}


/*
** p:add(x, events [, edge]). With 'edge' true (an extension to SPEC, for
** the event loop) the epoll backend reports only changes of readiness
** (EPOLLET): a descriptor registered once for "rw" costs no system call
** per wait, provided one waits only after an operation said EAGAIN.
** p:backend() tells whether edges are available ("epoll") or not ("poll").
*/
static int poller_add (lua_State *L) {
  return ctl(L, OP_ADD, "poller add");
}


static int poller_modify (lua_State *L) {
  return ctl(L, OP_MOD, "poller modify");
}


static int poller_remove (lua_State *L) {
  return ctl(L, OP_DEL, "poller remove");
}


/*
** Push what ready entry fd is reported as, and return 1; or return 0 (and
** push nothing) when it is stale: its object was collected (the weak
** registry let it go before its __gc, which takes it out, has run) or is
** a socket that is closed. The registry is at index 2.
*/
static int current (lua_State *L, Poller *p, int fd) {
  Socket *s;
  if (p->numeric) {   /* the loop adds descriptors only */
    lua_pushinteger(L, fd);
    return 1;
  }
  if (lua_rawgeti(L, 2, fd) != LUA_TNIL
      && ((s = sockit_testsocket(L, -1)) == NULL || s->fd == fd))
    return 1;
  lua_pop(L, 1);
  return 0;
}


/*
** Take the stale ones of the n ready entries out of the kernel's set, so
** that they wake no later wait. Backwards: the poll backend's remove
** moves its last slot into the one removed, which is then behind us.
** (A stale epoll entry of a descriptor that is already closed cannot be
** removed so, but sockit_unpoll takes every socket out before close.)
*/
static void dropstale (lua_State *L, Poller *p, int n) {
  int i;
  for (i = n - 1; i >= 0; i--) {
    int fd = backend_fd(p, i);
    if (current(L, p, fd))
      lua_pop(L, 1);
    else {
      (void)backend_ctl(p, OP_DEL, fd, 0);
      if (lua_rawgeti(L, 2, fd) != LUA_TNIL) {   /* a closed socket */
        lua_pushnil(L);
        lua_rawseti(L, 2, fd);
      }
      lua_pop(L, 1);
    }
  }
}


/*
** Fill objs and evs (at 3 and 4) from the n ready entries; the count.
*/
static int collect (lua_State *L, Poller *p, int n) {
  int i, k = 0, stale = 0;
  for (i = 0; i < n; i++) {
    int fd, ready;
    backend_get(p, i, &fd, &ready);
    if (ready == 0)
      continue;   /* not asked for */
    if (!current(L, p, fd)) {
      stale = 1;
      continue;
    }
    lua_rawseti(L, 3, ++k);
    if (p->numeric)
      lua_pushinteger(L, ready);
    else
      lua_rawgeti(L, lua_upvalueindex(1), ready);   /* evnames[ready - 1] */
    lua_rawseti(L, 4, k);
  }
  if (stale)
    dropstale(L, p, n);
  return k;
}


/*
** p:wait([timeout]) -> n, objs, evs. A wait that found only stale entries
** (or poll's dropped slots) waits again, for the rest of the timeout: 0
** means the timeout expired, never "woken for nothing".
*/
static int poller_wait (lua_State *L) {
  Poller *p = checkpoller(L);
  double timeout = -1, deadline;
  int n, i, k;
  if (!lua_isnoneornil(L, 2)) {
    timeout = luaL_checknumber(L, 2);
    luaL_argcheck(L, timeout >= 0, 2,   /* (false for NaN too) */
                  timeout != timeout ? "timeout is NaN" : "timeout must not be negative");
  }
  deadline = (timeout < 0) ? -1.0 : sys_now() + timeout;
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, R_REGISTRY);   /* 2 */
  lua_getiuservalue(L, 1, R_OBJS);       /* 3 */
  lua_getiuservalue(L, 1, R_EVS);        /* 4 */
  do {
    /* a signal: wait again, unless Ctrl-C is to stop the program */
    while ((n = backend_wait(p, deadline)) == -EINTR && !sockit_interrupted(L))
      ;
    if (n < 0)
      return sockit_fail(L, -n, "poller wait", NULL);
    k = collect(L, p, n);
  } while (k == 0 && (deadline < 0 || sys_now() < deadline));
  for (i = k + 1; i <= p->nlast; i++) {   /* drop the last wait's tail */
    lua_pushnil(L);
    lua_rawseti(L, 3, i);
    lua_pushnil(L);
    lua_rawseti(L, 4, i);
  }
  p->nlast = k;
  lua_pushinteger(L, k);
  lua_replace(L, 2);
  return 3;
}


/*
** p:_numeric() — from now on 'evs' holds 1, 2 and 3 for "r", "w" and
** "rw", and 'objs' the descriptors, whatever was added (for the event
** loop, which adds descriptors only and tells the events apart with
** integer compares that the Lua VM does inline; not part of SPEC).
*/
static int poller_numeric (lua_State *L) {
  checkpoller(L)->numeric = 1;
  lua_pushboolean(L, 1);
  return 1;
}


/*
** close, __gc and __close. The sockets it holds are unlinked (their
** registry entries go too); at a collection the registry has already let
** go of those that are garbage as well, and their __gc finds it closed.
*/
static int poller_close (lua_State *L) {
  Poller *p = topoller(L);
  if (!p->closed) {
    int err;
    p->closed = 1;
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, R_REGISTRY);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
      Socket *s = sockit_testsocket(L, -1);
      if (s != NULL)
        unlink_socket(L, -1, s);
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, 2);
    }
#ifdef SOCKIT_EPOLL
    sockit_disown(L, p->epfd);
#endif
    if ((err = backend_close(p)) != 0)
      return sockit_fail(L, err, "poller close", NULL);
  }
  lua_pushboolean(L, 1);
  return 1;
}


static int poller_fileno (lua_State *L) {
#ifdef SOCKIT_EPOLL
  lua_pushinteger(L, checkpoller(L)->epfd);
#else
  (void)checkpoller(L);
  lua_pushnil(L);
#endif
  return 1;
}


static int poller_backend (lua_State *L) {
  (void)checkpoller(L);
  lua_pushliteral(L, BACKEND);
  return 1;
}


static int poller_tostring (lua_State *L) {
  Poller *p = topoller(L);
  if (p->closed)
    lua_pushliteral(L, SOCKIT_POLLER "{closed}");
  else
    lua_pushliteral(L, SOCKIT_POLLER "{" BACKEND "}");
  return 1;
}


/* core.poller() */
int mod_poller (lua_State *L) {
  Poller *p = (Poller *)lua_newuserdatauv(L, sizeof(Poller), 3);
  int err;
  p->closed = 1;   /* until the backend is open */
  p->nlast = 0;
  p->numeric = 0;
  luaL_setmetatable(L, SOCKIT_POLLER);
  lua_newtable(L);                        /* registry, weak values */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setiuservalue(L, -2, R_REGISTRY);
  lua_newtable(L);
  lua_setiuservalue(L, -2, R_OBJS);
  lua_newtable(L);
  lua_setiuservalue(L, -2, R_EVS);
  if ((err = backend_open(p)) != 0)
    return sockit_fail(L, err, "poller", NULL);
#ifdef SOCKIT_EPOLL
  sockit_ownnew(L, p->epfd);   /* (closes it if it raises) */
#endif
  p->closed = 0;
  return 1;
}


static const luaL_Reg poller_methods[] = {
  {"add", poller_add},
  {"modify", poller_modify},
  {"remove", poller_remove},
  {"wait", poller_wait},
  {"close", poller_close},
  {"fileno", poller_fileno},
  {"backend", poller_backend},
  {"_numeric", poller_numeric},
  {NULL, NULL}
};

static const luaL_Reg poller_meta[] = {
  {"__gc", poller_close},
  {"__close", poller_close},
  {"__tostring", poller_tostring},
  {"__index", NULL},
  {NULL, NULL}
};


void sockit_openpoller (lua_State *L) {
  luaL_newmetatable(L, SOCKIT_POLLER);
  luaL_setfuncs(L, poller_meta, 0);
  luaL_newlibtable(L, poller_methods);
  /* every method gets the event names as a table (upvalue 1): wait
  ** pushes them from there, not through lua_pushstring's string cache;
  ** the metatable (upvalue 2: topoller); the metatable of a socket's set
  ** of pollers (upvalue 3: link_socket) */
  lua_createtable(L, 3, 0);
  for (int i = 0; evnames[i] != NULL; i++) {
    lua_pushstring(L, evnames[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushvalue(L, -3);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  luaL_setfuncs(L, poller_methods, 3);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, mod_poller);
  lua_setfield(L, -2, "poller");
}

/* }====================================================== */
