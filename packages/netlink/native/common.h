// Helpers shared by the addon's source files.
#ifndef OPDBUS_NETLINK_COMMON_H
#define OPDBUS_NETLINK_COMMON_H
#include <node_api.h>

#define NAPI_CALL(env, call)                                      \
  do {                                                            \
    if ((call) != napi_ok) {                                      \
      napi_throw_error((env), NULL, "N-API call failed: " #call); \
      return NULL;                                                \
    }                                                             \
  } while (0)

// Throws an Error carrying `code` (errno name), `errno` (number) and `syscall`; returns NULL.
napi_value throw_errno(napi_env env, const char *syscall_name, int err);
// Reads a string argument into a malloc'd buffer; null/undefined gives NULL. 0 on success.
int get_string(napi_env env, napi_value value, char **out);
// Gets `want` arguments; throws a TypeError and returns -1 when fewer were passed.
int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
// Adds the netlink socket, polling and tun functions (netlink.c) to exports.
void register_netlink(napi_env env, napi_value exports);
// Adds openat2 (fs.c) to exports.
void register_fs(napi_env env, napi_value exports);

#endif
