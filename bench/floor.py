#!/usr/bin/env python3
"""floor.py: the least work any CRI runtime does to start a pod of two containers.

  floor.py --conflist FILE --busybox /bin/busybox --work DIR [--runs 10] [--runtime runc]

Each run: a new network namespace (`ip netns add`), one CNI ADD through every plugin of the
conflist (chained with prevResult, as libcni does), and two `runc run -d` of busybox `sleep`
bundles joined to that namespace (rootfs shared read-only, no image work). Only that part is
timed; the teardown (runc delete, CNI DEL, netns delete) follows, untimed. Prints one JSON
object: {"start_ms": [...], "stop_ms": [...]}.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

WORK = "/tmp"


def run(cmd, **kw):
    """Runs a command; its stderr goes to a file, never a pipe: `runc run -d` hands its stdio to
    the container, which would hold a pipe open for as long as it runs."""
    with open(os.path.join(WORK, "cmd.err"), "w+b") as err:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, **kw)
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, err.read().decode(errors="replace")))
    return p


def cni(conflist, command, netns, cid, plugin_dir, prev=None):
    """Runs every plugin of the conflist (ADD in order, DEL in reverse); returns the last result."""
    plugins = conflist["plugins"] if command == "ADD" else list(reversed(conflist["plugins"]))
    result = prev
    for plugin in plugins:
        conf = dict(plugin)
        conf["name"] = conflist["name"]
        conf["cniVersion"] = conflist["cniVersion"]
        if result is not None:
            conf["prevResult"] = result
        env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=cid, CNI_NETNS=netns,
                   CNI_IFNAME="eth0", CNI_PATH=plugin_dir)
        p = subprocess.run([os.path.join(plugin_dir, plugin["type"])], input=json.dumps(conf).encode(),
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise RuntimeError("CNI %s %s: %s %s" % (command, plugin["type"], p.stdout.decode(), p.stderr.decode()))
        if command == "ADD" and p.stdout.strip():
            result = json.loads(p.stdout)
    return result


def make_rootfs(work, busybox):
    rootfs = os.path.join(work, "rootfs")
    if os.path.isdir(rootfs):
        return rootfs
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy(busybox, os.path.join(rootfs, "bin", "busybox"))
    for applet in ("sh", "sleep"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    return rootfs


def make_bundle(work, runtime, rootfs, name, netns, cgroup):
    bundle = os.path.join(work, "bundles", name)
    os.makedirs(bundle, exist_ok=True)
    cfg_path = os.path.join(bundle, "config.json")
    if os.path.exists(cfg_path):
        os.remove(cfg_path)
    run([runtime, "spec", "--bundle", bundle])
    cfg = json.load(open(cfg_path))
    cfg["root"] = {"path": rootfs, "readonly": True}
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/sleep", "3600"]
    cfg["linux"]["cgroupsPath"] = "%s/%s" % (cgroup, name)
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = netns
    json.dump(cfg, open(cfg_path, "w"))
    return bundle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conflist", required=True)
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--runtime", default="runc")
    ap.add_argument("--plugin-dir", default="/usr/lib/cni")
    args = ap.parse_args()
    global WORK
    WORK = args.work
    os.makedirs(WORK, exist_ok=True)
    conflist = json.load(open(args.conflist))
    rootfs = make_rootfs(args.work, args.busybox)
    state_root = os.path.join(args.work, "runc-state")
    cgroup = "/crius-bench-floor-%d" % os.getpid()
    rt = [args.runtime, "--root", state_root]
    starts, stops = [], []
    for i in range(args.runs):
        ns_name = "crius-floor-%d-%d" % (os.getpid(), i)
        netns = "/var/run/netns/" + ns_name
        cid = "floor-%d-%d" % (os.getpid(), i)
        names = [cid + "-a", cid + "-b"]
        # Bundles are written before the clock starts: a runtime writes its spec too, but
        # that is the runtime's own work, not the floor.
        bundles = [make_bundle(args.work, args.runtime, rootfs, n, netns, cgroup) for n in names]
        result = None
        try:
            t0 = time.monotonic()
            run(["ip", "netns", "add", ns_name])
            result = cni(conflist, "ADD", netns, cid, args.plugin_dir)
            for n, b in zip(names, bundles):
                run(rt + ["run", "-d", "--bundle", b, n])
            starts.append((time.monotonic() - t0) * 1000)
        finally:
            t0 = time.monotonic()
            for n in names:
                subprocess.run(rt + ["delete", "-f", n], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                cni(conflist, "DEL", netns, cid, args.plugin_dir, result)
            except RuntimeError as e:
                print("floor: %s" % e, file=sys.stderr)
            subprocess.run(["ip", "netns", "delete", ns_name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stops.append((time.monotonic() - t0) * 1000)
    for hier in os.listdir("/sys/fs/cgroup"):
        path = os.path.join("/sys/fs/cgroup", hier, cgroup.lstrip("/"))
        if os.path.isdir(path):
            for d, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
    print(json.dumps({"start_ms": starts, "stop_ms": stops}))


if __name__ == "__main__":
    main()
