// Native layer of rxrpc: one AF_RXRPC socket per object, driven by libuv.
//
// This file is deliberately thin. It performs the system calls and moves
// bytes; everything that interprets them (sockaddr_rxrpc and control message
// encoding, call ids, queues, timeouts, errors by meaning) lives in lib/.
//
// Receiving: a uv_poll watcher on the environment's own loop reads at most
// `batch` messages per wakeup into a shared record array (see kRecord*) and
// one data buffer, then enters JavaScript once with napi_make_callback.
//
// Sending: sendmsg() runs on the JavaScript thread with MSG_DONTWAIT; for a
// call that already exists it never sleeps. The first sendmsg of a new client
// call can sleep in the kernel even with MSG_DONTWAIT (it waits for a free
// channel to its peer), so sendmsgAsync() hands such sends to starter
// threads: up to kMaxStarters per socket, at most one per destination at a
// time, so that a send asleep for one peer's channel holds up no other peer.
// sendmsgAsync(..., blocking) instead hands data to bulk threads that sleep
// in sendmsg until the kernel has taken all of it: the kernel gives no wakeup
// when a call's transmit window opens, but a sleeping sendmsg is woken by it.
// Data handed to a thread is copied first: the caller may reuse, transfer or
// drop its buffer as soon as sendmsgAsync() returns.
//
// interrupt(token) ends a thread's send early: a queued one at once, one in
// the kernel by a signal sent to that thread alone. The signal is a real-time
// signal nobody else handles (chosen at first use, its handler installed
// without SA_RESTART so that the sleeping system call returns EINTR), and it
// is unblocked only in these threads. Nothing in Node can install a handler
// for it, so process.on('SIG...') does not disturb it; its disposition is
// checked before every use all the same.
//
// Closing: mark closed, stop the threads (interrupting sleeping sends),
// stop the poll watcher, close the fd, drop every reference to JavaScript
// values so that the wrapper can be collected, and free the libuv handles in
// their close callbacks. Nothing touches the fd after it is closed, and no
// callback reaches JavaScript after close().
//
// Portability: threads, locks and condition variables come from libuv, and
// signals are sent with the tgkill system call, so that the addon needs no
// glibc symbol newer than 2.28 (pthread_kill and friends moved in 2.34) and
// nothing that musl lacks.

#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "errno-error.h"
#include "keys.h"

namespace {

using rxrpc_errno::ErrnoError;
using rxrpc_errno::ErrnoName;
using rxrpc_errno::ThrowErrno;

constexpr int kAfRxrpc = 33;

// Layout of one received-message record in the shared metadata buffer.
// Fields are host-endian int32 unless noted. lib/native.ts mirrors this.
constexpr size_t kRecordFlags = 0;          // msg_flags
constexpr size_t kRecordDataOffset = 4;     // offset of the data in the batch buffer
constexpr size_t kRecordDataLength = 8;     // bytes of data
constexpr size_t kRecordNameLength = 12;    // msg_namelen as returned
constexpr size_t kRecordControlLength = 16; // msg_controllen as returned
constexpr size_t kRecordName = 20;          // sockaddr_rxrpc, kRecordNameSize bytes
constexpr size_t kRecordNameSize = 36;
constexpr size_t kRecordControl = 56;       // control messages, kRecordControlSize bytes
constexpr size_t kRecordControlSize = 136;
constexpr size_t kRecordSize = 192;

constexpr size_t kDefaultDataCapacity = 256 * 1024;
constexpr size_t kMinReadSpace = 16 * 1024;
// Threads per socket at most: starters (first sends, one destination each)
// and bulk senders (the library keeps fewer blocking sends in flight).
constexpr size_t kMaxStarters = 8;
constexpr size_t kMaxBulkThreads = 8;
// How long interrupt() and close() signal a thread that does not leave the
// kernel before they give up on it (it is then left to finish by itself).
constexpr uint64_t kInterruptLimitMs = 5000;

std::atomic<int> g_live_sockets{0};

// ---------------------------------------------------------------------------
// The wake-up signal.

int g_wake_signal = 0;
uv_once_t g_wake_once = UV_ONCE_INIT;

void WakeHandler(int) {}

bool IsOurs(const struct sigaction& sa) {
  return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == WakeHandler;
}

bool InstallWakeHandler(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = WakeHandler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a sleeping sendmsg returns EINTR
  return sigaction(sig, &sa, nullptr) == 0;
}

// The highest real-time signal that nobody has claimed (glibc keeps the
// lowest ones for itself; Node and libuv use none of them).
void ChooseWakeSignal() {
  for (int sig = SIGRTMAX; sig >= SIGRTMIN + 2; sig--) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0) continue;
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    if (InstallWakeHandler(sig)) {
      g_wake_signal = sig;
      return;
    }
  }
}

int WakeSignal() {
  uv_once(&g_wake_once, ChooseWakeSignal);
  return g_wake_signal;
}

// True when sending the wake signal to a thread is safe: its disposition is
// still ours (reinstated if something reset it to the default, whose action
// for a real-time signal would be to end the process).
bool WakeSignalIntact() {
  int sig = WakeSignal();
  if (sig == 0) return false;
  struct sigaction cur;
  if (sigaction(sig, nullptr, &cur) != 0) return false;
  if (IsOurs(cur)) return true;
  if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) return InstallWakeHandler(sig);
  return false;
}

void Wake(pid_t tid) {
  if (WakeSignalIntact()) syscall(SYS_tgkill, static_cast<pid_t>(getpid()), tid, g_wake_signal);
}

// ---------------------------------------------------------------------------
// Errors and arguments.

bool IsUint8Array(Napi::Value v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

// Bytes of an optional Uint8Array argument (Buffer included). Anything but
// undefined, null or a Uint8Array throws a TypeError naming the argument.
struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
};

bool GetBytes(const Napi::CallbackInfo& info, size_t index, const char* what, Bytes* out) {
  Napi::Value v = info[index];
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!IsUint8Array(v)) {
    Napi::TypeError::New(info.Env(), std::string("The \"") + what +
                                         "\" argument must be a Uint8Array, null or undefined")
        .ThrowAsJavaScriptException();
    return false;
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  out->data = a.Data();
  out->length = a.ByteLength();
  return true;
}

bool GetInt(const Napi::CallbackInfo& info, size_t index, const char* what, int64_t min, int64_t max,
            int64_t* out) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string("The \"") + what + "\" argument must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) ||
      d != static_cast<double>(static_cast<int64_t>(d))) {
    Napi::RangeError::New(info.Env(), std::string("The \"") + what + "\" argument must be an integer from " +
                                          std::to_string(min) + " to " + std::to_string(max) +
                                          ". Received " + v.ToString().Utf8Value())
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

// One sendmsg of `length` bytes with an optional name and control buffer.
ssize_t SendOnce(int fd, const uint8_t* name, size_t name_length, const uint8_t* control, size_t control_length,
                 const uint8_t* data, size_t length, int flags) {
  iovec iov{const_cast<uint8_t*>(data), length};
  msghdr msg{};
  msg.msg_name = name_length > 0 ? const_cast<uint8_t*>(name) : nullptr;
  msg.msg_namelen = static_cast<socklen_t>(name_length);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control_length > 0 ? const_cast<uint8_t*>(control) : nullptr;
  msg.msg_controllen = control_length;
  return sendmsg(fd, &msg, flags);
}

// ---------------------------------------------------------------------------
// Sends made on threads.

// One sendmsg handed to a thread. It owns copies of everything it sends.
struct SendJob {
  double token = 0;
  std::string name;     // target sockaddr: also the destination a starter serialises on
  std::string control;
  std::unique_ptr<uint8_t[]> data;
  size_t length = 0;
  int flags = 0;
  bool blocking = false;  // sleep until all of `data` is taken (bulk threads)
  ssize_t result = 0;
  int err = 0;
  // Under the shared mutex.
  bool interrupted = false;
  bool in_syscall = false;
  bool finished = false;
  pid_t tid = 0;
};

struct Shared;

// A thread of the socket: a starter or a bulk sender.
struct Worker {
  uv_thread_t thread;
  Shared* shared = nullptr;
  bool bulk = false;
  bool exited = false;  // under the shared mutex
  bool joined = false;
};

// What the socket shares with its threads. It is freed by whichever of them
// lets go of it last: normally the socket, after joining every thread; a
// thread that could not be stopped at close() frees it (and closes the fd)
// when it finally leaves the kernel.
struct Shared {
  uv_mutex_t mutex;
  // `cond`: a send left the kernel, a job finished, a thread exited (what
  // interrupt() and close() wait for). Idle threads wait on their own kind's
  // condition variable and are woken one at a time, one per job: waking them
  // all for every first send cost a context switch per idle thread.
  uv_cond_t cond;
  uv_cond_t start_work;
  uv_cond_t bulk_work;
  int fd = -1;
  bool stopping = false;       // close() began: run nothing more, deliver nothing
  bool fd_left_open = false;   // close() left the fd to the last thread
  uv_async_t* async = nullptr; // completions' wakeup; valid until stopping
  std::deque<SendJob*> start_jobs;
  std::deque<SendJob*> bulk_jobs;
  std::vector<SendJob*> running;
  std::vector<SendJob*> done;
  // The first sends starters are running: their destinations are busy. At
  // most kMaxStarters, reserved up front: the threads allocate nothing.
  std::vector<const SendJob*> busy;
  size_t starters = 0, idle_starters = 0;
  size_t bulk_threads = 0, idle_bulk = 0;
  int refs = 1;                // the socket and every live thread

  Shared() {
    busy.reserve(kMaxStarters);
    running.reserve(kMaxStarters + kMaxBulkThreads);
    uv_mutex_init(&mutex);
    uv_cond_init(&cond);
    uv_cond_init(&start_work);
    uv_cond_init(&bulk_work);
  }
  ~Shared() {
    for (SendJob* j : start_jobs) delete j;
    for (SendJob* j : bulk_jobs) delete j;
    for (SendJob* j : done) delete j;
    uv_cond_destroy(&bulk_work);
    uv_cond_destroy(&start_work);
    uv_cond_destroy(&cond);
    uv_mutex_destroy(&mutex);
  }

  // The next job `bulk` threads may run: starters take the oldest job whose
  // destination no other starter is sending to.
  SendJob* Next(bool bulk) {
    if (bulk) {
      if (bulk_jobs.empty()) return nullptr;
      SendJob* job = bulk_jobs.front();
      bulk_jobs.pop_front();
      return job;
    }
    for (auto it = start_jobs.begin(); it != start_jobs.end(); ++it) {
      if (IsBusy((*it)->name)) continue;
      SendJob* job = *it;
      start_jobs.erase(it);
      busy.push_back(job);
      return job;
    }
    return nullptr;
  }

  bool IsBusy(const std::string& name) const {
    for (const SendJob* j : busy)
      if (j->name == name) return true;
    return false;
  }

  // Whether more than `n` queued first sends could be taken by starters now
  // (one per destination that no starter is sending to). Stops counting at
  // n + 1: with many calls queued for one peer this is called per send.
  // No allocation: it also runs on the threads, whose malloc arenas would grow.
  bool MoreRunnableStartsThan(size_t n) const {
    if (n >= kMaxStarters) return true;  // beyond what a socket may spawn or wake anyway
    const std::string* seen[kMaxStarters + 1];
    size_t count = 0;
    for (const SendJob* j : start_jobs) {
      if (IsBusy(j->name)) continue;
      bool known = false;
      for (size_t i = 0; i < count && !known; i++) known = *seen[i] == j->name;
      if (known) continue;
      seen[count++] = &j->name;
      if (count > n) return true;
    }
    return false;
  }

  // Wakes every thread (close()).
  void WakeAll() {
    uv_cond_broadcast(&cond);
    uv_cond_broadcast(&start_work);
    uv_cond_broadcast(&bulk_work);
  }

  // Drops one reference; the caller holds the mutex, which is released.
  void Release() {
    bool last = --refs == 0;
    int fd_to_close = last && fd_left_open ? fd : -1;
    uv_mutex_unlock(&mutex);
    if (!last) return;
    if (fd_to_close >= 0) ::close(fd_to_close);
    delete this;
  }
};

// Runs one job; the mutex is held on entry and exit and released around
// sendmsg. A starter job is one MSG_DONTWAIT sendmsg; a bulk job repeats
// sleeping sendmsg calls until all is taken, an error, or an interrupt.
void RunJob(Shared* s, SendJob* job) {
  size_t sent = 0;
  int err = 0;
  for (;;) {
    if (job->interrupted || s->stopping) {
      err = EINTR;
      break;
    }
    job->in_syscall = true;
    uv_mutex_unlock(&s->mutex);
    ssize_t n = SendOnce(s->fd, reinterpret_cast<const uint8_t*>(job->name.data()), job->name.size(),
                         reinterpret_cast<const uint8_t*>(job->control.data()), job->control.size(),
                         job->data.get() + sent, job->length - sent, job->flags);
    int e = n < 0 ? errno : 0;
    uv_mutex_lock(&s->mutex);
    job->in_syscall = false;
    uv_cond_broadcast(&s->cond);
    if (n < 0) {
      // A bulk send goes on after a wake that was not an interrupt.
      if (e == EINTR && job->blocking) continue;
      err = e;
      break;
    }
    sent += static_cast<size_t>(n);
    if (!job->blocking || sent >= job->length) break;
  }
  // Bytes taken win over a later error: the next send meets the error again.
  if (sent > 0 || err == 0) {
    job->result = static_cast<ssize_t>(sent);
    job->err = 0;
  } else {
    job->result = -1;
    job->err = err;
  }
}

void WorkerMain(void* arg) {
  Worker* self = static_cast<Worker*>(arg);
  Shared* s = self->shared;
  // Only the wake signal may interrupt this thread; process signals go to
  // the others. sigprocmask acts on the calling thread (glibc and musl).
  sigset_t mask;
  sigfillset(&mask);
  if (WakeSignal() != 0) sigdelset(&mask, WakeSignal());
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  // Named for ps, top, perf and gdb (15 characters at most).
  prctl(PR_SET_NAME, self->bulk ? "rxrpc-bulk" : "rxrpc-send", 0, 0, 0);

  uv_mutex_lock(&s->mutex);
  for (;;) {
    SendJob* job;
    for (;;) {
      if (s->stopping) break;
      job = s->Next(self->bulk);
      if (job != nullptr) break;
      size_t& idle = self->bulk ? s->idle_bulk : s->idle_starters;
      idle++;
      uv_cond_wait(self->bulk ? &s->bulk_work : &s->start_work, &s->mutex);
      idle--;
    }
    if (s->stopping) break;
    job->tid = tid;
    s->running.push_back(job);
    RunJob(s, job);
    s->running.erase(std::find(s->running.begin(), s->running.end(), job));
    if (!job->blocking) s->busy.erase(std::find(s->busy.begin(), s->busy.end(), job));
    job->finished = true;
    if (s->stopping) {
      delete job;  // after close() nothing reaches JavaScript
      break;
    }
    s->done.push_back(job);
    uv_async_send(s->async);
    uv_cond_broadcast(&s->cond);  // interrupt() may wait on `finished`
    // This thread takes the next job itself; a destination that came free may
    // also make a job runnable for a starter that is idle.
    if (!job->blocking && s->idle_starters > 0 && s->MoreRunnableStartsThan(1)) uv_cond_signal(&s->start_work);
  }
  self->exited = true;
  uv_cond_broadcast(&s->cond);
  s->Release();
}

// ---------------------------------------------------------------------------
// The socket.

class Socket;

// libuv handles live apart from the wrapper so that they can outlive it until
// their close callbacks have run; `owner` is cleared when the socket closes.
struct Handles {
  uv_poll_t poll;
  uv_async_t async;
  Socket* owner = nullptr;
  int open = 0;
  static void OnClose(uv_handle_t* h) {
    Handles* self = static_cast<Handles*>(h->data);
    if (--self->open == 0) delete self;
  }
};

class Socket : public Napi::ObjectWrap<Socket> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Socket(const Napi::CallbackInfo& info);
  ~Socket() override;

 private:
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value SetSockOpt(const Napi::CallbackInfo& info);
  Napi::Value GetSockOpt(const Napi::CallbackInfo& info);
  Napi::Value SendMsg(const Napi::CallbackInfo& info);
  Napi::Value SendMsgAsync(const Napi::CallbackInfo& info);
  Napi::Value Interrupt(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value RefHandle(const Napi::CallbackInfo& info);
  Napi::Value UnrefHandle(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetPendingAsync(const Napi::CallbackInfo& info);

  bool CheckOpen(Napi::Env env);
  bool DoClose();
  static void OnEnvCleanup(void* self);
  void Invoke(const Napi::FunctionReference& fn, std::initializer_list<napi_value> args);
  void UpdateRefs();
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnAsync(uv_async_t* handle);
  void ReadBatch();
  void DeliverSendResults();
  bool StopThreads();
  bool Spawn(bool bulk);

  int fd_ = -1;
  bool closed_ = false;
  bool cleanup_hook_ = false;  // registered with the environment while open
  bool refed_ = true;
  Handles* handles_ = nullptr;
  Shared* shared_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;  // JS thread only
  size_t in_flight_ = 0;  // handed to a thread and not yet delivered (JS thread only)
  std::vector<SendJob*> delivering_;  // completions being delivered (JS thread only)
  std::unique_ptr<Napi::AsyncContext> context_;
  Napi::FunctionReference on_recv_;
  Napi::FunctionReference on_send_done_;
  Napi::Reference<Napi::Uint8Array> meta_ref_;
  uint8_t* meta_ = nullptr;
  size_t batch_ = 0;
  std::vector<uint8_t> data_;
};

Napi::Function Socket::Init(Napi::Env env) {
  return DefineClass(env, "Socket",
                     {
                         InstanceMethod<&Socket::Bind>("bind"),
                         InstanceMethod<&Socket::Listen>("listen"),
                         InstanceMethod<&Socket::SetSockOpt>("setsockopt"),
                         InstanceMethod<&Socket::GetSockOpt>("getsockopt"),
                         InstanceMethod<&Socket::SendMsg>("sendmsg"),
                         InstanceMethod<&Socket::SendMsgAsync>("sendmsgAsync"),
                         InstanceMethod<&Socket::Interrupt>("interrupt"),
                         InstanceMethod<&Socket::Close>("close"),
                         InstanceMethod<&Socket::RefHandle>("ref"),
                         InstanceMethod<&Socket::UnrefHandle>("unref"),
                         InstanceAccessor<&Socket::GetFd>("fd"),
                         InstanceAccessor<&Socket::GetPendingAsync>("pendingAsync"),
                     });
}

// new Socket(family, meta, onRecv, onSendDone[, dataCapacity])
//   family: AF_INET (2) or AF_INET6 (10), the transport family.
//   meta: Uint8Array receiving kRecordSize-byte records; its length fixes the
//         batch size (messages read per wakeup).
//   onRecv(count, data, error): `count` records were filled and `data` holds
//         their bytes; `error` is set when recvmsg failed with something
//         other than EAGAIN after those messages.
//   onSendDone(token, result, error, rest): a sendmsgAsync finished; `rest`
//         holds the bytes the kernel did not take, if any.
Socket::Socket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Socket>(info) {
  Napi::Env env = info.Env();
  g_live_sockets++;
  int64_t family;
  if (!GetInt(info, 0, "family", 0, 255, &family)) return;
  if (family != AF_INET && family != AF_INET6) {
    Napi::RangeError::New(env, "The \"family\" argument must be AF_INET (2) or AF_INET6 (10). Received " +
                                   std::to_string(family))
        .ThrowAsJavaScriptException();
    return;
  }
  if (!IsUint8Array(info[1]) || info[1].As<Napi::Uint8Array>().ByteLength() < kRecordSize) {
    Napi::TypeError::New(env, "The \"meta\" argument must be a Uint8Array of at least " +
                                  std::to_string(kRecordSize) + " bytes")
        .ThrowAsJavaScriptException();
    return;
  }
  if (!info[2].IsFunction() || !info[3].IsFunction()) {
    Napi::TypeError::New(env, "The \"onRecv\" and \"onSendDone\" arguments must be functions")
        .ThrowAsJavaScriptException();
    return;
  }
  size_t capacity = kDefaultDataCapacity;
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    int64_t c;
    if (!GetInt(info, 4, "dataCapacity", 2 * kMinReadSpace, 64 * 1024 * 1024, &c)) return;
    capacity = static_cast<size_t>(c);
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "rxrpc: no event loop in this environment").ThrowAsJavaScriptException();
    return;
  }

  // The descriptor stays blocking: every call on the JavaScript thread passes
  // MSG_DONTWAIT itself, and the bulk threads need a sendmsg that can sleep
  // (O_NONBLOCK would turn every sendmsg into MSG_DONTWAIT).
  int fd = socket(kAfRxrpc, SOCK_DGRAM | SOCK_CLOEXEC, static_cast<int>(family));
  if (fd < 0) {
    ThrowErrno(env, errno, "socket");
    return;
  }

  Handles* handles = new Handles();
  int rc = uv_poll_init(loop, &handles->poll, fd);
  if (rc != 0) {
    delete handles;
    ::close(fd);
    ThrowErrno(env, -rc, "uv_poll_init");
    return;
  }
  handles->poll.data = handles;
  handles->open = 1;
  // uv_poll_init made the descriptor non-blocking; undo that (see above).
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
    int err = errno;
    uv_close(reinterpret_cast<uv_handle_t*>(&handles->poll), &Handles::OnClose);
    ::close(fd);
    ThrowErrno(env, err, "fcntl");
    return;
  }
  rc = uv_async_init(loop, &handles->async, &Socket::OnAsync);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&handles->poll), &Handles::OnClose);
    ::close(fd);
    ThrowErrno(env, -rc, "uv_async_init");
    return;
  }
  handles->async.data = handles;
  handles->open = 2;
  handles->owner = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&handles->async));

  fd_ = fd;
  handles_ = handles;
  shared_ = new Shared();
  shared_->fd = fd;
  shared_->async = &handles->async;
  Napi::Uint8Array meta = info[1].As<Napi::Uint8Array>();
  meta_ref_ = Napi::Reference<Napi::Uint8Array>::New(meta, 1);
  meta_ = meta.Data();
  batch_ = meta.ByteLength() / kRecordSize;
  data_.resize(capacity);
  on_recv_ = Napi::Persistent(info[2].As<Napi::Function>());
  on_send_done_ = Napi::Persistent(info[3].As<Napi::Function>());
  context_ = std::make_unique<Napi::AsyncContext>(env, "RxrpcSocket", info.This().As<Napi::Object>());

  uv_poll_start(&handles_->poll, UV_READABLE, &Socket::OnPoll);
  // Pin the wrapper while the socket is open: the watcher refers to it.
  Napi::ObjectWrap<Socket>::Ref();
  // An environment torn down with the socket open (a worker thread exiting)
  // closes it first, in the same order as close().
  cleanup_hook_ = napi_add_env_cleanup_hook(env, &Socket::OnEnvCleanup, this) == napi_ok;
}

// Enters JavaScript from a libuv callback. An exception thrown by the
// callback becomes an uncaught exception, as for Node's own handles; an
// environment that can no longer run JavaScript (a worker being terminated)
// is left alone. Nothing here throws across libuv.
void Socket::Invoke(const Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
  if (closed_ || !context_) return;
  napi_env env = Env();
  napi_value recv, func, result;
  if (napi_get_reference_value(env, fn, &func) != napi_ok || func == nullptr) return;
  if (napi_get_reference_value(env, Napi::ObjectWrap<Socket>::operator napi_ref(), &recv) != napi_ok || recv == nullptr) {
    return;
  }
  napi_status status = napi_make_callback(env, *context_, recv, func, args.size(), args.begin(), &result);
  if (status == napi_pending_exception) {
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
  }
}

void Socket::OnEnvCleanup(void* self) {
  Socket* socket = static_cast<Socket*>(self);
  socket->cleanup_hook_ = false;  // the environment drops the hook itself
  socket->DoClose();
}

Socket::~Socket() {
  DoClose();
  g_live_sockets--;
}

bool Socket::CheckOpen(Napi::Env env) {
  if (!closed_ && fd_ >= 0) return true;
  Napi::Error error = Napi::Error::New(env, "Socket is closed");
  error.Set("code", Napi::String::New(env, "ERR_SOCKET_CLOSED"));
  error.ThrowAsJavaScriptException();
  return false;
}

// bind(sockaddr: Uint8Array)
Napi::Value Socket::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  Bytes name;
  if (!GetBytes(info, 0, "address", &name)) return env.Undefined();
  if (bind(fd_, reinterpret_cast<sockaddr*>(name.data), static_cast<socklen_t>(name.length)) < 0) {
    ThrowErrno(env, errno, "bind");
  }
  return env.Undefined();
}

// listen(backlog)
Napi::Value Socket::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int64_t backlog;
  if (!GetInt(info, 0, "backlog", INT32_MIN, INT32_MAX, &backlog)) return env.Undefined();
  if (listen(fd_, static_cast<int>(backlog)) < 0) ThrowErrno(env, errno, "listen");
  return env.Undefined();
}

// setsockopt(level, name, value: Uint8Array | null)
Napi::Value Socket::SetSockOpt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int64_t level, name;
  Bytes value;
  if (!GetInt(info, 0, "level", 0, INT32_MAX, &level) || !GetInt(info, 1, "name", 0, INT32_MAX, &name) ||
      !GetBytes(info, 2, "value", &value)) {
    return env.Undefined();
  }
  if (setsockopt(fd_, static_cast<int>(level), static_cast<int>(name), value.data,
                 static_cast<socklen_t>(value.length)) < 0) {
    ThrowErrno(env, errno, "setsockopt");
  }
  return env.Undefined();
}

// getsockopt(level, name, size) -> Buffer of the bytes the kernel returned
Napi::Value Socket::GetSockOpt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int64_t level, name, size;
  if (!GetInt(info, 0, "level", 0, INT32_MAX, &level) || !GetInt(info, 1, "name", 0, INT32_MAX, &name) ||
      !GetInt(info, 2, "size", 0, 65536, &size)) {
    return env.Undefined();
  }
  std::vector<uint8_t> buf(static_cast<size_t>(size));
  socklen_t len = static_cast<socklen_t>(size);
  if (getsockopt(fd_, static_cast<int>(level), static_cast<int>(name), buf.data(), &len) < 0) {
    ThrowErrno(env, errno, "getsockopt");
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, buf.data(), len);
}

// sendmsg(name, control, data, flags) -> bytes sent, or -EAGAIN.
// Always MSG_DONTWAIT | MSG_NOSIGNAL. Any other failure throws. The kernel
// copies the data before it returns.
Napi::Value Socket::SendMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  Bytes name, control, data;
  int64_t flags;
  if (!GetBytes(info, 0, "name", &name) || !GetBytes(info, 1, "control", &control) ||
      !GetBytes(info, 2, "data", &data) || !GetInt(info, 3, "flags", 0, INT32_MAX, &flags)) {
    return env.Undefined();
  }
  ssize_t n;
  do {
    n = SendOnce(fd_, name.data, name.length, control.data, control.length, data.data, data.length,
                 static_cast<int>(flags) | MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -EAGAIN);
    ThrowErrno(env, errno, "sendmsg");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// Starts a thread of the socket; the caller holds the shared mutex.
bool Socket::Spawn(bool bulk) {
  auto worker = std::make_unique<Worker>();
  worker->shared = shared_;
  worker->bulk = bulk;
  shared_->refs++;
  if (uv_thread_create(&worker->thread, WorkerMain, worker.get()) != 0) {
    shared_->refs--;
    return false;
  }
  (bulk ? shared_->bulk_threads : shared_->starters)++;
  workers_.push_back(std::move(worker));
  return true;
}

// sendmsgAsync(token, name, control, data, flags, blocking): the same
// sendmsg, made on a thread; onSendDone(token, result, error) follows. The
// bytes are copied first. Without `blocking` it runs on a starter thread with
// MSG_DONTWAIT (a first send, which may still sleep for a channel), after any
// earlier one to the same destination. With `blocking` it runs on a bulk
// thread without MSG_DONTWAIT, repeating until all of `data` is taken, an
// error, or interrupt(token); the result is the bytes taken, or the error when
// none were.
Napi::Value Socket::SendMsgAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(env, "The \"token\" argument must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Bytes name, control, data;
  int64_t flags;
  if (!GetBytes(info, 1, "name", &name) || !GetBytes(info, 2, "control", &control) ||
      !GetBytes(info, 3, "data", &data) || !GetInt(info, 4, "flags", 0, INT32_MAX, &flags)) {
    return env.Undefined();
  }
  if (!info[5].IsUndefined() && !info[5].IsBoolean()) {
    Napi::TypeError::New(env, "The \"blocking\" argument must be a boolean").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool blocking = info[5].IsBoolean() && info[5].As<Napi::Boolean>().Value();
  auto* job = new SendJob();
  job->token = info[0].As<Napi::Number>().DoubleValue();
  job->name.assign(reinterpret_cast<const char*>(name.data), name.length);
  job->control.assign(reinterpret_cast<const char*>(control.data), control.length);
  if (data.length > 0) {
    job->data.reset(new uint8_t[data.length]);
    memcpy(job->data.get(), data.data, data.length);
  }
  job->length = data.length;
  job->blocking = blocking;
  job->flags = static_cast<int>(flags) | MSG_NOSIGNAL | (blocking ? 0 : MSG_DONTWAIT);

  WakeSignal();  // installed before any thread may need it
  Shared* s = shared_;
  uv_mutex_lock(&s->mutex);
  bool spawned = true;
  if (blocking) {
    s->bulk_jobs.push_back(job);
    if (s->bulk_jobs.size() > s->idle_bulk && s->bulk_threads < kMaxBulkThreads) spawned = Spawn(true);
    if (!spawned && s->bulk_threads == 0) s->bulk_jobs.pop_back();
  } else {
    s->start_jobs.push_back(job);
    if (s->starters < kMaxStarters && s->MoreRunnableStartsThan(s->idle_starters)) spawned = Spawn(false);
    if (!spawned && s->starters == 0) s->start_jobs.pop_back();
  }
  if (!spawned && (blocking ? s->bulk_threads : s->starters) == 0) {
    // No thread to run it: it fails, reported like any other completion.
    job->result = -1;
    job->err = EAGAIN;
    job->finished = true;
    s->done.push_back(job);
    uv_async_send(s->async);
  }
  uv_cond_signal(blocking ? &s->bulk_work : &s->start_work);
  uv_mutex_unlock(&s->mutex);
  in_flight_++;
  UpdateRefs();
  return env.Undefined();
}

// interrupt(token): ends a sendmsgAsync early. A send still queued completes
// with EINTR; one in the kernel is woken by the signal and completes with the
// bytes taken so far (or EINTR when none were: for a first send, the call may
// or may not exist in the kernel). Returns false when no unfinished send has
// that token, and also when a send in the kernel could not be woken.
Napi::Value Socket::Interrupt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(env, "The \"token\" argument must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (closed_) return Napi::Boolean::New(env, false);
  double token = info[0].As<Napi::Number>().DoubleValue();
  Shared* s = shared_;
  uv_mutex_lock(&s->mutex);
  for (auto* queue : {&s->start_jobs, &s->bulk_jobs}) {
    for (auto it = queue->begin(); it != queue->end(); ++it) {
      if ((*it)->token != token) continue;
      SendJob* job = *it;
      queue->erase(it);
      job->result = -1;
      job->err = EINTR;
      job->finished = true;
      s->done.push_back(job);
      uv_async_send(s->async);
      uv_mutex_unlock(&s->mutex);
      return Napi::Boolean::New(env, true);
    }
  }
  SendJob* job = nullptr;
  for (SendJob* j : s->running)
    if (j->token == token) job = j;
  bool woken = false;
  if (job != nullptr) {
    job->interrupted = true;
    // A signal sent just before the thread enters sendmsg is lost: repeat
    // until it is out of the system call (it then sees `interrupted`).
    uint64_t deadline = uv_hrtime() + kInterruptLimitMs * 1000000;
    while (!job->finished && job->in_syscall && uv_hrtime() < deadline) {
      Wake(job->tid);
      uv_cond_timedwait(&s->cond, &s->mutex, 1000000);
    }
    woken = job->finished || !job->in_syscall;
  }
  uv_mutex_unlock(&s->mutex);
  return Napi::Boolean::New(env, woken);
}

// Stops every thread: nothing more runs, and sends in the kernel are woken.
// Returns false when a thread could not be stopped in time; it is left to
// finish by itself, and the fd is closed when it does.
bool Socket::StopThreads() {
  Shared* s = shared_;
  if (s == nullptr) return true;
  uv_mutex_lock(&s->mutex);
  s->stopping = true;
  s->WakeAll();
  uint64_t deadline = uv_hrtime() + kInterruptLimitMs * 1000000;
  bool all_exited;
  for (;;) {
    all_exited = true;
    for (auto& w : workers_)
      if (!w->exited) all_exited = false;
    if (all_exited || uv_hrtime() >= deadline) break;
    for (SendJob* job : s->running)
      if (job->in_syscall) Wake(job->tid);
    uv_cond_timedwait(&s->cond, &s->mutex, 2000000);
  }
  // Undelivered and queued jobs are dropped: after close() nothing reaches JavaScript.
  for (SendJob* j : s->start_jobs) delete j;
  for (SendJob* j : s->bulk_jobs) delete j;
  for (SendJob* j : s->done) delete j;
  s->start_jobs.clear();
  s->bulk_jobs.clear();
  s->done.clear();
  s->fd_left_open = !all_exited;
  uv_mutex_unlock(&s->mutex);
  for (auto& w : workers_) {
    if (w->exited) {
      uv_thread_join(&w->thread);
    } else {
      // Still in the kernel: its Worker must outlive the socket. It is never
      // joined; the thread frees the shared state when it leaves.
      w.release();
    }
  }
  workers_.clear();
  in_flight_ = 0;
  uv_mutex_lock(&s->mutex);
  shared_ = nullptr;
  s->Release();  // the socket's reference
  return all_exited;
}

// node-addon-api reports a failed N-API call by throwing; from a libuv
// callback such an exception would unwind into libuv. It becomes an uncaught
// JavaScript exception instead, or nothing if the environment is going away.
template <typename F>
void Guarded(napi_env env, F body) {
  try {
    body();
  } catch (const Napi::Error& e) {
    napi_value value = e.Value();
    if (value != nullptr) napi_fatal_exception(env, value);
  }
}

void Socket::OnAsync(uv_async_t* handle) {
  Socket* self = static_cast<Handles*>(handle->data)->owner;
  if (self != nullptr && !self->closed_) Guarded(self->Env(), [self] { self->DeliverSendResults(); });
}

void Socket::DeliverSendResults() {
  // The two lists trade places, keeping their capacity: the threads append
  // to the one in Shared without allocating once both have grown.
  std::vector<SendJob*>& done = delivering_;
  uv_mutex_lock(&shared_->mutex);
  done.swap(shared_->done);
  uv_mutex_unlock(&shared_->mutex);
  // Whatever happens below, the list is empty again afterwards.
  struct Clear {
    std::vector<SendJob*>& list;
    ~Clear() {
      for (SendJob* j : list) delete j;
      list.clear();
    }
  } clear{done};
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // One callback scope for the whole batch: promises and nextTicks run once
  // after the last completion instead of after each one.
  std::unique_ptr<Napi::CallbackScope> batch;
  if (done.size() > 1 && context_) batch.reset(new Napi::CallbackScope(env, *context_));
  for (size_t i = 0; i < done.size(); i++) {
    std::unique_ptr<SendJob> job(done[i]);
    done[i] = nullptr;
    if (closed_) continue;  // close() has already forgotten every job
    in_flight_--;
    Napi::Value error = job->result < 0 ? ErrnoError(env, job->err, "sendmsg") : env.Undefined();
    Napi::Value result = Napi::Number::New(env, job->result < 0 ? -job->err : static_cast<double>(job->result));
    // What the kernel did not take comes back as a Buffer over the job's own
    // copy (no second copy): the caller's buffer may be gone by now.
    size_t taken = job->result > 0 ? static_cast<size_t>(job->result) : 0;
    Napi::Value rest = env.Undefined();
    if (taken < job->length) {
      uint8_t* base = job->data.release();
      rest = Napi::Buffer<uint8_t>::New(env, base + taken, job->length - taken,
                                        [](Napi::Env, uint8_t*, uint8_t* hint) { delete[] hint; }, base);
    }
    Invoke(on_send_done_, {Napi::Number::New(env, job->token), result, error, rest});
  }
  UpdateRefs();
}

void Socket::OnPoll(uv_poll_t* handle, int status, int events) {
  Socket* self = static_cast<Handles*>(handle->data)->owner;
  if (self == nullptr || self->closed_) return;
  (void)events;
  Guarded(self->Env(), [self, status] {
    if (status < 0) {
      Napi::Env env = self->Env();
      Napi::HandleScope scope(env);
      self->Invoke(self->on_recv_, {Napi::Number::New(env, 0), env.Undefined(), ErrnoError(env, -status, "poll")});
      return;
    }
    self->ReadBatch();
  });
}

void Socket::ReadBatch() {
  size_t count = 0;
  size_t used = 0;
  int err = 0;
  while (count < batch_ && data_.size() - used >= kMinReadSpace) {
    uint8_t* rec = meta_ + count * kRecordSize;
    iovec iov{data_.data() + used, data_.size() - used};
    msghdr msg{};
    msg.msg_name = rec + kRecordName;
    msg.msg_namelen = kRecordNameSize;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = rec + kRecordControl;
    msg.msg_controllen = kRecordControlSize;
    ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    int32_t fields[5] = {msg.msg_flags, static_cast<int32_t>(used), static_cast<int32_t>(n),
                         static_cast<int32_t>(msg.msg_namelen), static_cast<int32_t>(msg.msg_controllen)};
    static_assert(kRecordFlags == 0 && kRecordDataOffset == 4 && kRecordDataLength == 8 &&
                      kRecordNameLength == 12 && kRecordControlLength == 16,
                  "record header layout");
    memcpy(rec, fields, sizeof fields);
    used += static_cast<size_t>(n);
    count++;
  }
  if (count == 0 && err == 0) return;

  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // A batch without data (acknowledgements, aborts: most server calls end
  // with one) makes no Buffer at all; JavaScript takes undefined as empty.
  Napi::Value data = used == 0 ? env.Undefined() : Napi::Buffer<uint8_t>::Copy(env, data_.data(), used);
  Napi::Value error = err != 0 ? ErrnoError(env, err, "recvmsg") : env.Undefined();
  // Send completions already waiting go first, in the same callback scope:
  // one entry into JavaScript (and one run of promises) for both. They may
  // close the socket; the batch is copied out already, and Invoke checks.
  uv_mutex_lock(&shared_->mutex);
  bool completions = !shared_->done.empty();
  uv_mutex_unlock(&shared_->mutex);
  std::unique_ptr<Napi::CallbackScope> both;
  if (completions && context_) {
    both.reset(new Napi::CallbackScope(env, *context_));
    DeliverSendResults();
  }
  Invoke(on_recv_, {Napi::Number::New(env, static_cast<double>(count)), data, error});
}

void Socket::UpdateRefs() {
  if (handles_ == nullptr) return;
  uv_handle_t* poll = reinterpret_cast<uv_handle_t*>(&handles_->poll);
  uv_handle_t* async = reinterpret_cast<uv_handle_t*>(&handles_->async);
  if (refed_) uv_ref(poll); else uv_unref(poll);
  if (refed_ && in_flight_ > 0) uv_ref(async); else uv_unref(async);
}

bool Socket::DoClose() {
  if (closed_) return true;
  closed_ = true;
  if (cleanup_hook_) {
    napi_remove_env_cleanup_hook(Env(), &Socket::OnEnvCleanup, this);
    cleanup_hook_ = false;
  }
  bool stopped = StopThreads();
  if (handles_ != nullptr) {
    handles_->owner = nullptr;
    uv_poll_stop(&handles_->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->poll), &Handles::OnClose);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->async), &Handles::OnClose);
    handles_ = nullptr;
  }
  if (fd_ >= 0 && stopped) ::close(fd_);
  fd_ = -1;
  // Let go of every JavaScript value: the callbacks hold the objects that hold
  // this wrapper, and the async context holds the wrapper itself.
  on_recv_.Reset();
  on_send_done_.Reset();
  meta_ref_.Reset();
  meta_ = nullptr;
  context_.reset();
  std::vector<uint8_t>().swap(data_);
  return stopped;
}

// close(): idempotent. Pending sendmsgAsync completions are dropped; the
// caller owns the policy of failing what was pending. Returns false when a
// send thread could not be stopped (the fd is then closed when it stops).
Napi::Value Socket::Close(const Napi::CallbackInfo& info) {
  bool was_open = !closed_;
  bool stopped = DoClose();
  if (was_open) Napi::ObjectWrap<Socket>::Unref();
  return Napi::Boolean::New(info.Env(), stopped);
}

Napi::Value Socket::RefHandle(const Napi::CallbackInfo& info) {
  refed_ = true;
  UpdateRefs();
  return info.Env().Undefined();
}

Napi::Value Socket::UnrefHandle(const Napi::CallbackInfo& info) {
  refed_ = false;
  UpdateRefs();
  return info.Env().Undefined();
}

Napi::Value Socket::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value Socket::GetPendingAsync(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(in_flight_));
}

// errnoName(n): the name this addon gives errno n (lib/errno.ts must agree).
Napi::Value ErrnoNameJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n;
  if (!GetInt(info, 0, "errno", 0, 4095, &n)) return env.Undefined();
  char buf[16];
  return Napi::String::New(env, ErrnoName(static_cast<int>(n), buf, sizeof buf));
}

// liveSockets(): Socket wrappers not yet collected, in this process.
Napi::Value LiveSockets(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), g_live_sockets.load());
}

// wakeSignal(): the signal number interrupt() uses (0 if none was free).
Napi::Value WakeSignalJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), WakeSignal());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Socket", Socket::Init(env));
  exports.Set("RECORD_SIZE", Napi::Number::New(env, kRecordSize));
  exports.Set("RECORD_NAME", Napi::Number::New(env, kRecordName));
  exports.Set("RECORD_NAME_SIZE", Napi::Number::New(env, kRecordNameSize));
  exports.Set("RECORD_CONTROL", Napi::Number::New(env, kRecordControl));
  exports.Set("RECORD_CONTROL_SIZE", Napi::Number::New(env, kRecordControlSize));
  exports.Set("errnoName", Napi::Function::New(env, ErrnoNameJs, "errnoName"));
  exports.Set("liveSockets", Napi::Function::New(env, LiveSockets, "liveSockets"));
  exports.Set("wakeSignal", Napi::Function::New(env, WakeSignalJs, "wakeSignal"));
  rxrpc_keys::Init(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(rxrpc, Init)
