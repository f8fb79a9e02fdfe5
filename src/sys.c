/*
** sys.c — system-call wrappers. Nothing here knows about Lua: every
** function returns 0 on success or an errno value, retries EINTR (but
** sys_wait, whose callers decide: sockit_interrupted), and folds
** EWOULDBLOCK into EAGAIN (cqueues lib/socket.c).
*/
#include "sockit.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>


/*
** {======================================================
** Clock and deadlines: always the monotonic clock, never wall time
** =======================================================
*/

double sys_now (void) {
  struct timespec ts;
  /* CLOCK_MONOTONIC cannot fail with a valid pointer on Linux */
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return 0.0;
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}


/*
** A deadline for a timeout in seconds: negative means "never".
*/
double sys_deadline (double timeout) {
  return (timeout < 0) ? -1.0 : sys_now() + timeout;
}


/*
** Milliseconds left until 'deadline' for poll(2), rounded up so that
** we never wake before the deadline and spin; -1 for no deadline.
*/
static int ms_left (double deadline) {
  double left;
  if (deadline < 0)
    return -1;
  left = deadline - sys_now();
  if (left <= 0)
    return 0;
  if (left > 2000000.0)    /* poll takes an int: cap at ~33 minutes */
    return 2000000000;
  return (int)ceil(left * 1000.0);
}


/*
** Wait until 'fd' is ready for 'events' (POLLIN/POLLOUT) or 'deadline'
** passes. Returns 0 (ready; '*revents' says for what) or ETIMEDOUT or
** an errno, EINTR included: the caller, which knows the Lua state, says
** whether to wait again. An error or hang-up is reported as ready for what was asked,
** so that the next call on the descriptor reports the real error.
*/
int sys_wait (int fd, int events, double deadline, int *revents) {
  struct pollfd p;
  for (;;) {
    int n;
    p.fd = fd;
    p.events = (short)events;
    p.revents = 0;
    n = poll(&p, 1, ms_left(deadline));
    if (n > 0) {
      int r = p.revents & events;
      if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        r |= events;
      if (revents) *revents = r;
      return 0;
    }
    if (n == 0) {
      if (deadline >= 0 && sys_now() >= deadline)
        return ETIMEDOUT;
      continue;  /* woke early (rounding): wait for the rest */
    }
    return errno;   /* EINTR too: the caller retries, or is interrupted */
  }
}

/* }====================================================== */


/*
** {======================================================
** Descriptors: created close-on-exec and non-blocking, always
** =======================================================
*/

int sys_socket (int family, int type, int protocol, int *fd) {
  *fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
  return (*fd < 0) ? errno : 0;
}


int sys_socketpair (int type, int fds[2]) {
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
    return errno;
  return 0;
}


int sys_setnonblock (int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return errno;
  return 0;
}


/*
** close(2) is not retried on EINTR: on Linux the descriptor is gone
** either way, and retrying could close someone else's new descriptor.
*/
int sys_close (int fd) {
  if (close(fd) != 0 && errno != EINTR)
    return errno;
  return 0;
}


/*
** A counter descriptor that a thread makes readable (sys_notify) when
** it has finished (resolve.c): eventfd(2), close-on-exec, non-blocking.
*/
int sys_eventfd (int *fd) {
  *fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return (*fd < 0) ? errno : 0;
}


/*
** Make 'fd' (a sys_eventfd) readable: add 1 to its counter. EAGAIN
** would need 2^64 - 2 notifications without a read; EINTR is retried.
*/
int sys_notify (int fd) {
  static const uint64_t one = 1;
  ssize_t n;
  do
    n = write(fd, &one, sizeof(one));
  while (n < 0 && errno == EINTR);
  return (n < 0) ? errno : 0;
}

/* }====================================================== */


/*
** {======================================================
** sendfile(2) without SIGPIPE. It has no MSG_NOSIGNAL: a peer that has
** gone would kill the process (SPEC §1: never). So s:sendfile blocks
** SIGPIPE in this thread for the whole call (sys_nopipe_begin), and the
** one a sendfile that said EPIPE raised is taken back with sigtimedwait
** before the mask is restored (sys_nopipe_end): three system calls per
** s:sendfile, not per sendfile(2) chunk. A SIGPIPE already pending (the
** program blocks it and one waits) is not ours to take: then the call
** runs as it is, the signal stays blocked. Nothing between begin and end
** may raise a Lua error (the mask would stay).
** =======================================================
*/
int sys_nopipe_begin (SysNoPipe *np) {
  sigset_t pending;
  np->masked = 0;
  np->raised = 0;
  if (sigpending(&pending) != 0)
    return errno;
  if (!sigismember(&pending, SIGPIPE)) {
    sigset_t pipe;
    int err;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    if ((err = pthread_sigmask(SIG_BLOCK, &pipe, &np->old)) != 0)
      return err;
    np->masked = 1;
  }
  return 0;
}

void sys_nopipe_end (SysNoPipe *np) {
  if (!np->masked)
    return;
  if (np->raised) {
    static const struct timespec now = {0, 0};
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    while (sigtimedwait(&pipe, NULL, &now) < 0 && errno == EINTR)
      ;   /* EAGAIN: none was raised (the pipe was gone before) */
  }
  pthread_sigmask(SIG_SETMASK, &np->old, NULL);   /* cannot fail: valid how */
  np->masked = 0;
}

/*
** One sendfile(2), between sys_nopipe_begin and _end. Returns 0 ('*sent'
** the bytes taken) or an errno; EINTR is retried.
*/
int sys_sendfile (SysNoPipe *np, int out, int in, off_t *pos, size_t count,
                  size_t *sent) {
  ssize_t n;
  int err;
  do
    n = sendfile(out, in, pos, count);
  while (n < 0 && errno == EINTR);
  err = (n < 0) ? errno : 0;
  if (err == EPIPE)
    np->raised = 1;
  if (err == EWOULDBLOCK)
    err = EAGAIN;
  *sent = (n > 0) ? (size_t)n : 0;
  return err;
}

/* }====================================================== */


/*
** {======================================================
** Control messages: the descriptors of every SCM_RIGHTS message in
** 'msg', bounded by what the control buffer really holds (a malformed
** length never reads past it). Stores up to 'max' into 'fds' and returns
** how many there were in all.
** =======================================================
*/
size_t sys_cmsg_fds (struct msghdr *msg, int *fds, size_t max) {
  /* offsets, not pointers: a length near SIZE_MAX must not wrap (found
     by fuzz/fuzz_parsers.c; glibc's CMSG_NXTHDR adds it to a pointer) */
  const unsigned char *base = (const unsigned char *)msg->msg_control;
  size_t ctl = msg->msg_controllen, off = 0, total = 0;
  if (base == NULL)
    return 0;
  while (ctl - off >= sizeof(struct cmsghdr)) {
    struct cmsghdr h;
    size_t len, p;
    memcpy(&h, base + off, sizeof(h));
    if (h.cmsg_len < CMSG_LEN(0) || h.cmsg_len > ctl - off)
      break;   /* malformed, or cut short: nothing more to trust */
    len = h.cmsg_len;
    if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_RIGHTS) {
      for (p = CMSG_LEN(0); len - p >= sizeof(int) && p < len; p += sizeof(int)) {
        if (total < max)
          memcpy(&fds[total], base + off + p, sizeof(int));
        total++;
      }
    }
    if (CMSG_ALIGN(len) > ctl - off)
      break;
    off += CMSG_ALIGN(len);
  }
  return total;
}

/* }====================================================== */
