#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The lab client: talks to tests/tools/backend.py, directly or through a VIP.

  client.py xfer   --to ADDR:PORT [--from SRC[,SRC...]] [--bytes N] [--count K]
                   [--ip-options HEX]
      One connection per source address (times --count): send N random
      bytes, check the backend's sha256 of them, receive the backend's N
      deterministic bytes and check their sha256. One line per connection:
        xfer from=A:P to=VIP:P backend=ID backend_local=A:P backend_peer=A:P
             up=N up_sha=ok down=N down_sha=ok ms=T
      (or `error=...`). Exit status 1 if any connection failed.

  client.py stream --to ADDR:PORT --from SRC[,SRC...] --conns N
                   [--interval S] [--chunk B] (--duration S | --until-file F)
      Holds N echo connections open, each sending a chunk every interval and
      checking that the same bytes come back within --stall seconds. Prints
      `stream established N` once all are open, then at the end one line per
      connection and `stream conns=N ok=X broken=Y echoed_bytes=Z`.

  client.py probe  --to ADDR:PORT [--from SRC] [--timeout S]
      One connection attempt: `probe result=connected backend=ID ms=T`,
      `probe result=refused ms=T` (RST), `probe result=timeout ms=T` (no
      answer to the SYN) or `probe result=stalled ms=T` (connected, but the
      backend never answered).
"""
import argparse
import hashlib
import os
import random
import socket
import sys
import threading
import time


def gen_bytes(seed, n):
    """Must match backend.py's gen_bytes."""
    return random.Random("kha-%d" % seed).randbytes(n)


def fmt(addr):
    return "%s:%d" % (addr[0], addr[1])


def hostport(spec):
    a, p = spec.rsplit(":", 1)
    return a, int(p)


def out(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def recv_line(sock, limit=512):
    buf = b""
    while not buf.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            raise ConnectionError("EOF before the backend's ID line")
        buf += c
        if len(buf) > limit:
            raise ValueError("ID line too long")
    return buf.decode().split()


def ident(words):
    """ID line words -> dict(id=..., local=..., peer=..., sha=...)"""
    d = {}
    for k, v in zip(words[0::2], words[1::2]):
        d[k.lower()] = v
    return d


IP_OPTIONS = b""


def connect(to, src, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if IP_OPTIONS:
        # every segment of this connection carries these IPv4 options
        s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, IP_OPTIONS)
    if src:
        s.bind((src, 0))
    s.connect(to)
    return s


def xfer_one(to, src, n, timeout):
    t0 = time.monotonic()
    local = "%s:0" % (src or "*")
    try:
        s = connect(to, src, timeout)
        local = fmt(s.getsockname())
        seed = random.getrandbits(48)
        up = os.urandom(n)
        s.sendall(("KHA XFER %d %d\n" % (n, seed)).encode())
        s.sendall(up)
        d = ident(recv_line(s))
        h = hashlib.sha256()
        got = 0
        while True:
            c = s.recv(1 << 18)
            if not c:
                break
            h.update(c)
            got += len(c)
        s.close()
        up_ok = d.get("sha") == hashlib.sha256(up).hexdigest()
        down_ok = (got == n and
                   h.hexdigest() == hashlib.sha256(gen_bytes(seed, n)).hexdigest())
        ms = (time.monotonic() - t0) * 1000
        out("xfer from=%s to=%s backend=%s backend_local=%s backend_peer=%s "
            "up=%d up_sha=%s down=%d down_sha=%s ms=%.0f" %
            (local, fmt(to), d.get("id"), d.get("local"), d.get("peer"),
             n, "ok" if up_ok else "BAD", got, "ok" if down_ok else "BAD", ms))
        return up_ok and down_ok
    except (OSError, ValueError) as e:
        ms = (time.monotonic() - t0) * 1000
        out("xfer from=%s to=%s error=%s ms=%.0f" %
            (local, fmt(to), type(e).__name__ + ":" + str(e).replace(" ", "_"),
             ms))
        return False


def cmd_xfer(a):
    to = hostport(a.to)
    srcs = a.src.split(",") if a.src else [None]
    ok = True
    for _ in range(a.count):
        for src in srcs:
            ok = xfer_one(to, src, a.bytes, a.timeout) and ok
    return 0 if ok else 1


class Stream:
    def __init__(self, i, to, src, a):
        self.i, self.to, self.src, self.a = i, to, src, a
        self.status = "connecting"
        self.backend = "-"
        self.local = "-"
        self.echoed = 0
        self.sent = 0

    def open(self):
        try:
            self.s = connect(self.to, self.src, self.a.stall)
            self.local = fmt(self.s.getsockname())
            self.s.sendall(b"KHA ECHO\n")
            self.backend = ident(recv_line(self.s)).get("id", "?")
            self.status = "ok"
        except (OSError, ValueError) as e:
            self.status = "broken(open:%s)" % type(e).__name__

    def run(self, stop):
        rnd = random.Random(self.i)
        while self.status == "ok" and not stop.is_set():
            buf = rnd.randbytes(self.a.chunk)
            try:
                self.s.sendall(buf)
                self.sent += len(buf)
                got = b""
                while len(got) < len(buf):
                    c = self.s.recv(len(buf) - len(got))
                    if not c:
                        raise ConnectionError("EOF")
                    got += c
                if got != buf:
                    self.status = "broken(corrupt)"
                    break
                self.echoed += len(got)
            except (OSError, ValueError) as e:
                self.status = "broken(%s)" % type(e).__name__
                break
            stop.wait(self.a.interval)
        try:
            self.s.close()
        except (OSError, AttributeError):
            pass


def cmd_stream(a):
    to = hostport(a.to)
    srcs = a.src.split(",")
    conns = [Stream(i, to, srcs[i % len(srcs)], a) for i in range(a.conns)]
    for c in conns:
        c.open()
    out("stream established %d" % sum(c.status == "ok" for c in conns))
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,)) for c in conns]
    for t in threads:
        t.start()
    t_end = time.monotonic() + (a.duration or 1e9)
    while time.monotonic() < t_end:
        if a.until_file and os.path.exists(a.until_file):
            break
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    for c in conns:
        out("stream conn=%d from=%s backend=%s sent=%d echoed=%d status=%s" %
            (c.i, c.local, c.backend, c.sent, c.echoed, c.status))
    ok = sum(c.status == "ok" for c in conns)
    out("stream conns=%d ok=%d broken=%d echoed_bytes=%d" %
        (len(conns), ok, len(conns) - ok, sum(c.echoed for c in conns)))
    return 0 if ok == len(conns) else 1


def cmd_probe(a):
    to = hostport(a.to)
    t0 = time.monotonic()
    connected = False
    try:
        s = connect(to, a.src, a.timeout)
        connected = True
        s.sendall(b"KHA ECHO\n")
        d = ident(recv_line(s))
        s.close()
        out("probe result=connected backend=%s ms=%.0f" %
            (d.get("id"), (time.monotonic() - t0) * 1000))
        return 0
    except ConnectionRefusedError:
        res = "refused"
    except (ConnectionResetError, ConnectionError):
        res = "reset" + ("-after-connect" if connected else "")
    except socket.timeout:
        # connected but no answer: a frozen backend
        res = "stalled" if connected else "timeout"
    except OSError as e:
        res = "error:" + type(e).__name__
    out("probe result=%s ms=%.0f" % (res, (time.monotonic() - t0) * 1000))
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("xfer")
    x.add_argument("--to", required=True)
    x.add_argument("--from", dest="src")
    x.add_argument("--bytes", type=int, default=10 << 20)
    x.add_argument("--count", type=int, default=1)
    x.add_argument("--timeout", type=float, default=10)
    x.add_argument("--ip-options", default="",
                   help="IPv4 options for every segment, in hex "
                        "(e.g. 01010100: NOP NOP NOP EOL)")
    s = sub.add_parser("stream")
    s.add_argument("--to", required=True)
    s.add_argument("--from", dest="src", required=True)
    s.add_argument("--conns", type=int, default=100)
    s.add_argument("--interval", type=float, default=0.05)
    s.add_argument("--chunk", type=int, default=1024)
    s.add_argument("--stall", type=float, default=5)
    s.add_argument("--duration", type=float)
    s.add_argument("--until-file")
    p = sub.add_parser("probe")
    p.add_argument("--to", required=True)
    p.add_argument("--from", dest="src")
    p.add_argument("--timeout", type=float, default=3)
    a = ap.parse_args()
    global IP_OPTIONS
    IP_OPTIONS = bytes.fromhex(getattr(a, "ip_options", "") or "")
    return {"xfer": cmd_xfer, "stream": cmd_stream, "probe": cmd_probe}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
