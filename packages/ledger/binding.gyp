{
  "targets": [
    {
      "target_name": "opdbus_ledger",
      "sources": ["native/hash.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2", "-Wno-deprecated-declarations"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
