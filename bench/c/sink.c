/*
** sink.c — the receiver of bench/sendfile.lua: reads each connection to
** its end, throwing the bytes away, and answers with their count.
**
**   sink UNIXPATH N      listen on UNIXPATH and on 127.0.0.1:0 (TCP)
**
** Prints the unix path and the TCP address ("127.0.0.1:PORT") on two
** lines when ready, then takes N connections, one at a time, from either
** listener (poll): read(2) into a 1 MiB buffer until EOF, write the count
** and the CPU time that took (user + system, microseconds) as
** "COUNT CPU_US\n", close. Exits after the N-th. A receiver this cheap (one copy
** per byte) lets the sender's cost show, which is what the bench compares.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUFSZ (1 << 20)

static void die (const char *what) {
  perror(what);
  exit(1);
}

static int listen_unix (const char *path) {
  struct sockaddr_un sun;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(sun.sun_path)) {
    fprintf(stderr, "sink: path too long\n");
    exit(1);
  }
  strcpy(sun.sun_path, path);
  unlink(path);
  if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) die("bind unix");
  if (listen(fd, 16) != 0) die("listen");
  return fd;
}

static int listen_tcp (int *port) {
  struct sockaddr_in sin;
  socklen_t len = sizeof(sin);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) die("bind tcp");
  if (listen(fd, 16) != 0) die("listen");
  if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0) die("getsockname");
  *port = ntohs(sin.sin_port);
  return fd;
}

/* CPU time of this process so far (user + system), microseconds */
static long long cpu_us (void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000
       + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* read one connection to its end; answer with the count and the CPU */
static void drain (int fd, char *buf) {
  long long total = 0, t0 = cpu_us();
  char line[48];
  int n;
  for (;;) {
    ssize_t k = read(fd, buf, BUFSZ);
    if (k > 0) total += k;
    else if (k == 0) break;
    else if (errno != EINTR) {
      perror("read");
      break;
    }
  }
  n = snprintf(line, sizeof(line), "%lld %lld\n", total, cpu_us() - t0);
  if (write(fd, line, (size_t)n) != n) perror("write");
  close(fd);
}

int main (int argc, char **argv) {
  struct pollfd pfd[2];
  int port, left, i;
  char *buf;
  if (argc != 3) {
    fprintf(stderr, "usage: sink UNIXPATH N\n");
    return 2;
  }
  left = atoi(argv[2]);
  buf = malloc(BUFSZ);
  if (buf == NULL) die("malloc");
  pfd[0].fd = listen_unix(argv[1]);
  pfd[1].fd = listen_tcp(&port);
  pfd[0].events = pfd[1].events = POLLIN;
  printf("%s\n127.0.0.1:%d\n", argv[1], port);
  fflush(stdout);
  while (left > 0) {
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (i = 0; i < 2 && left > 0; i++) {
      if (pfd[i].revents & POLLIN) {
        int c = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
          if (errno != EINTR && errno != ECONNABORTED) die("accept");
          continue;
        }
        drain(c, buf);
        left--;
      }
    }
  }
  unlink(argv[1]);
  free(buf);
  return 0;
}
