// Batched SHA-256 for the RFC 9162 Merkle tree, with the OpenSSL that Node itself carries
// (Node exports its OpenSSL symbols to addons). Each call hashes many short inputs, so the
// per-call cost of node:crypto (≈2 µs) is paid once per batch instead of once per hash.
#include <node_api.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

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

// Large batches are split across threads (each SHA256_CTX is private, the buffers are not
// touched by JS while the call runs), so verification uses every core.
#define MAX_THREADS 8
#define MIN_PER_THREAD 2048

typedef struct {
  const uint8_t *data;
  const uint32_t *offsets;
  const uint32_t *lengths;
  uint8_t *out;
  size_t from, to;
  int check;              // compare with the stored checksum 32 bytes before each payload
  size_t first_mismatch;  // SIZE_MAX if none
} leaf_job;

static void *leaf_work(void *arg) {
  leaf_job *job = (leaf_job *)arg;
  static const uint8_t prefix = 0x00;
  job->first_mismatch = SIZE_MAX;
  for (size_t i = job->from; i < job->to; i++) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &prefix, 1);
    SHA256_Update(&ctx, job->data + job->offsets[i], job->lengths[i]);
    SHA256_Final(job->out + 32 * i, &ctx);
    if (job->check && job->first_mismatch == SIZE_MAX &&
        memcmp(job->out + 32 * i, job->data + job->offsets[i] - 32, 32) != 0)
      job->first_mismatch = i;
  }
  return NULL;
}

static size_t thread_count(size_t n) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t t = cpus > 0 ? (size_t)cpus : 1;
  if (t > MAX_THREADS) t = MAX_THREADS;
  while (t > 1 && n / t < MIN_PER_THREAD) t--;
  return t;
}

// leafHashes(data: Buffer, offsets: Uint32Array, lengths: Uint32Array, out: Buffer, check?: boolean): number
// out[32*i .. 32*i+32] = SHA-256(0x00 || data[offsets[i] .. offsets[i]+lengths[i]]). With check,
// returns the first i whose hash differs from the 32 bytes at offsets[i]-32 (the record
// checksum), or -1.
static napi_value leaf_hashes(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data, *out;
  size_t data_len, out_len, n_off, n_len;
  uint32_t *offsets, *lengths;
  bool check = false;
  if (argc < 4 || !get_bytes(env, argv[0], &data, &data_len) || !get_u32_array(env, argv[1], &offsets, &n_off) ||
      !get_u32_array(env, argv[2], &lengths, &n_len) || !get_bytes(env, argv[3], &out, &out_len) ||
      n_off != n_len || out_len < 32 * n_off || (argc >= 5 && napi_get_value_bool(env, argv[4], &check) != napi_ok)) {
    napi_throw_type_error(env, "OPDBUS_ERR_LEDGER_NATIVE", "leafHashes(data, offsets, lengths, out, check?): bad arguments");
    return NULL;
  }
  for (size_t i = 0; i < n_off; i++) {
    if ((uint64_t)offsets[i] + lengths[i] > data_len || (check && offsets[i] < 32)) {
      napi_throw_range_error(env, "OPDBUS_ERR_LEDGER_NATIVE", "leafHashes: a range lies outside the buffer");
      return NULL;
    }
  }
  size_t threads = thread_count(n_off);
  leaf_job jobs[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (size_t t = 0; t < threads; t++) {
    jobs[t] = (leaf_job){data, offsets, lengths, out, n_off * t / threads, n_off * (t + 1) / threads, check, SIZE_MAX};
    if (t > 0) started[t] = pthread_create(&ids[t], NULL, leaf_work, &jobs[t]) == 0;
  }
  leaf_work(&jobs[0]);
  for (size_t t = 1; t < threads; t++) {
    if (started[t]) pthread_join(ids[t], NULL);
    else leaf_work(&jobs[t]);
  }
  double first = -1;
  for (size_t t = 0; t < threads; t++) {
    if (jobs[t].first_mismatch != SIZE_MAX) {
      first = (double)jobs[t].first_mismatch;
      break;
    }
  }
  napi_value result;
  CHECK(napi_create_double(env, first, &result));
  return result;
}

typedef struct {
  const uint8_t *level;
  uint8_t *out;
  size_t from, to;
} node_job;

static void *node_work(void *arg) {
  node_job *job = (node_job *)arg;
  // SHA256_Init/Update/Final, not SHA256(): in OpenSSL 3 the one-shot goes through an EVP fetch.
  static const uint8_t prefix = 0x01;
  for (size_t i = job->from; i < job->to; i++) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &prefix, 1);
    SHA256_Update(&ctx, job->level + 64 * i, 64);
    SHA256_Final(job->out + 32 * i, &ctx);
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
  size_t threads = thread_count(pairs);
  node_job jobs[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (size_t t = 0; t < threads; t++) {
    jobs[t] = (node_job){level, out, (size_t)pairs * t / threads, (size_t)pairs * (t + 1) / threads};
    if (t > 0) started[t] = pthread_create(&ids[t], NULL, node_work, &jobs[t]) == 0;
  }
  node_work(&jobs[0]);
  for (size_t t = 1; t < threads; t++) {
    if (started[t]) pthread_join(ids[t], NULL);
    else node_work(&jobs[t]);
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
