// Errors shaped like Node's own system errors (code, errno negative, syscall,
// and a message naming them), shared by rxrpc.cc and keys.cc.
#pragma once

#include <napi.h>
#include <stdio.h>
#include <string.h>

#include <string>

#include "errno-names.h"

namespace rxrpc_errno {

// The name of errno `err` ("ENOKEY"), or "E<n>" written into `fallback`.
inline const char* ErrnoName(int err, char* fallback, size_t size) {
  if (err > 0 && err <= kMax && kNames[err] != nullptr) return kNames[err];
  snprintf(fallback, size, "E%d", err);
  return fallback;
}

inline Napi::Value ErrnoError(Napi::Env env, int err, const char* syscall_name) {
  char buf[16];
  std::string code = ErrnoName(err, buf, sizeof buf);
  std::string message = std::string(syscall_name) + " " + code + " (" + strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall_name));
  return error.Value();
}

inline void ThrowErrno(Napi::Env env, int err, const char* syscall_name) {
  Napi::Error(env, ErrnoError(env, err, syscall_name)).ThrowAsJavaScriptException();
}

}  // namespace rxrpc_errno
