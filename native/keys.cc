// Linux keys for AF_RXRPC security: add_key(2) and keyctl(2), made with
// syscall() directly, so that the addon needs neither libkeyutils nor any
// libc wrapper (glibc has none; musl has none).
//
// Like rxrpc.cc this layer is thin: it moves strings and bytes into the
// system calls and returns what they return. The payload formats, the choice
// of keyring, validation and ownership (who revokes what, when) are policy
// and live in lib/security/.
//
// Keys belong to the calling process's keyrings. The process keyring (-2) is
// shared by all threads of the process, the addon's sender threads included;
// the thread keyring (-1) is not.

#include "keys.h"

#include "errno-error.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace rxrpc_keys {

namespace {

// include/uapi/linux/keyctl.h
constexpr long kKeyctlGetKeyringId = 0;
constexpr long kKeyctlRevoke = 3;
constexpr long kKeyctlDescribe = 6;
constexpr long kKeyctlUnlink = 9;
constexpr long kKeyctlSearch = 10;
constexpr long kKeyctlRead = 11;
constexpr long kKeyctlInvalidate = 21;

// The kernel refuses larger payloads (add_key: 1 MiB, EINVAL); descriptions
// are limited to 4095 bytes (EINVAL).
constexpr size_t kMaxPayload = 1024 * 1024;

using rxrpc_errno::ThrowErrno;

void ThrowType(Napi::Env env, const char* what, const char* expected) {
  Napi::TypeError::New(env, std::string("The \"") + what + "\" argument must be " + expected)
      .ThrowAsJavaScriptException();
}

// A string argument without NUL characters (the kernel would cut it there).
bool GetString(const Napi::CallbackInfo& info, size_t index, const char* what, std::string* out) {
  Napi::Value v = info[index];
  if (!v.IsString()) {
    ThrowType(info.Env(), what, "a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos || out->size() > 4095) {
    Napi::TypeError::New(info.Env(), std::string("The \"") + what +
                                         "\" argument must not contain NUL characters or exceed 4095 bytes")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// A key serial or special keyring ID: a 32-bit signed integer.
bool GetSerial(const Napi::CallbackInfo& info, size_t index, const char* what, int32_t* out) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) {
    ThrowType(info.Env(), what, "a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= INT32_MIN && d <= INT32_MAX) || d != static_cast<double>(static_cast<int32_t>(d))) {
    Napi::RangeError::New(info.Env(), std::string("The \"") + what +
                                          "\" argument must be a 32-bit integer. Received " +
                                          v.ToString().Utf8Value())
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int32_t>(d);
  return true;
}

long Keyctl(long op, long a2, long a3 = 0, long a4 = 0, long a5 = 0) {
  long r;
  do {
    r = syscall(SYS_keyctl, op, a2, a3, a4, a5);
  } while (r < 0 && errno == EINTR);
  return r;
}

// addKey(type, description, payload: Uint8Array | null, keyring) -> serial
Napi::Value AddKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string type, description;
  int32_t keyring;
  if (!GetString(info, 0, "type", &type) || !GetString(info, 1, "description", &description)) return env.Undefined();
  const uint8_t* data = nullptr;
  size_t length = 0;
  Napi::Value p = info[2];
  if (p.IsTypedArray() && p.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    Napi::Uint8Array a = p.As<Napi::Uint8Array>();
    data = a.Data();
    length = a.ByteLength();
  } else if (!p.IsNull() && !p.IsUndefined()) {
    ThrowType(env, "payload", "a Uint8Array or null");
    return env.Undefined();
  }
  if (length > kMaxPayload) {
    Napi::RangeError::New(env, "The \"payload\" argument must be at most 1048576 bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!GetSerial(info, 3, "keyring", &keyring)) return env.Undefined();
  // An empty Uint8Array is passed as no payload at all: the kernel treats
  // (NULL, 0) and (ptr, 0) alike for most types, and rxrpc's "no security"
  // key requires NULL.
  long serial;
  do {
    serial = syscall(SYS_add_key, type.c_str(), description.c_str(), length > 0 ? data : nullptr, length,
                     static_cast<long>(keyring));
  } while (serial < 0 && errno == EINTR);
  if (serial < 0) {
    ThrowErrno(env, errno, "add_key");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(serial));
}

// getKeyringId(id, create) -> serial: resolves a special keyring ID (-1 thread,
// -2 process, -3 session, -4 user, -5 user session), creating it if asked.
Napi::Value GetKeyringId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t id;
  if (!GetSerial(info, 0, "id", &id)) return env.Undefined();
  bool create = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  long r = Keyctl(kKeyctlGetKeyringId, id, create ? 1 : 0);
  if (r < 0) {
    ThrowErrno(env, errno, "keyctl");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

// revokeKey(serial), invalidateKey(serial)
template <long Op>
Napi::Value KeyOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t serial;
  if (!GetSerial(info, 0, "serial", &serial)) return env.Undefined();
  if (Keyctl(Op, serial) < 0) ThrowErrno(env, errno, "keyctl");
  return env.Undefined();
}

// unlinkKey(serial, keyring)
Napi::Value UnlinkKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t serial, keyring;
  if (!GetSerial(info, 0, "serial", &serial) || !GetSerial(info, 1, "keyring", &keyring)) return env.Undefined();
  if (Keyctl(kKeyctlUnlink, serial, keyring) < 0) ThrowErrno(env, errno, "keyctl");
  return env.Undefined();
}

// Reads a variable-length answer of KEYCTL_DESCRIBE / KEYCTL_READ: the call
// returns the size it needs; repeat while it grew in between.
bool ReadVariable(long op, int32_t serial, std::vector<char>* out) {
  for (;;) {
    long need = Keyctl(op, serial, reinterpret_cast<long>(out->data()), static_cast<long>(out->size()));
    if (need < 0) return false;
    if (static_cast<size_t>(need) <= out->size()) {
      out->resize(static_cast<size_t>(need));
      return true;
    }
    out->resize(static_cast<size_t>(need));
  }
}

// KEYCTL_DESCRIBE or KEYCTL_READ of the serial in argument 0; false after throwing.
bool ReadAnswer(const Napi::CallbackInfo& info, long op, std::vector<char>* buf) {
  int32_t serial;
  if (!GetSerial(info, 0, "serial", &serial)) return false;
  buf->resize(256);
  if (!ReadVariable(op, serial, buf)) {
    ThrowErrno(info.Env(), errno, "keyctl");
    return false;
  }
  return true;
}

// describeKey(serial) -> "type;uid;gid;perm;description"
Napi::Value DescribeKey(const Napi::CallbackInfo& info) {
  std::vector<char> buf;
  if (!ReadAnswer(info, kKeyctlDescribe, &buf)) return info.Env().Undefined();
  // The answer ends with a NUL, counted in its length.
  size_t n = buf.size();
  while (n > 0 && buf[n - 1] == '\0') n--;
  return Napi::String::New(info.Env(), buf.data(), n);
}

// readKey(serial) -> Buffer: the payload as the key type reads it out
// (a keyring: its members' serials, host-order int32).
Napi::Value ReadKey(const Napi::CallbackInfo& info) {
  std::vector<char> buf;
  if (!ReadAnswer(info, kKeyctlRead, &buf)) return info.Env().Undefined();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t*>(buf.data()), buf.size());
}

// searchKey(keyring, type, description) -> serial (ENOKEY when none)
Napi::Value SearchKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t keyring;
  std::string type, description;
  if (!GetSerial(info, 0, "keyring", &keyring) || !GetString(info, 1, "type", &type) ||
      !GetString(info, 2, "description", &description)) {
    return env.Undefined();
  }
  long r = Keyctl(kKeyctlSearch, keyring, reinterpret_cast<long>(type.c_str()),
                  reinterpret_cast<long>(description.c_str()), 0);
  if (r < 0) {
    ThrowErrno(env, errno, "keyctl");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

}  // namespace

void Init(Napi::Env env, Napi::Object exports) {
  Napi::Object keys = Napi::Object::New(env);
  keys.Set("addKey", Napi::Function::New(env, AddKey, "addKey"));
  keys.Set("getKeyringId", Napi::Function::New(env, GetKeyringId, "getKeyringId"));
  keys.Set("revokeKey", Napi::Function::New(env, KeyOp<kKeyctlRevoke>, "revokeKey"));
  keys.Set("invalidateKey", Napi::Function::New(env, KeyOp<kKeyctlInvalidate>, "invalidateKey"));
  keys.Set("unlinkKey", Napi::Function::New(env, UnlinkKey, "unlinkKey"));
  keys.Set("describeKey", Napi::Function::New(env, DescribeKey, "describeKey"));
  keys.Set("readKey", Napi::Function::New(env, ReadKey, "readKey"));
  keys.Set("searchKey", Napi::Function::New(env, SearchKey, "searchKey"));
  exports.Set("keys", keys);
}

}  // namespace rxrpc_keys
