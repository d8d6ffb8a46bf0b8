#!/usr/bin/env node
// A netlink event storm, as a process of its own (so that it does not share an event loop with
// what it measures), in two roles:
//
//   node bench/netlinkStorm.mjs send NETNS RATE SECONDS UP_EVERY NAME...
//     Toggles flags of the named links with raw RTM_NEWLINK requests, RATE a second for SECONDS:
//     no acknowledgements asked (NLM_F_ACK off), many requests to a datagram (one sendmsg(2) per
//     ~5 ms). Every UP_EVERY-th request toggles IFF_UP (down, then up at its next turn: drift on a
//     link whose desired state is up), the others IFF_PROMISC (a change the daemon must look at, not
//     drift); UP_EVERY 1: IFF_UP only. Taking a link down waits for an RCU grace period in the
//     kernel (~2k/s on 2 cores), a promiscuity change does not. Each request changes its link, so
//     the kernel sends one RTM_NEWLINK notification to RTNLGRP_LINK for each. Errors still come back
//     (NLMSG_ERROR) and are counted. At the end every link is up and not promiscuous again.
//     Prints one JSON line: { sent, up, seconds, errors }.
//
//   node bench/netlinkStorm.mjs count NETNS
//     Counts the RTM_NEWLINK / RTM_DELLINK notifications delivered to an RTNLGRP_LINK listener
//     (a 64 MiB receive buffer; overruns are counted too) until SIGTERM, then prints one JSON line:
//     { events, overruns, first, last } (first/last: ms since the start, of the first and last event).
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetlinkSocket, Rtnetlink, Writer, beginMessage, constants, endMessage } from '@opdbus/netlink';

const { NETLINK, NLM_F, NLMSG, RTM, RTNLGRP } = constants;
const IFF_UP = 0x1;
const IFF_PROMISC = 0x100;
const [role, netns, ...rest] = process.argv.slice(2);
if ((role !== 'send' && role !== 'count') || netns === undefined) {
  process.stderr.write('usage: netlinkStorm.mjs send NETNS RATE SECONDS UP_EVERY NAME... | count NETNS\n');
  process.exit(2);
}

/** One RTM_NEWLINK request setting (or clearing) `flag` on link `index`: 32 bytes, no ack. */
function toggle(w, index, flag, on, seq) {
  const start = beginMessage(w, RTM.NEWLINK, NLM_F.REQUEST, seq, 0);
  w.u8(0); // ifi_family: AF_UNSPEC
  w.u8(0);
  w.u16(0); // ifi_type
  w.s32(index);
  w.u32(on ? flag : 0); // ifi_flags
  w.u32(flag); // ifi_change: only this flag
  endMessage(w, start);
}

if (role === 'send') {
  const rate = Number(rest[0]);
  const seconds = Number(rest[1]);
  const upEvery = Number(rest[2]);
  const names = rest.slice(3);
  const nl = Rtnetlink.open({ netns });
  const indexes = [];
  for (const name of names) indexes.push(await nl.linkIndex(name));
  nl.close();
  const sock = NetlinkSocket.open(NETLINK.ROUTE, { netns, receiveBufferSize: 8 << 20 });
  sock.setBufferSizes({ send: 8 << 20 });
  let errors = 0;
  const drainErrors = () =>
    sock.drain((buf, off) => {
      if (buf.readUInt16LE(off + 4) === NLMSG.ERROR && buf.readInt32LE(off + 16) !== 0) errors++;
    });
  // Each link goes down (promiscuous), then up (not) again the next time its turn comes: every
  // request changes it.
  const down = indexes.map(() => false);
  const promisc = indexes.map(() => false);
  let next = 0;
  let sent = 0;
  let ups = 0;
  let seq = 1;
  const w = new Writer(1 << 16);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  for (let now = t0; now < end; now = performance.now()) {
    // As many requests as the rate asks for by now, in datagrams of at most 2000 (64 KiB).
    let due = Math.floor(((now - t0) / 1000) * rate) - sent;
    while (due > 0) {
      w.reset();
      const n = Math.min(due, 2000);
      for (let i = 0; i < n; i++) {
        const k = next;
        next = (next + 1) % indexes.length;
        if ((sent + i) % upEvery === 0) {
          toggle(w, indexes[k], IFF_UP, down[k], seq++);
          down[k] = !down[k];
          ups++;
        } else {
          promisc[k] = !promisc[k];
          toggle(w, indexes[k], IFF_PROMISC, promisc[k], seq++);
        }
      }
      sock.send(w.buf.subarray(0, w.pos));
      sent += n;
      due -= n;
    }
    drainErrors();
    await sleep(5);
  }
  const elapsed = (performance.now() - t0) / 1000;
  // Leave every link up and not promiscuous.
  w.reset();
  indexes.forEach((index, k) => {
    if (down[k]) toggle(w, index, IFF_UP, true, seq++);
    if (promisc[k]) toggle(w, index, IFF_PROMISC, false, seq++);
  });
  sock.send(w.buf.subarray(0, w.pos));
  await sleep(50);
  drainErrors();
  sock.close();
  process.stdout.write(`${JSON.stringify({ sent, up: ups, seconds: elapsed, errors })}\n`);
} else {
  const sock = NetlinkSocket.open(NETLINK.ROUTE, {
    netns,
    groups: [RTNLGRP.LINK],
    receiveBufferSize: 64 << 20,
  });
  let events = 0;
  let overruns = 0;
  let first;
  let last;
  const t0 = performance.now();
  const read = () => {
    for (;;) {
      const state = sock.drain((buf, off) => {
        const type = buf.readUInt16LE(off + 4);
        if (type === RTM.NEWLINK || type === RTM.DELLINK) events++;
      });
      if (state === 'overrun') {
        overruns++;
        continue;
      }
      if (state === 'read') {
        last = performance.now() - t0;
        first ??= last;
      }
      return;
    }
  };
  sock.watch(read, true);
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    read();
    sock.close();
    process.stdout.write(`${JSON.stringify({ events, overruns, first, last })}\n`);
  });
}
