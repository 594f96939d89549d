#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Read a kha-xdp data plane from its pins, the way an operator would:
`bpftool -j map dump pinned <pin_root>/<ifname>/<map>` and its BTF names.
Independent of build/kha-xdp, so the tests can check what `status` says.

  khamaps.py PIN_DIR            one line per VIP, backend and reason:
    vip id=0 addr=10.0.0.100:8443 flags=1 gen=0 nr_healthy=3 packets=.. bytes=.. new_flows=..
    backend id=0 addr=10.0.0.11:6443 vip=0 flags=present,healthy weight=1 packets=.. bytes=.. new_flows=..
    reason drop_fragment=3          (non-zero ones only)
    conntrack entries=N             slots in use (stamp != 0)
    snat entries=N
  khamaps.py --json PIN_DIR     the same as one JSON object

conntrack and snat are arrays of 524288 64-byte slots (headers/kha_abi.h,
"flow tables"): a dump of one is ~400 MB of JSON and 5 s of bpftool, so
they are counted through an mmap of the pinned map instead (the maps are
BPF_F_MMAPABLE), a few ms.
"""
import ctypes
import json
import mmap
import os
import platform
import socket
import struct
import subprocess
import sys

FLAGS = {1: "present", 2: "healthy", 4: "local"}


def dump(pin_dir, name):
    r = subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                        "%s/%s" % (pin_dir, name)],
                       capture_output=True, text=True, check=True)
    out = []
    for e in json.loads(r.stdout or "[]"):
        out.append(e.get("formatted", e))
    return out


def show(pin_dir, name):
    r = subprocess.run(["bpftool", "-j", "map", "show", "pinned",
                        "%s/%s" % (pin_dir, name)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280,
          "ppc64le": 361, "s390x": 351}
BPF_OBJ_GET = 7
BPF_F_MMAPABLE = 1 << 10


def obj_get(path):
    """bpf(BPF_OBJ_GET): an fd of a pinned object (libbpf's bpf_obj_get)"""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    name = ctypes.create_string_buffer(path.encode())
    # union bpf_attr, BPF_OBJ_GET: pathname (u64), bpf_fd, file_flags,
    # path_fd; the rest zero
    attr = ctypes.create_string_buffer(
        struct.pack("=QIIi", ctypes.addressof(name), 0, 0, 0), 32)
    fd = libc.syscall(ctypes.c_long(NR_BPF[platform.machine()]),
                      ctypes.c_long(BPF_OBJ_GET), attr, ctypes.c_uint(32))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (path, os.strerror(e)))
    return fd


def slots_used(pin_dir, name):
    """Flow-table slots with a nonzero stamp (the slot's first __u32)."""
    info = show(pin_dir, name)
    if info.get("type") != "array" or not info.get("flags", 0) & BPF_F_MMAPABLE:
        return len(dump(pin_dir, name))  # an older kha-xdp's hash map
    stride = (info["bytes_value"] + 7) & ~7
    n = info["max_entries"]
    length = (n * stride + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
    fd = obj_get("%s/%s" % (pin_dir, name))
    try:
        m = mmap.mmap(fd, length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    try:
        words = memoryview(m).cast("I")
        stamps = words[:n * stride // 4:stride // 4].tolist()
        words.release()
    finally:
        m.close()
    return n - stamps.count(0)


def ip4(addr):
    """struct kha_addr as bpftool formats it ({"": {"v4": N, ...}})"""
    if "" in addr:
        addr = addr[""]
    return socket.inet_ntoa(struct.pack("<I", addr["v4"] & 0xffffffff))


def port(p):
    return struct.unpack(">H", struct.pack("<H", p))[0]


def percpu_sum(entry):
    tot = {"packets": 0, "bytes": 0, "new_flows": 0}
    for v in entry.get("values", []):
        for k in tot:
            tot[k] += int(v["value"].get(k, 0))
    return tot


def read(pin_dir):
    res = {"vips": [], "backends": [], "reasons": {}}
    vstats = {e["key"]: percpu_sum(e) for e in dump(pin_dir, "vip_stats")}
    bstats = {e["key"]: percpu_sum(e) for e in dump(pin_dir, "backend_stats")}
    vstate = {e["key"]: e["value"] for e in dump(pin_dir, "vip_state")}
    for e in dump(pin_dir, "vips"):
        k, v = e["key"], e["value"]
        vid = v["vip_id"]
        st = vstate.get(vid, {})
        d = {"id": vid, "addr": "%s:%d" % (ip4(k["addr"]), port(k["port"])),
             "flags": v["flags"], "gen": st.get("active_gen"),
             "nr_healthy": st.get("nr_healthy")}
        d.update(vstats.get(vid, {}))
        res["vips"].append(d)
    for e in dump(pin_dir, "backends"):
        v = e["value"]
        if not v["flags"]:
            continue
        bid = e["key"]
        d = {"id": bid, "addr": "%s:%d" % (ip4(v["addr"]), port(v["port"])),
             "vip": v["vip_id"], "weight": v["weight"],
             "flags": ",".join(n for b, n in FLAGS.items() if v["flags"] & b)}
        d.update(bstats.get(bid, {}))
        res["backends"].append(d)
    for e in dump(pin_dir, "reasons"):
        for v in e.get("values", []):
            for k, n in v["value"].items():
                res["reasons"][k] = res["reasons"].get(k, 0) + int(n)
    res["conntrack"] = slots_used(pin_dir, "conntrack")
    res["snat"] = slots_used(pin_dir, "snat")
    return res


def main():
    args = sys.argv[1:]
    as_json = args and args[0] == "--json"
    if as_json:
        args = args[1:]
    if len(args) != 1:
        sys.stderr.write(__doc__)
        return 2
    res = read(args[0])
    if as_json:
        print(json.dumps(res))
        return 0
    for v in res["vips"]:
        print("vip " + " ".join("%s=%s" % kv for kv in v.items()))
    for b in res["backends"]:
        print("backend " + " ".join("%s=%s" % kv for kv in b.items()))
    for k, n in res["reasons"].items():
        if n:
            print("reason %s=%d" % (k, n))
    print("conntrack entries=%d" % res["conntrack"])
    print("snat entries=%d" % res["snat"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
