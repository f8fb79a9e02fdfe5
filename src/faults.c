/*
** faults.c — fault injection, compiled in only with -DSOCKIT_FAULTS
** (make faults builds build/faults/sockit/core.so for the specs).
**
** Rules come from the environment variable SOCKIT_FAULTS, read when the
** module loads, or from core._faults(spec) at run time:
**
**     SOCKIT_FAULTS="send:short:3,recv:eintr:2,accept:eagain:4"
**
** each rule "op:kind:n" fires on every n-th call of op, where op is send
** (send, sendto, sendmsg), recv (recvfrom, recvmsg on streams), accept or
** connect, thread (the pthread_create of resolve.c's pool: every kind
** fails it with EAGAIN), or own (the growth of socket.c's set of owned
** descriptors: every kind fails it as out of memory), and kind is
**     short   the call moves at most half the bytes asked (at least 1)
**     eintr   the call fails with EINTR before reaching the kernel
**     eagain  the call fails with EAGAIN (as if the socket were not ready)
** so that the specs can prove that every partial case is handled by the
** retry loops here and by the Lua layer's buffered read and write.
** The rules are process-wide state: acceptable in a test-only build.
**
** core._fork() is fork(2) for the specs of resolve.c's fork handling
** (pid, 0 in the child, or nil, msg, code): test-only too.
*/
#include "sockit.h"

#ifdef SOCKIT_FAULTS

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_SEND, OP_RECV, OP_ACCEPT, OP_CONNECT, OP_THREAD, OP_OWN, NOPS };
enum { K_SHORT, K_EINTR, K_EAGAIN, NKINDS };

static const char *const opnames[] = {"send", "recv", "accept", "connect",
                                      "thread", "own"};
static const char *const kindnames[] = {"short", "eintr", "eagain"};

#define MAXRULES 16

typedef struct Rule {
  int op, kind;
  long every, calls, injected;
} Rule;

static Rule rules[MAXRULES];
static int nrules = 0;


static int lookup (const char *const *names, int n, const char *s, size_t len) {
  int i;
  for (i = 0; i < n; i++)
    if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0)
      return i;
  return -1;
}


/* parse "op:kind:n,..." into the rules; returns 0 or -1 on bad text */
static int parse (const char *spec) {
  Rule r[MAXRULES];
  int n = 0;
  const char *p = spec;
  while (*p) {
    const char *c1 = strchr(p, ':'), *c2, *end;
    char *num_end;
    long every;
    if (!c1 || !(c2 = strchr(c1 + 1, ':')) || n == MAXRULES)
      return -1;
    end = strchr(c2 + 1, ',');
    if (!end) end = c2 + 1 + strlen(c2 + 1);
    r[n].op = lookup(opnames, NOPS, p, (size_t)(c1 - p));
    r[n].kind = lookup(kindnames, NKINDS, c1 + 1, (size_t)(c2 - c1 - 1));
    every = strtol(c2 + 1, &num_end, 10);
    if (r[n].op < 0 || r[n].kind < 0 || num_end != end || every < 1)
      return -1;
    r[n].every = every;
    r[n].calls = r[n].injected = 0;
    n++;
    p = (*end == ',') ? end + 1 : end;
  }
  memcpy(rules, r, sizeof(Rule) * (size_t)n);
  nrules = n;
  return 0;
}


/*
** Which fault, if any, hits this call of 'op': 0 for none, else the kind
** + 1. Every rule for 'op' counts the call.
*/
static int fault (int op) {
  int i, hit = 0;
  for (i = 0; i < nrules; i++) {
    Rule *r = &rules[i];
    if (r->op != op) continue;
    if (++r->calls % r->every == 0 && hit == 0) {
      r->injected++;
      hit = r->kind + 1;
    }
  }
  return hit;
}


static size_t half (size_t len) {
  return (len > 1) ? len / 2 : len;
}


/*
** Only a stream may be cut short: the kernel sends a datagram whole or
** not at all, whether it has an address (sendto) or the socket is
** connected (send on a connected UDP socket has none), so asking the
** type is the only sure test.
*/
static int is_stream (int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0
         && type == SOCK_STREAM;
}


ssize_t fault_sendto (int fd, const void *buf, size_t len, int flags,
                      const struct sockaddr *to, socklen_t tolen) {
  switch (fault(OP_SEND)) {
    case K_EINTR + 1: errno = EINTR; return -1;
    case K_EAGAIN + 1: errno = EAGAIN; return -1;
    case K_SHORT + 1:
      /* a datagram cannot be cut: only streams are short */
      if (is_stream(fd)) len = half(len);
      break;
    default: break;
  }
  return sendto(fd, buf, len, flags, to, tolen);
}


ssize_t fault_sendmsg (int fd, const struct msghdr *msg, int flags) {
  int f = fault(OP_SEND);
  if (f == K_EINTR + 1) { errno = EINTR; return -1; }
  if (f == K_EAGAIN + 1) { errno = EAGAIN; return -1; }
  if (f == K_SHORT + 1 && msg->msg_control == NULL && msg->msg_iovlen > 0
      && is_stream(fd)) {
    /* send at most half the bytes: a copy of the iovecs, cut */
    struct iovec iov[1024];
    struct msghdr m = *msg;
    size_t i, total = 0, want, cnt = msg->msg_iovlen;
    if (cnt > 1024) cnt = 1024;
    for (i = 0; i < cnt; i++) total += msg->msg_iov[i].iov_len;
    want = half(total);
    for (i = 0; i < cnt && want > 0; i++) {
      iov[i] = msg->msg_iov[i];
      if (iov[i].iov_len > want) iov[i].iov_len = want;
      want -= iov[i].iov_len;
    }
    m.msg_iov = iov;
    m.msg_iovlen = i;
    return sendmsg(fd, &m, flags);
  }
  return sendmsg(fd, msg, flags);
}


ssize_t fault_recvfrom (int fd, void *buf, size_t len, int flags,
                        struct sockaddr *from, socklen_t *fromlen) {
  switch (fault(OP_RECV)) {
    case K_EINTR + 1: errno = EINTR; return -1;
    case K_EAGAIN + 1: errno = EAGAIN; return -1;
    case K_SHORT + 1:
      /* datagrams are read with MSG_TRUNC and are never cut short */
      if (!(flags & MSG_TRUNC)) len = half(len);
      break;
    default: break;
  }
  return recvfrom(fd, buf, len, flags, from, fromlen);
}


int fault_accept4 (int fd, struct sockaddr *sa, socklen_t *len, int flags) {
  switch (fault(OP_ACCEPT)) {
    case K_EINTR + 1: errno = EINTR; return -1;
    case K_EAGAIN + 1: errno = EAGAIN; return -1;
    default: return accept4(fd, sa, len, flags);
  }
}


int fault_connect (int fd, const struct sockaddr *sa, socklen_t len) {
  switch (fault(OP_CONNECT)) {
    case K_EINTR + 1: {
      /* An interrupted connect is not undone on Linux: it goes on in the
         background (and the core then waits for it). So start the real
         connect and say EINTR where it succeeded or went on in progress;
         an EINTR before the call would leave the core waiting for a
         connect that never started (regression: faults_spec's
         "connect:eintr" rule timed out in accept). */
      int r = connect(fd, sa, len);
      if (r == 0 || errno == EINPROGRESS) { errno = EINTR; return -1; }
      return r;
    }
    case K_EAGAIN + 1: errno = EAGAIN; return -1;
    default: return connect(fd, sa, len);
  }
}


int fault_pthread_create (pthread_t *tid, const pthread_attr_t *attr,
                          void *(*fn) (void *), void *arg) {
  if (fault(OP_THREAD) != 0)
    return EAGAIN;
  return pthread_create(tid, attr, fn, arg);
}


/* whether this growth of the owned set fails (socket.c, sockit_own) */
int fault_own (void) {
  return fault(OP_OWN) != 0;
}


/* core._fork() -> pid (0 in the child) | nil, msg, code */
static int mod_fork (lua_State *L) {
  pid_t pid = fork();
  if (pid < 0)
    return sockit_fail(L, errno, "fork", NULL);
  lua_pushinteger(L, pid);
  return 1;
}


/*
** core._faults([spec]) -> {["op:kind:n"] = injected, ...}, total
** With a spec, replaces the rules (a bad spec raises); "" removes them.
*/
static int mod_faults (lua_State *L) {
  int i;
  lua_Integer total = 0;
  if (!lua_isnoneornil(L, 1)) {
    const char *spec = luaL_checkstring(L, 1);
    luaL_argcheck(L, parse(spec) == 0, 1, "bad fault rules");
  }
  lua_createtable(L, 0, nrules);
  for (i = 0; i < nrules; i++) {
    lua_pushfstring(L, "%s:%s:%d", opnames[rules[i].op],
                    kindnames[rules[i].kind], (int)rules[i].every);
    lua_pushinteger(L, rules[i].injected);
    lua_settable(L, -3);
    total += rules[i].injected;
  }
  lua_pushinteger(L, total);
  return 2;
}


void sockit_openfaults (lua_State *L) {
  const char *spec = getenv("SOCKIT_FAULTS");
  if (spec != NULL && parse(spec) != 0)
    fprintf(stderr, "sockit: ignoring bad SOCKIT_FAULTS='%s'\n", spec);
  lua_pushcfunction(L, mod_faults);
  lua_setfield(L, -2, "_faults");
  lua_pushcfunction(L, mod_fork);
  lua_setfield(L, -2, "_fork");
}

#else

/* a normal build has no fault injection and no core._faults */
void sockit_openfaults (lua_State *L) {
  (void)L;
}

#endif
