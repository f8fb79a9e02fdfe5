/*
** core.c — luaopen_sockit_core: the module table of sockit.core.
*/
#include "sockit.h"

LUAMOD_API int luaopen_sockit_core (lua_State *L);


LUAMOD_API int luaopen_sockit_core (lua_State *L) {
  lua_newtable(L);
  sockit_opensocket(L);
  sockit_openpoller(L);
  sockit_openfdpass(L);
  sockit_openbatch(L);
  sockit_opensendfile(L);
  sockit_openfaults(L);
  sockit_openunixfile(L);
  sockit_openresolve(L);
  lua_pushliteral(L, SOCKIT_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
