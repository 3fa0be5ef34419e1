#!/usr/bin/env python3
"""test_slowloris.py - slow senders on one core (issue 18).

mxgate (one dataplane core, net_tap, local Maildir, listener command
time-out 8 s) in its own netns. N slow clients (idle_clients.py: kernel
sockets, greeted) each send one octet of a command every 2 s and never
end the line (slowloris); meanwhile a legitimate client (smtplib, 10
connections in turn) delivers M messages to the Maildir.

Asserts: all N slow clients greeted; every one of them closed by the
command time-out with 421 4.4.2 (the time-out counts from the last whole
command line, not from the last octet: docs/smtp-engine.md), each after
it had dripped at least 2 octets; every legitimate message accepted (250)
and stored exactly once in new/; every session released; mxgate exits
cleanly (Mxgate.shutdown). The legitimate messages' latency (p50/p99 of
one smtplib sendmail) is printed, not asserted.

N is 10,000 and M 1,000, the issue's figures (about 10 s here: the slow
phase ends at the 8 s time-out). Overload mode does not apply: the table
is 1.5 N + 64, under the 80 % threshold.

usage: test_slowloris.py MXGATE [N [M]]
"""

import os
import smtplib
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mxgtest  # noqa: E402
from mxgtest import GATEWAY_IP, log  # noqa: E402
from idle_clients import IdleClients  # noqa: E402

COMMAND_TIMEOUT = 8   # seconds, the listener's timeouts.command
DRIP_EVERY = 2.0      # seconds between a slow client's octets
DRIP_FOR = 40         # seconds, bound on the slow phase
CONNS = 10            # legitimate connections, in turn


def legit(m, out):
    """Delivers m messages over CONNS connections; appends per-message
    latency (ms) to out["lat"] and the 250s to out["ok"]."""
    per = (m + CONNS - 1) // CONNS
    k = 0
    t_end = time.time() + 120
    while k < m and time.time() < t_end:
        try:
            c = smtplib.SMTP(GATEWAY_IP, 25, local_hostname="legit.mxgt.test",
                             timeout=30)
            for _ in range(min(per, m - k)):
                body = ("From: a@client.mxgt.test\r\nTo: r@example.com\r\n"
                        "Message-ID: <slow-%d@mxgt.test>\r\nSubject: %d\r\n"
                        "\r\nlegitimate message %d\r\n" % (k, k, k))
                t0 = time.time()
                c.sendmail("a@client.mxgt.test", ["r%d@example.com" % k],
                           body)
                out["lat"].append((time.time() - t0) * 1000)
                out["ok"] += 1
                k += 1
            c.quit()
        except (OSError, smtplib.SMTPException) as e:
            out["err"].append(repr(e))
            k += 1
    out["done"] = time.time()


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else float("nan")


def run(mxgate, n, m, res, tmp):
    md = os.path.join(tmp, "Maildir")
    conf = os.path.join(tmp, "slow.conf")
    with open(conf, "w") as f:
        f.write('listeners = ( { name = "mx"; port = 25; role = "mx"; '
                'hostname = "gw.mxgt.test"; timeouts = { command = %d; }; '
                '} );\npools = ( { name = "default"; type = "maildir"; } );'
                '\nmaildir = { path = "%s"; };\n'
                'policy = { relay_networks = [ "198.18.0.0/15" ]; };\n'
                % (COMMAND_TIMEOUT, md))
    gw = mxgtest.Mxgate(mxgate, [
        "--config", conf, "--maildir", md,
        "--max-sessions", str(n * 3 // 2 + 64),
        "--max-conns", str(n * 3 // 2 + 256),
        "--syn-backlog", "16384", "--no-admin",
        "--log-file", os.path.join(tmp, "mxgate.log"),
        "--gateway", mxgtest.KERNEL_IP])
    gw.start()
    clients = None
    try:
        clients = IdleClients(gw.tap, n)
        t0 = time.time()
        held, bad, retried = clients.hold(n)
        log("slow clients: %d of %d greeted in %.1f s (failed %d, "
            "retried %d)" % (held, n, time.time() - t0, bad, retried))
        res.check(held == n, "%d of %d slow clients greeted" % (held, n))
        out = {"lat": [], "ok": 0, "err": []}
        th = threading.Thread(target=legit, args=(m, out), daemon=True)
        t0 = time.time()
        th.start()
        closed, ok421, sent = clients.drip(DRIP_EVERY, DRIP_FOR)
        slow_s = time.time() - t0
        th.join(150)
        legit_s = out.get("done", time.time()) - t0
        log("slow clients: %d closed (%d with 421 4.4.2) in %.1f s; "
            "octets dripped before the close: min %s, max %s" %
            (closed, ok421, slow_s, min(sent) if sent else "-",
             max(sent) if sent else "-"))
        log("legitimate: %d of %d messages accepted in %.1f s; latency "
            "p50 %.1f ms, p99 %.1f ms, max %.1f ms; errors %s" %
            (out["ok"], m, legit_s, pct(out["lat"], 50),
             pct(out["lat"], 99), max(out["lat"] or [0]), out["err"][:3]))
        res.check(closed == held and ok421 == held,
                  "every slow client closed by the command time-out with "
                  "421 4.4.2: %d closed, %d with 421, of %d" %
                  (closed, ok421, held))
        res.check(bool(sent) and min(sent) >= 2,
                  "each slow client was dripping when closed (>= 2 octets "
                  "sent; min %s)" % (min(sent) if sent else "-"))
        res.check(out["ok"] == m and not out["err"],
                  "every legitimate message accepted: %d of %d" %
                  (out["ok"], m))
        try:
            gw.wait_for(lambda t: t.get("gw_sessions_live", 1) == 0, 30,
                        "all sessions released")
            res.check(True, "every session released")
        except AssertionError as e:
            res.check(False, str(e))
        new = os.path.join(md, "new")
        files = os.listdir(new) if os.path.isdir(new) else []
        ids = set()
        for fn in files:
            with open(os.path.join(new, fn), "rb") as f:
                for ln in f:
                    if ln.lower().startswith(b"message-id:"):
                        ids.add(ln.split(b":", 1)[1].strip())
                        break
        res.check(len(files) == m and len(ids) == m,
                  "every legitimate message stored once in new/: %d files, "
                  "%d distinct Message-IDs, of %d" % (len(files), len(ids), m))
    finally:
        if clients:
            clients.close()
    gw.shutdown(res)
    gw.kill()


def main():
    mxgate = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    m = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    res = mxgtest.Result("slowloris")
    with mxgtest.Netns("slow"), tempfile.TemporaryDirectory() as tmp:
        try:
            run(mxgate, n, m, res, tmp)
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            res.check(False, "exception: %r" % e)
    res.finish()


if __name__ == "__main__":
    main()
