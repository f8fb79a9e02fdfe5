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
**      that becomes garbage is closed by its __gc, which removes it from
**      the kernel's interest list too)
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
  return evmasks[luaL_checkoption(L, arg, NULL, evnames)];
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


/* n ready, or -errno (-EINTR too: poller_wait says whether to wait again) */
static int backend_wait (Poller *p, double deadline) {
  int i, k = 0;
  int n = poll(p->pfd, (nfds_t)p->n, ms_until(deadline));
  if (n < 0)
    return -errno;
  for (i = 0; i < p->n && k < n; i++) {   /* the ready ones to the front, in order */
    if (p->pfd[i].revents != 0) {
      struct pollfd t = p->pfd[i];
      p->pfd[i] = p->pfd[k];
      p->pfd[k++] = t;
    }
  }
  return (k > POLLER_BATCH) ? POLLER_BATCH : k;
}


static void backend_get (Poller *p, int i, int *fd, int *ready) {
  short e = p->pfd[i].revents;
  short asked = p->pfd[i].events;
  *fd = p->pfd[i].fd;
  if (e & (POLLERR | POLLHUP | POLLNVAL))
    e |= asked;
  *ready = ((e & POLLIN) ? EV_R : 0) | ((e & POLLOUT) ? EV_W : 0);
  p->pfd[i].revents = 0;
}

#endif

/* }====================================================== */


/*
** {======================================================
** Methods
** =======================================================
*/

static int ctl (lua_State *L, int op, const char *name) {
  Poller *p = checkpoller(L);
  int fd = sockit_optfd(L, 2);
  int mask = (op == OP_DEL) ? 0 : checkevents(L, 3);
#ifdef SOCKIT_EPOLL
  if (op != OP_DEL && lua_toboolean(L, 4))
    mask |= EV_EDGE;
#endif
  int err = backend_ctl(p, op, fd, mask);
  if (err != 0) {
    char what[32];
    snprintf(what, sizeof(what), "fd %d", fd);
    return sockit_fail(L, err, name, what);
  }
  lua_getiuservalue(L, 1, R_REGISTRY);
  /* wait reports the object as it was added (SPEC §2): a modify, which
     may name it by its descriptor or the other way round, keeps it */
  if (op == OP_MOD && lua_rawgeti(L, -1, fd) != LUA_TNIL) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (op == OP_MOD)
    lua_pop(L, 1);
  if (op == OP_DEL)
    lua_pushnil(L);
  else
    lua_pushvalue(L, 2);
  lua_rawseti(L, -2, fd);
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


/* p:wait([timeout]) -> n, objs, evs */
static int poller_wait (lua_State *L) {
  Poller *p = checkpoller(L);
  double timeout = -1, deadline;
  int n, i, k = 0;
  if (!lua_isnoneornil(L, 2)) {
    timeout = luaL_checknumber(L, 2);
    luaL_argcheck(L, timeout >= 0, 2,   /* (false for NaN too) */
                  timeout != timeout ? "timeout is NaN" : "timeout must not be negative");
  }
  deadline = (timeout < 0) ? -1.0 : sys_now() + timeout;
  /* a signal: wait again, unless Ctrl-C is to stop the program */
  while ((n = backend_wait(p, deadline)) == -EINTR && !sockit_interrupted(L))
    ;
  if (n < 0)
    return sockit_fail(L, -n, "poller wait", NULL);
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, R_REGISTRY);   /* 2 */
  lua_getiuservalue(L, 1, R_OBJS);       /* 3 */
  lua_getiuservalue(L, 1, R_EVS);        /* 4 */
  for (i = 0; i < n; i++) {
    int fd, ready;
    backend_get(p, i, &fd, &ready);
    if (ready == 0)
      continue;   /* not asked for */
    if (p->numeric)
      lua_pushinteger(L, fd);   /* the loop adds descriptors only */
    else if (lua_rawgeti(L, 2, fd) == LUA_TNIL) {
      lua_pop(L, 1);   /* its object was collected */
      continue;
    }
    lua_rawseti(L, 3, ++k);
    if (p->numeric)
      lua_pushinteger(L, ready);
    else
      lua_rawgeti(L, lua_upvalueindex(1), ready);   /* evnames[ready - 1] */
    lua_rawseti(L, 4, k);
  }
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


static int poller_close (lua_State *L) {
  Poller *p = topoller(L);
  if (!p->closed) {
    int err;
    p->closed = 1;
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
  ** and the metatable (upvalue 2: topoller) */
  lua_createtable(L, 3, 0);
  for (int i = 0; evnames[i] != NULL; i++) {
    lua_pushstring(L, evnames[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, poller_methods, 2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, mod_poller);
  lua_setfield(L, -2, "poller");
}

/* }====================================================== */
