/*
** batch.c — many datagrams in one system call: s:sendmany / s:recvmany
** over sendmmsg(2) / recvmmsg(2).
**
** The message headers, iovecs, addresses and receive buffers live in one
** growable scratch area owned by the module (an upvalue with a __gc), so
** a steady loop reuses them instead of allocating per call.
**
** On UDP sockets sendmany also uses segmentation offload (UDP_SEGMENT,
** Linux 4.18): a run of items to one destination, all of one length but
** the last (which may be shorter), goes as one message that the kernel
** cuts into those datagrams after the stack has handled it once. The
** peer receives the same datagrams as without it; the sender's kernel
** walks its UDP and IP layers once per run instead of once per datagram.
*/
#include "sockit.h"

#include <errno.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef SOL_UDP
#define SOL_UDP  IPPROTO_UDP
#endif


#define SOCKIT_BATCHMAX  1024      /* UIO_MAXIOV: the kernel's limit */
#define SOCKIT_BATCHBOX  "sockit.batch"

#define GSO_SEGS   64        /* datagrams per run: UDP_MAX_SEGMENTS before
                                Linux 6.9 (128 since) */
#define GSO_BYTES  65000     /* bytes per run, under UDP's 65,507 */

/* the control message of one run: its segment size */
typedef union GsoCmsg {
  struct cmsghdr h;
  char space[CMSG_SPACE(sizeof(uint16_t))];
} GsoCmsg;

typedef struct Batch {
  struct mmsghdr *mm;
  struct iovec *iov;
  struct sockaddr_storage *ss;
  struct mmsghdr *gm;              /* sendmany's runs (UDP_SEGMENT) */
  GsoCmsg *cm;                     /* the control message of each run */
  size_t *cnt;                     /* the number of messages in each run */
  size_t *item;                    /* sendmany: the list index (from 0)
                                      of each message */
  size_t nmsgs;             /* capacity of mm, iov, ss, gm, cm, cnt, item */
  char *buf;
  size_t nbuf;                     /* capacity of buf */
} Batch;


static int batch_gc (lua_State *L) {
  Batch *b = (Batch *)luaL_checkudata(L, 1, SOCKIT_BATCHBOX);
  free(b->mm); free(b->iov); free(b->ss);
  free(b->gm); free(b->cm); free(b->cnt); free(b->item); free(b->buf);
  memset(b, 0, sizeof(*b));
  return 0;
}


/* room for 'n' messages and 'bytes' of receive buffer, or raise */
static Batch *getbatch (lua_State *L, size_t n, size_t bytes) {
  Batch *b = (Batch *)lua_touserdata(L, lua_upvalueindex(1));
  if (b->nmsgs < n) {
    struct mmsghdr *mm = (struct mmsghdr *)realloc(b->mm, n * sizeof(*mm));
    if (mm) b->mm = mm;
    struct iovec *iov = (struct iovec *)realloc(b->iov, n * sizeof(*iov));
    if (iov) b->iov = iov;
    struct sockaddr_storage *ss =
      (struct sockaddr_storage *)realloc(b->ss, n * sizeof(*ss));
    if (ss) b->ss = ss;
    struct mmsghdr *gm = (struct mmsghdr *)realloc(b->gm, n * sizeof(*gm));
    if (gm) b->gm = gm;
    GsoCmsg *cm = (GsoCmsg *)realloc(b->cm, n * sizeof(*cm));
    if (cm) b->cm = cm;
    size_t *cnt = (size_t *)realloc(b->cnt, n * sizeof(*cnt));
    if (cnt) b->cnt = cnt;
    size_t *item = (size_t *)realloc(b->item, n * sizeof(*item));
    if (item) b->item = item;
    if (!mm || !iov || !ss || !gm || !cm || !cnt || !item)
      luaL_error(L, "not enough memory");
    b->nmsgs = n;
  }
  if (b->nbuf < bytes) {
    char *buf = (char *)realloc(b->buf, bytes);
    if (buf == NULL)
      luaL_error(L, "not enough memory");
    b->buf = buf;
    b->nbuf = bytes;
  }
  return b;
}


/*
** {======================================================
** UDP segmentation offload for sendmany
** =======================================================
*/

/* 1 when 'fd' is a UDP socket (not UDP-Lite, not ICMP) of a kernel that
   knows UDP_SEGMENT, else -1 */
static int gso_probe (int fd) {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) != 0 ||
      v != IPPROTO_UDP)
    return -1;
  len = sizeof(v);
  if (getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) != 0)
    return -1;
  return 1;
}


static int samedest (const struct msghdr *a, const struct msghdr *b) {
  if (a->msg_namelen != b->msg_namelen) return 0;
  return a->msg_name == b->msg_name ||
         (a->msg_name != NULL && b->msg_name != NULL &&
          memcmp(a->msg_name, b->msg_name, a->msg_namelen) == 0);
}


/*
** Gather the 'n' messages of b->mm (one iovec each, consecutive in b->iov)
** into runs in b->gm: items to one destination, each as long as the
** first but the last, which may be shorter (it ends the run). A run of
** more than one item carries UDP_SEGMENT with that length, so the kernel
** cuts it exactly at the items' bounds. Returns the number of runs.
*/
static size_t gso_group (Batch *b, size_t n) {
  size_t i = 0, g = 0;
  while (i < n) {
    size_t seg = b->iov[i].iov_len, total = seg, j = i + 1;
    struct msghdr *h = &b->gm[g].msg_hdr;
    if (seg > 0) {
      while (j < n && j - i < GSO_SEGS) {
        size_t len = b->iov[j].iov_len;
        if (len == 0 || len > seg || total + len > GSO_BYTES ||
            !samedest(&b->mm[i].msg_hdr, &b->mm[j].msg_hdr))
          break;
        total += len;
        j++;
        if (len < seg) break;
      }
    }
    *h = b->mm[i].msg_hdr;          /* its name, and iov = &b->iov[i] */
    h->msg_iovlen = j - i;
    if (j - i > 1) {
      GsoCmsg *c = &b->cm[g];
      uint16_t v = (uint16_t)seg;   /* seg <= GSO_BYTES */
      memset(c, 0, sizeof(*c));
      c->h.cmsg_level = SOL_UDP;
      c->h.cmsg_type = UDP_SEGMENT;
      c->h.cmsg_len = CMSG_LEN(sizeof(v));
      memcpy(CMSG_DATA(&c->h), &v, sizeof(v));
      h->msg_control = c;
      h->msg_controllen = sizeof(c->space);
    }
    b->gm[g].msg_len = 0;
    b->cnt[g] = j - i;
    g++;
    i = j;
  }
  return g;
}


/*
** One sendmmsg of the 'n' messages of 'mm', retried on EINTR and, per the
** socket's timeout, on EAGAIN. Returns the number of messages sent (>= 0)
** or -errno.
*/
static int mmsg_send (Socket *s, struct mmsghdr *mm, unsigned n, Wait *wt) {
  for (;;) {
    int sent = sendmmsg(s->fd, mm, n, MSG_NOSIGNAL);
    int err;
    if (sent >= 0)
      return sent;
    err = errno;
    if (err == EINTR)
      continue;
    if (err == EAGAIN && (err = sockit_waitfor(s, POLLOUT, wt)) == 0)
      continue;
    return -err;
  }
}


/* did the kernel refuse segmentation itself (not the datagrams)? a
   segment longer than the path's MTU, a device without checksum
   offload, a kernel without it */
static int gso_refused (int err) {
  return err == EINVAL || err == EIO || err == EMSGSIZE ||
         err == ENOPROTOOPT || err == EOPNOTSUPP;
}

/* }====================================================== */


/*
** Batches are of datagrams and records: an open socket that is not a
** stream, or raise. On a stream, recvmmsg with MSG_TRUNC makes TCP
** discard the bytes and report their count without writing them, and
** the entries were then cut from the shared buffer as it was: bytes of
** another socket's earlier batch, while the stream's own were lost. A
** sendmmsg on a stream may take part of an item and still count it.
*/
static Socket *checkbatch (lua_State *L, const char *fname) {
  Socket *s = sockit_checksocket(L, 1);
  if (s->type == SOCK_STREAM)
    sockit_kinderror(L, fname, "datagram socket", sockit_typename(s->type));
  return s;
}


/*
** The destination of item 'i', a table at 'top' whose [2] and [3] are at
** top + 2 and top + 3: host, port (or path), checked here so that misuse
** raises as argument #1, the list, naming the item (sockit_toaddr would
** name the stack slots: "bad argument #5").
*/
static void checkitemaddr (lua_State *L, const Socket *s, int top,
                           lua_Integer i) {
  const char *what = (s->family == AF_UNIX) ? "path" : "host";
  if (!lua_isstring(L, top + 2))
    luaL_argerror(L, 2, lua_pushfstring(L,
      "item %I: %s (a string) expected at [2], got %s", i, what,
      luaL_typename(L, top + 2)));
  if (s->family == AF_UNIX) {
    size_t len;
    const char *path = lua_tolstring(L, top + 2, &len);
    if (len > 0 && path[0] != '\0' && memchr(path, '\0', len) != NULL)
      luaL_argerror(L, 2, lua_pushfstring(L,
        "item %I: unix path contains a zero byte", i));
  }
  else {
    int port;
    switch (sockit_toport(L, top + 3, &port)) {
      case PORT_OK:
        break;
      case PORT_TYPE:
        luaL_argerror(L, 2, lua_pushfstring(L, "item %I: port (an integer) "
          "expected at [3], got %s", i, luaL_typename(L, top + 3)));
        break;
      case PORT_FRACTION:
        luaL_argerror(L, 2, lua_pushfstring(L, "item %I: port at [3] has no "
          "integer representation", i));
        break;
      default:
        luaL_argerror(L, 2, lua_pushfstring(L,
          "item %I: port out of range at [3]", i));
    }
  }
}


/*
** How many items of the list of 'n' are done once 'sent' of its 'm'
** messages went: every item before the first message not sent (the
** skipped ones among them), or all 'n'.
*/
static lua_Integer itemsdone (const Batch *b, size_t sent, size_t m,
                              lua_Integer n) {
  return (sent >= m) ? n : (lua_Integer)b->item[sent];
}


/*
** s:sendmany(list [, host, port | path]) -> items done
** Each item of 'list' is a string (sent to the given address, or to the
** connected peer) or a table {data, host, port} / {data, path} with its
** own destination. A table whose data is false (recvmany's entry for a
** datagram too long) is skipped: not sent, but done, so that
** s:sendmany(s:recvmany(n)) echoes. At most 1024 per call; the count says
** how many of the first items are done: the next call starts after them.
*/
static int sock_sendmany (lua_State *L) {
  Socket *s = checkbatch(L, "sendmany");
  int common = !lua_isnoneornil(L, 3);
  lua_Integer n, i;
  size_t m = 0;                 /* messages: the items not skipped */
  Addr a;
  Batch *b;
  Wait wt = WAIT_INIT(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  n = luaL_len(L, 2);
  if (n > SOCKIT_BATCHMAX) n = SOCKIT_BATCHMAX;
  if (n <= 0) {
    lua_pushinteger(L, 0);
    return 1;
  }
  if (common) {
    int k = sockit_toaddr(L, s->family, 3, 0, "sendmany", &a);
    if (k != 0) return k;
  }
  lua_settop(L, 2);
  b = getbatch(L, (size_t)n, 0);
  /* each item keeps up to two values on the stack until the send (a
     table and its data string) and pushes two more (host, port) while
     it is read: n + 8 overflowed the stack with table items */
  luaL_checkstack(L, 2 * (int)n + 8, "too many datagrams");
  for (i = 0; i < n; i++) {
    struct msghdr *h = &b->mm[m].msg_hdr;
    size_t len;
    const char *data;
    int t = lua_rawgeti(L, 2, i + 1);   /* stays on the stack until sent */
    memset(h, 0, sizeof(*h));
    if (t == LUA_TTABLE) {
      int top = lua_gettop(L);
      int dt = lua_rawgeti(L, top, 1);
      if (dt == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
        lua_settop(L, top - 1);        /* an error entry: skipped */
        continue;
      }
      if (dt != LUA_TSTRING && dt != LUA_TNUMBER)
        return luaL_argerror(L, 2, lua_pushfstring(L,
                 "item %I: string expected at [1], got %s", i + 1,
                 luaL_typename(L, -1)));
      data = lua_tolstring(L, -1, &len);
      lua_rawgeti(L, top, 2);
      lua_rawgeti(L, top, 3);
      if (lua_isnil(L, top + 2)) {   /* {data}: to the connected peer */
        if (common) {
          h->msg_name = &a.ss;
          h->msg_namelen = a.len;
        }
      }
      else {
        Addr one;
        int k;
        checkitemaddr(L, s, top, i + 1);
        k = sockit_toaddr(L, s->family, top + 2, 0, "sendmany", &one);
        if (k != 0) return k;
        memcpy(&b->ss[m], &one.ss, one.len);
        h->msg_name = &b->ss[m];
        h->msg_namelen = one.len;
      }
      lua_settop(L, top + 1);   /* keep the data string alive */
    }
    else if (t == LUA_TSTRING || t == LUA_TNUMBER) {
      data = lua_tolstring(L, -1, &len);   /* (a number becomes a string) */
      if (common) {
        h->msg_name = &a.ss;
        h->msg_namelen = a.len;
      }
    }
    else
      return luaL_argerror(L, 2, lua_pushfstring(L,
               "item %I: string or table expected, got %s", i + 1,
               luaL_typename(L, -1)));
    b->iov[m].iov_base = (void *)(uintptr_t)data;   /* iovec is not const */
    b->iov[m].iov_len = len;
    h->msg_iov = &b->iov[m];
    h->msg_iovlen = 1;
    b->mm[m].msg_len = 0;
    b->item[m] = (size_t)i;
    m++;
  }
  if (m == 0) {                 /* nothing but error entries */
    lua_pushinteger(L, n);
    return 1;
  }
  /* below, a failure of the first message after skipped items counts
     those as done: the next call, which starts at that message, says
     why it fails */
  if (m > 1 && s->gso >= 0 && s->type == SOCK_DGRAM &&
      (s->family == AF_INET || s->family == AF_INET6)) {
    if (s->gso == 0) s->gso = gso_probe(s->fd);
    if (s->gso > 0) {
      size_t g = gso_group(b, m);
      if (g < m) {
        int r = mmsg_send(s, b->gm, (unsigned)g, &wt);
        if (r >= 0) {            /* count the messages of the runs sent */
          size_t msgs = 0;
          int k;
          for (k = 0; k < r; k++) msgs += b->cnt[k];
          lua_pushinteger(L, itemsdone(b, msgs, m, n));
          return 1;
        }
        if (b->cnt[0] == 1 || !gso_refused(-r)) {
          if (b->item[0] > 0) {
            lua_pushinteger(L, itemsdone(b, 0, m, n));
            return 1;
          }
          return sockit_fail(L, -r, "sendmany", common ? a.text : NULL);
        }
        s->gso = -1;   /* from now on, one datagram per message (below) */
      }
    }
  }
  {
    int r = mmsg_send(s, b->mm, (unsigned)m, &wt);
    if (r < 0 && b->item[0] > 0)
      r = 0;
    if (r < 0)
      return sockit_fail(L, -r, "sendmany", common ? a.text : NULL);
    lua_pushinteger(L, itemsdone(b, (size_t)r, m, n));
    return 1;
  }
}


/*
** s:recvmany(n [, max]) -> {{data, host, port} | {data, path}, ...}
** Waits (per the timeout) for the first datagram, then takes up to n that
** are queued, in one recvmmsg. A datagram longer than max is not cut: its
** entry is {false, host, port, code = "EMSGSIZE", message = ...}.
*/
static int sock_recvmany (lua_State *L) {
  Socket *s = checkbatch(L, "recvmany");
  lua_Integer n = luaL_checkinteger(L, 2);
  lua_Integer max = luaL_optinteger(L, 3, SOCKIT_RECVMAX);
  Batch *b;
  Wait wt = WAIT_INIT(L);
  int got, i;
  luaL_argcheck(L, n >= 1 && n <= SOCKIT_BATCHMAX, 2, "n must be 1..1024");
  luaL_argcheck(L, max > 0, 3, "max must be positive");
  if (max > SOCKIT_DGRAM_CAP) max = SOCKIT_DGRAM_CAP;
  b = getbatch(L, (size_t)n, (size_t)n * (size_t)max);
  for (i = 0; i < n; i++) {
    struct msghdr *h = &b->mm[i].msg_hdr;
    memset(h, 0, sizeof(*h));
    b->iov[i].iov_base = b->buf + (size_t)i * (size_t)max;
    b->iov[i].iov_len = (size_t)max;
    h->msg_iov = &b->iov[i];
    h->msg_iovlen = 1;
    h->msg_name = &b->ss[i];
    h->msg_namelen = sizeof(b->ss[i]);
    b->mm[i].msg_len = 0;
  }
  for (;;) {
    got = recvmmsg(s->fd, b->mm, (unsigned)n, MSG_TRUNC, NULL);
    if (got >= 0)
      break;
    else {
      int err = errno;
      if (err == EINTR)
        continue;
      if (err == EAGAIN && (err = sockit_waitfor(s, POLLIN, &wt)) == 0)
        continue;
      return sockit_fail(L, err, "recvmany", NULL);
    }
  }
  lua_createtable(L, got, 0);
  for (i = 0; i < got; i++) {
    struct msghdr *h = &b->mm[i].msg_hdr;
    size_t len = b->mm[i].msg_len;
    int k;
    lua_createtable(L, 3, 0);
    /* with MSG_TRUNC a datagram or record socket reports the real
       length and writes min(length, max) bytes: an entry is made of the
       bytes this call received, or is an error, never more (checkbatch
       keeps streams out, where the count is of bytes not written) */
    if (len > (size_t)max || (h->msg_flags & MSG_TRUNC)) {
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "EMSGSIZE");
      lua_setfield(L, -3, "code");
      lua_pushfstring(L, "recvmany: %s of %I bytes is longer than max %I",
                      sockit_unitname(s), (lua_Integer)len, max);
      lua_setfield(L, -3, "message");
    }
    else
      lua_pushlstring(L, (const char *)b->iov[i].iov_base, len);
    lua_rawseti(L, -2, 1);
    k = sockit_pushaddr(L, (struct sockaddr *)&b->ss[i], h->msg_namelen);
    if (k == 0 && s->family == AF_UNIX) {
      lua_pushliteral(L, "");
      k = 1;
    }
    for (; k > 0; k--)
      lua_rawseti(L, -1 - k, 1 + k);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}


static const luaL_Reg methods[] = {
  {"sendmany", sock_sendmany},
  {"recvmany", sock_recvmany},
  {NULL, NULL}
};


/* add the methods to the socket metatable's __index, sharing one Batch */
void sockit_openbatch (lua_State *L) {
  Batch *b;
  luaL_getmetatable(L, SOCKIT_SOCKET);
  lua_getfield(L, -1, "__index");
  b = (Batch *)lua_newuserdatauv(L, sizeof(Batch), 0);
  memset(b, 0, sizeof(*b));
  if (luaL_newmetatable(L, SOCKIT_BATCHBOX)) {
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  luaL_setfuncs(L, methods, 1);
  lua_pop(L, 2);
}
