#!/usr/bin/env python3
"""bench/sessions.py - resident memory per idle SMTP session (issue 18).

Not a test: it prints what it measured and writes JSON. Run by
bench/sessions.sh, which also plots. In a network namespace it creates,
mxgate (one dataplane core, net_tap, 198.18.0.2) is started with a session
table of N+64; kernel clients from several source addresses
(198.18.0.1, 198.18.1.1, ...: each has its own ephemeral port range) open
connections in non-blocking batches, read the 220 greeting and then stay
idle (connected, greeted, no command). mxgate's VmRSS
(/proc/PID/status) is read at 0 sessions and at every step; the figure is
the RSS delta over the step's sessions. At the end one more client is
timed through a full greeting + EHLO + QUIT while all are held (the
normal service of a new client), then every client closes and the
gateway's open-session count must return to 0.

usage: sessions.py MXGATE OUT.json STEP1,STEP2,... [--postfix N]
"""

import argparse
import contextlib
import multiprocessing
import errno
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import mxgtest  # noqa: E402
from mxgtest import GATEWAY_IP, log  # noqa: E402

PER_SRC = 18000      # connections per source address and per client
                     # process (a process may hold 20,000 descriptors here)
BATCH = 400          # connects in flight at once
STEP_TIMEOUT = 300   # seconds per step, bound


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def add_sources(tap, n):
    srcs = []
    for i in range(n):
        ip = "198.18.%d.1" % (i * 2 + 1) if i else mxgtest.KERNEL_IP
        if i:
            mxgtest.sh("ip", "addr", "add", ip + "/32", "dev", tap)
        srcs.append(ip)
    # mxgate is on 198.18.0.0/24: it reaches the other sources through
    # its --gateway, the kernel end of the tap, which owns them
    return srcs


def open_idle(srcs, held, target, deadline):
    """Open sessions until len(held) == target; each greeted (220)."""
    ep = select.epoll()
    pending = {}
    bad = 0
    while (len(held) < target or pending) and time.time() < deadline:
        while len(pending) < BATCH and len(held) + len(pending) < target:
            k = len(held) + len(pending)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((srcs[0], 0))
            r = s.connect_ex((GATEWAY_IP, 25))
            if r not in (0, errno.EINPROGRESS):
                s.close()
                bad += 1
                continue
            ep.register(s.fileno(), select.EPOLLIN)
            pending[s.fileno()] = [s, b""]
        for fd, _ in ep.poll(1.0):
            s, buf = pending[fd]
            try:
                d = s.recv(512)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            buf += d
            pending[fd][1] = buf
            if d and not buf.endswith(b"\r\n"):
                continue
            ep.unregister(fd)
            del pending[fd]
            if buf.startswith(b"220 "):
                held.append(s)
            else:
                bad += 1
                s.close()
    ep.close()
    for s, _ in pending.values():
        s.close()
    return bad


def timed_client():
    t0 = time.time()
    s = socket.create_connection((GATEWAY_IP, 25), timeout=10)
    f = s.makefile("rb")
    g = f.readline()
    s.sendall(b"EHLO probe.test\r\n")
    while True:
        ln = f.readline()
        if not ln or ln[3:4] != b"-":
            break
    s.sendall(b"QUIT\r\n")
    q = f.readline()
    s.close()
    return (time.time() - t0) * 1000, g.startswith(b"220") and \
        q.startswith(b"221")


def worker(conn, src):
    """One client process: holds up to PER_SRC sessions from src."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    while True:
        msg = conn.recv()
        if msg == "close":
            for s in held:
                s.close()
            conn.send(0)
            return
        bad = open_idle([src], held, msg, time.time() + STEP_TIMEOUT)
        conn.send((len(held), bad))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mxgate")
    ap.add_argument("out")
    ap.add_argument("steps")
    a = ap.parse_args()
    steps = [int(x) for x in a.steps.split(",")]
    n = max(steps)
    res = {"bench": "sessions", "sessions_per_core": n + 64, "steps": [],
           "clients": "kernel TCP in the test netns over net_tap, %d per "
                      "source address and client process" % PER_SRC,
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    nsrc = (n + PER_SRC - 1) // PER_SRC
    with mxgtest.Netns("sess"):
        gw = mxgtest.Mxgate(a.mxgate, [
            "--max-sessions", str(n + 64), "--max-conns", str(n + 256),
            "--mbufs", "65536", "--no-admin", "--log-file", "/dev/null",
            "--gateway", mxgtest.KERNEL_IP])
        gw.start()
        procs = []
        try:
            srcs = add_sources(gw.tap, nsrc)
            for ip in srcs:
                pa, pb = multiprocessing.Pipe()
                p = multiprocessing.Process(target=worker, args=(pb, ip))
                p.start()
                procs.append((p, pa))
            time.sleep(0.5)
            # warm: one full client, so first-use costs are in the base
            ms, ok = timed_client()
            time.sleep(0.3)
            base = rss_kib(gw.proc.pid)
            res["rss_base_kib"] = base
            t0 = time.time()
            for st in steps:
                left = st
                for p, c in procs:
                    c.send(min(left, PER_SRC))
                    left -= min(left, PER_SRC)
                held = bad = 0
                for p, c in procs:
                    h, b = c.recv()
                    held += h
                    bad += b
                time.sleep(0.5)
                r = rss_kib(gw.proc.pid)
                tot = gw.stats()["total"]
                row = {"sessions": held, "failed": bad,
                       "rss_kib": r,
                       "bytes_per_session": round((r - base) * 1024.0 /
                                                  max(held, 1), 1),
                       "gw_sessions_live": tot.get("gw_sessions_live"),
                       "drops": {k: v for k, v in tot.items()
                                 if k.startswith("drop_") and v},
                       "seconds": round(time.time() - t0, 1)}
                log("step", json.dumps(row))
                res["steps"].append(row)
                if held < st:
                    res["stopped_by"] = "clients not greeted (%d failed)" \
                        % bad
                    break
            ms, ok = timed_client()
            res["new_client_ms_at_full"] = round(ms, 2)
            res["new_client_ok_at_full"] = ok
        finally:
            for p, c in procs:
                with contextlib.suppress(Exception):
                    c.send("close")
                    c.recv()
                p.join(30)
            try:
                gw.wait_for(lambda t: t.get("gw_sessions_live", 1) == 0,
                            60, "all sessions closed")
                res["all_closed"] = True
            except AssertionError as e:
                res["all_closed"] = False
                res["close_error"] = str(e)[:300]
            r = mxgtest.Result("sessions")
            gw.shutdown(r)
            gw.kill()
    if len(res["steps"]) >= 2:
        a0, a1 = res["steps"][0], res["steps"][-1]
        if a1["sessions"] > a0["sessions"]:
            res["slope_bytes_per_session"] = round(
                (a1["rss_kib"] - a0["rss_kib"]) * 1024.0 /
                (a1["sessions"] - a0["sessions"]), 1)
            res["million_sessions_gib_from_slope"] = round(
                res["slope_bytes_per_session"] * 1e6 / 2**30, 2)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
