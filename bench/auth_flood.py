#!/usr/bin/env python3
"""The effect of an AUTH flood on other sessions (issue 14), run by
`bench/auth.sh flood [SECONDS]`. Not a test: it prints and writes JSON.

mxgate (one dataplane core, the default two worker threads) on net_tap in a
namespace of its own, with tests/integration/test_auth.py's listeners and
alice's password hashed with yescrypt at libcrypt's default cost (what
mxgate-mkpasswd writes). Three phases, each on a fresh gateway:
  idle         no flood
  one-address  16 connections from one address send bad AUTH PLAIN
               passwords as fast as replies come (the default brute-force
               thresholds: delay after 5, lockout after 20)
  distributed  16 connections from 16 addresses, brute-force thresholds
               off (0 = never), so every attempt is a yescrypt check on
               the worker pool
During each phase, for SECONDS: another session (port 25) sends NOOP every
10 ms (round trip of a command the poll-mode core answers by itself), and
a third address logs in as alice (AUTH PLAIN on a cleartext-allowed 587)
and sends one message, again and again (a login needs a worker).

usage: auth_flood.py MXGATE MKPASSWD OUT.json [SECONDS]
"""

import json
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import mxgtest  # noqa: E402
import test_auth as ta  # noqa: E402
import test_policy as tp  # noqa: E402
from mxgtest import GATEWAY_IP  # noqa: E402

CONNS = 16


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return round(v[min(len(v) - 1, int(len(v) * p))], 2)


def summary(v):
    return {"n": len(v), "p50_ms": pct(v, 0.5), "p90_ms": pct(v, 0.9),
            "p99_ms": pct(v, 0.99), "max_ms": round(max(v), 2) if v
            else None}


def phase(a, tmp, name, secs, users):
    res = mxgtest.Result("auth-flood-" + name)
    brute = None
    if name == "distributed":
        brute = {"ip_delay_after": 0, "ip_lockout_after": 0,
                 "user_delay_after": 0}
    orig = ta.USERS
    ta.USERS = users
    sink = tp.make_sink(tmp)
    gw = None
    try:
        gw = ta.start(a, tmp, res, brute)
        sink.start()
        attackers = ["198.18.0.%d" % (100 + k) for k in
                     range(CONNS if name == "distributed" else 1)]
        tp.add_addrs([20, 21] + [int(x.split(".")[3]) for x in attackers])
        tp.wait_ready(res)
        stop = threading.Event()
        codes = {}
        lock = threading.Lock()

        def attack(k):
            src = attackers[k % len(attackers)]
            c = tp.Client(src, 587, timeout=30)
            if c.greeting is None:
                return
            c.ehlo()
            i = 0
            while not stop.is_set():
                try:
                    r = c.cmd("AUTH PLAIN " +
                              ta.plain("alice", "g%d-%d" % (k, i)))
                except Exception:  # noqa: BLE001
                    break
                i += 1
                with lock:
                    codes[r[0]] = codes.get(r[0], 0) + 1
            c.quit()

        noop, login = [], []

        def noops():
            c = tp.Client("198.18.0.20", 25, timeout=30)
            c.ehlo()
            while not stop.is_set():
                t0 = time.monotonic()
                if c.cmd("NOOP")[0] == 250:
                    noop.append((time.monotonic() - t0) * 1000)
                time.sleep(0.01)
            c.quit()

        def logins():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    s = smtplib.SMTP(GATEWAY_IP, 587, timeout=60,
                                     source_address=("198.18.0.21", 0))
                    s.ehlo("bench.mxgt.test")
                    s.login("alice", "secret")
                    s.sendmail("alice@" + ta.OURS, ["x@far.example"],
                               "Subject: flood bench\r\n\r\nx\r\n")
                    s.quit()
                    login.append((time.monotonic() - t0) * 1000)
                except Exception as e:  # noqa: BLE001
                    mxgtest.log("  login: %r" % e)
                time.sleep(0.2)

        ths = [threading.Thread(target=noops),
               threading.Thread(target=logins)]
        if name != "idle":
            ths += [threading.Thread(target=attack, args=(k,))
                    for k in range(CONNS)]
        t0 = time.monotonic()
        for th in ths:
            th.start()
        time.sleep(secs)
        stop.set()
        for th in ths:
            th.join(120)
        el = time.monotonic() - t0
        t = tp.wait_sessions_idle(gw, res)
        out = {"phase": name, "seconds": round(el, 1),
               "attack_connections": CONNS if name != "idle" else 0,
               "attack_addresses": len(attackers) if name != "idle"
               else 0,
               "attempts": sum(codes.values()),
               "attempts_per_s": round(sum(codes.values()) / el, 1),
               "replies": {str(k): v for k, v in codes.items()},
               "noop_rtt": summary(noop), "login_and_send": summary(login),
               "gw_auth_failed_plain": t.get("gw_auth_failed_plain"),
               "gw_auth_locked": t.get("gw_auth_locked"),
               "gw_auth_delayed": t.get("gw_auth_delayed")}
        mxgtest.log(json.dumps(out))
        return out
    finally:
        ta.USERS = orig
        if gw:
            gw.shutdown(res)
            gw.kill()
        sink.stop()


def main():
    mxgate, mkpasswd, outp = sys.argv[1:4]
    secs = float(sys.argv[4]) if len(sys.argv) > 4 else 10
    h = subprocess.run([mkpasswd, "alice"], input="secret\n", text=True,
                       capture_output=True, check=True).stdout
    users = h if h.endswith("\n") else h + "\n"

    class A:
        pass
    a = A()
    a.mxgate, a.cores = os.path.abspath(mxgate), 1
    results = []
    for name in ("idle", "one-address", "distributed"):
        tmp = tempfile.mkdtemp(prefix="mxg-authflood-")
        os.chmod(tmp, 0o755)
        try:
            with mxgtest.Netns("aflood"):
                results.append(phase(a, tmp, name, secs, users))
        finally:
            for gw in tp.STARTED:
                gw.kill()
            tp.STARTED.clear()
            shutil.rmtree(tmp, ignore_errors=True)
    with open(outp, "w") as f:
        json.dump({"bench": "auth-flood", "hash": users.split(":")[1][:7],
                   "worker_threads": 2, "cores": 1, "phases": results}, f,
                  indent=1)


if __name__ == "__main__":
    main()
