#!/usr/bin/env python3
"""Self-test of the gateway tests' peers (peers.py), without mxgate: in a
namespace of its own, with 198.18.0.1 and 198.18.0.2 on its loopback,
the kernel plays the gateway's part (a client bound to 198.18.0.2) so that
every behaviour test_gateway.py relies on is shown to hold on the peer side:

  - smtp-sink captures each message to a file; smtp-source 200 messages over
    10 sessions all arrive (files and -c counter); Message-IDs readable
  - SIGKILL of smtp-sink: every message it said 250 to is on disk
  - Postfix instance: XCLIENT from 198.18.0.2 is authorised and its Received
    header and log show the client address given (198.18.0.1); a recipient
    listed in `reject` gets 550 5.1.1 while the others are delivered;
    smtp-source 200 messages are delivered to its Maildir
  - the stall server stops answering at each step and records the stall

usage: test_peers.py
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
import peers  # noqa: E402
from mxgtest import GATEWAY_IP, KERNEL_IP, log, sh  # noqa: E402


def client_from(ip, port, src, timeout=20):
    """SmtpClient whose socket is bound to src (as the gateway would be)."""
    c = peers.SmtpClient.__new__(peers.SmtpClient)
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((ip, port))
    c.sock = s
    c.f = s.makefile("rb")
    c.caps = []
    c.greeting = c.reply()
    return c


def smtp_source(args, timeout=120):
    r = subprocess.run(["smtp-source"] + args, capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def check_sink(res, tmp):
    cap = os.path.join(tmp, "sinkcap")
    with peers.SmtpSink(KERNEL_IP, 2525, capture_dir=cap,
                        out_path=os.path.join(tmp, "sink.out")) as sink:
        rc, out = smtp_source(["-s", "10", "-m", "200", "-d", "-l", "2048",
                               "-M", "src.mxgt.test",
                               "%s:2525" % KERNEL_IP])
        res.check(rc == 0, "smtp-source 200 msgs / 10 sessions -> smtp-sink "
                  "exit %d %s" % (rc, out[-200:]))
        time.sleep(0.5)
        files = sink.captured()
        res.check(len(files) == 200, "smtp-sink captured %d files" %
                  len(files))
        ids = sink.message_ids()
        res.check(len(ids) == 200, "%d distinct Message-IDs read from the "
                  "captures" % len(ids))
        c = client_from(KERNEL_IP, 2525, GATEWAY_IP)
        c.ehlo("gw.mxgt.test")
        r = c.transaction("a@mxgt.test", ["b@example.net", "c@example.net"],
                          peers.message("peers-sink-1@test", "a@mxgt.test",
                                        ["b@example.net"], 3000))
        c.quit()
        res.check(r["outcome"] == 250, "pipelined transaction to smtp-sink: "
                  "%s" % (r["dot"],))
        time.sleep(0.5)
        res.check("<peers-sink-1@test>" in sink.message_ids(),
                  "the pipelined message is captured by Message-ID")
        res.check(sink.received() == 201, "smtp-sink -c counted %d messages"
                  % sink.received())

        # SIGKILL after a 250: the capture is already complete on disk.
        c = client_from(KERNEL_IP, 2525, GATEWAY_IP)
        c.ehlo("gw.mxgt.test")
        r = c.transaction("a@mxgt.test", ["b@example.net"],
                          peers.message("peers-sink-kill@test", "a@mxgt.test",
                                        ["b@example.net"], 50000))
        sink.kill()
        c.close()
        res.check(r["outcome"] == 250 and
                  "<peers-sink-kill@test>" in sink.message_ids(),
                  "message acknowledged just before SIGKILL is captured")
        try:
            peers.SmtpClient(KERNEL_IP, 2525, timeout=2, connect_retries=1)
            down = False
        except OSError:
            down = True
        res.check(down, "killed smtp-sink refuses connections")
        sink.start()
        c = client_from(KERNEL_IP, 2525, GATEWAY_IP)
        c.ehlo("gw.mxgt.test")
        r = c.transaction("a@mxgt.test", ["b@example.net"],
                          peers.message("peers-sink-2@test", "a@mxgt.test",
                                        ["b@example.net"], 100))
        c.quit()
        time.sleep(0.3)
        res.check(r["outcome"] == 250 and sink.received() == 203,
                  "restarted smtp-sink accepts again; counts summed over "
                  "runs: %d" % sink.received())


def check_postfix(res):
    bad = "nosuchuser@example.net"
    pf = peers.Postfix(listen="%s:2525" % KERNEL_IP,
                       reject={bad: "550 5.1.1 User unknown"})
    try:
        pf.start()
        c = client_from(KERNEL_IP, 2525, GATEWAY_IP)
        code, text = c.ehlo("gw.mxgt.test")
        res.check("XCLIENT" in c.caps, "Postfix offers XCLIENT to "
                  "198.18.0.2 (%s)" % ",".join(c.caps))
        code, text = c.cmd("XCLIENT ADDR=198.18.0.1 NAME=[UNAVAILABLE] "
                           "HELO=client.mxgt.test PROTO=ESMTP")
        res.check(code == 220, "XCLIENT accepted: %s" % text)
        c.ehlo("gw.mxgt.test")
        r = c.transaction("a@mxgt.test",
                          ["ok1@example.net", bad, "ok2@example.org"],
                          peers.message("peers-pf-1@test", "a@mxgt.test",
                                        ["ok1@example.net"], 2000))
        c.quit()
        log("  postfix replies: %s" % r["rcpts"])
        res.check(r["rcpts"][1][0] == 550 and
                  r["rcpts"][1][1].startswith("550 5.1.1 "),
                  "rejected recipient answered %r" % r["rcpts"][1][1])
        res.check(r["rcpts"][0][0] == 250 and r["rcpts"][2][0] == 250 and
                  r["outcome"] == 250, "other recipients and the message "
                  "accepted (%s)" % (r["dot"],))
        got = pf.wait_delivered(2, 60)
        res.check(len(got) == 2, "Postfix delivered %d copies to its "
                  "Maildir" % len(got))
        rec = peers.header_values(peers.read_headers(got[0]), "Received") \
            if got else []
        log("  Received: %s" % (rec[:1],))
        # The EHLO that must follow XCLIENT replaces the HELO it gave: only
        # the address survives into Received.
        res.check(rec and "[198.18.0.1]" in rec[0],
                  "Received header shows the XCLIENT address")
        ml = pf.maillog()
        res.check("client=unknown[198.18.0.1]" in ml,
                  "maillog shows client=unknown[198.18.0.1]")

        rc, out = smtp_source(["-s", "10", "-m", "200", "-d", "-l", "1024",
                               "-M", "src.mxgt.test", "-t", "x@example.net",
                               "%s:2525" % KERNEL_IP])
        res.check(rc == 0, "smtp-source 200 msgs -> Postfix exit %d %s" %
                  (rc, out[-200:]))
        got = pf.wait_delivered(202, 120)
        res.check(len(got) == 202, "Postfix delivered %d of 202" % len(got))
    finally:
        pf.cleanup()
    res.check(pf.master_pid() is None, "Postfix master stopped")


def check_stall(res):
    for step in peers.StallServer.STEPS:
        with peers.StallServer(KERNEL_IP, 2526, stall_at=step,
                               stall_count=1) as st:
            stalled = False
            try:
                c = peers.SmtpClient(KERNEL_IP, 2526, timeout=1.5)
                c.ehlo("gw.mxgt.test")
                c.transaction("a@mxgt.test", ["b@example.net"],
                              peers.message("stall@test", "a@mxgt.test",
                                            ["b@example.net"], 200),
                              pipelining=False)
            except (socket.timeout, peers.SmtpError):
                stalled = True
            c_ok = peers.SmtpClient(KERNEL_IP, 2526, timeout=5)
            c_ok.ehlo("gw.mxgt.test")
            r = c_ok.transaction("a@mxgt.test", ["b@example.net"],
                                 peers.message("after@test", "a@mxgt.test",
                                               ["b@example.net"], 200))
            c_ok.quit()
            with __import__("contextlib").suppress(Exception):
                c.close()
            res.check(stalled and st.stalls == 1 and r["outcome"] == 250,
                      "stall server stalls once at %s, then serves" % step)


def main():
    res = mxgtest.Result("peers")
    with mxgtest.Netns("peers"):
        # No dummy driver on every kernel: both addresses on loopback.
        sh("ip", "addr", "add", KERNEL_IP + "/32", "dev", "lo")
        sh("ip", "addr", "add", GATEWAY_IP + "/32", "dev", "lo")
        tmp = tempfile.mkdtemp(prefix="mxgt-peers-")
        os.chmod(tmp, 0o755)
        try:
            check_sink(res, tmp)
            check_postfix(res)
            check_stall(res)
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            res.check(False, "exception: %r" % e)
        finally:
            sh("rm", "-rf", tmp)
    res.finish()


if __name__ == "__main__":
    main()
