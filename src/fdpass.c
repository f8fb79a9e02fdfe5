/*
** fdpass.c — what only unix sockets do: pass descriptors (SCM_RIGHTS),
** tell who the peer is (SO_PEERCRED); and core.fromfd, which adopts a
** descriptor received that way (or inherited) as a socket object.
*/
#include "sockit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>


/* the kernel's SCM_MAX_FD: most descriptors in one message */
#define SOCKIT_MAXFDS  253


/*
** A descriptor argument: a socket, a Lua file (io.open) or an integer.
*/
static int checkanyfd (lua_State *L, int arg) {
  luaL_Stream *f;
  if (lua_type(L, arg) == LUA_TNUMBER)
    return sockit_optfd(L, arg);
  if ((f = (luaL_Stream *)luaL_testudata(L, arg, LUA_FILEHANDLE)) != NULL) {
    luaL_argcheck(L, f->closef != NULL && f->f != NULL, arg,
                  "attempt to use a closed file");
    return fileno(f->f);
  }
  if (luaL_testudata(L, arg, SOCKIT_SOCKET) != NULL)
    return sockit_checksocket(L, arg)->fd;
  return luaL_typeerror(L, arg, "socket, file or integer descriptor");
}


/* an open unix socket at 1, or raise as misuse (SPEC §1's form) */
static Socket *checkunix (lua_State *L, const char *fname) {
  Socket *s = sockit_checksocket(L, 1);
  if (s->family != AF_UNIX)
    sockit_kinderror(L, fname, "unix socket", sockit_familyname(s->family));
  return s;
}


/*
** s:sendfds(data, fd1 [, ...]) -> bytes sent
*/
static int sock_sendfds (lua_State *L) {
  Socket *s = checkunix(L, "sendfds");
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int nfds = lua_gettop(L) - 2, i;
  union {   /* aligned control buffer for up to SOCKIT_MAXFDS */
    char buf[CMSG_SPACE(sizeof(int) * SOCKIT_MAXFDS)];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg;
  struct iovec iov;
  struct cmsghdr *cm;
  Wait wt = WAIT_INIT(L);
  luaL_argcheck(L, nfds >= 1, 3, "at least one descriptor expected");
  luaL_argcheck(L, nfds <= SOCKIT_MAXFDS, 3 + SOCKIT_MAXFDS,
                "too many descriptors (at most 253)");
  luaL_argcheck(L, len > 0 || s->type != SOCK_STREAM, 2,
                "a stream needs at least one byte of data with descriptors");
  memset(&msg, 0, sizeof(msg));
  memset(&ctl, 0, sizeof(ctl));
  iov.iov_base = (void *)(uintptr_t)data;   /* iovec is not const */
  iov.iov_len = len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
  cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
  for (i = 0; i < nfds; i++) {
    int fd = checkanyfd(L, 3 + i);
    memcpy(CMSG_DATA(cm) + sizeof(int) * (size_t)i, &fd, sizeof(int));
  }
  for (;;) {
    ssize_t n = sk_sendmsg(s->fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) {
      lua_pushinteger(L, (lua_Integer)n);
      return 1;
    }
    else {
      int err = errno;
      if (err == EINTR)
        continue;
      if (err == EAGAIN && (err = sockit_waitfor(s, POLLOUT, &wt)) == 0)
        continue;
      return sockit_fail(L, err, "sendfds", NULL);
    }
  }
}


/* close every descriptor in a received SCM_RIGHTS message */
static void closeall (struct msghdr *msg) {
  int fds[SOCKIT_MAXFDS];
  size_t n = sys_cmsg_fds(msg, fds, SOCKIT_MAXFDS), i;
  for (i = 0; i < n && i < SOCKIT_MAXFDS; i++)
    sys_close(fds[i]);
}


/*
** s:recvfds([max [, maxfds]]) -> data, {fd, ...}
** The descriptors arrive close-on-exec. Control data cut short (more
** descriptors than maxfds) is EMSGSIZE, and whatever did arrive is closed
** before returning: nothing leaks. The received integers belong to the
** caller (core.fromfd adopts one as a socket).
*/
static int sock_recvfds (lua_State *L) {
  Socket *s = checkunix(L, "recvfds");
  lua_Integer max = luaL_optinteger(L, 2, SOCKIT_RECVMAX);
  lua_Integer maxfds = luaL_optinteger(L, 3, SOCKIT_MAXFDS);
  union {
    char buf[CMSG_SPACE(sizeof(int) * SOCKIT_MAXFDS)];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg;
  struct iovec iov;
  luaL_Buffer b;
  char *buf;
  Wait wt = WAIT_INIT(L);
  ssize_t n;
  size_t got;   /* descriptors in the control data */
  int k = 0, stream = (s->type == SOCK_STREAM);
  luaL_argcheck(L, max > 0, 2, "max must be positive");
  luaL_argcheck(L, maxfds >= 1 && maxfds <= SOCKIT_MAXFDS, 3,
                "maxfds must be 1..253");
  if (max > SOCKIT_DGRAM_CAP) max = SOCKIT_DGRAM_CAP;
  buf = luaL_buffinitsize(L, &b, (size_t)max);
  for (;;) {
    memset(&msg, 0, sizeof(msg));
    iov.iov_base = buf;
    iov.iov_len = (size_t)max;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)maxfds);
    n = recvmsg(s->fd, &msg, MSG_CMSG_CLOEXEC | (stream ? 0 : MSG_TRUNC));
    if (n >= 0)
      break;
    else {
      int err = errno;
      if (err == EINTR)
        continue;
      if (err == EAGAIN && (err = sockit_waitfor(s, POLLIN, &wt)) == 0)
        continue;
      return sockit_fail(L, err, "recvfds", NULL);
    }
  }
  /* CMSG_SPACE rounds up to the alignment, so an odd maxfds leaves room
     for one more descriptor: that one is too many as well */
  got = sys_cmsg_fds(&msg, NULL, 0);
  if ((msg.msg_flags & MSG_CTRUNC) || got > (size_t)maxfds) {
    closeall(&msg);
    /* cut short with room left for more: the kernel could not install
       the descriptors here (the process is out of them: it stops at the
       first that fails, and closes the rest), which is not the sender's
       "too many" but ours */
    if (got < (size_t)maxfds)
      return sockit_failmsg(L, "EMFILE",
               "recvfds: out of descriptors, the ones that came could not "
               "all be received (%I of them were); those were closed, and "
               "the %I bytes with them dropped",
               (lua_Integer)got, (lua_Integer)n);
    return sockit_failmsg(L, "EMSGSIZE",
             "recvfds: more descriptors arrived than maxfds (%I); "
             "those that came were closed", maxfds);
  }
  if (!stream && (msg.msg_flags & MSG_TRUNC)) {
    closeall(&msg);
    return sockit_failmsg(L, "EMSGSIZE",
             "recvfds: %s of %I bytes is longer than max %I",
             sockit_unitname(s), (lua_Integer)n, max);
  }
  if (n == 0 && s->type != SOCK_DGRAM && CMSG_FIRSTHDR(&msg) == NULL)
    return sockit_failmsg(L, "EOF", "recvfds: end of stream");
  /* from here on nothing may fail before the descriptors are in Lua's
     hands: the table is created first, with room for all of them */
  {
    int fds[SOCKIT_MAXFDS];
    size_t cnt = sys_cmsg_fds(&msg, fds, SOCKIT_MAXFDS), i;
    luaL_pushresultsize(&b, (size_t)n);
    lua_createtable(L, (int)cnt, 0);
    for (i = 0; i < cnt && i < SOCKIT_MAXFDS; i++) {
      lua_pushinteger(L, fds[i]);
      lua_rawseti(L, -2, (lua_Integer)++k);
    }
  }
  return 2;
}


/* s:getpeercred() -> pid, uid, gid */
static int sock_getpeercred (lua_State *L) {
  Socket *s = checkunix(L, "getpeercred");
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return sockit_fail(L, errno, "getpeercred", NULL);
  /* no peer (an unconnected datagram socket): the kernel answers pid 0
     and uid/gid -1 rather than an error */
  if (cred.pid == 0 && cred.uid == (uid_t)-1)
    return sockit_failmsg(L, "ENOTCONN", "getpeercred: the kernel has no "
             "credentials for this peer (a unix datagram socket, or not "
             "connected)");
  lua_pushinteger(L, cred.pid);
  lua_pushinteger(L, cred.uid);
  lua_pushinteger(L, cred.gid);
  return 3;
}


/*
** A descriptor that a live socket or poller of sockit's owns: "EBUSY".
** fromfd would give it a second owner, closefd would close it under its
** owner; the number may be reused by the time either closes it.
*/
static int owned (lua_State *L, const char *op, int fd) {
  return sockit_failmsg(L, "EBUSY", "%s fd %d: owned by a live sockit "
                        "socket or poller (close that object, or pass a "
                        "dup of the descriptor)", op, fd);
}


/*
** core.fromfd(fd) -> socket. Family and type come from the kernel
** (SO_DOMAIN, SO_TYPE); the descriptor is made close-on-exec and
** non-blocking, and from then on belongs to the socket object.
*/
static int mod_fromfd (lua_State *L) {
  lua_Integer ifd = luaL_checkinteger(L, 1);
  int fd, family = 0, type = 0, listening = 0, err;
  socklen_t len = sizeof(int);
  Socket *s;
  struct sockaddr_storage ss;
  char what[32];
  luaL_argcheck(L, 0 <= ifd && ifd <= INT_MAX, 1, "invalid descriptor");
  fd = (int)ifd;
  snprintf(what, sizeof(what), "fd %d", fd);
  if (sockit_owned(L, fd))   /* two owners would close it twice */
    return owned(L, "fromfd", fd);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0)
    return sockit_fail(L, errno, "fromfd", what);
  len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
    return sockit_fail(L, errno, "fromfd", what);
  if (family != AF_INET && family != AF_INET6 && family != AF_UNIX)
    return sockit_fail(L, EAFNOSUPPORT, "fromfd", what);
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET)
    return sockit_fail(L, ESOCKTNOSUPPORT, "fromfd", what);
  s = sockit_newsocket(L, family, type);
  if ((err = sys_setnonblock(fd)) != 0)
    return sockit_fail(L, err, "fromfd", what);
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return sockit_fail(L, errno, "fromfd", what);
  if (sockit_own(L, fd) != LUA_OK)   /* (memory: still the caller's) */
    return lua_error(L);
  s->fd = fd;   /* owned from here on */
  len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0
      && listening)
    s->state = ST_LISTENING;
  else {
    len = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
      s->state = ST_CONNECTED;
  }
  return 1;
}


/*
** core.closefd(fd) -> true | nil, msg, code
** Closes a plain descriptor, such as one recvfds handed over that is not
** a socket (core.fromfd adopts sockets; a passed file has no other way
** to be closed from Lua).
*/
static int mod_closefd (lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  int err;
  char what[32];
  luaL_argcheck(L, 0 <= fd && fd <= INT_MAX, 1, "invalid descriptor");
  if (sockit_owned(L, (int)fd))
    return owned(L, "closefd", (int)fd);
  if ((err = sys_close((int)fd)) != 0) {
    snprintf(what, sizeof(what), "fd %d", (int)fd);
    return sockit_fail(L, err, "closefd", what);
  }
  lua_pushboolean(L, 1);
  return 1;
}


static const luaL_Reg methods[] = {
  {"sendfds", sock_sendfds},
  {"recvfds", sock_recvfds},
  {"getpeercred", sock_getpeercred},
  {NULL, NULL}
};


/*
** Add the methods to the socket metatable's __index and core.fromfd to
** the module table (on top of the stack).
*/
void sockit_openfdpass (lua_State *L) {
  luaL_getmetatable(L, SOCKIT_SOCKET);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 2);
  lua_pushcfunction(L, mod_fromfd);
  lua_setfield(L, -2, "fromfd");
  lua_pushcfunction(L, mod_closefd);
  lua_setfield(L, -2, "closefd");
}
