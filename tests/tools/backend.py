#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A lab backend: stands in for kube-apiserver on :6443.

One listening port speaks three things, told apart by the first bytes the
peer sends, the way a real apiserver port answers both TLS and the probes:

  TLS ClientHello (0x16)   HTTPS; GET /readyz (/livez, /healthz) -> 200 "ok"
                           (500 while --ready-file is set and missing)
  "GET " / "HEAD"          the same over plain HTTP
  "KHA XFER <n> <seed>\\n"  receive n bytes, answer one line
                           "ID <id> LOCAL <a:p> PEER <a:p> SHA <sha256>\\n",
                           then send n bytes of gen_bytes(seed, n)
  "KHA ECHO\\n"             answer the ID line at once, then echo until EOF
  nothing                  a TCP health check: close quietly

Everything runs in one process (one thread per connection), so SIGSTOP
freezes all of it while the kernel keeps completing TCP handshakes: a
frozen backend passes a TCP check and fails an HTTPS one, like a hung
apiserver.
"""
import argparse
import hashlib
import os
import random
import socket
import ssl
import sys
import threading


def gen_bytes(seed, n):
    """The deterministic payload; client.py computes the same bytes."""
    return random.Random("kha-%d" % seed).randbytes(n)


def fmt(addr):
    return "%s:%d" % (addr[0], addr[1])


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def recv_line(sock, limit=256):
    buf = b""
    while not buf.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            raise ConnectionError("EOF before end of line")
        buf += c
        if len(buf) > limit:
            raise ValueError("line too long")
    return buf.decode().strip()


class Backend:
    def __init__(self, args):
        self.id = args.id
        self.ready_file = args.ready_file
        self.quiet = args.quiet
        self.tls = None
        if args.cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(args.cert, args.key)

    def ready(self):
        return not self.ready_file or os.path.exists(self.ready_file)

    def http(self, sock):
        req = b""
        while b"\r\n\r\n" not in req and len(req) < 8192:
            c = sock.recv(4096)
            if not c:
                return
            req += c
        line = req.split(b"\r\n", 1)[0].decode(errors="replace").split()
        path = line[1] if len(line) > 1 else "/"
        if path.split("?")[0] in ("/readyz", "/livez", "/healthz"):
            code, body = (200, "ok") if self.ready() else (500, "not ready")
        else:
            code, body = 404, "not found"
        reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}
        resp = ("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (code, reason[code], len(body), body))
        sock.sendall(resp.encode())

    def xfer(self, sock, n, seed):
        h = hashlib.sha256()
        left = n
        while left > 0:
            c = sock.recv(min(left, 1 << 18))
            if not c:
                raise ConnectionError("EOF after %d of %d bytes" % (n - left, n))
            h.update(c)
            left -= len(c)
        sock.sendall(("ID %s LOCAL %s PEER %s SHA %s\n" %
                      (self.id, fmt(sock.getsockname()),
                       fmt(sock.getpeername()), h.hexdigest())).encode())
        sock.sendall(gen_bytes(seed, n))
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass

    def echo(self, sock):
        sock.sendall(("ID %s LOCAL %s PEER %s\n" %
                      (self.id, fmt(sock.getsockname()),
                       fmt(sock.getpeername()))).encode())
        while True:
            c = sock.recv(65536)
            if not c:
                break
            sock.sendall(c)

    def serve(self, sock, peer):
        try:
            sock.settimeout(30)
            head = sock.recv(4, socket.MSG_PEEK)
            if not head:
                return  # TCP check: connect and close
            if head[0] == 0x16 and self.tls:
                sock = self.tls.wrap_socket(sock, server_side=True)
                self.http(sock)
            elif head in (b"GET ", b"HEAD"):
                self.http(sock)
            elif head == b"KHA ":
                sock.settimeout(None)
                req = recv_line(sock).split()
                if not self.quiet:
                    log("%s: %s from %s" % (self.id, " ".join(req[1:2]),
                                            fmt(peer)))
                if req[1] == "XFER":
                    self.xfer(sock, int(req[2]), int(req[3]))
                elif req[1] == "ECHO":
                    self.echo(sock)
        except (OSError, ValueError, IndexError, ssl.SSLError) as e:
            if not self.quiet:
                log("%s: connection from %s: %s" % (self.id, fmt(peer), e))
        finally:
            try:
                sock.close()
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--id", required=True, help="name sent to clients")
    ap.add_argument("--listen", action="append", required=True,
                    help="ADDR:PORT (repeatable)")
    ap.add_argument("--cert", help="TLS certificate (enables HTTPS)")
    ap.add_argument("--key", help="TLS private key")
    ap.add_argument("--ready-file",
                    help="/readyz answers 500 while this file is missing")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    b = Backend(args)
    socks = []
    for spec in args.listen:
        addr, port = spec.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, int(port)))
        s.listen(4096)
        socks.append(s)
        log("backend %s: listening on %s" % (args.id, spec))

    def accept_loop(s):
        while True:
            c, peer = s.accept()
            threading.Thread(target=b.serve, args=(c, peer),
                             daemon=True).start()

    for s in socks[1:]:
        threading.Thread(target=accept_loop, args=(s,), daemon=True).start()
    try:
        accept_loop(socks[0])
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
