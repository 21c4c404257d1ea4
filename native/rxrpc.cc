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
// channel), so sendmsgAsync() hands such sends to a per-socket starter thread
// and reports completion through a uv_async_t. sendmsgAsync(..., blocking)
// instead hands data to a pool of bulk threads that sleep in sendmsg until
// the kernel has taken all of it: the kernel gives no wakeup when a call's
// transmit window opens, but a sleeping sendmsg is woken by it.
// interrupt(token) ends such a sleep early (a signal), keeping what was sent.
//
// Closing: mark closed, stop and join the threads (interrupting a sleeping
// sendmsg with a signal), stop the poll watcher, close the fd, and
// free the libuv handles in their close callbacks. Nothing touches the fd
// after it is closed, and no callback reaches JavaScript after close().

#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "keys.h"

namespace {

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
constexpr int kWakeSignal = SIGURG;
// Bulk threads per socket at most; the library keeps fewer blocking sends in flight.
constexpr size_t kMaxBulkThreads = 8;

void NoopSignalHandler(int) {}

// The sender thread may sleep inside sendmsg; close() interrupts it with
// kWakeSignal. The handler does nothing, but installing it without
// SA_RESTART makes the sleeping system call return EINTR. SIGURG is ignored
// by default, so a handler that does nothing keeps its meaning for everyone else.
void InstallWakeSignal() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = NoopSignalHandler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(kWakeSignal, &sa, nullptr);
  });
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

// An Error shaped like Node's own system errors: code, errno (negative),
// syscall, and a message that names them.
Napi::Value ErrnoError(Napi::Env env, int err, const char* syscall) {
  std::string code = ErrnoName(err);
  std::string message = std::string(syscall) + " " + code + " (" + strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error.Value();
}

void ThrowErrno(Napi::Env env, int err, const char* syscall) {
  Napi::Error(env, ErrnoError(env, err, syscall)).ThrowAsJavaScriptException();
}

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
ssize_t SendOnce(int fd, void* name, size_t name_length, void* control, size_t control_length, uint8_t* data,
                 size_t length, int flags) {
  iovec iov{data, length};
  msghdr msg{};
  msg.msg_name = name_length > 0 ? name : nullptr;
  msg.msg_namelen = static_cast<socklen_t>(name_length);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control_length > 0 ? control : nullptr;
  msg.msg_controllen = control_length;
  return sendmsg(fd, &msg, flags);
}

// One sendmsg handed to a thread.
struct SendJob {
  double token = 0;
  std::vector<uint8_t> name;
  std::vector<uint8_t> control;
  uint8_t* data = nullptr;
  size_t length = 0;
  int flags = 0;
  bool blocking = false;  // sleep until all of `data` is taken (bulk threads)
  Napi::Reference<Napi::Value> keep;  // keeps `data` alive; used only on the JS thread
  ssize_t result = 0;
  int err = 0;
  // Shared with interrupt() under the socket's mutex_.
  bool interrupted = false;
  bool in_syscall = false;
  pthread_t thread{};
};

// A thread of the socket: the starter (first sends) or a bulk thread.
struct Worker {
  std::thread thread;
  bool bulk = false;
  bool exited = false;  // under the socket's mutex_
};

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
  void DoClose();
  static void OnEnvCleanup(void* self);
  void Invoke(const Napi::FunctionReference& fn, std::initializer_list<napi_value> args);
  void UpdateRefs();
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnAsync(uv_async_t* handle);
  void ReadBatch();
  void DeliverSendResults();
  void WorkerLoop(Worker* self);
  void RunJob(SendJob* job, std::unique_lock<std::mutex>& lock);
  void StopSender();

  int fd_ = -1;
  bool closed_ = false;
  bool cleanup_hook_ = false;  // registered with the environment while open
  bool refed_ = true;
  Handles* handles_ = nullptr;
  std::unique_ptr<Napi::AsyncContext> context_;
  Napi::FunctionReference on_recv_;
  Napi::FunctionReference on_send_done_;
  Napi::Reference<Napi::Uint8Array> meta_ref_;
  uint8_t* meta_ = nullptr;
  size_t batch_ = 0;
  std::vector<uint8_t> data_;

  // Threads; everything below but in_flight_ is shared with them under mutex_.
  std::vector<std::unique_ptr<Worker>> workers_;  // changed on the JS thread only
  bool has_starter_ = false;
  size_t bulk_threads_ = 0;
  size_t idle_bulk_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<SendJob*> jobs_;       // first sends, for the starter thread
  std::deque<SendJob*> bulk_jobs_;  // blocking sends, for the bulk threads
  std::vector<SendJob*> running_;   // blocking sends a bulk thread has taken
  std::vector<SendJob*> done_;
  bool stopping_ = false;
  size_t in_flight_ = 0;  // handed to a thread and not yet delivered (JS thread only)
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
//   onSendDone(token, result, error): a sendmsgAsync finished.
Socket::Socket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Socket>(info) {
  Napi::Env env = info.Env();
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

Socket::~Socket() { DoClose(); }

bool Socket::CheckOpen(Napi::Env env) {
  if (!closed_) return true;
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
// Always MSG_DONTWAIT | MSG_NOSIGNAL. Any other failure throws.
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

// sendmsgAsync(token, name, control, data, flags, blocking): the same
// sendmsg, made on a thread; onSendDone(token, result, error) follows. Without
// `blocking` it runs on the starter thread with MSG_DONTWAIT (a first send,
// which may still sleep for a channel). With `blocking` it runs on a bulk
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
  job->name.assign(name.data, name.data + name.length);
  job->control.assign(control.data, control.data + control.length);
  job->data = data.data;
  job->length = data.length;
  job->blocking = blocking;
  job->flags = static_cast<int>(flags) | MSG_NOSIGNAL | (blocking ? 0 : MSG_DONTWAIT);
  if (data.data != nullptr) job->keep = Napi::Reference<Napi::Value>::New(info[3], 1);

  InstallWakeSignal();
  bool spawn;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (blocking) {
      bulk_jobs_.push_back(job);
      spawn = bulk_jobs_.size() > idle_bulk_ && bulk_threads_ < kMaxBulkThreads;
      if (spawn) bulk_threads_++;
    } else {
      jobs_.push_back(job);
      spawn = !has_starter_;
      has_starter_ = true;
    }
  }
  if (spawn) {
    auto worker = std::make_unique<Worker>();
    worker->bulk = blocking;
    Worker* w = worker.get();
    workers_.push_back(std::move(worker));
    w->thread = std::thread(&Socket::WorkerLoop, this, w);
  }
  cv_.notify_all();
  in_flight_++;
  UpdateRefs();
  return env.Undefined();
}

// interrupt(token): ends a blocking sendmsgAsync early; its completion still
// follows, with the bytes taken so far (or EINTR when none were). Returns
// false when no blocking send has that token.
Napi::Value Socket::Interrupt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(env, "The \"token\" argument must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double token = info[0].As<Napi::Number>().DoubleValue();
  std::unique_lock<std::mutex> lock(mutex_);
  for (auto it = bulk_jobs_.begin(); it != bulk_jobs_.end(); ++it) {
    if ((*it)->token != token) continue;
    SendJob* job = *it;
    bulk_jobs_.erase(it);
    job->result = -1;
    job->err = EINTR;
    done_.push_back(job);
    if (handles_ != nullptr) uv_async_send(&handles_->async);
    return Napi::Boolean::New(env, true);
  }
  for (SendJob* job : running_) {
    if (job->token != token) continue;
    job->interrupted = true;
    // A signal sent just before the thread enters sendmsg is lost: repeat
    // until it is out of the system call (it then sees `interrupted`).
    while (job->in_syscall) {
      pthread_kill(job->thread, kWakeSignal);
      cv_.wait_for(lock, std::chrono::milliseconds(1));
    }
    return Napi::Boolean::New(env, true);
  }
  return Napi::Boolean::New(env, false);
}

void Socket::WorkerLoop(Worker* self) {
  // Only kWakeSignal may interrupt this thread; process signals go elsewhere.
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, kWakeSignal);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);

  std::deque<SendJob*>& queue = self->bulk ? bulk_jobs_ : jobs_;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (self->bulk) idle_bulk_++;
    cv_.wait(lock, [this, &queue] { return stopping_ || !queue.empty(); });
    if (self->bulk) idle_bulk_--;
    if (stopping_) break;
    SendJob* job = queue.front();
    queue.pop_front();
    if (job->blocking) running_.push_back(job);
    RunJob(job, lock);
    if (job->blocking) running_.erase(std::find(running_.begin(), running_.end(), job));
    done_.push_back(job);
    uv_async_send(&handles_->async);
  }
  self->exited = true;
  lock.unlock();
  cv_.notify_all();
}

// Runs one job; `lock` is held on entry and exit and released around sendmsg.
void Socket::RunJob(SendJob* job, std::unique_lock<std::mutex>& lock) {
  size_t sent = 0;
  int err = 0;
  for (;;) {
    if (job->interrupted || stopping_) {
      err = EINTR;
      break;
    }
    job->in_syscall = true;
    job->thread = pthread_self();
    lock.unlock();
    ssize_t n = SendOnce(fd_, job->name.data(), job->name.size(), job->control.data(), job->control.size(),
                         job->data + sent, job->length - sent, job->flags);
    int e = n < 0 ? errno : 0;
    lock.lock();
    job->in_syscall = false;
    cv_.notify_all();
    if (n < 0) {
      if (e == EINTR) continue;  // a wake: stop if interrupted, else go on
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

void Socket::StopSender() {
  if (workers_.empty()) return;
  std::unique_lock<std::mutex> lock(mutex_);
  stopping_ = true;
  cv_.notify_all();
  // A thread may be asleep in sendmsg, where only a signal reaches it. A
  // signal sent just before it enters the system call is lost, so repeat.
  for (;;) {
    bool all_exited = true;
    for (auto& w : workers_) {
      if (w->exited) continue;
      all_exited = false;
      pthread_kill(w->thread.native_handle(), kWakeSignal);
    }
    if (all_exited) break;
    cv_.wait_for(lock, std::chrono::milliseconds(2));
  }
  lock.unlock();
  for (auto& w : workers_) w->thread.join();
  workers_.clear();
  // Undelivered jobs are dropped: after close() nothing reaches JavaScript.
  for (SendJob* job : jobs_) delete job;
  for (SendJob* job : bulk_jobs_) delete job;
  for (SendJob* job : done_) delete job;
  jobs_.clear();
  bulk_jobs_.clear();
  done_.clear();
  in_flight_ = 0;
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
  if (self != nullptr) Guarded(self->Env(), [self] { self->DeliverSendResults(); });
}

void Socket::DeliverSendResults() {
  std::vector<SendJob*> done;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done.swap(done_);
  }
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  for (size_t i = 0; i < done.size(); i++) {
    std::unique_ptr<SendJob> job(done[i]);
    if (closed_) continue;  // close() has already forgotten every job
    in_flight_--;
    Napi::Value error = job->result < 0 ? ErrnoError(env, job->err, "sendmsg") : env.Undefined();
    Napi::Value result = Napi::Number::New(env, job->result < 0 ? -job->err : static_cast<double>(job->result));
    Invoke(on_send_done_, {Napi::Number::New(env, job->token), result, error});
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
  Napi::Value data = Napi::Buffer<uint8_t>::Copy(env, data_.data(), used);
  Napi::Value error = err != 0 ? ErrnoError(env, err, "recvmsg") : env.Undefined();
  Invoke(on_recv_, {Napi::Number::New(env, static_cast<double>(count)), data, error});
}

void Socket::UpdateRefs() {
  if (handles_ == nullptr) return;
  uv_handle_t* poll = reinterpret_cast<uv_handle_t*>(&handles_->poll);
  uv_handle_t* async = reinterpret_cast<uv_handle_t*>(&handles_->async);
  if (refed_) uv_ref(poll); else uv_unref(poll);
  if (refed_ && in_flight_ > 0) uv_ref(async); else uv_unref(async);
}

void Socket::DoClose() {
  if (closed_) return;
  closed_ = true;
  if (cleanup_hook_) {
    napi_remove_env_cleanup_hook(Env(), &Socket::OnEnvCleanup, this);
    cleanup_hook_ = false;
  }
  StopSender();
  if (handles_ != nullptr) {
    handles_->owner = nullptr;
    uv_poll_stop(&handles_->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->poll), &Handles::OnClose);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->async), &Handles::OnClose);
    handles_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

// close(): idempotent. Pending sendmsgAsync completions are dropped; the
// caller owns the policy of failing what was pending.
Napi::Value Socket::Close(const Napi::CallbackInfo& info) {
  bool was_open = !closed_;
  DoClose();
  if (was_open) Napi::ObjectWrap<Socket>::Unref();
  return info.Env().Undefined();
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Socket", Socket::Init(env));
  exports.Set("RECORD_SIZE", Napi::Number::New(env, kRecordSize));
  exports.Set("RECORD_NAME", Napi::Number::New(env, kRecordName));
  exports.Set("RECORD_NAME_SIZE", Napi::Number::New(env, kRecordNameSize));
  exports.Set("RECORD_CONTROL", Napi::Number::New(env, kRecordControl));
  exports.Set("RECORD_CONTROL_SIZE", Napi::Number::New(env, kRecordControlSize));
  rxrpc_keys::Init(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(rxrpc, Init)
