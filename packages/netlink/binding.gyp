{
  "targets": [
    {
      "target_name": "opdbus_netlink",
      "sources": ["native/syscalls.c", "native/common.c", "native/netlink.c", "native/fs.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
