#!/usr/bin/python3
"""The ovsdbapp side of bench/suites/ovsdb.mjs (Debian's python3-ovsdbapp on python3-openvswitch).

Usage: ovsdbapp_bench.py ADDRESS insert N     -> add N ports to bench0 in ONE transaction
       ovsdbapp_bench.py ADDRESS replica N    -> build a replica of the Port table (N rows),
                                                 then keep it current
Prints one JSON object with the timings (milliseconds) on stdout.
"""
import json
import socket
import sys
import time

from ovsdbapp.backend.ovs_idl import connection
from ovsdbapp.backend.ovs_idl import transaction
from ovsdbapp.schema.open_vswitch import impl_idl


class NoWaitTransaction(impl_idl.OvsVsctlTransaction):
    """ovsdbapp's Open_vSwitch transaction, without waiting for ovs-vswitchd (none runs in the
    benchmark), like `ovs-vsctl --no-wait`: the same commands, the same one OVSDB transaction."""

    def pre_commit(self, txn):
        txn.expected_ifaces = set()

    def post_commit(self, txn):
        transaction.Transaction.post_commit(self, txn)


class Writer:
    """Another OVSDB client that commits the changes the replica has to follow."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(address[len('unix:'):])
        self.decoder = json.JSONDecoder()
        self.buf = ''
        self.id = 0

    def transact(self, *ops):
        self.id += 1
        self.sock.sendall(json.dumps({'method': 'transact', 'params': ['Open_vSwitch', *ops], 'id': self.id}).encode())
        while True:
            self.buf = self.buf.lstrip()
            try:
                msg, end = self.decoder.raw_decode(self.buf)
                self.buf = self.buf[end:]
                if msg.get('id') == self.id:
                    return msg
            except ValueError:
                self.buf += self.sock.recv(1 << 20).decode()


def connect(address, tables=None):
    kwargs = {'helper_tables': tables} if tables else {}
    idl = connection.OvsdbIdl.from_server(address, 'Open_vSwitch', **kwargs)
    conn = connection.Connection(idl=idl, timeout=600)
    api = impl_idl.OvsdbIdl(conn)
    return api, conn


def insert(address, n):
    t0 = time.perf_counter()
    api, conn = connect(address)
    t1 = time.perf_counter()
    txn = NoWaitTransaction(api, conn, 600, check_error=True)
    for i in range(n):
        txn.add(api.add_port('bench0', 'p%d' % i))
    txn.commit()
    t2 = time.perf_counter()
    conn.stop()
    return {'connectMs': (t1 - t0) * 1000, 'insertMs': (t2 - t1) * 1000}


def wait_until(conn, check, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with conn.lock:
            if check():
                return
        time.sleep(0.0002)
    raise RuntimeError('timed out')


def replica(address, n):
    t0 = time.perf_counter()
    api, conn = connect(address, ['Port'])
    ports = api.idl.tables['Port'].rows
    wait_until(conn, lambda: len(ports) == n)
    t1 = time.perf_counter()
    writer = Writer(address)
    # Every row changes in one transaction: time until the replica has all of them.
    t2 = time.perf_counter()
    value = 'all-py-%d' % time.monotonic_ns()
    writer.transact({'op': 'mutate', 'table': 'Port', 'where': [],
                     'mutations': [['external_ids', 'delete', ['set', ['bench']]],
                                   ['external_ids', 'insert', ['map', [['bench', value]]]]]})
    wait_until(conn, lambda: all(r.external_ids.get('bench') == value for r in ports.values()))
    t3 = time.perf_counter()
    # One row at a time: the latency of one change.
    one = []
    for k in range(100):
        value = 'one%d' % k
        s = time.perf_counter()
        writer.transact({'op': 'mutate', 'table': 'Port', 'where': [['name', '==', 'p7']],
                         'mutations': [['external_ids', 'delete', ['set', ['bench']]],
                                       ['external_ids', 'insert', ['map', [['bench', value]]]]]})
        row = next(r for r in ports.values() if r.name == 'p7')
        wait_until(conn, lambda: row.external_ids.get('bench') == value)
        one.append((time.perf_counter() - s) * 1000)
    conn.stop()
    one.sort()
    return {'buildMs': (t1 - t0) * 1000, 'allRowsMs': (t3 - t2) * 1000, 'oneRowMs': one[len(one) // 2]}


if __name__ == '__main__':
    address, task, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    result = insert(address, count) if task == 'insert' else replica(address, count)
    print(json.dumps(result))
