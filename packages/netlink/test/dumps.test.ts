// A dump's first datagrams are read on the calling thread (nlDumpSync), the rest in a worker
// thread (nlDumpAsync): a small namespace's dump ends without one, a large one goes on where the
// synchronous reads stopped. Against the kernel, in a namespace of the test's own.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { beginMessage, endMessage, Writer } from '../src/codec.js';
import { NETLINK, NLM_F, NLMSG, RTM } from '../src/constants.js';
import { native } from '../src/native.js';
import { NetlinkSocket } from '../src/socket.js';
import type { Netns } from '../src/index.js';
import { describeAsRoot, dropAllNetns, freshNetns, ipBatch } from './helpers.js';

/** An RTM_GETLINK dump request with sequence number `seq`. */
function linkDump(seq: number): Buffer {
  const w = new Writer(64);
  const start = beginMessage(w, RTM.GETLINK, NLM_F.REQUEST | NLM_F.DUMP, seq, 0);
  w.bytes(new Uint8Array(16)); // struct ifinfomsg, family AF_UNSPEC
  endMessage(w, start);
  return w.buf.subarray(0, w.pos);
}

/** The message types in `buf[0, end)`. */
function types(buf: Buffer, end: number): number[] {
  const out: number[] = [];
  for (let off = 0; off + 16 <= end;) {
    const len = buf.readUInt32LE(off);
    out.push(buf.readUInt16LE(off + 4));
    off += (len + 3) & ~3;
  }
  return out;
}

describeAsRoot('dumps read on the calling thread', () => {
  let ns: Netns;
  beforeAll(() => {
    ns = freshNetns();
  });
  afterAll(() => {
    dropAllNetns();
  });

  it('a small dump ends within two synchronous reads: its part, then its end', () => {
    const socket = NetlinkSocket.open(NETLINK.ROUTE, { netns: ns });
    try {
      socket.send(linkDump(7));
      const buf = Buffer.alloc(256 * 1024);
      const [end, done, errno, needed] = native().nlDumpSync(socket.fd, buf, 0, 7, 2);
      expect({ done, errno, needed }).toEqual({ done: true, errno: 0, needed: 0 });
      // The loopback link, then the end of the dump.
      expect(types(buf, end)).toEqual([RTM.NEWLINK, NLMSG.DONE]);
    } finally {
      socket.close();
    }
  });

  it('a large dump is not done after its synchronous reads and goes on in a worker thread', async () => {
    ipBatch(
      ns.name,
      Array.from({ length: 150 }, (_, i) => `link add sy${i} type veth peer name sy${i}p`),
    );
    const socket = NetlinkSocket.open(NETLINK.ROUTE, { netns: ns });
    try {
      socket.send(linkDump(8));
      const buf = Buffer.alloc(256 * 1024);
      const [first, doneAtOnce, errno] = native().nlDumpSync(socket.fd, buf, 0, 8, 1);
      expect({ doneAtOnce, errno }).toEqual({ doneAtOnce: false, errno: 0 });
      let links = types(buf, first).filter((t) => t === RTM.NEWLINK).length;
      expect(links).toBeGreaterThan(0);
      for (;;) {
        const [end, done, err] = await native().nlDumpAsync(socket.fd, buf, 0, 8);
        expect(err).toBe(0);
        links += types(buf, end).filter((t) => t === RTM.NEWLINK).length;
        if (done) break;
      }
      expect(links).toBe(1 + 300);
    } finally {
      socket.close();
    }
  });

  it('nothing queued: no data and not done, without waiting', () => {
    const socket = NetlinkSocket.open(NETLINK.ROUTE, { netns: ns });
    try {
      const [end, done, errno] = native().nlDumpSync(socket.fd, Buffer.alloc(128 * 1024), 0, 9, 2);
      expect({ end, done, errno }).toEqual({ end: 0, done: false, errno: 0 });
      expect(() => native().nlDumpSync(socket.fd, Buffer.alloc(128 * 1024), 0, 9, 0)).toThrow(/maxReads/);
    } finally {
      socket.close();
    }
  });
});
