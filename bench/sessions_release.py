#!/usr/bin/env python3
"""sessions_release.py - how fast mxgate releases N idle sessions after
their kernel clients close (issue 18 diagnostic; not a test, not a bench
with figures to keep).

mxgate on net_tap in a netns of its own (one core, table 1.5 N), N idle
greeted sessions from kernel clients (tests/integration/idle_clients.py),
then every client closes at once; gw_sessions_live and the TCP counters
are printed every 5 s for up to 60 s, then the kernel side's socket
states (ss), the tap's counters (ip -s link: the kernel's TX "dropped"
are frames it could not hand to mxgate) and the kernel's TCP abort
counters (nstat).

usage: sessions_release.py MXGATE N [TXQUEUELEN]   (root)
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import mxgtest  # noqa: E402
from idle_clients import IdleClients  # noqa: E402

n = int(sys.argv[2])
mx = os.path.abspath(sys.argv[1])
with mxgtest.Netns("rel"):
    gw = mxgtest.Mxgate(mx, [
        "--max-sessions", str(n * 3 // 2 + 64),
        "--max-conns", str(n * 3 // 2 + 256), "--syn-backlog", "16384",
        "--no-admin", "--log-file", "/dev/null",
        "--gateway", mxgtest.KERNEL_IP])
    gw.start()
    if len(sys.argv) > 3:
        os.system("ip link set %s txqueuelen %s" % (gw.tap, sys.argv[3]))
    c = IdleClients(gw.tap, n)
    time.sleep(0.3)
    held, bad, retried = c.hold(n)
    print("held", held, "failed", bad, "retried", retried, flush=True)
    os.system("ip -s link show %s | sed -n 5,6p" % gw.tap)
    os.system("nstat -n")
    t0 = time.time()
    c.close()
    print("clients closed in %.1f s" % (time.time() - t0), flush=True)
    keys = ("gw_sessions_live", "tcp_seg_in", "tcp_retransmits",
            "tcp_rst_out", "tcp_closed", "tcp_timeouts", "drop_tcp_noconn",
            "drop_tcp_seq", "drop_arp_pending")
    for _ in range(13):
        t = gw.stats()["total"]
        print("%3.0fs" % (time.time() - t0),
              {k: t.get(k, 0) for k in keys}, flush=True)
        if t.get("gw_sessions_live", 1) == 0:
            break
        time.sleep(5)
    os.system("ss -tan state all | awk '{print $1}' | sort | uniq -c; "
              "ip -s link show %s | sed -n 5,6p; nstat -az 2>/dev/null | "
              "grep -iE 'AbortOn|TCPTimeouts'" % gw.tap)
    gw.kill()
