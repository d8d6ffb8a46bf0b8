// Thin N-API wrappers around the Linux system calls Node does not expose: setns, unshare, mount,
// umount2, and an interface-up ioctl. Each throws an Error carrying `code` (errno name),
// `errno` (number) and `syscall` on failure. They act on the calling thread, which for
// synchronous JavaScript is the main thread; see src/netns.ts for how they are used.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <node_api.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

// setns(fd, nstype)
static napi_value js_setns(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) != 0) return NULL;
  int32_t fd, nstype;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &nstype));
  if (setns(fd, nstype) != 0) return throw_errno(env, "setns", errno);
  return NULL;
}

// unshare(flags)
static napi_value js_unshare(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  int32_t flags;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &flags));
  if (unshare(flags) != 0) return throw_errno(env, "unshare", errno);
  return NULL;
}

// mount(source, target, fstype, flags, data)
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (get_args(env, info, 5, argv) != 0) return NULL;
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  double flags_d;
  napi_value result = NULL;
  if (get_string(env, argv[0], &source) || get_string(env, argv[1], &target) || get_string(env, argv[2], &fstype) ||
      get_string(env, argv[4], &data) || napi_get_value_double(env, argv[3], &flags_d) != napi_ok || target == NULL) {
    napi_throw_type_error(env, NULL, "mount(source: string|null, target: string, fstype: string|null, flags: number, data: string|null)");
    goto out;
  }
  if (mount(source, target, fstype, (unsigned long)flags_d, data) != 0) throw_errno(env, "mount", errno);
out:
  free(source);
  free(target);
  free(fstype);
  free(data);
  return result;
}

// umount2(target, flags)
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) != 0) return NULL;
  char *target = NULL;
  int32_t flags;
  if (get_string(env, argv[0], &target) || target == NULL || napi_get_value_int32(env, argv[1], &flags) != napi_ok) {
    free(target);
    napi_throw_type_error(env, NULL, "umount2(target: string, flags: number)");
    return NULL;
  }
  int rc = umount2(target, flags);
  int err = errno;
  free(target);
  if (rc != 0) return throw_errno(env, "umount2", err);
  return NULL;
}

// setInterfaceFlags(name, set, clear): SIOCGIFFLAGS / SIOCSIFFLAGS in the calling thread's netns.
static napi_value js_set_interface_flags(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv) != 0) return NULL;
  char *name = NULL;
  int32_t set, clear;
  if (get_string(env, argv[0], &name) || name == NULL || napi_get_value_int32(env, argv[1], &set) != napi_ok ||
      napi_get_value_int32(env, argv[2], &clear) != napi_ok || strlen(name) >= IFNAMSIZ) {
    free(name);
    napi_throw_type_error(env, NULL, "setInterfaceFlags(name: string, set: number, clear: number)");
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  free(name);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ioctl(SIOCGIFFLAGS)", err);
  }
  ifr.ifr_flags = (short)((ifr.ifr_flags | set) & ~clear);
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ioctl(SIOCSIFFLAGS)", err);
  }
  close(fd);
  return NULL;
}

static napi_value js_gettid(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, (int32_t)syscall(SYS_gettid), &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"setns", NULL, js_setns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unshare", NULL, js_unshare, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setInterfaceFlags", NULL, js_set_interface_flags, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gettid", NULL, js_gettid, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  register_netlink(env, exports);
  register_fs(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
