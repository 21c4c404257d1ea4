// rxbench: the C reference for the rxrpc benchmark, written against the raw
// AF_RXRPC socket API (linux/rxrpc.h).
//
//   rxbench server --port P [--ports N] [--service S] [--backlog N] [--keyring DESC]
//   rxbench client --port P [--ports N] [--endpoints E] [--service S]
//                  --workload small|upload|download|upgrade|memory [options]
//                  [--key DESC --level 0|1|2]
//
// --ports N: the server listens on N sockets, ports P to P+N-1; the client
// spreads its calls over them. --endpoints E: the client makes its calls
// from E sockets of its own, each bound to a private UDP port (a local
// endpoint of its own: the kernel gives each (local endpoint, peer) pair 16
// calls at once); without it, one unbound socket. Call number k in flight
// keeps endpoint k mod E and port (k / E) mod N. --fresh (upgrade): every
// probe from a new socket bound to a new private port, as a fresh client.
//
// rxkad: --keyring names a keyring of "rxrpc_s" keys for the server, --key an
// "rxrpc" key for the client's calls, made beforehand (the benchmark suite
// makes them in its session keyring, which these processes inherit).
//
// Wire protocol of the benchmark: the first 4 bytes of a request (big-endian)
// are the number of reply bytes the server sends back; the rest of the
// request is read and discarded. The server binds S and S+1 on one address
// with S upgradeable to S+1; workloads call S+1, the upgrade probe calls S.
//
// Threads: an epoll loop reads everything with recvmsg(MSG_DONTWAIT). Sends
// that may sleep go to one sender thread making blocking sendmsg calls: the
// first send of a client call (it waits for a free channel: a peer gets 16
// calls at once), and whatever part of a reply or request the kernel did not
// take at once (it waits for the call's transmit window, which has no poll
// wakeup). User call IDs are the addresses of the call records.
//
// Output: the server prints {"ready":...} once listening and runs until its
// stdin closes; the client prints one JSON line with its figures.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rxrpc.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_RXRPC
#define AF_RXRPC 33
#endif
#ifndef SOL_RXRPC
#define SOL_RXRPC 272
#endif

#define RECV_BUFFER (256 * 1024)
#define CTL_SPACE 128

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "rxbench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "%s%s\n", errno ? ": " : "", errno ? strerror(errno) : "");
  va_end(ap);
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double rss_mb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL || fscanf(f, "%ld %ld", &pages, &resident) != 2) die("statm");
  fclose(f);
  return resident * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static struct sockaddr_rxrpc address(uint16_t service, uint16_t port) {
  struct sockaddr_rxrpc srx;
  memset(&srx, 0, sizeof srx);
  srx.srx_family = AF_RXRPC;
  srx.srx_service = service;
  srx.transport_type = SOCK_DGRAM;
  srx.transport_len = sizeof srx.transport.sin;
  srx.transport.sin.sin_family = AF_INET;
  srx.transport.sin.sin_port = htons(port);
  srx.transport.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return srx;
}

// Control messages of one sendmsg: the user call ID and optional flags.
struct control {
  union {
    char buf[CTL_SPACE];
    struct cmsghdr align;
  };
  size_t len;
};

static void control_init(struct control *c, unsigned long id) {
  memset(c, 0, sizeof *c);
  struct cmsghdr *h = (struct cmsghdr *)c->buf;
  h->cmsg_level = SOL_RXRPC;
  h->cmsg_type = RXRPC_USER_CALL_ID;
  h->cmsg_len = CMSG_LEN(sizeof id);
  memcpy(CMSG_DATA(h), &id, sizeof id);
  c->len = CMSG_SPACE(sizeof id);
}

static void control_flag(struct control *c, int type) {
  struct cmsghdr *h = (struct cmsghdr *)(c->buf + c->len);
  h->cmsg_level = SOL_RXRPC;
  h->cmsg_type = type;
  h->cmsg_len = CMSG_LEN(0);
  c->len += CMSG_SPACE(0);
}

static ssize_t send_call(int fd, const struct sockaddr_rxrpc *target, const struct control *c, const void *data,
                         size_t len, int flags) {
  struct iovec iov = {(void *)data, len};
  struct msghdr msg = {0};
  msg.msg_name = (void *)target;
  msg.msg_namelen = target ? sizeof *target : 0;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = (void *)c->buf;
  msg.msg_controllen = c->len;
  ssize_t n;
  do n = sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

// One received message, decoded.
struct message {
  unsigned long id;
  int kind;  // 0 data, or the terminal control message type (RXRPC_ACK, RXRPC_ABORT, ...)
  int32_t code;
  ssize_t len;
  int flags;
  uint16_t service;
};

// recvmsg(MSG_DONTWAIT); 0 when nothing is queued.
static int receive(int fd, uint8_t *buf, size_t size, struct message *m) {
  union {
    char buf[CTL_SPACE];
    struct cmsghdr align;
  } ctl;
  struct sockaddr_rxrpc srx;
  struct iovec iov = {buf, size};
  struct msghdr msg = {0};
  msg.msg_name = &srx;
  msg.msg_namelen = sizeof srx;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return 0;
    die("recvmsg");
  }
  memset(m, 0, sizeof *m);
  m->len = n;
  m->flags = msg.msg_flags;
  m->service = msg.msg_namelen >= 4 ? srx.srx_service : 0;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h != NULL; h = CMSG_NXTHDR(&msg, h)) {
    if (h->cmsg_level != SOL_RXRPC) continue;
    if (h->cmsg_type == RXRPC_USER_CALL_ID) {
      memcpy(&m->id, CMSG_DATA(h), sizeof m->id);
    } else {
      m->kind = h->cmsg_type;
      if (h->cmsg_len >= CMSG_LEN(4)) memcpy(&m->code, CMSG_DATA(h), 4);
    }
  }
  return 1;
}

// ---- sender thread ----------------------------------------------------------

struct call;
struct job {
  struct job *next;
  int fd;
  struct call *call;
  struct sockaddr_rxrpc target;
  int has_target;
  struct control ctl;
  const uint8_t *data;
  size_t len;
};

static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct job *head, *tail;
  int notify;  // eventfd: a first send failed
  void (*done)(struct job *, ssize_t, int);
  int sending;          // a job's sendmsg is running (lock)
  pthread_cond_t idle;  // signalled when a sendmsg has returned
} sender = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, -1, NULL, 0, PTHREAD_COND_INITIALIZER};

static void *sender_loop(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&sender.lock);
    while (sender.head == NULL) pthread_cond_wait(&sender.wake, &sender.lock);
    struct job *job = sender.head;
    sender.head = job->next;
    if (sender.head == NULL) sender.tail = NULL;
    sender.sending = 1;
    pthread_mutex_unlock(&sender.lock);
    // Blocking: sleeps for a channel or the transmit window, never spins.
    ssize_t n = send_call(job->fd, job->has_target ? &job->target : NULL, &job->ctl, job->data, job->len, 0);
    int err = n < 0 ? errno : 0;
    pthread_mutex_lock(&sender.lock);
    sender.sending = 0;
    pthread_cond_broadcast(&sender.idle);
    pthread_mutex_unlock(&sender.lock);
    errno = err;
    sender.done(job, n, n < 0 ? errno : 0);
    free(job);
  }
  return NULL;
}

static void sender_start(void (*done)(struct job *, ssize_t, int)) {
  sender.done = done;
  sender.notify = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (sender.notify < 0) die("eventfd");
  pthread_t t;
  if (pthread_create(&t, NULL, sender_loop, NULL) != 0) die("pthread_create");
  pthread_detach(t);
}

static void sender_post(struct job *job) {
  job->next = NULL;
  pthread_mutex_lock(&sender.lock);
  if (sender.tail) sender.tail->next = job;
  else sender.head = job;
  sender.tail = job;
  pthread_cond_signal(&sender.wake);
  pthread_mutex_unlock(&sender.lock);
}

// ---- server -------------------------------------------------------------------

// A server call. It is freed once both its terminal message has been read and
// the sender thread is done with it (lock: sender.lock).
struct call {
  int fd;  // the socket the call is on
  int slot;  // client: which of the calls in flight (its endpoint and port)
  uint8_t head[4];
  size_t got;
  int seen, request_done;
  int sending;
  int ended;
  // client side
  double started;
  size_t received;
  uint16_t service;
};

static uint8_t *payload;  // reply and request bytes (a fixed pattern)
static size_t payload_size;

static void ensure_payload(size_t size) {
  if (size <= payload_size) return;
  payload = realloc(payload, size);
  if (payload == NULL) die("out of memory");
  memset(payload + payload_size, 0x5a, size - payload_size);
  payload_size = size;
}

static void server_sent(struct job *job, ssize_t n, int err) {
  (void)n;
  (void)err;  // a failed reply shows up as the call's terminal message
  pthread_mutex_lock(&sender.lock);
  job->call->sending = 0;
  if (job->call->ended) free(job->call);
  pthread_mutex_unlock(&sender.lock);
}

static void charge(int fd) {
  struct call *c = calloc(1, sizeof *c);
  c->fd = fd;
  struct control ctl;
  control_init(&ctl, (unsigned long)c);
  control_flag(&ctl, RXRPC_CHARGE_ACCEPT);
  if (send_call(fd, NULL, &ctl, NULL, 0, MSG_DONTWAIT) < 0) die("charge");
}

static void reply(int fd, struct call *c) {
  size_t want = (size_t)c->head[0] << 24 | c->head[1] << 16 | c->head[2] << 8 | c->head[3];
  if (c->got < 4) want = 0;
  if (want > 256u << 20) want = 256u << 20;
  ensure_payload(want);
  struct control ctl;
  control_init(&ctl, (unsigned long)c);
  // Most replies go at once; the rest waits for the window on the sender thread.
  ssize_t n = send_call(fd, NULL, &ctl, payload, want, MSG_DONTWAIT);
  if (n == (ssize_t)want) return;
  if (n < 0 && errno != EAGAIN) return;  // the terminal message follows
  struct job *job = calloc(1, sizeof *job);
  job->fd = fd;
  job->call = c;
  job->ctl = ctl;
  job->data = payload + (n > 0 ? n : 0);
  job->len = want - (n > 0 ? n : 0);
  c->sending = 1;
  sender_post(job);
}

// rxkad: the key ("rxrpc", by description) and level of the client's calls,
// and the server's keyring of "rxrpc_s" keys; all set before bind.
static const char *security_key, *security_keyring;
static unsigned int security_level;

// A client socket with the rxkad key and level, if any.
static int client_socket(void) {
  int fd = socket(AF_RXRPC, SOCK_DGRAM | SOCK_CLOEXEC, PF_INET);
  if (fd < 0) die("socket");
  if (security_key && (setsockopt(fd, SOL_RXRPC, RXRPC_SECURITY_KEY, security_key, strlen(security_key)) < 0 ||
                       setsockopt(fd, SOL_RXRPC, RXRPC_MIN_SECURITY_LEVEL, &security_level, sizeof security_level) < 0))
    die("key %s, level %u", security_key, security_level);
  return fd;
}

#define MAX_SOCKETS 128

// Server and client wait with epoll, as libuv does for the Node sides: with
// the 64 ports of a full run, poll() over all of them cost the C server 0.4 ms
// of CPU per call one at a time under emulation (7.3). Each event carries its
// descriptor.
static int watch(int ep, int fd) {
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int server(uint16_t port, int ports, uint16_t service, int backlog) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  for (int p = 0; p < ports; p++) {
    int fd = socket(AF_RXRPC, SOCK_DGRAM | SOCK_CLOEXEC, PF_INET);
    if (fd < 0) die("socket");
    if (security_keyring &&
        setsockopt(fd, SOL_RXRPC, RXRPC_SECURITY_KEYRING, security_keyring, strlen(security_keyring)) < 0)
      die("keyring %s", security_keyring);
    for (int i = 0; i < 2; i++) {
      struct sockaddr_rxrpc srx = address(service + i, port + p);
      if (bind(fd, (struct sockaddr *)&srx, sizeof srx) < 0) die("bind %u port %u", service + i, port + p);
    }
    uint16_t upgrade[2] = {service, service + 1};
    if (setsockopt(fd, SOL_RXRPC, RXRPC_UPGRADEABLE_SERVICE, upgrade, sizeof upgrade) < 0) die("upgradeable service");
    if (listen(fd, backlog) < 0) die("listen %d", backlog);
    for (int i = 0; i < backlog; i++) charge(fd);
    if (watch(ep, fd) < 0) die("epoll_ctl");
  }
  // Its stdin closing ends it; a stdin epoll cannot watch (a file, /dev/null) is left alone.
  if (watch(ep, STDIN_FILENO) < 0 && errno != EPERM) die("epoll_ctl stdin");
  sender_start(server_sent);
  printf("{\"ready\":true,\"port\":%u,\"ports\":%d,\"services\":[%u,%u],\"backlog\":%d}\n", port, ports, service,
         service + 1, backlog);
  fflush(stdout);

  uint8_t *buf = malloc(RECV_BUFFER);
  struct epoll_event ready[MAX_SOCKETS + 1];
  for (;;) {
    int n = epoll_wait(ep, ready, MAX_SOCKETS + 1, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int r = 0; r < n; r++) {
      int fd = ready[r].data.fd;
      if (fd == STDIN_FILENO) {
        char b[64];
        if (read(STDIN_FILENO, b, sizeof b) <= 0) return 0;  // the launcher went away
        continue;
      }
      struct message m;
      while (receive(fd, buf, RECV_BUFFER, &m)) {
        struct call *c = (struct call *)m.id;
        if (c == NULL) continue;
        if (!c->seen) c->seen = 1, charge(fd);  // a new call: keep the pool full
        if (m.kind != 0 || (m.flags & MSG_EOR)) {  // terminal: ACK, ABORT, errors
          pthread_mutex_lock(&sender.lock);
          c->ended = 1;
          if (!c->sending) free(c);
          pthread_mutex_unlock(&sender.lock);
          continue;
        }
        if (c->request_done) continue;  // empty messages after the request carry nothing
        for (ssize_t i = 0; i < m.len && c->got + i < 4; i++) c->head[c->got + i] = buf[i];
        c->got += m.len;
        // The last data of the request comes without MSG_MORE.
        if (!(m.flags & MSG_MORE)) c->request_done = 1, reply(fd, c);
      }
    }
  }
}

// ---- client -------------------------------------------------------------------

struct stats {
  double *lat;  // latencies in seconds of the measured calls
  size_t n, cap;
};

static void stats_add(struct stats *s, double v) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 4096;
    s->lat = realloc(s->lat, s->cap * sizeof *s->lat);
  }
  s->lat[s->n++] = v;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double percentile(struct stats *s, double p) {
  if (s->n == 0) return 0;
  qsort(s->lat, s->n, sizeof *s->lat, cmp_double);
  size_t i = (size_t)(p * (s->n - 1) + 0.5);
  return s->lat[i];
}

static struct {
  int fds[MAX_SOCKETS];  // the local endpoints
  int endpoints;
  int ports;  // server ports from target's port on
  int fresh;  // upgrade: a new local endpoint for every probe
  struct sockaddr_rxrpc target;
  const uint8_t *request;
  size_t request_len;
  int upgrade;
  int active;
  long errors;
  long completed;  // calls ended, warm-up included
  // epoll over the local endpoints and the sender's eventfd, as libuv waits
  // for the Node clients: poll() and a recvmsg on every endpoint per wakeup
  // grew with the endpoints (100 in the peers rows). The last wait's ready
  // descriptors are drained in turn, so that no endpoint starves.
  int ep;
  struct epoll_event ready[MAX_SOCKETS + 1];
  int nready, next_ready;
} client;

static void client_watch(int fd) {
  if (watch(client.ep, fd) < 0) die("epoll_ctl");
}

static volatile long first_send_failures;
static volatile int first_send_errno;
// The slots of calls whose first send failed, for the poll loop to restart (lock: sender.lock).
static int failed_slots[4096];
static int failed_slot_count;

// Failed calls by what ended them: the control message type (0: the first
// sendmsg failed, with its errno) and its code.
#define SHORT_REPLY 100
static struct {
  int kind, code;
  long count;
} failures[16];

static void failed(int kind, int code) {
  client.errors++;
  for (int i = 0; i < 16; i++) {
    if (failures[i].count == 0) failures[i].kind = kind, failures[i].code = code;
    if (failures[i].kind == kind && failures[i].code == code) {
      failures[i].count++;
      return;
    }
  }
}

static void reset_failures(void) {
  memset(failures, 0, sizeof failures);
  client.errors = 0;
}

static void print_failures(void) {
  static const char *names[] = {[0] = "sendmsg", [RXRPC_ABORT] = "abort", [RXRPC_NET_ERROR] = "net-error",
                                [RXRPC_LOCAL_ERROR] = "local-error", [RXRPC_BUSY] = "busy"};
  printf(",\"failures\":{");
  for (int i = 0; i < 16 && failures[i].count; i++) {
    int k = failures[i].kind;
    const char *name = k == SHORT_REPLY ? "short-reply" : k < 8 && names[k] ? names[k] : "other";
    printf("%s\"%s %d\":%ld", i ? "," : "", name, failures[i].code, failures[i].count);
  }
  printf("}");
}

static void client_sent(struct job *job, ssize_t n, int err) {
  (void)job;
  if (n >= 0) return;
  first_send_errno = err;
  // The call never started: the poll loop replaces it. Its record is kept:
  // a late terminal message may still name it.
  pthread_mutex_lock(&sender.lock);
  if (failed_slot_count < 4096) failed_slots[failed_slot_count++] = job->call->slot;
  pthread_mutex_unlock(&sender.lock);
  __atomic_add_fetch(&first_send_failures, 1, __ATOMIC_SEQ_CST);
  uint64_t one = 1;
  if (write(sender.notify, &one, sizeof one) < 0) die("eventfd write");
}

// A socket bound to a private UDP port: a local endpoint of its own (port 0
// would share the kernel's one anonymous endpoint).
static int private_socket(void) {
  int fd = client_socket();
  for (int attempt = 0;; attempt++) {
    struct sockaddr_rxrpc local = address(0, 49152 + (uint16_t)(random() % 16384));
    local.transport.sin.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) == 0) return fd;
    if (errno != EADDRINUSE || attempt > 50) die("bind a private port");
  }
}

// Starts call number `slot` of those in flight: its endpoint and port follow from it.
static void start_call_slot(int slot) {
  struct call *c = calloc(1, sizeof *c);
  struct job *job = calloc(1, sizeof *job);
  c->started = now();
  c->slot = slot;
  c->fd = client.fds[slot % client.endpoints];
  job->fd = c->fd;
  job->call = c;
  job->target = client.target;
  job->target.transport.sin.sin_port = htons(ntohs(client.target.transport.sin.sin_port) + (slot / client.endpoints) % client.ports);
  job->has_target = 1;
  control_init(&job->ctl, (unsigned long)c);
  if (client.upgrade) {
    control_flag(&job->ctl, RXRPC_UPGRADE_SERVICE);
    control_flag(&job->ctl, RXRPC_EXCLUSIVE_CALL);
  }
  job->data = client.request;
  job->len = client.request_len;
  client.active++;
  sender_post(job);
}

static void start_call(void) { start_call_slot(0); }

// Outcome of a finished client call.
struct outcome {
  struct call *call;
  int slot;
  int ok;
  int32_t abort;
  uint16_t service;
};

// Waits until a call ends (or until `deadline`); 0 when the deadline passed.
static int next_outcome(struct outcome *o, double deadline, uint8_t *buf) {
  for (;;) {
    struct message m;
    for (; client.next_ready < client.nready; client.next_ready++) {
      int fd = client.ready[client.next_ready].data.fd;
      if (fd == sender.notify) {
        uint64_t v;
        if (read(sender.notify, &v, sizeof v) < 0 && errno != EAGAIN) die("eventfd read");
        continue;
      }
      // An outcome returns with this descriptor still next: what else it holds is read first next time.
      while (receive(fd, buf, RECV_BUFFER, &m)) {
        struct call *c = (struct call *)m.id;
        if (c == NULL) continue;
        if (m.kind == 0) {
          c->received += m.len;
          if (m.len > 0) c->service = m.service;
          if (!(m.flags & MSG_EOR)) continue;
        }
        client.active--;
        client.completed++;
        o->call = c;
        o->slot = c->slot;
        o->ok = m.kind == 0;
        o->abort = m.kind == RXRPC_ABORT ? m.code : 0;
        o->service = c->service;
        if (!o->ok) failed(m.kind, m.code);
        return 1;
      }
    }
    if (first_send_failures > 0) {
      __atomic_sub_fetch(&first_send_failures, 1, __ATOMIC_SEQ_CST);
      client.active--;
      failed(0, first_send_errno);
      pthread_mutex_lock(&sender.lock);
      o->slot = failed_slot_count > 0 ? failed_slots[--failed_slot_count] : 0;
      pthread_mutex_unlock(&sender.lock);
      o->call = NULL;
      o->ok = 0;
      o->abort = 0;
      return 1;
    }
    int timeout = -1;
    if (deadline > 0) {
      double left = deadline - now();
      if (left <= 0) return 0;
      timeout = (int)(left * 1000) + 1;
    }
    int n = epoll_wait(client.ep, client.ready, MAX_SOCKETS + 1, timeout);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    client.nready = n < 0 ? 0 : n;
    client.next_ready = 0;
  }
}

// Waits until no job is queued or in sendmsg: their data may be the request
// about to be freed. (A call's reply can come back before the sendmsg that
// sent its request has returned; AddressSanitizer saw that buffer freed.)
static void sender_drain(void) {
  pthread_mutex_lock(&sender.lock);
  while (sender.head != NULL || sender.sending) pthread_cond_wait(&sender.idle, &sender.lock);
  pthread_mutex_unlock(&sender.lock);
}

static void make_request(size_t len, uint32_t reply) {
  if (len < 4) len = 4;
  ensure_payload(len);
  sender_drain();
  free((void *)client.request);
  uint8_t *r = malloc(len);
  memcpy(r, payload, len);
  r[0] = reply >> 24, r[1] = reply >> 16, r[2] = reply >> 8, r[3] = reply;
  client.request = r;
  client.request_len = len;
}

struct options {
  const char *workload;
  int inflight;
  double seconds, warmup;
  long calls;
  size_t size;
  long checkpoint[8];
  int checkpoints;
  long min_calls;
};

// Small calls: `inflight` calls kept running; rate and latency of the calls
// that ended within the measured window.
static void run_small(struct options *o, uint8_t *buf) {
  make_request(4, 4);
  struct stats s = {0};
  double begin = 0, end = 0;  // the window opens `warmup` seconds after the first call ended
  for (int i = 0; i < o->inflight; i++) start_call_slot(i);
  struct outcome out;
  double rss_inflight = 0;
  while (client.active > 0) {
    if (!next_outcome(&out, 0, buf)) break;
    double t = now();
    if (begin == 0) begin = t + o->warmup, end = begin + o->seconds;
    if (out.ok && t >= begin && t < end) stats_add(&s, t - out.call->started);
    if (out.call) free(out.call);
    if (t < end) start_call_slot(out.slot);
    else if (rss_inflight == 0) rss_inflight = rss_mb();  // the others are still in flight
  }
  printf("{\"workload\":\"small\",\"inflight\":%d,\"seconds\":%.3f,\"calls\":%zu,\"rate\":%.1f,"
         "\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"errors\":%ld,\"rss_inflight_mb\":%.3f",
         o->inflight, o->seconds, s.n, s.n / o->seconds, percentile(&s, 0.5) * 1e3, percentile(&s, 0.99) * 1e3,
         client.errors, rss_inflight);
}

static void warm_up(uint8_t *buf) {
  make_request(4, 4);
  struct outcome out;
  for (int i = 0; i < 3; i++) {
    start_call();
    next_outcome(&out, 0, buf);
    if (out.call) free(out.call);
  }
}

// Bulk calls one at a time until `seconds` have passed: MB/s (10^6 bytes).
static void run_bulk(struct options *o, uint8_t *buf, int upload) {
  warm_up(buf);
  reset_failures();
  make_request(upload ? o->size : 4, upload ? 4 : (uint32_t)o->size);
  long calls = 0;
  struct stats s = {0};
  struct outcome out;
  double t0 = now(), t;
  long tries = 0;
  do {
    start_call();
    next_outcome(&out, 0, buf);
    tries++;
    if (out.ok && (upload || out.call->received == o->size)) calls++, stats_add(&s, now() - out.call->started);
    else if (out.ok) failed(SHORT_REPLY, (int)out.call->received);
    if (out.call) free(out.call);
    t = now();
  } while (t - t0 < o->seconds || (calls < o->min_calls && tries < 4 * o->min_calls));
  printf("{\"workload\":\"%s\",\"size\":%zu,\"calls\":%ld,\"elapsed\":%.3f,\"mbps\":%.2f,\"p50_ms\":%.3f,\"errors\":%ld",
         upload ? "upload" : "download", o->size, calls, t - t0, calls * (double)o->size / 1e6 / (t - t0),
         percentile(&s, 0.5) * 1e3, client.errors);
  // Each call's time, in the order they ended (the spread of the row).
  printf(",\"call_ms\":[");
  for (size_t i = 0; i < s.n; i++) printf("%s%.3f", i ? "," : "", s.lat[i] * 1e3);
  printf("]");
}

// Upgrade probes one at a time, each on a new connection: latency and outcomes.
static void run_upgrade(struct options *o, uint8_t *buf) {
  warm_up(buf);
  reset_failures();
  uint16_t asked = client.target.srx_service;
  make_request(4, 4);
  client.upgrade = 1;
  // Fresh probes: the warm-up's endpoint is done with, and waited on no more (as before epoll).
  if (client.fresh && epoll_ctl(client.ep, EPOLL_CTL_DEL, client.fds[0], NULL) < 0) die("epoll_ctl");
  struct stats s = {0};
  long upgraded = 0, original = 0, aborted = 0;
  struct outcome out;
  for (long i = 0; i < o->calls; i++) {
    // A fresh probe's time includes making its socket, as a new Client's does.
    double t0 = now();
    int fresh = client.fresh ? private_socket() : -1;
    if (fresh >= 0) client.fds[0] = fresh, client_watch(fresh);
    start_call();
    next_outcome(&out, 0, buf);
    if (fresh >= 0) {
      // Closing it takes it out of the epoll set; forget what the last wait said of it.
      close(fresh);
      client.nready = client.next_ready = 0;
    }
    if (out.call) stats_add(&s, now() - (fresh >= 0 ? t0 : out.call->started));
    if (out.ok) *(out.service == asked ? &original : &upgraded) += 1;
    else if (out.abort) aborted++;
    if (out.call) free(out.call);
  }
  long failed = client.errors - aborted;
  printf("{\"workload\":\"upgrade\",\"calls\":%ld,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"upgraded\":%ld,\"original\":%ld,"
         "\"aborted\":%ld,\"errors\":%ld",
         o->calls, percentile(&s, 0.5) * 1e3, percentile(&s, 0.99) * 1e3, upgraded, original, aborted, failed);
}

// Small calls, `inflight` at once, with the resident size at each checkpoint.
static void run_memory(struct options *o, uint8_t *buf) {
  make_request(4, 4);
  long total = o->checkpoint[o->checkpoints - 1], done = 0, started = 0;
  double rss[8];
  int next = 0;
  struct outcome out;
  double t0 = now();
  for (; started < o->inflight && started < total; started++) start_call();
  while (client.active > 0) {
    next_outcome(&out, 0, buf);
    if (out.call) free(out.call);
    done++;
    while (next < o->checkpoints && done == o->checkpoint[next]) rss[next++] = rss_mb();
    if (started < total) start_call(), started++;
  }
  printf("{\"workload\":\"memory\",\"inflight\":%d,\"elapsed\":%.3f,\"rss_mb\":{", o->inflight, now() - t0);
  for (int i = 0; i < o->checkpoints; i++) printf("%s\"%ld\":%.2f", i ? "," : "", o->checkpoint[i], rss[i]);
  printf("},\"errors\":%ld", client.errors);
}

static int run_client(uint16_t port, uint16_t service, struct options *o) {
  srandom((unsigned)getpid() ^ (unsigned)(now() * 1e6));
  if (client.endpoints == 0) {
    client.endpoints = 1;
    client.fds[0] = client_socket();
  } else {
    for (int e = 0; e < client.endpoints; e++) client.fds[e] = private_socket();
  }
  if (client.ports == 0) client.ports = 1;
  client.target = address(service, port);
  sender_start(client_sent);
  client.ep = epoll_create1(EPOLL_CLOEXEC);
  if (client.ep < 0) die("epoll_create1");
  for (int e = 0; e < client.endpoints; e++) client_watch(client.fds[e]);
  client_watch(sender.notify);
  uint8_t *buf = malloc(RECV_BUFFER);
  double cpu = cpu_seconds();
  if (!strcmp(o->workload, "small")) run_small(o, buf);
  else if (!strcmp(o->workload, "upload")) run_bulk(o, buf, 1);
  else if (!strcmp(o->workload, "download")) run_bulk(o, buf, 0);
  else if (!strcmp(o->workload, "upgrade")) run_upgrade(o, buf);
  else if (!strcmp(o->workload, "memory")) run_memory(o, buf);
  else die("unknown workload %s", o->workload);
  // Figures every workload shares: CPU time of the whole process (both
  // threads, user and system) and every call that ended, warm-up included.
  printf(",\"cpu_s\":%.3f,\"total_calls\":%ld", cpu_seconds() - cpu, client.completed);
  if (client.errors) print_failures();
  printf("}\n");
  fflush(stdout);
  _exit(0);  // the sender thread may still sleep in a send; nothing to tidy
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: rxbench server|client --port P [--service S] [options]\n");
    return 2;
  }
  uint16_t port = 0, service = 4100;
  int backlog = 31;
  struct options o = {"small", 1, 3, 0.5, 20, 1 << 20, {0}, 0, 1};
  int ports = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--service")) service = atoi(v);
    else if (!strcmp(k, "--backlog")) backlog = atoi(v);
    else if (!strcmp(k, "--workload")) o.workload = v;
    else if (!strcmp(k, "--inflight")) o.inflight = atoi(v);
    else if (!strcmp(k, "--seconds")) o.seconds = atof(v);
    else if (!strcmp(k, "--warmup")) o.warmup = atof(v);
    else if (!strcmp(k, "--calls")) o.calls = atol(v);
    else if (!strcmp(k, "--size")) o.size = strtoul(v, NULL, 10);
    else if (!strcmp(k, "--min-calls")) o.min_calls = atol(v);
    else if (!strcmp(k, "--ports")) ports = atoi(v);
    else if (!strcmp(k, "--endpoints")) client.endpoints = atoi(v);
    else if (!strcmp(k, "--fresh")) client.fresh = atoi(v);
    else if (!strcmp(k, "--key")) security_key = v;
    else if (!strcmp(k, "--level")) security_level = atoi(v);
    else if (!strcmp(k, "--keyring")) security_keyring = v;
    else if (!strcmp(k, "--checkpoints")) {
      for (char *p = (char *)v; *p && o.checkpoints < 8; p += *p == ',')
        o.checkpoint[o.checkpoints++] = strtol(p, &p, 10);
    } else {
      errno = 0;
      die("unknown option %s", k);
    }
  }
  errno = 0;
  if (port == 0) die("--port is required");
  if (ports < 1 || ports > MAX_SOCKETS || client.endpoints < 0 || client.endpoints > MAX_SOCKETS) die("bad --ports or --endpoints");
  if (!strcmp(argv[1], "server")) return server(port, ports, service, backlog);
  client.ports = ports;
  if (!strcmp(argv[1], "client")) {
    if (o.inflight < 1 || (!strcmp(o.workload, "memory") && o.checkpoints == 0)) die("bad options");
    return run_client(port, service + (strcmp(o.workload, "upgrade") ? 1 : 0), &o);
  }
  die("unknown mode %s", argv[1]);
}
