#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Read a kha-xdp data plane from its pins, the way an operator would:
`bpftool -j map dump pinned <pin_root>/<ifname>/<map>` and its BTF names.
Independent of build/kha-xdp, so the tests can check what `status` says.

  khamaps.py PIN_DIR            one line per VIP, backend and reason:
    vip id=0 addr=10.0.0.100:8443 flags=1 gen=0 nr_healthy=3 packets=.. bytes=.. new_flows=..
    backend id=0 addr=10.0.0.11:6443 vip=0 flags=present,healthy weight=1 packets=.. bytes=.. new_flows=..
    reason drop_fragment=3          (non-zero ones only)
    conntrack entries=N
    snat entries=N
  khamaps.py --json PIN_DIR     the same as one JSON object
"""
import json
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
    res["conntrack"] = len(dump(pin_dir, "conntrack"))
    res["snat"] = len(dump(pin_dir, "snat"))
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
