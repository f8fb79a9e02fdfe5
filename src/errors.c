/*
** errors.c — what the OS or a peer did, reported as  nil, message, code
** (SPEC §1). 'code' is the errno's symbolic name, the stable string that
** programs compare (luv); 'message' names the operation and the address.
*/
#include "sockit.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


/*
** {======================================================
** Name tables (STYLE.md 7: tables, not chains of ifs)
** =======================================================
*/

typedef struct NameValue {
  const char *name;
  int value;
} NameValue;

#define E(x)  { #x, x }

static const NameValue errnames[] = {
  E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
  E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES),
  E(EFAULT), E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR),
  E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE), E(ENOTTY), E(ETXTBSY),
  E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS), E(EMLINK), E(EPIPE), E(EDOM),
  E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOLCK), E(ENOSYS),
  E(ENOTEMPTY), E(ELOOP), E(ENOMSG), E(EIDRM), E(ENOSTR), E(ENODATA),
  E(ETIME), E(ENOSR), E(ENOLINK), E(EPROTO), E(EBADMSG), E(EOVERFLOW),
  E(EILSEQ), E(EUSERS), E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE),
  E(EPROTOTYPE), E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT),
  E(EOPNOTSUPP), E(EPFNOSUPPORT), E(EAFNOSUPPORT), E(EADDRINUSE),
  E(EADDRNOTAVAIL), E(ENETDOWN), E(ENETUNREACH), E(ENETRESET),
  E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN),
  E(ESHUTDOWN), E(ETOOMANYREFS), E(ETIMEDOUT), E(ECONNREFUSED),
  E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY), E(EINPROGRESS), E(ESTALE),
  E(EDQUOT), E(ECANCELED), E(EOWNERDEAD), E(ENOTRECOVERABLE),
  /* the rest of Linux's: a code is the errno's name, whichever it is
     (SPEC 1); each one where the system has it */
#ifdef ENOTBLK
  E(ENOTBLK),
#endif
#ifdef ECHRNG
  E(ECHRNG),
#endif
#ifdef EL2NSYNC
  E(EL2NSYNC),
#endif
#ifdef EL3HLT
  E(EL3HLT),
#endif
#ifdef EL3RST
  E(EL3RST),
#endif
#ifdef ELNRNG
  E(ELNRNG),
#endif
#ifdef EUNATCH
  E(EUNATCH),
#endif
#ifdef ENOCSI
  E(ENOCSI),
#endif
#ifdef EL2HLT
  E(EL2HLT),
#endif
#ifdef EBADE
  E(EBADE),
#endif
#ifdef EBADR
  E(EBADR),
#endif
#ifdef EXFULL
  E(EXFULL),
#endif
#ifdef ENOANO
  E(ENOANO),
#endif
#ifdef EBADRQC
  E(EBADRQC),
#endif
#ifdef EBADSLT
  E(EBADSLT),
#endif
#ifdef EBFONT
  E(EBFONT),
#endif
#ifdef ENONET
  E(ENONET),
#endif
#ifdef ENOPKG
  E(ENOPKG),
#endif
#ifdef EREMOTE
  E(EREMOTE),
#endif
#ifdef EADV
  E(EADV),
#endif
#ifdef ESRMNT
  E(ESRMNT),
#endif
#ifdef ECOMM
  E(ECOMM),
#endif
#ifdef EMULTIHOP
  E(EMULTIHOP),
#endif
#ifdef EDOTDOT
  E(EDOTDOT),
#endif
#ifdef ENOTUNIQ
  E(ENOTUNIQ),
#endif
#ifdef EBADFD
  E(EBADFD),
#endif
#ifdef EREMCHG
  E(EREMCHG),
#endif
#ifdef ELIBACC
  E(ELIBACC),
#endif
#ifdef ELIBBAD
  E(ELIBBAD),
#endif
#ifdef ELIBSCN
  E(ELIBSCN),
#endif
#ifdef ELIBMAX
  E(ELIBMAX),
#endif
#ifdef ELIBEXEC
  E(ELIBEXEC),
#endif
#ifdef ERESTART
  E(ERESTART),
#endif
#ifdef ESTRPIPE
  E(ESTRPIPE),
#endif
#ifdef EUCLEAN
  E(EUCLEAN),
#endif
#ifdef ENOTNAM
  E(ENOTNAM),
#endif
#ifdef ENAVAIL
  E(ENAVAIL),
#endif
#ifdef EISNAM
  E(EISNAM),
#endif
#ifdef EREMOTEIO
  E(EREMOTEIO),
#endif
#ifdef ENOMEDIUM
  E(ENOMEDIUM),
#endif
#ifdef EMEDIUMTYPE
  E(EMEDIUMTYPE),
#endif
#ifdef ENOKEY
  E(ENOKEY),
#endif
#ifdef EKEYEXPIRED
  E(EKEYEXPIRED),
#endif
#ifdef EKEYREVOKED
  E(EKEYREVOKED),
#endif
#ifdef EKEYREJECTED
  E(EKEYREJECTED),
#endif
#ifdef ERFKILL
  E(ERFKILL),
#endif
#ifdef EHWPOISON
  E(EHWPOISON),
#endif
  { NULL, 0 }
};

static const NameValue gainames[] = {
  E(EAI_AGAIN), E(EAI_BADFLAGS), E(EAI_FAIL), E(EAI_FAMILY),
  E(EAI_MEMORY), E(EAI_NONAME), E(EAI_SERVICE), E(EAI_SOCKTYPE),
  E(EAI_SYSTEM), E(EAI_OVERFLOW),
#ifdef EAI_NODATA
  E(EAI_NODATA),
#endif
#ifdef EAI_ADDRFAMILY
  E(EAI_ADDRFAMILY),
#endif
  { NULL, 0 }
};

#undef E


static const char *findname (const NameValue *t, int value,
                             const char *unknown) {
  for (; t->name != NULL; t++)
    if (t->value == value)
      return t->name;
  return unknown;
}


/* EWOULDBLOCK is folded into EAGAIN (they are equal on Linux anyway) */
const char *sockit_errname (int err) {
  if (err == EWOULDBLOCK)
    err = EAGAIN;
  return findname(errnames, err, "EUNKNOWN");
}


const char *sockit_gainame (int gaierr) {
  return findname(gainames, gaierr, "EAI_UNKNOWN");
}

/* }====================================================== */


/*
** {======================================================
** Failure results
** =======================================================
*/

/*
** Push  nil, "<op>[ <addr>]: <what>", code  for errno 'err' and return
** 3. 'err' must be saved by the caller before anything that may touch
** errno (liolib's luaL_fileresult). Timeouts read "timed out": the
** strerror text "Connection timed out" would mislead on a recv.
*/
int sockit_fail (lua_State *L, int err, const char *op, const char *addr) {
  const char *what;
  if ((err == EAGAIN || err == EWOULDBLOCK) && (addr == NULL || !*addr))
    return sockit_again(L, op);
  what = (err == ETIMEDOUT) ? "timed out" : strerror(err);
  lua_pushnil(L);
  if (addr != NULL && addr[0] != '\0')
    lua_pushfstring(L, "%s %s: %s", op, addr, what);
  else
    lua_pushfstring(L, "%s: %s", op, what);
  lua_pushstring(L, sockit_errname(err));
  return 3;
}


/*
** nil, "<op>: Resource temporarily unavailable", "EAGAIN" — the answer a
** non-blocking socket gives most often, on the event loop's hottest path.
** strerror() (a gettext lookup) and lua_pushfstring cost more than the
** system call did (callgrind), so each operation's message is made once
** and kept in the registry under the address of its 'op', which must
** therefore be a string literal (every caller passes one). The hottest
** callers, recv and send, do not come here at all: socket.c's again()
** takes the same strings from its methods' upvalues.
*/
int sockit_again (lua_State *L, const char *op) {
  lua_pushnil(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, op) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: %s", op, strerror(EAGAIN));
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, op);
  }
  lua_pushliteral(L, "EAGAIN");
  return 3;
}


/*
** Push  nil, formatted message, code  for failures that are not an
** errno (EOF, an oversized datagram).
*/
int sockit_failmsg (lua_State *L, const char *code, const char *fmt, ...) {
  va_list ap;
  lua_pushnil(L);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_pushstring(L, code);
  return 3;
}


/*
** A getaddrinfo failure: EAI_SYSTEM carries its reason in errno ('err').
*/
int sockit_gaifail (lua_State *L, int gaierr, int err, const char *op,
                    const char *what) {
  if (gaierr == EAI_SYSTEM)
    return sockit_fail(L, err, op, what);
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: %s", op, what, gai_strerror(gaierr));
  lua_pushstring(L, sockit_gainame(gaierr));
  return 3;
}

/* }====================================================== */
