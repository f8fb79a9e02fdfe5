/*
** fuzz/fuzz_parsers.c — a libFuzzer target for every parser in the C core
** that reads text or bytes a user or a peer controls:
**
**   0  a unix path (sockit_toaddr, AF_UNIX): length limits, zero bytes,
**      the abstract namespace
**   1  an inet host and port (sockit_toaddr, AF_INET)
**   2  an inet6 host and port (sockit_toaddr, AF_INET6): literals, zones
**   3  core.getaddrinfo(host, port-or-service, family, type)
**   4  a socket address as the kernel or a peer hands it over
**      (sockit_fmtaddr, sockit_pushaddr): any family byte, any length
**   5  control data of a received message (sys_cmsg_fds): any lengths
**   6  the fault-injection rules (core._faults)
**
** The first byte picks the parser, the rest is its input. Raised Lua
** errors (argument errors) are expected answers; a crash, a sanitizer
** report or a hang is a finding. Built with SOCKIT_FUZZ, name resolution
** is numeric only, so no input reaches DNS.
**
**   make fuzz            (FUZZ_RUNS=n, FUZZ_SECONDS=s to change the bounds)
*/
#include "../src/sockit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lualib.h"

LUAMOD_API int luaopen_sockit_core (lua_State *L);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static lua_State *L;
static int faults_ref = LUA_NOREF;


static int call_toaddr (lua_State *L_) {
  Addr a;
  int family = (int)lua_tointeger(L_, 1);
  int passive = lua_toboolean(L_, 2);
  int n = sockit_toaddr(L_, family, 3, passive, "fuzz", &a);
  if (n != 0)
    return n;                          /* nil, msg, code: an answer */
  if (a.len > sizeof(a.ss) || strlen(a.text) >= sizeof(a.text))
    abort();                           /* never overflows, never unterminated */
  return sockit_pushaddr(L_, (struct sockaddr *)&a.ss, a.len);
}


static void pcall_toaddr (int family, int passive, const char *s, size_t n,
                          lua_Integer port) {
  lua_pushcfunction(L, call_toaddr);
  lua_pushinteger(L, family);
  lua_pushboolean(L, passive);
  lua_pushlstring(L, s, n);
  lua_pushinteger(L, port);
  (void)lua_pcall(L, 4, LUA_MULTRET, 0);
  lua_settop(L, 0);
}


static int call_addr_out (lua_State *L_) {
  size_t n;
  const char *b = lua_tolstring(L_, 1, &n);
  struct sockaddr_storage ss;
  char text[SOCKIT_ADDRSTRLEN];
  socklen_t len = (socklen_t)(n > sizeof(ss) ? sizeof(ss) : n);
  memset(&ss, 0, sizeof(ss));
  memcpy(&ss, b, len);
  sockit_fmtaddr((struct sockaddr *)&ss, len, text, sizeof(text));
  if (memchr(text, '\0', sizeof(text)) == NULL)
    abort();
  return sockit_pushaddr(L_, (struct sockaddr *)&ss, len);
}


static void cmsg_fds (const uint8_t *data, size_t size) {
  union { char buf[4096]; struct cmsghdr align; } ctl;
  struct msghdr msg;
  int fds[253];
  if (size > sizeof(ctl.buf)) size = sizeof(ctl.buf);
  memcpy(ctl.buf, data, size);
  memset(&msg, 0, sizeof(msg));
  msg.msg_control = ctl.buf;
  msg.msg_controllen = size;
  (void)sys_cmsg_fds(&msg, fds, 253);
}


int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  const char *s;
  size_t n;
  lua_Integer port;
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "sockit.core", luaopen_sockit_core, 0);
    lua_getfield(L, -1, "_faults");
    faults_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
  }
  if (size < 1)
    return 0;
  s = (const char *)data + 1;
  n = size - 1;
  /* the port: the next two bytes, widened so that out-of-range values
     (negative, > 65535) are tried too */
  port = (n >= 2) ? ((lua_Integer)(int8_t)s[0] * 1024 + (uint8_t)s[1]) : 80;
  switch (data[0] % 7) {
    case 0:
      pcall_toaddr(AF_UNIX, data[0] & 8, s, n, 0);
      break;
    case 1:
      pcall_toaddr(AF_INET, data[0] & 8, s + (n >= 2 ? 2 : 0), n >= 2 ? n - 2 : n, port);
      break;
    case 2:
      pcall_toaddr(AF_INET6, data[0] & 8, s + (n >= 2 ? 2 : 0), n >= 2 ? n - 2 : n, port);
      break;
    case 3: {
      static const char *const fams[] = {NULL, "inet", "inet6", "unix", "bogus"};
      static const char *const types[] = {NULL, "stream", "dgram", "seqpacket"};
      size_t cut = n / 2;
      lua_getglobal(L, "package");
      lua_getfield(L, -1, "loaded");
      lua_getfield(L, -1, "sockit.core");
      lua_getfield(L, -1, "getaddrinfo");
      lua_pushlstring(L, s, cut);
      if (data[0] & 8) lua_pushinteger(L, port);
      else lua_pushlstring(L, s + cut, n - cut);
      if (fams[(data[0] >> 4) % 5]) lua_pushstring(L, fams[(data[0] >> 4) % 5]);
      else lua_pushnil(L);
      if (types[(data[0] >> 6) % 4]) lua_pushstring(L, types[(data[0] >> 6) % 4]);
      else lua_pushnil(L);
      (void)lua_pcall(L, 4, LUA_MULTRET, 0);
      lua_settop(L, 0);
      break;
    }
    case 4:
      lua_pushcfunction(L, call_addr_out);
      lua_pushlstring(L, s, n);
      (void)lua_pcall(L, 1, LUA_MULTRET, 0);
      lua_settop(L, 0);
      break;
    case 5:
      cmsg_fds((const uint8_t *)s, n);
      break;
    default:
      if (faults_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, faults_ref);
        if (lua_isfunction(L, -1)) {
          lua_pushlstring(L, s, n);
          (void)lua_pcall(L, 1, LUA_MULTRET, 0);
          lua_settop(L, 0);
          lua_rawgeti(L, LUA_REGISTRYINDEX, faults_ref);
          lua_pushliteral(L, "");       /* no rule stays armed */
          (void)lua_pcall(L, 1, 0, 0);
        }
        lua_settop(L, 0);
      }
      break;
  }
  return 0;
}
