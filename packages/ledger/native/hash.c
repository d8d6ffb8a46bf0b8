// Batched SHA-256 for the RFC 9162 Merkle tree, with the OpenSSL that Node itself carries
// (Node exports its OpenSSL symbols to addons). Each call hashes many short inputs, so the
// per-call cost of node:crypto (≈2 µs) is paid once per batch instead of once per hash.
#include <node_api.h>
#include <openssl/sha.h>
#include <stdint.h>

#define CHECK(call)                                                                  \
  do {                                                                               \
    if ((call) != napi_ok) {                                                         \
      napi_throw_error(env, "OPDBUS_ERR_LEDGER_NATIVE", "napi call failed: " #call); \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

static int get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) return 0;
  void *ptr = NULL;
  if (napi_get_buffer_info(env, value, &ptr, length) != napi_ok) return 0;
  *data = (uint8_t *)ptr;
  return 1;
}

static int get_u32_array(napi_env env, napi_value value, uint32_t **data, size_t *count) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  void *ptr = NULL;
  napi_value buffer;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, value, &type, count, &ptr, &buffer, &offset) != napi_ok) return 0;
  if (type != napi_uint32_array) return 0;
  *data = (uint32_t *)ptr;
  return 1;
}

// leafHashes(data: Buffer, offsets: Uint32Array, lengths: Uint32Array, out: Buffer): void
// out[32*i .. 32*i+32] = SHA-256(0x00 || data[offsets[i] .. offsets[i]+lengths[i]])
static napi_value leaf_hashes(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data, *out;
  size_t data_len, out_len, n_off, n_len;
  uint32_t *offsets, *lengths;
  if (argc < 4 || !get_bytes(env, argv[0], &data, &data_len) || !get_u32_array(env, argv[1], &offsets, &n_off) ||
      !get_u32_array(env, argv[2], &lengths, &n_len) || !get_bytes(env, argv[3], &out, &out_len) ||
      n_off != n_len || out_len < 32 * n_off) {
    napi_throw_type_error(env, "OPDBUS_ERR_LEDGER_NATIVE", "leafHashes(data, offsets, lengths, out): bad arguments");
    return NULL;
  }
  static const uint8_t prefix = 0x00;
  for (size_t i = 0; i < n_off; i++) {
    if ((uint64_t)offsets[i] + lengths[i] > data_len) {
      napi_throw_range_error(env, "OPDBUS_ERR_LEDGER_NATIVE", "leafHashes: a range lies outside the buffer");
      return NULL;
    }
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &prefix, 1);
    SHA256_Update(&ctx, data + offsets[i], lengths[i]);
    SHA256_Final(out + 32 * i, &ctx);
  }
  return NULL;
}

// nodeHashes(level: Buffer, pairs: number, out: Buffer): void
// out[32*i ..] = SHA-256(0x01 || level[64*i .. 64*i+64])
static napi_value node_hashes(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *level, *out;
  size_t level_len, out_len;
  uint32_t pairs = 0;
  if (argc < 3 || !get_bytes(env, argv[0], &level, &level_len) ||
      napi_get_value_uint32(env, argv[1], &pairs) != napi_ok || !get_bytes(env, argv[2], &out, &out_len) ||
      level_len < 64 * (size_t)pairs || out_len < 32 * (size_t)pairs) {
    napi_throw_type_error(env, "OPDBUS_ERR_LEDGER_NATIVE", "nodeHashes(level, pairs, out): bad arguments");
    return NULL;
  }
  // SHA256_Init/Update/Final, not SHA256(): in OpenSSL 3 the one-shot goes through an EVP fetch.
  static const uint8_t prefix = 0x01;
  for (size_t i = 0; i < pairs; i++) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &prefix, 1);
    SHA256_Update(&ctx, level + 64 * i, 64);
    SHA256_Final(out + 32 * i, &ctx);
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"leafHashes", NULL, leaf_hashes, NULL, NULL, NULL, napi_default, NULL},
      {"nodeHashes", NULL, node_hashes, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 2, props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
