// AF_NETLINK sockets for Node: open, setsockopt, send, a batched non-blocking receive into a
// caller-owned buffer, and readiness polling on the libuv loop. Plus the /dev/net/tun ioctls that
// create and delete persistent tap/tun devices (rtnetlink cannot create them).
//
// Design: the kernel answers rtnetlink (and most generic netlink) requests synchronously inside
// sendmsg(2), so after a send the replies are already queued. nl_recv therefore reads with
// MSG_DONTWAIT, many datagrams per call, straight into one JavaScript-owned buffer (no allocation
// per datagram); the JavaScript side parses messages in place. Only when nothing is queued does it
// need the event loop: nl_poll_start watches the fd with uv_poll and calls back on readability.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <poll.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "common.h"

// nlSocket(protocol) -> [fd, portId]
static napi_value js_nl_socket(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  int32_t protocol;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &protocol));
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK)", errno);
  struct sockaddr_nl addr;
  memset(&addr, 0, sizeof addr);
  addr.nl_family = AF_NETLINK;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind(AF_NETLINK)", err);
  }
  socklen_t len = sizeof addr;
  if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "getsockname(AF_NETLINK)", err);
  }
  napi_value result, fd_value, pid_value;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &result));
  NAPI_CALL(env, napi_create_int32(env, fd, &fd_value));
  NAPI_CALL(env, napi_create_uint32(env, addr.nl_pid, &pid_value));
  NAPI_CALL(env, napi_set_element(env, result, 0, fd_value));
  NAPI_CALL(env, napi_set_element(env, result, 1, pid_value));
  return result;
}

// setsockoptInt(fd, level, name, value)
static napi_value js_setsockopt_int(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv) != 0) return NULL;
  int32_t fd, level, name, value;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &level));
  NAPI_CALL(env, napi_get_value_int32(env, argv[2], &name));
  NAPI_CALL(env, napi_get_value_int32(env, argv[3], &value));
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) return throw_errno(env, "setsockopt", errno);
  return NULL;
}

// getsockoptInt(fd, level, name) -> value
static napi_value js_getsockopt_int(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv) != 0) return NULL;
  int32_t fd, level, name;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &level));
  NAPI_CALL(env, napi_get_value_int32(env, argv[2], &name));
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) != 0) return throw_errno(env, "getsockopt", errno);
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, value, &result));
  return result;
}

static int get_buffer(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) return -1;
  void *ptr = NULL;
  if (napi_get_buffer_info(env, value, &ptr, length) != napi_ok) return -1;
  *data = ptr;
  return 0;
}

// nlSend(fd, buffer, length) -> bytes sent. One sendmsg: the kernel processes every message in it.
static napi_value js_nl_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv) != 0) return NULL;
  int32_t fd;
  uint32_t length;
  uint8_t *data;
  size_t buflen;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  if (get_buffer(env, argv[1], &data, &buflen) != 0) {
    napi_throw_type_error(env, NULL, "nlSend(fd, buffer: Buffer, length: number)");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &length));
  if (length > buflen) {
    napi_throw_range_error(env, NULL, "nlSend: length exceeds the buffer");
    return NULL;
  }
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, data, length, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto(AF_NETLINK)", errno);
  napi_value result;
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)n, &result));
  return result;
}

#define ALIGN4(n) (((n) + 3u) & ~3u)

// nlRecv(fd, buffer, offset, status: Int32Array(2)) -> end offset.
// Reads queued datagrams (MSG_DONTWAIT) one after the other into buffer[offset..], each at a
// 4-byte aligned offset, until nothing is queued, the buffer is full, or an error. Datagrams not
// from the kernel (nl_pid != 0) are dropped. status[0] = errno of the error that stopped it (0 for
// "nothing more queued": EAGAIN), status[1] = the size of a datagram that did not fit (0 if none):
// the caller grows the buffer or consumes it and calls again.
static napi_value js_nl_recv(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv) != 0) return NULL;
  int32_t fd;
  uint32_t offset;
  uint8_t *data;
  size_t buflen;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  if (get_buffer(env, argv[1], &data, &buflen) != 0) {
    napi_throw_type_error(env, NULL, "nlRecv(fd, buffer: Buffer, offset: number, status: Int32Array)");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &offset));
  napi_typedarray_type type;
  size_t status_len;
  void *status_data;
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[3], &type, &status_len, &status_data, NULL, NULL));
  if (type != napi_int32_array || status_len < 2) {
    napi_throw_type_error(env, NULL, "nlRecv: status must be an Int32Array of length 2");
    return NULL;
  }
  int32_t *status = status_data;
  status[0] = 0;
  status[1] = 0;
  size_t off = offset;
  for (;;) {
    if (off + 16 > buflen) break;
    size_t room = buflen - off;
    struct sockaddr_nl from;
    socklen_t fromlen = sizeof from;
    if (room < 65536) {
      // Peek at the size first, so a datagram is never truncated (and lost).
      ssize_t want = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
      if (want < 0) {
        if (errno == EINTR) continue;
        status[0] = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : errno;
        break;
      }
      if ((size_t)want > room) {
        status[1] = (int32_t)want;
        break;
      }
    }
    ssize_t n = recvfrom(fd, data + off, room, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      status[0] = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : errno;
      break;
    }
    if ((size_t)n > room) {
      // Only possible for a datagram over 64 KiB arriving between peek and read; report it.
      status[0] = EMSGSIZE;
      status[1] = (int32_t)n;
      break;
    }
    if (from.nl_pid != 0) continue;  // not from the kernel: ignore
    off += ALIGN4((size_t)n);
    if (off > buflen) off = buflen;
  }
  napi_value result;
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)off, &result));
  return result;
}

// ---- readiness polling on the libuv loop ----

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int active;
} poller_t;

static void poller_closed(uv_handle_t *handle) { free(handle->data); }

static void poller_cb(uv_poll_t *handle, int status, int events) {
  (void)events;
  poller_t *p = handle->data;
  if (!p->active) return;
  // libuv reports POLLERR as UV_EBADF and stops watching. On a netlink socket POLLERR means a
  // pending socket error (ENOBUFS after an overrun), which the callback's next recv consumes, so
  // watch again afterwards.
  int restart = status < 0;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, arg, result;
  if (napi_get_reference_value(env, p->callback, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &recv);
    napi_create_int32(env, status < 0 ? -status : 0, &arg);
    napi_make_callback(env, p->context, recv, cb, 1, &arg, &result);
  }
  napi_close_handle_scope(env, scope);
  if (restart && p->active) uv_poll_start(&p->handle, UV_READABLE, poller_cb);
}

static void poller_stop(poller_t *p) {
  if (!p->active) return;
  p->active = 0;
  uv_poll_stop(&p->handle);
  napi_delete_reference(p->env, p->callback);
  napi_async_destroy(p->env, p->context);
  uv_close((uv_handle_t *)&p->handle, poller_closed);
}

// pollStart(fd, callback(errno)) -> handle. The callback runs whenever fd is readable.
static napi_value js_poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) != 0) return NULL;
  int32_t fd;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  poller_t *p = calloc(1, sizeof *p);
  if (p == NULL) return throw_errno(env, "pollStart", ENOMEM);
  p->env = env;
  p->handle.data = p;
  int rc = uv_poll_init(loop, &p->handle, fd);
  if (rc != 0) {
    free(p);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  napi_value name, resource;
  napi_create_string_utf8(env, "opdbus:netlink", NAPI_AUTO_LENGTH, &name);
  napi_create_object(env, &resource);
  if (napi_create_reference(env, argv[1], 1, &p->callback) != napi_ok ||
      napi_async_init(env, resource, name, &p->context) != napi_ok) {
    uv_close((uv_handle_t *)&p->handle, poller_closed);
    napi_throw_error(env, NULL, "pollStart: N-API failure");
    return NULL;
  }
  p->active = 1;
  rc = uv_poll_start(&p->handle, UV_READABLE, poller_cb);
  if (rc != 0) {
    poller_stop(p);
    return throw_errno(env, "uv_poll_start", -rc);
  }
  napi_value external;
  NAPI_CALL(env, napi_create_external(env, p, NULL, NULL, &external));
  return external;
}

static poller_t *get_poller(napi_env env, napi_value value) {
  void *p = NULL;
  if (napi_get_value_external(env, value, &p) != napi_ok) return NULL;
  return p;
}

// pollStop(handle): idempotent.
static napi_value js_poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  poller_t *p = get_poller(env, argv[0]);
  if (p == NULL) {
    napi_throw_type_error(env, NULL, "pollStop(handle)");
    return NULL;
  }
  poller_stop(p);
  return NULL;
}

// pollRef(handle, ref): whether the watch keeps the event loop (the process) alive.
static napi_value js_poll_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) != 0) return NULL;
  poller_t *p = get_poller(env, argv[0]);
  bool ref;
  if (p == NULL || napi_get_value_bool(env, argv[1], &ref) != napi_ok) {
    napi_throw_type_error(env, NULL, "pollRef(handle, ref: boolean)");
    return NULL;
  }
  if (p->active) {
    if (ref)
      uv_ref((uv_handle_t *)&p->handle);
    else
      uv_unref((uv_handle_t *)&p->handle);
  }
  return NULL;
}

// ---- tun/tap ----

static int tun_attach(const char *name, int flags, struct ifreq *ifr) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  memset(ifr, 0, sizeof *ifr);
  strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
  ifr->ifr_flags = (short)flags;
  if (ioctl(fd, TUNSETIFF, ifr) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// tunCreate(name, flags, owner, group): a persistent tun/tap device in the calling thread's netns.
// flags: IFF_TUN | IFF_TAP, IFF_NO_PI, IFF_MULTI_QUEUE, IFF_VNET_HDR. owner/group -1: none.
static napi_value js_tun_create(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv) != 0) return NULL;
  char *name = NULL;
  int32_t flags, owner, group;
  if (get_string(env, argv[0], &name) || name == NULL || strlen(name) >= IFNAMSIZ ||
      napi_get_value_int32(env, argv[1], &flags) != napi_ok || napi_get_value_int32(env, argv[2], &owner) != napi_ok ||
      napi_get_value_int32(env, argv[3], &group) != napi_ok) {
    free(name);
    napi_throw_type_error(env, NULL, "tunCreate(name: string, flags: number, owner: number, group: number)");
    return NULL;
  }
  struct ifreq ifr;
  int fd = tun_attach(name, flags, &ifr);
  free(name);
  if (fd < 0) return throw_errno(env, "ioctl(TUNSETIFF)", errno);
  const char *failed = NULL;
  if (owner >= 0 && ioctl(fd, TUNSETOWNER, (unsigned long)owner) != 0) failed = "ioctl(TUNSETOWNER)";
  if (failed == NULL && group >= 0 && ioctl(fd, TUNSETGROUP, (unsigned long)group) != 0) failed = "ioctl(TUNSETGROUP)";
  if (failed == NULL && ioctl(fd, TUNSETPERSIST, 1UL) != 0) failed = "ioctl(TUNSETPERSIST)";
  int err = errno;
  close(fd);  // without persist, closing removes the device again
  if (failed != NULL) return throw_errno(env, failed, err);
  return NULL;
}

// tunDelete(name, flags): clear the persist flag of a tun/tap device; it goes away on close.
static napi_value js_tun_delete(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) != 0) return NULL;
  char *name = NULL;
  int32_t flags;
  if (get_string(env, argv[0], &name) || name == NULL || strlen(name) >= IFNAMSIZ ||
      napi_get_value_int32(env, argv[1], &flags) != napi_ok) {
    free(name);
    napi_throw_type_error(env, NULL, "tunDelete(name: string, flags: number)");
    return NULL;
  }
  struct ifreq ifr;
  int fd = tun_attach(name, flags, &ifr);
  free(name);
  if (fd < 0) return throw_errno(env, "ioctl(TUNSETIFF)", errno);
  int rc = ioctl(fd, TUNSETPERSIST, 0UL);
  int err = errno;
  close(fd);
  if (rc != 0) return throw_errno(env, "ioctl(TUNSETPERSIST)", err);
  return NULL;
}

// ---- dumps read in a worker thread ----
//
// The kernel builds dump replies inside recvmsg(2), on the calling thread. Reading a dump in the
// libuv thread pool lets several dumps (links, addresses, routes, on their own sockets) be built by
// the kernel in parallel on several CPUs while the main thread decodes.

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer_ref;
  int fd;
  uint8_t *data;
  size_t length;
  size_t offset;
  uint32_t seq;
  int err;
  int done;
  int need;
} dump_t;

// Read the dump's datagrams into d->data from d->offset until its end (d->done), an error, less than
// 64 KiB of room, or (max_reads > 0) max_reads datagrams; with `wait`, poll when none is queued,
// else stop there.
static void dump_read(dump_t *d, int wait, int max_reads) {
  size_t off = d->offset;
  for (int reads = 0; max_reads <= 0 || reads < max_reads; reads++) {
    if (off + 65536 > d->length) break;  // let the caller consume (or grow) the buffer
    ssize_t n = recv(d->fd, d->data + off, d->length - off, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) {
        reads--;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait) break;
        struct pollfd pfd = {.fd = d->fd, .events = POLLIN};
        int rc = poll(&pfd, 1, 30000);
        if (rc == 0) {
          d->err = ETIMEDOUT;
          break;
        }
        if (rc < 0 && errno != EINTR) {
          d->err = errno;
          break;
        }
        reads--;
        continue;
      }
      d->err = errno;
      break;
    }
    if ((size_t)n > d->length - off) {
      d->err = EMSGSIZE;
      d->need = (int)n;
      break;
    }
    // Is the end of the dump (or an error for it) in this datagram?
    size_t pos = off;
    size_t end = off + (size_t)n;
    while (pos + sizeof(struct nlmsghdr) <= end) {
      struct nlmsghdr *h = (struct nlmsghdr *)(d->data + pos);
      if (h->nlmsg_len < sizeof(struct nlmsghdr) || pos + h->nlmsg_len > end) break;
      if (h->nlmsg_seq == d->seq && (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)) d->done = 1;
      pos += NLMSG_ALIGN(h->nlmsg_len);
    }
    off += ALIGN4((size_t)n);
    if (d->done) break;
  }
  d->offset = off;
}

static void dump_execute(napi_env env, void *arg) {
  (void)env;
  dump_read(arg, 1, 0);
}

static void dump_complete(napi_env env, napi_status status, void *arg) {
  dump_t *d = arg;
  napi_value result, v;
  napi_create_array_with_length(env, 4, &result);
  napi_create_uint32(env, (uint32_t)d->offset, &v);
  napi_set_element(env, result, 0, v);
  napi_get_boolean(env, d->done != 0, &v);
  napi_set_element(env, result, 1, v);
  napi_create_int32(env, status == napi_ok ? d->err : ECANCELED, &v);
  napi_set_element(env, result, 2, v);
  napi_create_int32(env, d->need, &v);
  napi_set_element(env, result, 3, v);
  napi_resolve_deferred(env, d->deferred, result);
  napi_delete_reference(env, d->buffer_ref);
  napi_delete_async_work(env, d->work);
  free(d);
}

// nlDumpAsync(fd, buffer, offset, seq) -> Promise<[end, done, errno, needed]>: read the replies of
// the dump with sequence number `seq` into buffer[offset..] in a worker thread, until its
// NLMSG_DONE (or error) arrives or the buffer has less than 64 KiB left.
static napi_value js_nl_dump_async(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv) != 0) return NULL;
  int32_t fd;
  uint32_t offset, seq;
  uint8_t *data;
  size_t length;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  if (get_buffer(env, argv[1], &data, &length) != 0) {
    napi_throw_type_error(env, NULL, "nlDumpAsync(fd, buffer: Buffer, offset: number, seq: number)");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &offset));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[3], &seq));
  dump_t *d = calloc(1, sizeof *d);
  if (d == NULL) return throw_errno(env, "nlDumpAsync", ENOMEM);
  d->fd = fd;
  d->data = data;
  d->length = length;
  d->offset = offset;
  d->seq = seq;
  napi_value promise, name;
  if (napi_create_promise(env, &d->deferred, &promise) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &d->buffer_ref) != napi_ok) {
    free(d);
    napi_throw_error(env, NULL, "nlDumpAsync: N-API failure");
    return NULL;
  }
  napi_create_string_utf8(env, "opdbus:netlink-dump", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, dump_execute, dump_complete, d, &d->work) != napi_ok ||
      napi_queue_async_work(env, d->work) != napi_ok) {
    napi_delete_reference(env, d->buffer_ref);
    free(d);
    napi_throw_error(env, NULL, "nlDumpAsync: cannot queue the work");
    return NULL;
  }
  return promise;
}

// nlDumpSync(fd, buffer, offset, seq, maxReads) -> [end, done, errno, needed]: what nlDumpAsync
// does, on the calling thread, without waiting: it reads what is queued (the kernel queues a dump's
// first part while it handles the request, and builds the next inside each read), at most maxReads
// datagrams. A small dump (a namespace with a few links) ends here, with no thread or event-loop
// turn; a large one goes on with nlDumpAsync.
static napi_value js_nl_dump_sync(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (get_args(env, info, 5, argv) != 0) return NULL;
  dump_t d = {0};
  int32_t fd, max_reads;
  uint32_t offset, seq;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  if (get_buffer(env, argv[1], &d.data, &d.length) != 0) {
    napi_throw_type_error(env, NULL, "nlDumpSync(fd, buffer: Buffer, offset: number, seq: number, maxReads: number)");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &offset));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[3], &seq));
  NAPI_CALL(env, napi_get_value_int32(env, argv[4], &max_reads));
  if (max_reads < 1) {
    napi_throw_range_error(env, NULL, "nlDumpSync: maxReads must be at least 1");
    return NULL;
  }
  d.fd = fd;
  d.offset = offset;
  d.seq = seq;
  dump_read(&d, 0, max_reads);
  napi_value result, v;
  NAPI_CALL(env, napi_create_array_with_length(env, 4, &result));
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)d.offset, &v));
  NAPI_CALL(env, napi_set_element(env, result, 0, v));
  NAPI_CALL(env, napi_get_boolean(env, d.done != 0, &v));
  NAPI_CALL(env, napi_set_element(env, result, 1, v));
  NAPI_CALL(env, napi_create_int32(env, d.err, &v));
  NAPI_CALL(env, napi_set_element(env, result, 2, v));
  NAPI_CALL(env, napi_create_int32(env, d.need, &v));
  NAPI_CALL(env, napi_set_element(env, result, 3, v));
  return result;
}

// strerror(errno) -> [name, message], e.g. [ "EEXIST", "File exists" ] (glibc's names and texts).
static napi_value js_strerror(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  int32_t err;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &err));
  const char *name = strerrorname_np(err);
  const char *message = strerror(err);
  napi_value result, name_value, message_value;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &result));
  NAPI_CALL(env, napi_create_string_utf8(env, name ? name : "", NAPI_AUTO_LENGTH, &name_value));
  NAPI_CALL(env, napi_create_string_utf8(env, message ? message : "", NAPI_AUTO_LENGTH, &message_value));
  NAPI_CALL(env, napi_set_element(env, result, 0, name_value));
  NAPI_CALL(env, napi_set_element(env, result, 1, message_value));
  return result;
}

void register_netlink(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"nlSocket", NULL, js_nl_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setsockoptInt", NULL, js_setsockopt_int, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getsockoptInt", NULL, js_getsockopt_int, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nlSend", NULL, js_nl_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nlRecv", NULL, js_nl_recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStart", NULL, js_poll_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStop", NULL, js_poll_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollRef", NULL, js_poll_ref, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunCreate", NULL, js_tun_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunDelete", NULL, js_tun_delete, NULL, NULL, NULL, napi_enumerable, NULL},
      {"strerror", NULL, js_strerror, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nlDumpAsync", NULL, js_nl_dump_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nlDumpSync", NULL, js_nl_dump_sync, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
