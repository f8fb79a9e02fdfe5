/*
** sfsend.c — the plain-C senders of bench/sendfile.lua: what the kernel
** gives with no Lua at all, to tell sockit's share from the system's.
**
**   sfsend sendfile|copy unix:PATH|tcp:HOST:PORT FILE [SNDBUF]
**
** Connects (blocking), sends the whole FILE, shuts the write side down
** and reads the receiver's answer (bench/c/sink.c: "COUNT CPU_US"), as the
** Lua sender does. "sendfile" is sendfile(2) in a loop; "copy" is
** pread(2) into a 256 KiB buffer and write(2) of it. Prints one line:
** "SECONDS SENDER_CPU_SECONDS COUNT RECEIVER_CPU_US". Exit status 1 on
** any failure, with the reason on stderr.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static void die (const char *what) {
  perror(what);
  exit(1);
}

static double now (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds (void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
       + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int connect_to (const char *where) {
  int fd;
  if (strncmp(where, "unix:", 5) == 0) {
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(where + 5) >= sizeof(sun.sun_path)) {
      fprintf(stderr, "sfsend: path too long\n");
      exit(1);
    }
    strcpy(sun.sun_path, where + 5);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) die("connect");
  }
  else if (strncmp(where, "tcp:", 4) == 0) {
    struct sockaddr_in sin;
    char host[64];
    const char *colon = strrchr(where + 4, ':');
    size_t hlen = colon ? (size_t)(colon - (where + 4)) : 0;
    if (colon == NULL || hlen == 0 || hlen >= sizeof(host)) {
      fprintf(stderr, "sfsend: bad address %s\n", where);
      exit(1);
    }
    memcpy(host, where + 4, hlen);
    host[hlen] = '\0';
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
      fprintf(stderr, "sfsend: bad host %s\n", host);
      exit(1);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) die("connect");
  }
  else {
    fprintf(stderr, "sfsend: address must be unix:PATH or tcp:HOST:PORT\n");
    exit(1);
  }
  return fd;
}

/* write all of buf, retrying short writes and EINTR */
static void writeall (int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t k = write(fd, buf, len);
    if (k < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    buf += k;
    len -= (size_t)k;
  }
}

int main (int argc, char **argv) {
  char answer[64];
  size_t got = 0;
  struct stat st;
  off_t pos = 0;
  double t0, c0;
  int s, f, copy;
  if (argc < 4 || argc > 5 || (strcmp(argv[1], "sendfile") != 0 &&
                               strcmp(argv[1], "copy") != 0)) {
    fprintf(stderr, "usage: sfsend sendfile|copy unix:PATH|tcp:HOST:PORT FILE [SNDBUF]\n");
    return 2;
  }
  copy = strcmp(argv[1], "copy") == 0;
  s = connect_to(argv[2]);
  if (argc == 5) {
    int v = atoi(argv[4]);
    if (setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) != 0) die("SO_SNDBUF");
  }
  f = open(argv[3], O_RDONLY | O_CLOEXEC);
  if (f < 0) die("open");
  if (fstat(f, &st) != 0) die("fstat");
  c0 = cpu_seconds();
  t0 = now();
  if (copy) {
    char *buf = malloc(CHUNK);
    if (buf == NULL) die("malloc");
    while (pos < st.st_size) {
      ssize_t n = pread(f, buf, CHUNK, pos);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("pread");
      }
      if (n == 0) break;
      writeall(s, buf, (size_t)n);
      pos += n;
    }
    free(buf);
  }
  else {
    while (pos < st.st_size) {
      ssize_t n = sendfile(s, f, &pos, (size_t)(st.st_size - pos));
      if (n < 0) {
        if (errno == EINTR) continue;
        die("sendfile");
      }
      if (n == 0) break;
    }
  }
  if (shutdown(s, SHUT_WR) != 0) die("shutdown");
  for (;;) {   /* the answer: one line */
    ssize_t k = read(s, answer + got, sizeof(answer) - 1 - got);
    if (k < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (k == 0) break;
    got += (size_t)k;
    if (got == sizeof(answer) - 1 || memchr(answer, '\n', got)) break;
  }
  answer[got] = '\0';
  printf("%.6f %.6f %s", now() - t0, cpu_seconds() - c0, answer);
  if (got == 0 || answer[got - 1] != '\n') printf("\n");
  close(f);
  close(s);
  return 0;
}
