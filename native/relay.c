// wsgate's native relay for L4 tunnels (issue 13, direction 3): takes over the two sockets of an established tunnel
// and relays them on its own thread with splice(2) through a pipe per direction, so that the bytes never enter user
// space. JavaScript keeps everything else: routing, limits, metrics, drains, idle timeouts (src/proxy/native-relay.ts).
//
// Ownership: add() dup()s the two descriptors it is given (the caller then destroys its sockets, which closes the
// originals); from then on the relay thread alone closes the duplicates, exactly once, and reports the close.
//
// Per tunnel, direction 0 is client -> upstream and direction 1 is upstream -> client. Each direction:
//  1. writes the bytes JavaScript had already read (`head`) to its sink first;
//  2. splices source -> pipe and pipe -> sink, non-blocking; EAGAIN waits for epoll (edge-triggered, both sockets
//     registered for reading and writing). The pipe (64 KiB by default) bounds what a direction holds, so a sink that
//     does not read stops the source from being read: backpressure. A direction holds a pipe only while bytes are in
//     it: an emptied pipe goes back to a pool (HAProxy's pipe pool), so an idle tunnel costs its two sockets and no
//     pipe (descriptors and the kernel's per-user pipe pages, fs.pipe-user-pages-soft, are for busy tunnels only);
//  3. at the source's EOF, once its pipe is empty, shuts the sink down for writing (half-close), as the JS relay's
//     end() does. A graceful close (JavaScript's shutdown()) does this to both directions at once, then waits for
//     both peers' EOF; a peer that sends bytes instead gets its connection closed, as on the JS relay.
// The tunnel ends when both directions have ended (reason COMPLETED), at the first error (CLIENT_ERROR or
// UPSTREAM_ERROR: the other side is reset, as the JS relay does) or when JavaScript closes it (CLOSED).
//
// Byte counters: JavaScript hands over an ArrayBuffer of doubles, two per slot (bytes read from the client, bytes
// written to the client: what the JS relay reads from client.bytesRead / bytesWritten); the thread stores them with
// relaxed atomic 64-bit stores, so a reader sees a whole value, maybe one pump old.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define SPLICE_FLAGS (SPLICE_F_NONBLOCK | SPLICE_F_MOVE)
/** Asked for per splice into a pipe; the pipe's free room bounds what one call moves. */
#define SPLICE_ASK (1 << 20)
#define MAX_EVENTS 256
/**
 * Rounds of both directions one tunnel gets per turn: a tunnel whose source never runs dry is put back at the end of
 * the queue rather than starving the others (edge-triggered: no new event would come for it).
 */
#define PUMP_ROUNDS 16

enum { SIDE_CLIENT = 0, SIDE_UPSTREAM = 1 };
enum { REASON_COMPLETED = 0, REASON_CLIENT_ERROR = 1, REASON_UPSTREAM_ERROR = 2, REASON_CLOSED = 3, REASON_RELAY_ERROR = 4 };
/** Free pipes kept for reuse; more are closed. */
#define PIPE_POOL_MAX 64
enum { OP_ADD = 1, OP_SHUTDOWN = 2, OP_CLOSE = 3 };

typedef struct tunnel tunnel;

/** What an epoll event points at: one socket of one tunnel. */
typedef struct {
  tunnel *t;
  int side;
} endpoint;

typedef struct {
  int pipe_r, pipe_w;
  size_t in_pipe;
  /** Bytes read by JavaScript before the handover, written to the sink before anything else. */
  char *head;
  size_t head_len, head_off;
  /** The source has ended (EOF), or JavaScript asked for a graceful close. */
  int src_eof;
  /** The sink has been shut down for writing. */
  int shut;
  /** A graceful close: what the source still sends is read and dropped, until its EOF. */
  int discard;
  /** The source's real EOF was seen. */
  int src_done;
} direction;

struct tunnel {
  uint32_t slot;
  int fd[2];
  endpoint ep[2];
  direction dir[2];
  uint64_t read_client, written_client;
  int closed;
  tunnel *next_free;
  /** On the again list (it used up its rounds with bytes still moving). */
  int queued;
  tunnel *next_again;
};

typedef struct command {
  int op;
  uint32_t slot;
  int rst_client, rst_upstream;
  tunnel *t;
  struct command *next;
} command;

typedef struct {
  uint32_t slot;
  int reason;
  int err;
} report;

// Process-wide state: one relay thread per process (each wsgate worker is a process).
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static command *g_head, *g_tail;
static int g_epoll = -1, g_wake = -1;
static pthread_t g_thread;
static napi_threadsafe_function g_tsfn;
static napi_ref g_counters_ref;
static uint64_t *g_counters;
static uint32_t g_slots;
/** Owned by the relay thread: tunnels by slot. */
static tunnel **g_table;
static char g_scratch[65536];
/** The pipe pool (relay thread only), and how many pipes exist, pooled and in use (read by JavaScript). */
static int g_pool[PIPE_POOL_MAX][2];
static int g_pooled;
static uint32_t g_pipes_pooled, g_pipes_used;

static void count_pipes(void) {
  __atomic_store_n(&g_pipes_pooled, (uint32_t)g_pooled, __ATOMIC_RELAXED);
}

/** A pipe for a direction about to splice in: from the pool, or new. */
static int take_pipe(direction *x) {
  if (x->pipe_r >= 0) return 0;
  if (g_pooled > 0) {
    g_pooled--;
    x->pipe_r = g_pool[g_pooled][0];
    x->pipe_w = g_pool[g_pooled][1];
  } else {
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
    x->pipe_r = p[0];
    x->pipe_w = p[1];
  }
  __atomic_add_fetch(&g_pipes_used, 1, __ATOMIC_RELAXED);
  count_pipes();
  return 0;
}

/** An empty pipe back to the pool (or closed when the pool is full). */
static void give_pipe(direction *x) {
  if (x->pipe_r < 0) return;
  if (g_pooled < PIPE_POOL_MAX) {
    g_pool[g_pooled][0] = x->pipe_r;
    g_pool[g_pooled][1] = x->pipe_w;
    g_pooled++;
  } else {
    close(x->pipe_r);
    close(x->pipe_w);
  }
  x->pipe_r = x->pipe_w = -1;
  __atomic_sub_fetch(&g_pipes_used, 1, __ATOMIC_RELAXED);
  count_pipes();
}

static void store_counter(uint32_t index, uint64_t value) {
  double d = (double)value;
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  __atomic_store_n(&g_counters[index], bits, __ATOMIC_RELAXED);
}

static void publish(tunnel *t) {
  store_counter(t->slot * 2, t->read_client);
  store_counter(t->slot * 2 + 1, t->written_client);
}

static void post(uint32_t slot, int reason, int err) {
  report *r = malloc(sizeof *r);
  if (r == NULL) abort();
  r->slot = slot;
  r->reason = reason;
  r->err = err;
  napi_call_threadsafe_function(g_tsfn, r, napi_tsfn_nonblocking);
}

static tunnel *g_free_list;
/** Tunnels to pump again before waiting (relay thread only). */
static tunnel *g_again;

static void close_tunnel(tunnel *t, int reason, int err, int rst_client, int rst_upstream) {
  if (t->closed) return;
  t->closed = 1;
  struct linger lg = {1, 0};
  for (int s = 0; s < 2; s++) {
    int rst = s == SIDE_CLIENT ? rst_client : rst_upstream;
    // As libuv refuses to reset a socket whose write side is shut, a shut side gets a plain close.
    if (rst && !t->dir[1 - s].shut) setsockopt(t->fd[s], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    epoll_ctl(g_epoll, EPOLL_CTL_DEL, t->fd[s], NULL);
    close(t->fd[s]);
  }
  for (int d = 0; d < 2; d++) {
    // A pipe that still holds bytes (a sink that failed or was cut) is closed, never pooled.
    if (t->dir[d].pipe_r >= 0) {
      if (t->dir[d].in_pipe == 0) {
        give_pipe(&t->dir[d]);
      } else {
        close(t->dir[d].pipe_r);
        close(t->dir[d].pipe_w);
        t->dir[d].pipe_r = t->dir[d].pipe_w = -1;
        __atomic_sub_fetch(&g_pipes_used, 1, __ATOMIC_RELAXED);
      }
    }
    free(t->dir[d].head);
    t->dir[d].head = NULL;
  }
  publish(t);
  g_table[t->slot] = NULL;
  // Freed after the current batch of events, some of which may still point at it.
  t->next_free = g_free_list;
  g_free_list = t;
  post(t->slot, reason, err);
}

/** An error on side `s`: that side is closed, the other reset (a peer sees an abort as an abort). */
static void fail(tunnel *t, int s, int err) {
  if (s == SIDE_CLIENT) close_tunnel(t, REASON_CLIENT_ERROR, err, 0, 1);
  else close_tunnel(t, REASON_UPSTREAM_ERROR, err, 1, 0);
}

/** Moves what it can in direction d; returns whether anything moved. */
static int pump_direction(tunnel *t, int d) {
  direction *x = &t->dir[d];
  int src = t->fd[d], sink = t->fd[1 - d];
  int progress = 0;
  ssize_t n;
  // 1. The bytes JavaScript had read.
  while (x->head != NULL) {
    n = send(sink, x->head + x->head_off, x->head_len - x->head_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      progress = 1;
      x->head_off += (size_t)n;
      if (d == 1) t->written_client += (uint64_t)n;
      if (x->head_off == x->head_len) {
        free(x->head);
        x->head = NULL;
      }
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return progress;
    } else {
      fail(t, 1 - d, n < 0 ? errno : EPIPE);
      return 0;
    }
  }
  // 2. Pipe -> sink.
  while (x->in_pipe > 0) {
    n = splice(x->pipe_r, NULL, sink, NULL, x->in_pipe, SPLICE_FLAGS);
    if (n > 0) {
      progress = 1;
      x->in_pipe -= (size_t)n;
      if (d == 1) t->written_client += (uint64_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      fail(t, 1 - d, n < 0 ? errno : EPIPE);
      return 0;
    }
  }
  if (x->in_pipe == 0 && x->src_eof) give_pipe(x);
  // 3. Source -> pipe (EAGAIN: the source is empty, or the pipe is full until step 2 empties it).
  if (!x->src_eof) {
    if (take_pipe(x) != 0) {
      // No descriptor for a pipe (EMFILE/ENFILE): the tunnel cannot go on.
      close_tunnel(t, REASON_RELAY_ERROR, errno, 0, 0);
      return 0;
    }
    n = splice(src, NULL, x->pipe_w, NULL, SPLICE_ASK, SPLICE_FLAGS);
    if (n > 0) {
      progress = 1;
      x->in_pipe += (size_t)n;
      if (d == 0) t->read_client += (uint64_t)n;
    } else if (n == 0) {
      progress = 1;
      x->src_eof = 1;
      x->src_done = 1;
    } else if (errno == EINTR) {
      progress = 1;  // try again next round: edge-triggered, no new event would come
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      fail(t, d, errno);
      return 0;
    }
    if (x->in_pipe == 0) give_pipe(x);
  } else if (x->discard && !x->src_done) {
    // After a graceful close, a peer may only close: bytes it still sends have nowhere to go, and the tunnel is
    // closed at once, as the JavaScript relay's write after end() fails and closes it.
    n = recv(src, g_scratch, sizeof g_scratch, MSG_DONTWAIT);
    if (n > 0) {
      if (d == 0) t->read_client += (uint64_t)n;
      close_tunnel(t, REASON_CLOSED, 0, 0, 0);
      return 0;
    } else if (n == 0) {
      progress = 1;
      x->src_done = 1;
    } else if (errno == EINTR) {
      progress = 1;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      fail(t, d, errno);
      return 0;
    }
  }
  // 4. Half-close: the source has ended and everything it sent has gone.
  if (x->src_eof && x->in_pipe == 0 && x->head == NULL && !x->shut) {
    progress = 1;
    x->shut = 1;
    if (shutdown(sink, SHUT_WR) != 0 && errno != ENOTCONN) {
      fail(t, 1 - d, errno);
      return 0;
    }
  }
  return progress;
}

static void pump(tunnel *t) {
  int progress = 1;
  for (int round = 0; progress && !t->closed; round++) {
    if (round == PUMP_ROUNDS) {
      publish(t);
      if (!t->queued) {
        t->queued = 1;
        t->next_again = g_again;
        g_again = t;
      }
      return;
    }
    progress = pump_direction(t, 0);
    if (!t->closed) progress |= pump_direction(t, 1);
  }
  if (t->closed) return;
  publish(t);
  if (t->dir[0].shut && t->dir[1].shut && t->dir[0].src_done && t->dir[1].src_done) {
    close_tunnel(t, REASON_COMPLETED, 0, 0, 0);
  }
}

static void run_commands(void) {
  pthread_mutex_lock(&g_lock);
  command *c = g_head;
  g_head = g_tail = NULL;
  pthread_mutex_unlock(&g_lock);
  while (c != NULL) {
    command *next = c->next;
    if (c->op == OP_ADD) {
      tunnel *t = c->t;
      g_table[t->slot] = t;
      int ok = 1;
      for (int s = 0; s < 2 && ok; s++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &t->ep[s]};
        if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, t->fd[s], &ev) != 0) {
          ok = 0;
          fail(t, s, errno);
        }
      }
      if (ok) pump(t);
    } else {
      // A slot that has already closed (its report is on its way to JavaScript) is left alone.
      tunnel *t = c->slot < g_slots ? g_table[c->slot] : NULL;
      if (t != NULL && c->op == OP_CLOSE) {
        close_tunnel(t, REASON_CLOSED, 0, c->rst_client, c->rst_upstream);
      } else if (t != NULL && c->op == OP_SHUTDOWN) {
        for (int d = 0; d < 2; d++) {
          if (!t->dir[d].src_eof) {
            t->dir[d].src_eof = 1;
            t->dir[d].discard = 1;
          }
        }
        pump(t);
      }
    }
    free(c);
    c = next;
  }
}

static void *relay_main(void *arg) {
  (void)arg;
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(g_epoll, events, MAX_EVENTS, g_again != NULL ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      abort();
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        uint64_t v;
        (void)!read(g_wake, &v, sizeof v);
        run_commands();
        continue;
      }
      endpoint *e = events[i].data.ptr;
      if (!e->t->closed) pump(e->t);
    }
    // Those that used up their rounds, after everyone else's turn (a pump may queue them again, for the next one).
    tunnel *again = g_again;
    g_again = NULL;
    while (again != NULL) {
      tunnel *t = again;
      again = t->next_again;
      t->queued = 0;
      if (!t->closed) pump(t);
    }
    // Closed ones are freed once nothing can point at them: no event of this batch, no place on the again list.
    tunnel *keep = NULL;
    while (g_free_list != NULL) {
      tunnel *t = g_free_list;
      g_free_list = t->next_free;
      if (t->queued) {
        t->next_free = keep;
        keep = t;
      } else {
        free(t);
      }
    }
    g_free_list = keep;
  }
  return NULL;
}

/** A command for the relay thread (zeroed: no reset, no tunnel). */
static command *new_command(int op, uint32_t slot) {
  command *c = calloc(1, sizeof *c);
  if (c == NULL) abort();
  c->op = op;
  c->slot = slot;
  return c;
}

static void enqueue(command *c) {
  pthread_mutex_lock(&g_lock);
  if (g_tail != NULL) g_tail->next = c;
  else g_head = c;
  g_tail = c;
  pthread_mutex_unlock(&g_lock);
  uint64_t one = 1;
  (void)!write(g_wake, &one, sizeof one);
}

// ---- JavaScript side ----------------------------------------------------------------------------------------------

#define CHECK(env, call)                                   \
  do {                                                     \
    if ((call) != napi_ok) {                               \
      napi_throw_error((env), NULL, "N-API call failed");  \
      return NULL;                                         \
    }                                                      \
  } while (0)

static void call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)context;
  report *r = data;
  if (env != NULL && fn != NULL) {
    napi_value argv[3], undefined;
    napi_create_uint32(env, r->slot, &argv[0]);
    napi_create_int32(env, r->reason, &argv[1]);
    napi_create_int32(env, r->err, &argv[2]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, fn, 3, argv, NULL);
  }
  free(r);
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/** init(counters: ArrayBuffer, onClose(slot, reason, errno)): starts the relay thread; returns the slot count. */
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, result;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (g_epoll >= 0) {
    napi_throw_error(env, NULL, "the native relay is already initialised");
    return NULL;
  }
  void *data;
  size_t length;
  CHECK(env, napi_get_arraybuffer_info(env, argv[0], &data, &length));
  CHECK(env, napi_create_reference(env, argv[0], 1, &g_counters_ref));
  g_counters = data;
  g_slots = (uint32_t)(length / (2 * sizeof(uint64_t)));
  g_table = calloc(g_slots, sizeof *g_table);
  if (g_table == NULL) return throw_errno(env, "calloc", ENOMEM);
  CHECK(env, napi_create_string_utf8(env, "wsgate native relay", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &g_tsfn));
  // No tunnel, no reason to keep the process alive; native-relay.ts refs it while tunnels live.
  CHECK(env, napi_unref_threadsafe_function(env, g_tsfn));
  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  if (g_epoll < 0) return throw_errno(env, "epoll_create1", errno);
  g_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g_wake < 0) return throw_errno(env, "eventfd", errno);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, g_wake, &ev) != 0) return throw_errno(env, "epoll_ctl", errno);
  int err = pthread_create(&g_thread, NULL, relay_main, NULL);
  if (err != 0) return throw_errno(env, "pthread_create", err);
  pthread_detach(g_thread);
  CHECK(env, napi_create_uint32(env, g_slots, &result));
  return result;
}

static int take_head(napi_env env, napi_value v, direction *x) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok) return -1;
  if (type == napi_undefined || type == napi_null) return 0;
  void *data;
  size_t length;
  if (napi_get_buffer_info(env, v, &data, &length) != napi_ok) return -1;
  if (length == 0) return 0;
  x->head = malloc(length);
  if (x->head == NULL) return -1;
  memcpy(x->head, data, length);
  x->head_len = length;
  return 0;
}

/**
 * add(slot, clientFd, upstreamFd, headUp?, headDown?): dup()s both descriptors and hands them to the relay thread,
 * with the bytes already read from the client (headUp, for the upstream) and from the upstream (headDown). The
 * caller must destroy its sockets afterwards: the originals are its to close, the duplicates the thread's.
 */
static napi_value js_add(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t slot;
  int32_t fds[2];
  CHECK(env, napi_get_value_uint32(env, argv[0], &slot));
  CHECK(env, napi_get_value_int32(env, argv[1], &fds[0]));
  CHECK(env, napi_get_value_int32(env, argv[2], &fds[1]));
  if (g_epoll < 0 || slot >= g_slots) {
    napi_throw_error(env, NULL, "native relay: not initialised, or slot out of range");
    return NULL;
  }
  tunnel *t = calloc(1, sizeof *t);
  if (t == NULL) return throw_errno(env, "calloc", ENOMEM);
  t->slot = slot;
  t->fd[0] = t->fd[1] = -1;
  for (int d = 0; d < 2; d++) t->dir[d].pipe_r = t->dir[d].pipe_w = -1;
  int err = 0;
  const char *what = NULL;
  for (int s = 0; s < 2 && err == 0; s++) {
    t->ep[s].t = t;
    t->ep[s].side = s;
    t->fd[s] = fcntl(fds[s], F_DUPFD_CLOEXEC, 0);
    if (t->fd[s] < 0) {
      err = errno;
      what = "dup";
    } else {
      int fl = fcntl(t->fd[s], F_GETFL);
      if (fl < 0 || fcntl(t->fd[s], F_SETFL, fl | O_NONBLOCK) != 0) {
        err = errno;
        what = "fcntl";
      }
    }
  }
  if (err == 0 && (take_head(env, argc > 3 ? argv[3] : NULL, &t->dir[0]) != 0 ||
                   take_head(env, argc > 4 ? argv[4] : NULL, &t->dir[1]) != 0)) {
    err = ENOMEM;
    what = "head";
  }
  if (err != 0) {
    // Nothing was handed over: the caller keeps its sockets, and these duplicates go.
    for (int s = 0; s < 2; s++) if (t->fd[s] >= 0) close(t->fd[s]);
    for (int d = 0; d < 2; d++) free(t->dir[d].head);
    free(t);
    return throw_errno(env, what, err);
  }
  g_counters[slot * 2] = 0;
  g_counters[slot * 2 + 1] = 0;
  command *c = new_command(OP_ADD, slot);
  c->t = t;
  enqueue(c);
  return NULL;
}

/** shutdown(slot): a graceful close, as end() on both sockets: what is in flight goes, then a FIN each way. */
static napi_value js_shutdown(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t slot;
  CHECK(env, napi_get_value_uint32(env, argv[0], &slot));
  enqueue(new_command(OP_SHUTDOWN, slot));
  return NULL;
}

/** close(slot, resetClient, resetUpstream): both sockets closed now, the named ones with an RST. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  // Arguments first: a bad one returns before anything is allocated.
  uint32_t slot;
  bool a = false, b = false;
  CHECK(env, napi_get_value_uint32(env, argv[0], &slot));
  CHECK(env, napi_get_value_bool(env, argv[1], &a));
  CHECK(env, napi_get_value_bool(env, argv[2], &b));
  command *c = new_command(OP_CLOSE, slot);
  c->rst_client = a;
  c->rst_upstream = b;
  enqueue(c);
  return NULL;
}

/** pipes(): [pooled, in use]: the relay's pipes now (each two descriptors). */
static napi_value js_pipes(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out, a, b;
  CHECK(env, napi_create_array_with_length(env, 2, &out));
  CHECK(env, napi_create_uint32(env, __atomic_load_n(&g_pipes_pooled, __ATOMIC_RELAXED), &a));
  CHECK(env, napi_create_uint32(env, __atomic_load_n(&g_pipes_used, __ATOMIC_RELAXED), &b));
  CHECK(env, napi_set_element(env, out, 0, a));
  CHECK(env, napi_set_element(env, out, 1, b));
  return out;
}

/** ref(keep): whether pending close reports keep the event loop alive (while tunnels live). */
static napi_value js_ref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool keep = false;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_bool(env, argv[0], &keep));
  if (g_epoll >= 0) {
    if (keep) napi_ref_threadsafe_function(env, g_tsfn);
    else napi_unref_threadsafe_function(env, g_tsfn);
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
      {"add", NULL, js_add, NULL, NULL, NULL, napi_default, NULL},
      {"shutdown", NULL, js_shutdown, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, js_ref, NULL, NULL, NULL, napi_default, NULL},
      {"pipes", NULL, js_pipes, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
