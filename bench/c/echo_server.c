/*
** echo_server.c — the C baseline of `make bench`: a single-threaded epoll
** server, what a competent C programmer writes without tricks.
**
**   echo_server echo tcp HOST:PORT     echo every byte back (port 0: any)
**   echo_server echo unix PATH
**   echo_server http tcp HOST:PORT     HTTP/1.1 keep-alive "hello" server
**
** Prints the bound address (HOST:PORT or PATH) on stdout when ready, then
** serves until killed. Level-triggered epoll; each ready connection is
** read once and what was read is written straight back (HTTP: one fixed
** response per complete request head). A short write keeps the rest and
** waits for EPOLLOUT before reading more.
**
** With ECHO_READ_AGAIN=1 in the environment it reads again after each
** write, until EAGAIN, as an edge-triggered loop must (sockit's does):
** for bench/README.md, to price that read in plain C. `make bench` does
** not set it.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUFSZ 65536
#define REQMAX 8192

static const char RESPONSE[] =
  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
  "Content-Length: 13\r\n\r\nHello, World!";

struct conn {
  int fd;
  char *out;              /* bytes not written yet (malloc'd) */
  size_t nout;
  size_t nreq;            /* http: bytes of a request head so far */
  char req[];             /* http only: REQMAX bytes */
};

static int http, ep;
static int read_again;   /* ECHO_READ_AGAIN: read until EAGAIN */
static char buf[BUFSZ];

static void die (const char *what) { perror(what); exit(1); }

static void drop (struct conn *c) {
  close(c->fd);           /* also removes it from the epoll set */
  free(c->out);
  free(c);
}

/* write all of p[0..n) now or keep the rest for EPOLLOUT; 0 on error */
static int send_all (struct conn *c, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(c->fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) return 0;
    if (w < 0) break;
    p += w; n -= (size_t)w;
  }
  if (n > 0) {
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    c->out = malloc(n);
    if (c->out == NULL) return 0;
    memcpy(c->out, p, n);
    c->nout = n;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
  return 1;
}

/* http: answer every complete request head in req; keep a partial one */
static int answer (struct conn *c) {
  size_t nresp = 0, start = 0, i;
  for (i = 3; i < c->nreq; i++) {
    if (memcmp(c->req + i - 3, "\r\n\r\n", 4) == 0) {
      if (nresp + sizeof RESPONSE > BUFSZ) break;
      memcpy(buf + nresp, RESPONSE, sizeof RESPONSE - 1);
      nresp += sizeof RESPONSE - 1;
      start = i + 1;
    }
  }
  memmove(c->req, c->req + start, c->nreq - start);
  c->nreq -= start;
  if (c->nreq == REQMAX) return 0;      /* a head too long: give up */
  return send_all(c, buf, nresp);
}

static void on_ready (struct conn *c, unsigned events) {
  if (c->nout > 0) {                    /* finishing an earlier write */
    ssize_t w = write(c->fd, c->out, c->nout);
    if (w < 0 && errno != EAGAIN && errno != EINTR) { drop(c); return; }
    if (w > 0) {
      memmove(c->out, c->out + w, c->nout - (size_t)w);
      c->nout -= (size_t)w;
    }
    if (c->nout == 0) {
      struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
      free(c->out);
      c->out = NULL;
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  char *dst = http ? c->req + c->nreq : buf;
  size_t room = http ? REQMAX - c->nreq : BUFSZ;
  do {
    ssize_t n = read(c->fd, dst, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) { drop(c); return; }
    int ok;
    if (http) {
      c->nreq += (size_t)n;
      ok = answer(c);
      dst = c->req + c->nreq;
      room = REQMAX - c->nreq;
    }
    else ok = send_all(c, buf, (size_t)n);
    if (!ok) { drop(c); return; }
  } while (read_again && c->nout == 0);
}

static int listen_on (const char *family, const char *where) {
  int fd;
  if (strcmp(family, "unix") == 0) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(where) >= sizeof sun.sun_path) die("unix path too long");
    strcpy(sun.sun_path, where);
    unlink(where);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
      die("bind");
    if (listen(fd, SOMAXCONN) < 0) die("listen");
    printf("%s\n", where);
  } else {
    char host[256];
    const char *colon = strrchr(where, ':');
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof sin;
    int one = 1;
    if (colon == NULL || (size_t)(colon - where) >= sizeof host)
      die("address must be HOST:PORT");
    memcpy(host, where, (size_t)(colon - where));
    host[colon - where] = '\0';
    sin.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) die("bad IPv4 host");
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) die("bind");
    if (listen(fd, SOMAXCONN) < 0) die("listen");
    getsockname(fd, (struct sockaddr *)&sin, &len);
    printf("%s:%d\n", host, ntohs(sin.sin_port));
  }
  fflush(stdout);
  return fd;
}

int main (int argc, char **argv) {
  static struct epoll_event evs[512];
  struct rlimit rl;
  if (argc != 4 || (strcmp(argv[1], "echo") && strcmp(argv[1], "http"))) {
    fprintf(stderr, "usage: %s echo|http tcp HOST:PORT | unix PATH\n",
            argv[0]);
    return 2;
  }
  http = strcmp(argv[1], "http") == 0;
  read_again = getenv("ECHO_READ_AGAIN") != NULL
               && strcmp(getenv("ECHO_READ_AGAIN"), "1") == 0;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  int lfd = listen_on(argv[2], argv[3]);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll");
  for (;;) {
    int n = epoll_wait(ep, evs, 512, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c != NULL) { on_ready(c, evs[i].events); continue; }
      for (;;) {                        /* accept everything pending */
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;              /* EAGAIN, or EMFILE: retry later */
        c = calloc(1, sizeof *c + (http ? REQMAX : 0));
        if (c == NULL) { close(fd); break; }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) drop(c);
      }
    }
  }
}
