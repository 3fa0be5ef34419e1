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
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import mxgtest  # noqa: E402
from mxgtest import log  # noqa: E402
from idle_clients import (PER_SRC, IdleClients, rss_by_mapping,  # noqa
                          rss_kib, timed_client)



def proc_mem_kib(pid):
    """(Rss, Pss) of one process in KiB (smaps_rollup)."""
    rss = pss = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for ln in f:
            if ln.startswith("Rss:"):
                rss = int(ln.split()[1])
            elif ln.startswith("Pss:"):
                pss = int(ln.split()[1])
    return rss, pss


def smtpd_pids():
    """smtpd processes in this network namespace (other Postfix
    instances on the machine are in other namespaces)."""
    me = os.readlink("/proc/self/ns/net")
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                if f.read().strip() != "smtpd":
                    continue
            if os.readlink("/proc/%s/ns/net" % d) == me:
                out.append(int(d))
        except OSError:
            pass
    return out


def postfix_idle(n):
    """Postfix smtpd (one process per session) holding n idle greeted
    sessions on 127.0.0.1 in the same namespace: their summed RSS and PSS
    (PSS shares the library pages out fairly)."""
    import socket
    import peers
    pf = peers.Postfix(listen="127.0.0.1:2525", deliver="discard",
                       xclient_hosts="",
                       main_extra={"default_process_limit": str(n + 20)})
    held = []
    res = {"sessions_asked": n, "process_limit": n + 20}
    try:
        pf.start()
        t0 = time.time()
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", 2525), timeout=30)
            held.append(c)
            if not c.recv(512).startswith(b"220"):
                break
        time.sleep(1.0)
        pids = smtpd_pids()
        mem = [proc_mem_kib(p) for p in pids]
        res.update({
            "sessions": len(held), "smtpd_processes": len(pids),
            "seconds": round(time.time() - t0, 1),
            "rss_kib_sum": sum(m[0] for m in mem),
            "pss_kib_sum": sum(m[1] for m in mem),
            "rss_bytes_per_session": round(sum(m[0] for m in mem) * 1024.0
                                           / max(len(held), 1)),
            "pss_bytes_per_session": round(sum(m[1] for m in mem) * 1024.0
                                           / max(len(held), 1))})
    except Exception as e:  # noqa: BLE001 - a bench reports, not raises
        res["error"] = repr(e)[:300]
    finally:
        for c in held:
            c.close()
        pf.cleanup()
    log("postfix", json.dumps(res))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mxgate")
    ap.add_argument("out")
    ap.add_argument("steps")
    ap.add_argument("--postfix", type=int, default=0,
                    help="also hold this many idle sessions on Postfix")
    a = ap.parse_args()
    steps = [int(x) for x in a.steps.split(",")]
    n = max(steps)
    # a table of 1.5 n: n sessions stay under the default overload
    # threshold (80 %), which would close idle sessions after 10 s
    cap = n * 3 // 2 + 64
    res = {"bench": "sessions", "sessions_per_core": cap, "steps": [],
           "clients": "kernel TCP in the test netns over net_tap, %d per "
                      "source address and client process" % PER_SRC,
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with mxgtest.Netns("sess"):
        gw = mxgtest.Mxgate(a.mxgate, [
            "--max-sessions", str(cap), "--max-conns", str(cap + 256),
            # every batch of every client process in SYN_RCVD at once
            # stays under it: no SYN cookies (see open_idle)
            "--syn-backlog", "16384",
            "--mbufs", "65536", "--no-admin", "--log-file", "/dev/null",
            "--gateway", mxgtest.KERNEL_IP])
        gw.start()
        clients = None
        try:
            clients = IdleClients(gw.tap, n)
            time.sleep(0.5)
            # warm: one full client, so first-use costs are in the base
            ms, ok = timed_client()
            time.sleep(0.3)
            base = rss_kib(gw.proc.pid)
            res["rss_base_kib"] = base
            t0 = time.time()
            for st in steps:
                held, bad, retried = clients.hold(st)
                time.sleep(0.5)
                r = rss_kib(gw.proc.pid)
                tot = gw.stats()["total"]
                row = {"sessions": held, "failed": bad,
                       "retried_no_greeting": retried,
                       "rss_kib": r,
                       "bytes_per_session": round((r - base) * 1024.0 /
                                                  max(held, 1), 1),
                       "gw_sessions_live": tot.get("gw_sessions_live"),
                       "rss_top_mappings_kib": rss_by_mapping(gw.proc.pid),
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
            if clients:
                clients.close()
            try:
                gw.wait_for(lambda t: t.get("gw_sessions_live", 1) == 0,
                            180, "all sessions closed")
                res["all_closed"] = True
            except AssertionError as e:
                res["all_closed"] = False
                res["close_error"] = str(e)[:300]
            r = mxgtest.Result("sessions")
            gw.shutdown(r)
            gw.kill()
        if a.postfix:
            res["postfix"] = postfix_idle(a.postfix)
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
