// Linux keys for AF_RXRPC security, made with the add_key and keyctl system
// calls directly (no libkeyutils). See keys.cc.
#pragma once

#include <napi.h>

namespace rxrpc_keys {

// Adds exports.keys: { addKey, getKeyringId, revokeKey, unlinkKey,
// invalidateKey, describeKey, readKey, searchKey }.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace rxrpc_keys
