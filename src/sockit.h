/*
** sockit.h — the one internal header of sockit.core: shared types,
** the socket userdata, and the prototypes that cross file boundaries.
**
** The core is in three tiers (STYLE.md 1):
**   sys.c                system-call wrappers: no Lua, they return errno
**   errors.c, addr.c     glue: errno/EAI names, sockaddr <-> Lua values
**   socket.c, options.c, core.c, poller.c   the Lua-facing objects
**   fdpass.c, batch.c, sendfile.c            SPEC §4 additions
**   resolve.c            getaddrinfo on worker threads (SPEC §4)
*/
#ifndef SOCKIT_H
#define SOCKIT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1

#endif

#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <netinet/in.h>
#include <netdb.h>
#include <pthread.h>

#include "lua.h"
#include "lauxlib.h"

#define SOCKIT_VERSION  "sockit 0.1.0"

/* the metatable name of a socket (like LUA_FILEHANDLE) */
#define SOCKIT_SOCKET   "sockit.socket"
#define SOCKIT_POLLER   "sockit.poller"

/* default and cap for one receive */
#define SOCKIT_RECVMAX      65536
#define SOCKIT_STREAM_CAP   (1 << 20)      /* a stream read is at most 1 MiB */
#define SOCKIT_DGRAM_CAP    (16 << 20)     /* no datagram is larger than this */

#if LUA_VERSION_NUM < 504
#error "sockit needs Lua 5.4"

#endif

/*
** {======================================================
** The socket object
** =======================================================
*/

/* what __tostring reports; the kernel is the truth for addresses */
enum sockit_state {
  ST_FRESH = 0, ST_BOUND, ST_LISTENING, ST_CONNECTING, ST_CONNECTED
};

typedef struct Socket {
  const char *tag;     /* socket.c's socket_tag: what makes it a Socket */
  int fd;              /* -1 means closed (STYLE.md 3) */
  int family;          /* AF_INET, AF_INET6, AF_UNIX */
  int type;            /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
  int state;           /* enum sockit_state */
  double timeout;      /* seconds; < 0 blocks forever, 0 never waits */
  int gso;             /* UDP segmentation offload for sendmany (batch.c):
                          0 not known yet, 1 in use, -1 not available */
  int npolled;         /* how many pollers hold it as an object (poller.c):
                          when > 0, closing it takes it out of them first */
  int watched;         /* the event loop waits on it (s:_watch): closing it
                          calls the loop's close hook first (socket.c) */
} Socket;

/* the scratch receive buffer, one per module instance (an upvalue) */
typedef struct Scratch {
  char buf[SOCKIT_RECVMAX];
} Scratch;

/* }====================================================== */


/*
** {======================================================
** sys.c — system calls, no Lua; every function returns 0 or an errno
** =======================================================
*/
double sys_now (void);
double sys_deadline (double timeout);
int sys_wait (int fd, int events, double deadline, int *revents);
int sys_socket (int family, int type, int protocol, int *fd);
int sys_socketpair (int type, int fds[2]);
int sys_setnonblock (int fd);
int sys_close (int fd);
int sys_eventfd (int *fd);
int sys_notify (int fd);
size_t sys_cmsg_fds (struct msghdr *msg, int *fds, size_t max);
/* SIGPIPE blocked around one s:sendfile (sys.c) */
typedef struct SysNoPipe {
  sigset_t old;
  int masked;     /* the mask was changed: end restores it */
  int raised;     /* a sendfile said EPIPE: end takes its SIGPIPE back */
} SysNoPipe;
int sys_nopipe_begin (SysNoPipe *np);
void sys_nopipe_end (SysNoPipe *np);
int sys_sendfile (SysNoPipe *np, int out, int in, off_t *pos, size_t count,
                  size_t *sent);
/* }====================================================== */


/*
** {======================================================
** errors.c
** =======================================================
*/
const char *sockit_errname (int err);
const char *sockit_gainame (int gaierr);
int sockit_fail (lua_State *L, int err, const char *op, const char *addr);
int sockit_again (lua_State *L, const char *op);
int sockit_failmsg (lua_State *L, const char *code, const char *fmt, ...);
int sockit_gaifail (lua_State *L, int gaierr, int err, const char *op,
                    const char *what);
/* }====================================================== */


/*
** {======================================================
** addr.c
** =======================================================
*/
/* a textual address for messages: "1.2.3.4:80", "[::1]:80", "/p", "@a"
   (an abstract name's bytes may take two characters each: addr.c) */
#define SOCKIT_ADDRSTRLEN  (2 * sizeof(((struct sockaddr_un *)0)->sun_path) + 64)

typedef struct Addr {
  struct sockaddr_storage ss;
  socklen_t len;
  char text[SOCKIT_ADDRSTRLEN];   /* for messages */
} Addr;

enum { PORT_OK, PORT_TYPE, PORT_FRACTION, PORT_RANGE };
int sockit_toport (lua_State *L, int idx, int *port);
int sockit_checkport (lua_State *L, int arg);
size_t sockit_escape (const char *s, size_t n, char *buf, size_t size);
int sockit_toaddr (lua_State *L, int family, int arg, int passive,
                   const char *op, Addr *a);
int sockit_pushaddr (lua_State *L, const struct sockaddr *sa, socklen_t len);
void sockit_fmtaddr (const struct sockaddr *sa, socklen_t len,
                     char *buf, size_t size);
/* the checked arguments of core.getaddrinfo and core._resolve */
typedef struct GaiQuery {
  const char *host;          /* NULL: the wildcard (AI_PASSIVE) */
  const char *serv;          /* NULL, portbuf, or the caller's string */
  char portbuf[8];
  struct addrinfo hints;
} GaiQuery;
void sockit_gaiquery (lua_State *L, GaiQuery *q);
int sockit_gairesult (lua_State *L, const char *host, const char *serv,
                      int rc, int err, const struct addrinfo *res);
int mod_getaddrinfo (lua_State *L);
/* }====================================================== */


/*
** {======================================================
** socket.c, options.c, poller.c
** =======================================================
*/
Socket *sockit_newsocket (lua_State *L, int family, int type);
Socket *sockit_checksocket (lua_State *L, int arg);
Socket *sockit_tosocket (lua_State *L, int arg);
Socket *sockit_testsocket (lua_State *L, int arg);
int sockit_own (lua_State *L, int fd);
void sockit_ownnew (lua_State *L, int fd);
void sockit_disown (lua_State *L, int fd);
int sockit_owned (lua_State *L, int fd);
const char *sockit_unitname (const Socket *s);
/* the state of one call's waits (sockit_waitfor): start with WAIT_INIT(L) */
typedef struct Wait {
  double deadline;   /* 0: not computed yet; < 0: none */
  int waits;         /* how many waits this call has made */
  lua_State *L;      /* the calling state (sockit_interrupted) */
} Wait;
#define WAIT_INIT(L)  {0, 0, (L)}
int sockit_waitfor (Socket *s, int events, Wait *w);
int sockit_interrupted (lua_State *L);
int sockit_fdwait (lua_State *L, int fd);
int sockit_optfd (lua_State *L, int arg);
int sockit_kinderror (lua_State *L, const char *fname, const char *expected,
                      const char *got);
int sockit_checkoption (lua_State *L, int arg, const char *def,
                        const char *const lst[]);
int sockit_badoption (lua_State *L, int arg);
const char *sockit_familyname (int family);
const char *sockit_typename (int type);
void sockit_opensocket (lua_State *L);
int sock_setoption (lua_State *L);
int sock_getoption (lua_State *L);
void sockit_openpoller (lua_State *L);
void sockit_unpoll (lua_State *L, int arg, Socket *s);
void sockit_openfdpass (lua_State *L);
void sockit_openbatch (lua_State *L);
void sockit_opensendfile (lua_State *L);
void sockit_openfaults (lua_State *L);
void sockit_openunixfile (lua_State *L);
void sockit_openresolve (lua_State *L);
int mod_poller (lua_State *L);
/* }====================================================== */


/*
** {======================================================
** The system calls that fault injection can hit (faults.c): in a normal
** build these names are the calls themselves.
** =======================================================
*/
#ifdef SOCKIT_FAULTS
ssize_t fault_sendto (int fd, const void *buf, size_t len, int flags,
                      const struct sockaddr *to, socklen_t tolen);
ssize_t fault_sendmsg (int fd, const struct msghdr *msg, int flags);
ssize_t fault_recvfrom (int fd, void *buf, size_t len, int flags,
                        struct sockaddr *from, socklen_t *fromlen);
int fault_accept4 (int fd, struct sockaddr *sa, socklen_t *len, int flags);
int fault_connect (int fd, const struct sockaddr *sa, socklen_t len);
int fault_pthread_create (pthread_t *tid, const pthread_attr_t *attr,
                          void *(*fn) (void *), void *arg);
int fault_own (void);
#define sk_sendto    fault_sendto
#define sk_sendmsg   fault_sendmsg
#define sk_recvfrom  fault_recvfrom
#define sk_accept4   fault_accept4
#define sk_connect   fault_connect
#define sk_pthread_create  fault_pthread_create
#else
#define sk_sendto    sendto
#define sk_sendmsg   sendmsg
#define sk_recvfrom  recvfrom
#define sk_accept4   accept4
#define sk_connect   connect
#define sk_pthread_create  pthread_create
#endif
/* }====================================================== */

#endif
