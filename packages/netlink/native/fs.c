// openat2(2): open a path resolved beneath a directory, the kernel refusing `..` above it,
// symbolic links, magic links or mount crossings as asked (RESOLVE_* flags). Node has no binding
// for it; src/confined.ts builds confined file access on it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

// openat2(dirfd, path, flags, mode, resolve) -> fd. dirfd -100 is AT_FDCWD.
static napi_value js_openat2(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (get_args(env, info, 5, argv) != 0) return NULL;
  int32_t dirfd;
  double flags, mode, resolve;
  char *path = NULL;
  if (napi_get_value_int32(env, argv[0], &dirfd) != napi_ok || get_string(env, argv[1], &path) != 0 || path == NULL ||
      napi_get_value_double(env, argv[2], &flags) != napi_ok || napi_get_value_double(env, argv[3], &mode) != napi_ok ||
      napi_get_value_double(env, argv[4], &resolve) != napi_ok) {
    free(path);
    napi_throw_type_error(env, NULL, "openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number)");
    return NULL;
  }
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (unsigned long long)flags | O_CLOEXEC;
  how.mode = ((how.flags & O_CREAT) || (how.flags & O_TMPFILE) == O_TMPFILE) ? (unsigned long long)mode : 0;
  how.resolve = (unsigned long long)resolve;
  long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  int err = errno;
  free(path);
  if (fd < 0) return throw_errno(env, "openat2", err);
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, (int32_t)fd, &result));
  return result;
}

void register_fs(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openat2", NULL, js_openat2, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
