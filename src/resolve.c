/*
** resolve.c — core._resolve(host, port [, family [, type]]): getaddrinfo
** on a worker thread, so that a name can be waited for like a socket
** (SPEC §4: "resolving a name suspends only that task"; connect's
** timeout covers it). Internal: the underscore says SPEC fixes no name.
**
**     local job = core._resolve("example.org", 80, "inet", "stream")
**     job:result()   --> list | nil, msg, code   as core.getaddrinfo, or
**                    --> nil, "resolve: Resource ...", "EAGAIN" until done
**     job:fileno()   --> a descriptor that becomes readable when done
**     job:wait("r" [, timeout])   as s:wait (the Lua layer's wait.wait)
**     job:close()    --> true; abandons a lookup still running
**
** A job answers at once, with no thread, when nothing can block: a
** numeric host (AI_NUMERICHOST finds it) or none, and a numeric port or
** none. Otherwise it goes to the pool.
**
** The pool is process-wide (threads are): at most POOL_MAX threads work
** at a time, made on demand while jobs wait and ending when none waits,
** so an idle process has none and ten thousand lookups at once queue.
** A lookup whose caller gave up (a connect's deadline passed) still runs
** to its end in its thread, perhaps for the resolver's whole timeout:
** such a thread does not count against POOL_MAX (or names would stop
** resolving for everyone once eight of them hang), up to POOL_HARD
** threads in all. A thread that ends leaves its slot to be joined by
** the next that takes it (or at exit), so that the bound is on threads
** that exist, not merely on threads that work. They
** block every signal (the main thread keeps SIGINT, SIGPIPE, ... and the
** EINTR of its waits: socket.c, sockit_interrupted). A thread that
** cannot be made, with none running, leaves the lookup to the caller,
** which then blocks as core.getaddrinfo does.
**
** Ownership. A job belongs to its Lua handle (owned) and, while queued
** or running, to the pool; whichever lets go last frees it with its
** addrinfo list and its descriptor (the only close of it). All of the
** pool and every job's state and owned fields are under pool.lock; a
** job's query is read-only once submitted, its answer once done.
**
** fork. No thread survives in the child. Every lookup queued or running
** at fork time fails there with ECANCELED ("the process forked while
** the lookup ran"), on a descriptor of its own (the eventfd is shared
** with the parent and is replaced in the child); the parent's lookups go
** on. The lock is taken around fork (pthread_atfork), so the child never
** inherits it held by a thread that no longer exists.
**
** Unload. Lua closes a C module's library (dlclose) when its state
** closes, perhaps while a worker is still inside getaddrinfo: returning
** into unmapped code would crash. The first submission pins this
** library (dlopen RTLD_NODELETE, never closed).
*/
#include "sockit.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define SOCKIT_RESOLVE  "sockit.resolve"

/* worker threads at most at a time (further jobs wait in line), not
   counting those busy with an abandoned lookup; and the hard bound */
#define POOL_MAX   8
#define POOL_HARD  64


enum { J_QUEUED, J_RUNNING, J_DONE };

typedef struct Job {
  struct Job *prev, *next;   /* in pool.queued or pool.running */
  int state;                 /* J_*; a job not submitted counts as done */
  int owned;                 /* a Lua handle holds it */
  int forked;                /* done in a fork's child, not by getaddrinfo */
  int fd;                    /* the eventfd; -1 until needed */
  int rc, err;               /* getaddrinfo's answer and errno (done) */
  struct addrinfo *res;      /* the list when rc is 0 (done) */
  struct addrinfo hints;
  const char *host, *serv;   /* NULL, or into 'names' */
  char names[];              /* host '\0' serv '\0' */
} Job;

typedef struct JobList {
  Job *head, *tail;
} JobList;

/*
** A worker's slot. One that has found the queue empty still exists for a
** moment after it lets go of the lock, so it leaves its slot T_EXITED,
** and a new thread takes the slot only once the old one is joined. Slots
** are taken lowest first: while no lookup is abandoned only the first
** POOL_MAX are used, and at most POOL_MAX threads exist.
*/
enum { T_FREE, T_RUNNING, T_EXITED };

static struct {
  pthread_mutex_t lock;
  JobList queued, running;
  int nthreads;              /* slots T_RUNNING */
  int nabandoned;            /* running jobs that Lua let go of */
  int initerr;               /* pool_init failed: no threads, ever */
  int tstate[POOL_HARD];     /* T_* */
  pthread_t tid[POOL_HARD];  /* of the T_RUNNING and T_EXITED slots */
} pool = {PTHREAD_MUTEX_INITIALIZER, {NULL, NULL}, {NULL, NULL}, 0, 0, 0,
          {0}, {0}};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;


/*
** {======================================================
** The pool: no Lua here
** =======================================================
*/

/*
** A default mutex locked and unlocked by the rules cannot fail; if it
** does, memory is corrupt and no answer can be trusted: stop.
*/
static void pool_lock (void) {
  if (pthread_mutex_lock(&pool.lock) != 0)
    abort();
}

static void pool_unlock (void) {
  if (pthread_mutex_unlock(&pool.lock) != 0)
    abort();
}


static void list_push (JobList *l, Job *j) {
  j->next = NULL;
  j->prev = l->tail;
  if (l->tail) l->tail->next = j; else l->head = j;
  l->tail = j;
}

static void list_unlink (JobList *l, Job *j) {
  if (j->prev) j->prev->next = j->next; else l->head = j->next;
  if (j->next) j->next->prev = j->prev; else l->tail = j->prev;
  j->prev = j->next = NULL;
}


static void job_free (Job *j) {
  if (j->res != NULL)
    freeaddrinfo(j->res);
  if (j->fd != -1)
    (void)sys_close(j->fd);   /* nothing to tell anyone: it was ours */
  free(j);
}


/*
** Record an answer. A lookup that failed with EAI_SYSTEM and EAGAIN (out
** of some resource for now) reads EAI_AGAIN: "EAGAIN" from job:result()
** means "not done yet", nothing else.
*/
static void job_answer (Job *j, int rc, int err, struct addrinfo *res) {
  if (rc == EAI_SYSTEM && (err == EAGAIN || err == EWOULDBLOCK))
    rc = EAI_AGAIN;
  j->rc = rc;
  j->err = err;
  j->res = (rc == 0) ? res : NULL;
  j->state = J_DONE;
}


static int lookup (Job *j, struct addrinfo **res, int *err) {
  int rc = getaddrinfo(j->host, j->serv, &j->hints, res);
  *err = errno;
  return rc;
}


/*
** The end of a lookup (pool.lock held): free the job if Lua let go of
** it meanwhile, otherwise make its descriptor readable. sys_notify can
** only fail on a descriptor that is not ours (a bug): the waiter's
** deadline is then the bound.
*/
static void job_finish (Job *j, int rc, int err, struct addrinfo *res) {
  job_answer(j, rc, err, res);
  if (!j->owned) {
    pool.nabandoned--;
    job_free(j);
  }
  else
    (void)sys_notify(j->fd);
}


/* Lua lets go of 'j' (pool.lock held) */
static void job_release (Job *j) {
  switch (j->state) {
    case J_QUEUED:   /* never started: nobody else has it */
      list_unlink(&pool.queued, j);
      job_free(j);
      break;
    case J_RUNNING:  /* its worker frees it when getaddrinfo returns */
      j->owned = 0;
      pool.nabandoned++;
      break;
    default:
      job_free(j);
      break;
  }
}


static void *worker (void *arg) {
  int slot = (int)(intptr_t)arg;
  pool_lock();
  while (pool.queued.head != NULL) {
    Job *j = pool.queued.head;
    struct addrinfo *res = NULL;
    int rc, err;
    list_unlink(&pool.queued, j);
    list_push(&pool.running, j);
    j->state = J_RUNNING;
    pool_unlock();
    rc = lookup(j, &res, &err);
    pool_lock();
    list_unlink(&pool.running, j);
    job_finish(j, rc, err, res);
  }
  pool.nthreads--;   /* under the lock: a submit that follows makes one */
  pool.tstate[slot] = T_EXITED;
  pool_unlock();
  return NULL;
}


/*
** A worker in the lowest slot not running (pool.lock held, fewer running
** than the bound), with every signal blocked: the mask is inherited from
** the creating thread, so block all here and restore after. A slot whose
** thread has ended is joined first (it has let go of the lock: at most a
** moment).
*/
static int spawn (void) {
  sigset_t all, old;
  int slot, err;
  for (slot = 0; pool.tstate[slot] == T_RUNNING; slot++)
    ;   /* (one is not running: nthreads < POOL_HARD) */
  if (pool.tstate[slot] == T_EXITED) {
    if (pthread_join(pool.tid[slot], NULL) != 0)
      abort();   /* only for a thread that is not ours to join: a bug */
    pool.tstate[slot] = T_FREE;
  }
  sigfillset(&all);
  if ((err = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0)
    return err;
  err = sk_pthread_create(&pool.tid[slot], NULL, worker, (void *)(intptr_t)slot);
  if (pthread_sigmask(SIG_SETMASK, &old, NULL) != 0)
    abort();   /* only EINVAL, for a bad 'how': cannot happen */
  if (err == 0)
    pool.tstate[slot] = T_RUNNING;
  return err;
}


/*
** At exit, join the threads that have ended (nothing else would: their
** stacks showed as "possibly lost" in valgrind). Running ones are left
** to the exit.
*/
static void pool_atexit (void) {
  int slot;
  pool_lock();
  for (slot = 0; slot < POOL_HARD; slot++) {
    if (pool.tstate[slot] == T_EXITED && pthread_join(pool.tid[slot], NULL) == 0)
      pool.tstate[slot] = T_FREE;
  }
  pool_unlock();
}


/*
** fork: hold the lock across it, so that no thread of the parent holds
** it in the child; in the child, where no worker exists, every lookup
** queued or running is done (failed), with a descriptor of its own.
** (Only async-signal-safe calls and free, which glibc makes safe after
** fork, run in the child handler.)
*/
static void atfork_prepare (void) {
  pool_lock();
}

static void atfork_parent (void) {
  pool_unlock();
}

static void renew_fd (Job *j) {
  int fd;
  if (sys_eventfd(&fd) != 0)
    return;   /* keeps the shared one: woken when the parent's ends */
  if (dup3(fd, j->fd, O_CLOEXEC) >= 0)
    (void)sys_notify(j->fd);
  (void)sys_close(fd);
}

static void atfork_child (void) {
  Job *j;
  while ((j = pool.queued.head) != NULL || (j = pool.running.head) != NULL) {
    list_unlink(j->state == J_QUEUED ? &pool.queued : &pool.running, j);
    job_answer(j, EAI_SYSTEM, ECANCELED, NULL);
    j->forked = 1;
    if (!j->owned)
      job_free(j);
    else
      renew_fd(j);
  }
  pool.nthreads = 0;   /* the parent's threads are not here to join */
  pool.nabandoned = 0;
  memset(pool.tstate, 0, sizeof(pool.tstate));
  pool_unlock();
}


/* pin this library (see the top) and register the fork handlers, once */
static void pool_init (void) {
  Dl_info info;
  if (dladdr(&pool, &info) == 0 || info.dli_fname == NULL
      || dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == NULL) {
    pool.initerr = ENOTSUP;
    return;
  }
  pool.initerr = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  if (pool.initerr == 0 && atexit(pool_atexit) != 0)
    pool.initerr = ENOMEM;
}


/*
** Queue 'j' and make a worker if there is room for one. Returns 0, or
** an error when no thread can run it: then it is not queued.
*/
static int submit (Job *j) {
  int err = pthread_once(&pool_once, pool_init);
  if (err == 0)
    err = pool.initerr;   /* (set once, before any submit reads it) */
  if (err != 0)
    return err;
  pool_lock();
  list_push(&pool.queued, j);
  j->state = J_QUEUED;
  if (pool.nthreads < POOL_MAX + pool.nabandoned && pool.nthreads < POOL_HARD) {
    if ((err = spawn()) == 0)
      pool.nthreads++;
    else if (pool.nthreads > 0)
      err = 0;   /* one that runs now takes it */
    else {
      list_unlink(&pool.queued, j);
      j->state = J_DONE;
    }
  }
  pool_unlock();
  return err;
}


/*
** Answer 'j' now if that cannot block: no host or a numeric one, and no
** service name (/etc/services goes through NSS). Returns 1 if answered.
*/
static int answer_now (Job *j) {
  struct addrinfo hints = j->hints, *res = NULL;
  int rc, err;
  if (j->serv != NULL && !(hints.ai_flags & AI_NUMERICSERV))
    return 0;
  hints.ai_flags |= AI_NUMERICHOST;
  rc = getaddrinfo(j->host, j->serv, &hints, &res);
  err = errno;
  if (rc == EAI_NONAME && j->host != NULL && j->host[0] != '\0')
    return 0;   /* a name */
  job_answer(j, rc, err, res);
  return 1;
}


static Job *job_new (const GaiQuery *q) {
  size_t hlen = q->host ? strlen(q->host) + 1 : 0;
  size_t slen = q->serv ? strlen(q->serv) + 1 : 0;
  Job *j = (Job *)malloc(sizeof(Job) + hlen + slen);
  if (j == NULL)
    return NULL;
  memset(j, 0, sizeof(*j));
  j->state = J_DONE;
  j->fd = -1;
  j->hints = q->hints;
  if (q->host) {
    memcpy(j->names, q->host, hlen);
    j->host = j->names;
  }
  if (q->serv) {
    memcpy(j->names + hlen, q->serv, slen);
    j->serv = j->names + hlen;
  }
  return j;
}

/* }====================================================== */


/*
** {======================================================
** The Lua handle: a box holding the job (NULL once closed)
** =======================================================
*/

typedef struct JobBox {
  Job *job;
} JobBox;


static Job *checkjob (lua_State *L) {
  JobBox *b = (JobBox *)luaL_checkudata(L, 1, SOCKIT_RESOLVE);
  if (b->job == NULL)
    luaL_error(L, "attempt to use a closed resolve job");
  return b->job;
}


static int isdone (Job *j) {
  int done;
  pool_lock();
  done = (j->state == J_DONE);
  pool_unlock();
  return done;
}


/* core._resolve(host, port [, family [, type]]) -> job */
static int mod_resolve (lua_State *L) {
  GaiQuery q;
  JobBox *b;
  Job *j;
  int err;
  sockit_gaiquery(L, &q);
  b = (JobBox *)lua_newuserdatauv(L, sizeof(JobBox), 0);
  b->job = NULL;
  luaL_setmetatable(L, SOCKIT_RESOLVE);
  if ((j = job_new(&q)) == NULL)
    return luaL_error(L, "not enough memory");
  j->owned = 1;
  b->job = j;
  if (answer_now(j))
    return 1;
  if ((err = sys_eventfd(&j->fd)) != 0)
    return sockit_fail(L, err, "resolve", NULL);
  if (submit(j) != 0) {   /* no thread: answer here, blocking */
    struct addrinfo *res = NULL;
    int rc = lookup(j, &res, &err);
    job_answer(j, rc, err, res);
    if ((err = sys_notify(j->fd)) != 0)
      return sockit_fail(L, err, "resolve", NULL);
  }
  return 1;
}


/* job:result() -> list | nil, msg, code (core.getaddrinfo's), or EAGAIN */
static int job_result (lua_State *L) {
  Job *j = checkjob(L);
  if (!isdone(j))
    return sockit_again(L, "resolve");
  if (j->forked)
    return sockit_failmsg(L, "ECANCELED", "getaddrinfo %s: the process forked "
                          "while the lookup ran", j->host ? j->host : "?");
  return sockit_gairesult(L, j->host, j->serv, j->rc, j->err, j->res);
}


/*
** The job's descriptor, readable once done: a job answered at once gets
** one only if asked, made readable at once. 0 or an errno.
*/
static int job_fd (Job *j, int *fd) {
  if (j->fd == -1) {   /* (then done, and no thread has it: no lock) */
    int err;
    if ((err = sys_eventfd(&j->fd)) != 0 || (err = sys_notify(j->fd)) != 0)
      return err;
  }
  *fd = j->fd;
  return 0;
}


/* job:fileno() */
static int job_fileno (lua_State *L) {
  int fd, err;
  if ((err = job_fd(checkjob(L), &fd)) != 0)
    return sockit_fail(L, err, "resolve", NULL);
  lua_pushinteger(L, fd);
  return 1;
}


/* job:wait(events [, timeout]), as s:wait (wait.wait outside the loop) */
static int job_wait (lua_State *L) {
  int fd, err;
  Job *j = checkjob(L);
  /* an eventfd is always writable: "w" would say ready at once */
  luaL_argcheck(L, lua_type(L, 2) == LUA_TSTRING
                   && strcmp(lua_tostring(L, 2), "r") == 0, 2,
                "a lookup waits for \"r\" only");
  if ((err = job_fd(j, &fd)) != 0)
    return sockit_fail(L, err, "wait", NULL);
  return sockit_fdwait(L, fd);
}


/* close, __gc and __close: idempotent; a running lookup is abandoned */
static int job_close (lua_State *L) {
  JobBox *b = (JobBox *)luaL_checkudata(L, 1, SOCKIT_RESOLVE);
  Job *j = b->job;
  if (j != NULL) {
    b->job = NULL;
    pool_lock();
    job_release(j);
    pool_unlock();
  }
  lua_pushboolean(L, 1);
  return 1;
}


static int job_tostring (lua_State *L) {
  JobBox *b = (JobBox *)luaL_checkudata(L, 1, SOCKIT_RESOLVE);
  Job *j = b->job;
  if (j == NULL)
    lua_pushliteral(L, SOCKIT_RESOLVE "{closed}");
  else
    lua_pushfstring(L, SOCKIT_RESOLVE "{%s %s %s}", j->host ? j->host : "*",
                    j->serv ? j->serv : "", isdone(j) ? "done" : "pending");
  return 1;
}


static const luaL_Reg job_methods[] = {
  {"result", job_result},
  {"fileno", job_fileno},
  {"wait", job_wait},
  {"close", job_close},
  {NULL, NULL}
};

static const luaL_Reg job_meta[] = {
  {"__gc", job_close},
  {"__close", job_close},
  {"__tostring", job_tostring},
  {"__index", NULL},
  {NULL, NULL}
};


void sockit_openresolve (lua_State *L) {
  luaL_newmetatable(L, SOCKIT_RESOLVE);
  luaL_setfuncs(L, job_meta, 0);
  luaL_newlibtable(L, job_methods);
  luaL_setfuncs(L, job_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, mod_resolve);
  lua_setfield(L, -2, "_resolve");
}

/* }====================================================== */
