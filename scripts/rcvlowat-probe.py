#!/usr/bin/env python3
"""Pipelined getData over a bare socket, with an optional receive low-water mark.

    scripts/rcvlowat-probe.py HOST:PORT N DEPTH LOWAT

Creates a 100-byte node, then keeps DEPTH gets of it in flight until N are answered, and
prints one JSON line: ops/s, this process's CPU µs per op, its context switches per op and
its `recv` calls per op. With LOWAT above 1 the socket's SO_RCVLOWAT is set before every
`recv` to LOWAT bytes, but never above 20 bytes (the smallest reply) per reply still owed,
so the kernel never holds the reader for bytes that are not coming. This measures what
waking once per many replies (rather than once per server write) saves a pipelined reader;
see README, Performance. Run it beside `perf stat -p <server JVM>` for the server's side.
"""

import json
import os
import resource
import socket
import struct
import sys
import time

MIN_REPLY = 20  # length prefix, xid, zxid, error code


def framed(body):
    return struct.pack(">i", len(body)) + body


def jute_bytes(data):
    return struct.pack(">i", len(data)) + data


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def frame(self):
        """The next whole frame (without its length)."""
        while True:
            if len(self.buf) >= 4:
                (length,) = struct.unpack(">i", self.buf[:4])
                if len(self.buf) >= 4 + length:
                    frame, self.buf = self.buf[4 : 4 + length], self.buf[4 + length :]
                    return frame
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("the server closed the connection")
            self.buf += chunk

    def call(self, xid, op, body):
        self.sock.sendall(framed(struct.pack(">ii", xid, op) + body))
        (err,) = struct.unpack(">i", self.frame()[12:16])
        if err != 0:
            raise SystemExit(f"op {op} failed with {err}")


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    n, depth, lowat = (int(a) for a in sys.argv[2:5])
    conn = Conn(host, int(port))
    # Handshake: protocol 0, no zxid seen, 30 s timeout, new session, empty password.
    conn.sock.sendall(framed(struct.pack(">iqiq", 0, 0, 30000, 0) + jute_bytes(b"\0" * 16) + b"\0"))
    conn.frame()
    path = f"/rcvlowat-probe-{os.getpid()}-{time.time_ns()}".encode()
    acl = struct.pack(">ii", 1, 31) + jute_bytes(b"world") + jute_bytes(b"anyone")
    conn.call(1, 1, jute_bytes(path) + jute_bytes(b"z" * 100) + acl + struct.pack(">i", 0))

    get = struct.pack(">i", 4) + jute_bytes(path) + b"\0"  # op getData, path, no watch
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    issued = done = recvs = 0
    xid = 10
    while done < n:
        allowed = min(n, done + depth) - issued
        if allowed:
            out = bytearray()
            for _ in range(allowed):
                xid += 1
                out += struct.pack(">ii", 4 + len(get), xid) + get
            conn.sock.sendall(out)
            issued += allowed
        if lowat > 1:
            owed = (issued - done) * MIN_REPLY
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, max(1, min(lowat, owed)))
        chunk = conn.sock.recv(262144)
        if not chunk:
            raise SystemExit("the server closed the connection")
        recvs += 1
        conn.buf += chunk
        while len(conn.buf) >= 4:
            (length,) = struct.unpack(">i", conn.buf[:4])
            if len(conn.buf) < 4 + length:
                break
            conn.buf = conn.buf[4 + length :]
            done += 1
    secs = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)

    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
    conn.call(2, 2, jute_bytes(path) + struct.pack(">i", -1))  # delete, any version
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    switches = (after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw)
    print(json.dumps({
        "n": n,
        "lowat": lowat,
        "ops_per_sec": round(n / secs),
        "cpu_us_per_op": round(cpu * 1e6 / n, 2),
        "cs_per_op": round(switches / n, 3),
        "recvs_per_op": round(recvs / n, 3),
    }))


if __name__ == "__main__":
    main()
