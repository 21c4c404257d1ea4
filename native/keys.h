// Linux keys for AF_RXRPC security, made with the add_key and keyctl system
// calls directly (no libkeyutils). See keys.cc.
#pragma once

#include <napi.h>

namespace rxrpc_keys {

// Adds exports.keys: { addKey, getKeyringId, revokeKey, unlinkKey,
// invalidateKey, describeKey, readKey, searchKey }.
void Init(Napi::Env env, Napi::Object exports);

// The symbolic name of a Linux errno value ("ENOKEY"), or nullptr. A table of
// our own: strerrorname_np needs glibc 2.32 and musl has none.
const char* ErrnoCode(int err);

}  // namespace rxrpc_keys
