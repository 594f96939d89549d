#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
A stand-in for systemd's private D-Bus socket (/run/systemd/private), for
tests/test_daemon.c: speaks the D-Bus wire protocol peer to peer (EXTERNAL
auth, little-endian messages) and answers the three calls kha-xdp makes at
SIGTERM, checking every header field and argument it receives:

  org.freedesktop.systemd1.Manager.GetUnitByPID(u)      -> o  unit path
  Properties.Get("org.freedesktop.systemd1.Unit","Job") -> v (uo)
  Properties.Get("org.freedesktop.systemd1.Job","JobType") -> v s

usage: fake_systemd.py SOCKET PID JOBTYPE|none LOG
A call it does not expect gets an error reply, and is logged.
"""
import os, socket, struct, sys

sock_path, want_pid, job_type, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
UNIT = "/org/freedesktop/systemd1/unit/kha_2dxdp_2eservice"
JOB = "/org/freedesktop/systemd1/job/4711"
log = open(log_path, "w", buffering=1)


def pad(n, a):
    return (a - n % a) % a


class Reader:
    def __init__(self, b, base=0):
        self.b, self.o = b, base

    def align(self, a):
        self.o += pad(self.o, a)

    def u8(self):
        v = self.b[self.o]
        self.o += 1
        return v

    def u32(self):
        self.align(4)
        v = struct.unpack_from("<I", self.b, self.o)[0]
        self.o += 4
        return v

    def string(self):
        n = self.u32()
        s = self.b[self.o:self.o + n].decode()
        assert self.b[self.o + n] == 0, "string not NUL terminated"
        self.o += n + 1
        return s

    def sig(self):
        n = self.u8()
        s = self.b[self.o:self.o + n].decode()
        self.o += n + 1
        return s


class Writer:
    def __init__(self):
        self.b = bytearray()

    def align(self, a):
        self.b += b"\0" * pad(len(self.b), a)

    def u8(self, v):
        self.b += bytes([v])

    def u32(self, v):
        self.align(4)
        self.b += struct.pack("<I", v)

    def string(self, s):
        self.u32(len(s))
        self.b += s.encode() + b"\0"

    def sig(self, s):
        self.u8(len(s))
        self.b += s.encode() + b"\0"


def message(mtype, serial, fields, body_sig, body):
    # fields: list of (code, sig, value)
    h = Writer()
    h.b += b"l" + bytes([mtype, 0, 1])
    h.u32(len(body))
    h.u32(serial)
    arr = Writer()
    for code, s, v in fields:
        arr.align(8)
        arr.u8(code)
        arr.sig(s)
        if s == "g":
            arr.sig(v)
        elif s == "u":
            arr.u32(v)
        else:
            arr.string(v)
    if body_sig:
        arr.align(8)
        arr.u8(8)
        arr.sig("g")
        arr.sig(body_sig)
    h.u32(len(arr.b))
    h.b += arr.b  # array starts at 16: already 8-aligned
    h.align(8)
    return bytes(h.b) + body


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        r = c.recv(n - len(b))
        if not r:
            raise EOFError
        b += r
    return b


def serve(c):
    # auth: NUL byte, AUTH EXTERNAL <hex uid>, BEGIN
    assert recv_exact(c, 1) == b"\0", "no leading NUL"
    line = b""
    while not line.endswith(b"\r\n"):
        line += recv_exact(c, 1)
    parts = line.decode().split()
    assert parts[:2] == ["AUTH", "EXTERNAL"], line
    uid = bytes.fromhex(parts[2]).decode()
    log.write("auth uid %s\n" % uid)
    c.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
    line = b""
    while not line.endswith(b"\r\n"):
        line += recv_exact(c, 1)
    assert line == b"BEGIN\r\n", line
    serial = 100
    while True:
        try:
            fixed = recv_exact(c, 16)
        except EOFError:
            return
        assert fixed[0:1] == b"l" and fixed[1] == 1 and fixed[3] == 1, fixed
        body_len, mserial, flen = struct.unpack_from("<III", fixed, 4)
        rest = recv_exact(c, flen + pad(16 + flen, 8) + body_len)
        msg = fixed + rest
        r = Reader(msg, 16)
        fields = {}
        while r.o < 16 + flen:
            r.align(8)
            code = r.u8()
            s = r.sig()
            fields[code] = r.sig() if s == "g" else r.string()
        body = Reader(msg[16 + flen + pad(16 + flen, 8):])
        path, iface, member = fields.get(1), fields.get(2), fields.get(3)
        dest, bsig = fields.get(6), fields.get(8, "")
        log.write("call %s %s.%s dest=%s sig=%s\n" % (path, iface, member, dest, bsig))
        serial += 1
        reply_fields = [(5, "u", mserial)]
        out = Writer()
        err = None
        if dest != "org.freedesktop.systemd1":
            err = "bad destination %s" % dest
        elif (path, iface, member, bsig) == ("/org/freedesktop/systemd1",
                                            "org.freedesktop.systemd1.Manager",
                                            "GetUnitByPID", "u"):
            pid = body.u32()
            log.write("GetUnitByPID %d\n" % pid)
            if pid != want_pid:
                err = "pid %d is in no unit" % pid
            else:
                out.string(UNIT)
                rsig = "o"
        elif (iface, member, bsig) == ("org.freedesktop.DBus.Properties", "Get", "ss"):
            i, p = body.string(), body.string()
            log.write("Get %s %s %s\n" % (path, i, p))
            if (path, i, p) == (UNIT, "org.freedesktop.systemd1.Unit", "Job"):
                out.sig("(uo)")
                out.align(8)
                if job_type == "none":
                    out.u32(0)
                    out.string("/")
                else:
                    out.u32(4711)
                    out.string(JOB)
                rsig = "v"
            elif (path, i, p) == (JOB, "org.freedesktop.systemd1.Job", "JobType"):
                out.sig("s")
                out.string(job_type)
                rsig = "v"
            else:
                err = "unknown property"
        else:
            err = "unknown method"
        if err:
            log.write("error: %s\n" % err)
            e = Writer()
            e.string(err)
            c.sendall(message(3, serial, reply_fields + [(4, "s", "org.freedesktop.DBus.Error.Failed")], "s", bytes(e.b)))
        else:
            c.sendall(message(2, serial, reply_fields, rsig, bytes(out.b)))


try:
    os.unlink(sock_path)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sock_path)
srv.listen(4)
log.write("ready\n")
while True:
    c, _ = srv.accept()
    try:
        serve(c)
    except Exception as e:  # a malformed message: say so, drop the client
        log.write("malformed: %r\n" % (e,))
    c.close()
