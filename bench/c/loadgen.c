/*
** loadgen.c — the one load generator of `make bench`, used against every
** server so that the client side is always the same program.
**
**   loadgen rt   TARGET CONNS SECONDS   CONNS connections, each doing round
**                                       trips as fast as it can
**   loadgen idle TARGET IDLE SECONDS    IDLE idle connections + 1 busy one
**   loadgen c10k TARGET CONNS SECONDS   open CONNS connections, a round trip
**                                       on each, hold them all, then a
**                                       second round trip on each
**
** TARGET is tcp:HOST:PORT (IPv4) or unix:PATH. A round trip sends a
** 64-byte message (its content changes every time), waits for all 64
** bytes to come back and compares them. Connections are opened at most
** WINDOW at a time, each must finish one round trip before it counts as
** open, and the measurement starts once all are open. Single-threaded,
** level-triggered epoll; every phase has a deadline, so it always exits.
**
** Prints one line of key=value pairs, e.g.
**   mode=rt conns=1000 seconds=2.000 roundtrips=612345 rate=306172 errors=0
** (idle: rate is the busy connection's, idle_ok counts the idle ones that
** still answered a round trip at the end; c10k: opened and served).
** Exit status 0 when there was no error.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SIZE 64
#define WINDOW 256          /* connections being opened at once */
#define SETUP_LIMIT 60.0    /* seconds to open every connection */
#define GRACE 5.0           /* seconds for a round trip under way to end */

enum { FREE, CONNECTING, WAITING, IDLE, DEAD };

struct conn {
  int fd, state, busy;
  unsigned seq;
  size_t got;
  char sent[SIZE], recvd[SIZE];
};

static struct conn *conns;
static int nconns, nopened, pending, errors, ep;
static int unix_target;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static double repeat_until;     /* busy connections go on until then */
static double count_until;      /* round trips counted until then */
static long counted;
static const char *lasterr = "";

static double now (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fail (struct conn *c, const char *why) {
  if (c->state == CONNECTING || c->state == WAITING) pending--;
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->state = DEAD;
  errors++;
  lasterr = why;
}

static void send_msg (struct conn *c, int i) {
  c->seq++;
  snprintf(c->sent, SIZE, "%08x:%08x:", (unsigned)i, c->seq);
  memset(c->sent + 18, 'a' + (int)(c->seq % 26), SIZE - 19);
  c->sent[SIZE - 1] = '\n';
  c->got = 0;
  ssize_t n = send(c->fd, c->sent, SIZE, MSG_NOSIGNAL);
  if (n != SIZE) { fail(c, n < 0 ? strerror(errno) : "short send"); return; }
  if (c->state != WAITING) {
    if (c->state != CONNECTING) pending++;
    c->state = WAITING;
  }
}

/* open connection number nopened; 0 when it must be tried again later */
static int open_next (void) {
  struct conn *c = &conns[nopened];
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0) { c->fd = -1; fail(c, strerror(errno)); nopened++; return 1; }
  if (!unix_target) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (connect(fd, (struct sockaddr *)&addr, addrlen) < 0 &&
      errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    if (e == EAGAIN) return 0;          /* unix backlog full: later */
    c->fd = -1;
    fail(c, strerror(e));
    nopened++;
    return 1;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 =
                           (unsigned)nopened};
  c->fd = fd;
  c->state = CONNECTING;
  pending++;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  nopened++;
  return 1;
}

static void on_event (int i, unsigned events) {
  struct conn *c = &conns[i];
  if (c->state == CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { fail(c, strerror(err)); return; }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    send_msg(c, i);
    return;
  }
  if (c->state != WAITING && c->state != IDLE) return;
  ssize_t n = read(c->fd, c->recvd + c->got, SIZE - c->got);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) { fail(c, n < 0 ? strerror(errno) : "closed by server"); return; }
  if (c->state == IDLE) { fail(c, "unexpected data"); return; }
  c->got += (size_t)n;
  if (c->got < SIZE) return;
  if (memcmp(c->sent, c->recvd, SIZE) != 0) { fail(c, "wrong echo"); return; }
  double t = now();
  if (t <= count_until) counted++;
  if (c->busy && t < repeat_until) { send_msg(c, i); return; }
  c->state = IDLE;
  pending--;
}

/*
** Run the loop until nothing is pending (and every connection of the
** first 'nconns' is open) or 'deadline' passes.
*/
static void pump (double deadline) {
  static struct epoll_event evs[1024];
  for (;;) {
    while (nopened < nconns && pending < WINDOW)
      if (!open_next()) break;
    if (pending == 0 && nopened == nconns) return;
    double t = now();
    if (t >= deadline) return;
    int ms = nopened < nconns ? 10 : (int)((deadline - t) * 1000) + 1;
    int n = epoll_wait(ep, evs, 1024, ms);
    if (n < 0 && errno != EINTR) { perror("epoll_wait"); exit(2); }
    for (int k = 0; k < n; k++) on_event((int)evs[k].data.u32, evs[k].events);
  }
}

/* one round trip on every live connection of [from, to) */
static int round_trip_all (int from, int to, double deadline) {
  long before = counted;
  count_until = 1e300;
  for (int i = from; i < to; i++)
    if (conns[i].state == IDLE) send_msg(&conns[i], i);
  pump(deadline);
  return (int)(counted - before);
}

static void target (const char *spec) {
  memset(&addr, 0, sizeof addr);
  if (strncmp(spec, "unix:", 5) == 0) {
    struct sockaddr_un *sun = (struct sockaddr_un *)&addr;
    if (strlen(spec + 5) >= sizeof sun->sun_path) goto bad;
    sun->sun_family = AF_UNIX;
    strcpy(sun->sun_path, spec + 5);
    addrlen = sizeof *sun;
    unix_target = 1;
    return;
  }
  if (strncmp(spec, "tcp:", 4) == 0) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&addr;
    char host[64];
    const char *colon = strrchr(spec + 4, ':');
    if (colon == NULL || (size_t)(colon - spec - 4) >= sizeof host) goto bad;
    memcpy(host, spec + 4, (size_t)(colon - spec - 4));
    host[colon - spec - 4] = '\0';
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) goto bad;
    addrlen = sizeof *sin;
    return;
  }
bad:
  fprintf(stderr, "loadgen: bad target %s (tcp:HOST:PORT or unix:PATH)\n",
          spec);
  exit(2);
}

int main (int argc, char **argv) {
  struct rlimit rl;
  if (argc != 5) {
    fprintf(stderr, "usage: %s rt|idle|c10k TARGET CONNS SECONDS\n",
            argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  int n = atoi(argv[3]);
  double seconds = atof(argv[4]);
  if (n < 1 || n > 100000 || seconds <= 0 || seconds > 3600) {
    fprintf(stderr, "loadgen: CONNS must be 1..100000, SECONDS 0..3600\n");
    return 2;
  }
  target(argv[2]);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) { perror("epoll_create1"); return 2; }

  int idle = strcmp(mode, "idle") == 0;
  int c10k = strcmp(mode, "c10k") == 0;
  if (!idle && !c10k && strcmp(mode, "rt") != 0) {
    fprintf(stderr, "loadgen: unknown mode %s\n", mode);
    return 2;
  }
  nconns = idle ? n + 1 : n;
  conns = calloc((size_t)nconns, sizeof *conns);
  if (conns == NULL) { perror("calloc"); return 2; }

  /* open every connection, one round trip each */
  double t0 = now();
  count_until = 1e300;
  pump(t0 + SETUP_LIMIT);
  int opened = (int)counted;
  double setup = now() - t0;
  if (opened < nconns) {
    printf("mode=%s conns=%d opened=%d errors=%d setup=%.3f error=\"%s\"\n",
           mode, nconns, opened, nconns - opened, setup, lasterr);
    return 1;
  }

  if (c10k) {           /* hold them all, then every one answers again */
    struct timespec hold = {(time_t)seconds,
                            (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&hold, NULL);
    int served = round_trip_all(0, nconns, now() + SETUP_LIMIT);
    printf("mode=c10k conns=%d opened=%d served=%d errors=%d setup=%.3f "
           "error=\"%s\"\n", nconns, opened, served, errors, setup, lasterr);
    return served == nconns && errors == 0 ? 0 : 1;
  }

  /* measure: busy connections do round trips for 'seconds' */
  int nbusy = idle ? 1 : nconns;
  counted = 0;
  double start = now();
  repeat_until = count_until = start + seconds;
  for (int i = 0; i < nbusy; i++) {
    conns[i].busy = 1;
    if (conns[i].state == IDLE) send_msg(&conns[i], i);
  }
  pump(repeat_until + GRACE);
  double elapsed = seconds;
  long rts = counted;
  for (int i = 0; i < nbusy; i++) conns[i].busy = 0;
  int idle_ok = idle ? round_trip_all(1, nconns, now() + GRACE) : 0;
  printf("mode=%s conns=%d seconds=%.3f roundtrips=%ld rate=%.0f errors=%d",
         mode, nconns, elapsed, rts, (double)rts / elapsed, errors);
  if (idle) printf(" idle_ok=%d", idle_ok);
  printf(" setup=%.3f error=\"%s\"\n", setup, lasterr);
  return errors == 0 && (!idle || idle_ok == n) ? 0 : 1;
}
