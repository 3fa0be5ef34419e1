#!/usr/bin/env python3
"""test_idle.py - many idle sessions on one core (issue 18), CI size.

mxgate (one dataplane core, net_tap, table of N+64) in its own netns;
kernel clients from several 198.18.0.0/15 source addresses (idle_clients.py:
one worker process per source, IP_BIND_ADDRESS_NO_PORT, the whole port
range) open N sessions, read the 220 greeting and stay idle.

Asserts: all N greeted and counted live by the gateway; resident memory
per idle session (mxgate's VmRSS delta over the N sessions) at most
MAX_BYTES; a new client served (greeting, EHLO, QUIT) while all are held;
after the clients close, every session released (gw_sessions_live 0) and
mxgate exits cleanly with every mbuf back (Mxgate.shutdown).

The table is 1.5 N, so N stays under the overload threshold (80 %:
idle sessions would be closed after 10 s). N is 20,000 here, not the issue's 100,000: on the 2 shared CPUs of CI the
kernel side (one tap write per frame) opens about 3,000-5,000 sessions a
second, so 100,000 would not fit the 60 s budget. The 100,000 figure
comes from bench/sessions.sh (docs/benchmarks.md).

MAX_BYTES is 4,096, the issue's target (measured about 2,770 bytes here
since the transaction strings and the AUTH state moved into pooled
areas; see docs/status.md).

usage: test_idle.py MXGATE [N]
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mxgtest  # noqa: E402
from mxgtest import log  # noqa: E402
from idle_clients import IdleClients, rss_kib, timed_client  # noqa: E402

MAX_BYTES = 4096


def run(mxgate, n, res):
    gw = mxgtest.Mxgate(mxgate, [
        "--max-sessions", str(n * 3 // 2 + 64),
        "--max-conns", str(n * 3 // 2 + 256),
        "--syn-backlog", "16384", "--no-admin", "--log-file", "/dev/null",
        "--gateway", mxgtest.KERNEL_IP])
    gw.start()
    clients = None
    try:
        clients = IdleClients(gw.tap, n)
        time.sleep(0.3)
        ms, ok = timed_client()  # first-use costs go into the base
        res.check(ok, "warm-up client served")
        time.sleep(0.3)
        base = rss_kib(gw.proc.pid)
        t0 = time.time()
        held, bad, retried = clients.hold(n)
        secs = time.time() - t0
        time.sleep(0.5)
        r = rss_kib(gw.proc.pid)
        per = (r - base) * 1024.0 / max(held, 1)
        log("held %d of %d in %.1f s (failed %d, retried %d); RSS %d -> "
            "%d KiB: %.0f bytes per idle session" %
            (held, n, secs, bad, retried, base, r, per))
        res.check(held == n, "%d of %d sessions greeted and held" %
                  (held, n))
        live = gw.stats()["total"].get("gw_sessions_live")
        res.check(live is not None and live >= held,
                  "gateway counts them live: %s" % live)
        res.check(per <= MAX_BYTES, "RSS per idle session %.0f bytes <= "
                  "%d" % (per, MAX_BYTES))
        ms, ok = timed_client()
        res.check(ok, "a new client is served while %d are held (%.1f ms)"
                  % (held, ms))
    finally:
        if clients:
            clients.close()
    try:
        gw.wait_for(lambda t: t.get("gw_sessions_live", 1) == 0, 30,
                    "all sessions released")
        res.check(True, "every session released after the clients closed")
    except AssertionError as e:
        res.check(False, str(e))
    gw.shutdown(res)
    gw.kill()


def main():
    mxgate = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    res = mxgtest.Result("idle")
    with mxgtest.Netns("idle"):
        try:
            run(mxgate, n, res)
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            res.check(False, "exception: %r" % e)
    res.finish()


if __name__ == "__main__":
    main()
