#!/usr/bin/env python3
"""test_bench - mxgate-bench (issue 17) end to end, bounded in count and time.

Scenarios:
  memif   generator <-> sink, two mxgate-bench processes joined by memif:
          every message the generator saw accepted is counted by the sink
          exactly once with a good digest, with PIPELINING + DATA, with
          one command at a time + BDAT, against a sink that refuses
          recipients (4xx/5xx) and resets sessions at random steps (the
          generator counts each reset and still matches the sink exactly),
          in open loop against a sink that delays its 250, from 16
          source addresses (--client-ips; the sink sees all 16), and
          over STARTTLS against a sink offering it (--sink-tls-cert).
  tap     the generator on net_tap against kernel peers in the namespace:
          Postfix smtp-sink (its message counter equals the generator's
          accepted count), a server that stalls at end of data (each stall
          counted as a time-out at 'dot', the run ends in bounded time) and
          a server that resets after the greeting (each counted).
  afpacket  the generator on net_af_packet (a veth pair) against smtp-sink.
  starttls  mxgate-bench --starttls against mxgate over memif (listener
          with STARTTLS and a test certificate made here, its pool back
          over the memif to the sink in the same mxgate-bench): N messages
          over TLS, verified against the test CA and name, counted at the
          sink exactly once, N handshakes in mxgate's stats and in the
          generator's, resumed ones (--tls-resume) equal on both sides;
          then a wrong trust anchor (every handshake fails,
          counted by reason, nothing sent, the run ends) and a listener
          without STARTTLS (every session a protocol error, no plaintext
          mail).

usage: test_bench.py MXGATE_BENCH SCENARIO [MXGATE]
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
from mxgtest import Netns, Result, log, sh  # noqa: E402
from peers import SmtpSink, StallServer  # noqa: E402

BENCH = None
MXGATE = None


def run_bench(args, timeout, name):
    """Run mxgate-bench to its end (or kill it at timeout: a failure);
    return its JSON document."""
    out = tempfile.mktemp(prefix="mxgt-bench-%s-" % name, suffix=".json")
    cmd = [BENCH] + args + ["--json", out, "--quiet"]
    log("run: " + " ".join(cmd))
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        text, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        text, _ = p.communicate()
        log(text.decode(errors="replace"))
        raise RuntimeError("%s: mxgate-bench still running after %d s" %
                           (name, timeout))
    log("%s: exit %d after %.1f s" % (name, p.returncode, time.time() - t0))
    if p.returncode != 0:
        log(text.decode(errors="replace"))
        raise RuntimeError("%s: mxgate-bench exit %d" % (name, p.returncode))
    with open(out) as f:
        doc = json.load(f)
    os.unlink(out)
    return doc


class SinkProc:
    """A sink-only mxgate-bench in the background; stop() returns its
    JSON (it writes it on SIGTERM)."""

    def __init__(self, args, name):
        self.out = tempfile.mktemp(prefix="mxgt-sink-%s-" % name,
                                   suffix=".json")
        self.cmd = [BENCH] + args + ["--json", self.out, "--quiet",
                                     "--run-seconds", "120"]
        self.p = None

    def __enter__(self):
        log("sink: " + " ".join(self.cmd))
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        return self

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise RuntimeError("sink did not stop on SIGTERM")
        with open(self.out) as f:
            doc = json.load(f)
        os.unlink(self.out)
        return doc

    def __exit__(self, *exc):
        if self.p and self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        return False


def gen_total(doc):
    return doc["generator"]["total"]


def bad_events(t):
    b = t["bad_peer"]
    return b["timeouts"] + b["resets"] + b["closed_early"] + b["refused"] \
        + b["protocol_errors"]


def memif_case(res, tmp, name, n, gen_args, sink_args, clean=True):
    sock = os.path.join(tmp, "%s.sock" % name)
    with SinkProc(["--port", "net_memif0,role=server,socket=%s,id=0" % sock,
                   "--ip", "198.18.7.2/24", "--cpu", "1",
                   "--sink-port", "25", "--sink-check-digest"] + sink_args,
                  name) as sk:
        time.sleep(1.0)
        g = run_bench(["--port", "net_memif0,role=client,socket=%s,id=0" %
                       sock, "--ip", "198.18.7.3/24", "--cpu", "0",
                       "--target", "198.18.7.2:25", "--count", str(n),
                       "--warmup", "0", "--step-timeout-ms", "3000"] +
                      gen_args, 120, name)
        time.sleep(0.3)
        s = sk.stop()["sink"]
    t = gen_total(g)
    log("%s: generator %s" % (name, json.dumps(
        {k: t[k] for k in ("msgs_sent", "msgs_accepted", "msgs_refused",
                           "rcpts_ok", "bad_peer")})))
    log("%s: sink %s" % (name, json.dumps(s)))
    res.check(t["msgs_sent"] == n, "%s: %d messages sent (want %d)" %
              (name, t["msgs_sent"], n))
    res.check(s["msgs"] == t["msgs_accepted"],
              "%s: sink counted %d = generator accepted %d" %
              (name, s["msgs"], t["msgs_accepted"]))
    res.check(s["rcpts"] == t["rcpts_ok"],
              "%s: sink recipients %d = generator's 2xx recipients %d" %
              (name, s["rcpts"], t["rcpts_ok"]))
    res.check(s["duplicates"] == 0 and s["digest_bad"] == 0 and
              s["no_bench"] == 0 and s["foreign_nonce"] == 0,
              "%s: no duplicate, no bad digest, no foreign message" % name)
    res.check(s["nonce"] == g["generator"]["nonce"],
              "%s: the sink saw this run's nonce" % name)
    if clean:
        res.check(t["msgs_accepted"] == n and bad_events(t) == 0,
                  "%s: all %d accepted, no bad-peer event" % (name, n))
    return g, s


def scenario_memif(res):
    tmp = tempfile.mkdtemp(prefix="mxgt-bench-")
    # PIPELINING + DATA, several messages per connection, mixed sizes
    memif_case(res, tmp, "pipelined", 3000,
               ["--sessions", "16", "--msgs-per-conn", "3",
                "--rcpts", "1-5", "--size", "300-6000"], [])
    # 16 source addresses (--client-ips): one stack each on the same
    # port; every message still counted once, sessions from all 16
    g, s = memif_case(res, tmp, "sources", 2000,
                      ["--sessions", "32", "--client-ips",
                       "198.18.7.16/28"], [])
    res.check(g["generator"]["source_addresses"] == 16 and
              s["peer_addrs"] == 16,
              "sources: the sink saw %d client addresses (want 16)" %
              s["peer_addrs"])
    # one command at a time, BDAT, large messages
    g, _ = memif_case(res, tmp, "bdat", 300,
                      ["--sessions", "8", "--msgs-per-conn", "2",
                       "--no-pipelining", "--bdat", "--size", "50000-120000"],
                      ["--sink-chunking"])
    t = gen_total(g)
    res.check(t["replies"]["data"] == {} and
              t["replies"]["dot"].get("2xx") == 300,
              "bdat: no DATA command, 300 BDAT LAST answered 2xx")
    # a refusing, resetting sink: exact match still, resets counted
    g, s = memif_case(res, tmp, "refusing", 2000,
                      ["--sessions", "16", "--msgs-per-conn", "2",
                       "--rcpts", "1-3"],
                      ["--sink-4xx", "10", "--sink-5xx", "30",
                       "--sink-drop", "5"], clean=False)
    t = gen_total(g)
    res.check(t["replies"]["rcpt"].get("4xx", 0) > 0 and
              t["replies"]["rcpt"].get("5xx", 0) > 0,
              "refusing: 4xx and 5xx recipient replies counted")
    res.check(s["drops"] > 0 and t["bad_peer"]["resets"] > 0,
              "refusing: sink dropped %d sessions, generator counted %d "
              "resets" % (s["drops"], t["bad_peer"]["resets"]))
    res.check(t["bad_peer"]["resets"] + t["bad_peer"]["refused"] ==
              s["drops"],
              "refusing: every drop counted once by the generator "
              "(resets %d + refused %d = drops %d)" %
              (t["bad_peer"]["resets"], t["bad_peer"]["refused"],
               s["drops"]))
    res.check(0 < t["msgs_accepted"] < 2000,
              "refusing: %d of 2000 accepted" % t["msgs_accepted"])
    # open loop against a sink that holds its end-of-data reply 5 ms:
    # every message still counted once, and the generator's dot latency
    # includes the hold (a lower bound the sink enforces, not a speed)
    g, s = memif_case(res, tmp, "openloop", 400,
                      ["--rate", "400", "--sessions", "64",
                       "--msgs-per-conn", "2"],
                      ["--sink-delay", "dot=5"])
    t = gen_total(g)
    res.check(t["sessions_started"] == 200,
              "openloop: 200 sessions for 400 messages at 2 per session "
              "(%d)" % t["sessions_started"])
    res.check(t["latency"]["dot"]["count"] == 400 and
              t["latency"]["dot"]["p50_us"] >= 5000,
              "openloop: end-of-data latency holds the sink's 5 ms delay "
              "(p50 %d us)" % t["latency"]["dot"]["p50_us"])
    # the tool against itself over STARTTLS: the sink offers it with a
    # test certificate, the generator verifies it; 2 messages per
    # connection, one handshake per connection on each side
    certs = make_certs(os.path.join(tmp, "tls"), TLS_NAME)
    g, s = memif_case(res, tmp, "starttls_self", 400,
                      ["--sessions", "8", "--msgs-per-conn", "2",
                       "--starttls", "--tls-ca",
                       os.path.join(certs, "ca.pem"), "--tls-name",
                       TLS_NAME],
                      ["--sink-tls-cert", os.path.join(certs, "ecdsa.crt"),
                       "--sink-tls-key", os.path.join(certs, "ecdsa.key")])
    t = gen_total(g)
    res.check(t["tls_handshakes"] == 200 and s["tls_handshakes"] == 200 and
              s["tls_failed"] == 0 and t["bad_peer"]["tls_failed"] == 0,
              "starttls_self: 200 handshakes at the generator (%d) and at "
              "the sink (%d), none failed" % (t["tls_handshakes"],
                                              s["tls_handshakes"]))


def tap_bench(name, tap, args, timeout):
    """Start the generator on a new tap, configure the kernel side, wait
    for the run to end; returns the JSON."""
    box = {}

    def go():
        try:
            box["doc"] = run_bench(
                ["--port", "net_tap0,iface=%s" % tap, "--ip",
                 "198.18.0.2/24", "--cpu", "0", "--target",
                 "198.18.0.1:2525", "--warmup", "0"] + args, timeout, name)
        except Exception as e:  # noqa: BLE001
            box["err"] = e

    th = threading.Thread(target=go)
    th.start()
    for _ in range(400):
        if subprocess.run(["ip", "link", "show", tap],
                          capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    sh("ip", "addr", "add", "198.18.0.1/24", "dev", tap, check=False)
    sh("ip", "link", "set", tap, "up")
    th.join(timeout + 30)
    if "err" in box:
        raise box["err"]
    return box["doc"]


class ResetServer:
    """Kernel server that sends the greeting, then answers EHLO with a
    RST (SO_LINGER 0 close)."""

    def __init__(self, ip, port):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((ip, port))
        self.ls.listen(128)
        self.ls.settimeout(0.2)
        self.stop_flag = False
        self.resets = 0
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        import struct
        while not self.stop_flag:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            c.settimeout(5)
            try:
                c.sendall(b"220 reset.test ESMTP\r\n")
                c.recv(1024)
            except OSError:
                pass
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            c.close()
            self.resets += 1

    def close(self):
        self.stop_flag = True
        self.th.join(5)
        self.ls.close()


def scenario_tap(res):
    # Postfix smtp-sink: its own counter is the judge.
    # Listening on the wildcard before the tap exists, so the first SYN
    # finds it.
    sink = SmtpSink("0.0.0.0", 2525, count=True).start()
    try:
        doc = tap_bench("postfix-sink", "mxgbt0",
                        ["--count", "500", "--sessions", "8",
                         "--msgs-per-conn", "2", "--rcpts", "1-3"], 120)
        time.sleep(1.5)  # smtp-sink prints its counters periodically
        got = sink.received()
    finally:
        sink.stop()
    t = gen_total(doc)
    log("postfix-sink: generator accepted %d, smtp-sink counted %d, %s" %
        (t["msgs_accepted"], got, json.dumps(t["bad_peer"])))
    res.check(t["msgs_accepted"] == 500 and bad_events(t) == 0,
              "postfix-sink: all 500 accepted, no bad-peer event")
    res.check(got == t["msgs_accepted"],
              "postfix-sink: smtp-sink counted %d = generator accepted %d"
              % (got, t["msgs_accepted"]))
    time.sleep(1)

    # A server that stalls at the end of data 5 times: 5 time-outs at
    # 'dot', the rest accepted, the run ends in bounded time.
    st = StallServer("0.0.0.0", 2525, stall_at="dot", stall_count=5)
    st.start()
    try:
        t0 = time.time()
        doc = tap_bench("stall", "mxgbt1",
                        ["--count", "40", "--sessions", "4",
                         "--step-timeout-ms", "1500"], 60)
        took = time.time() - t0
    finally:
        st.stop()
    t = gen_total(doc)
    log("stall: %s, %.1f s" % (json.dumps(t["bad_peer"]), took))
    res.check(t["bad_peer"].get("timeout_at_dot") == 5 and
              t["bad_peer"]["timeouts"] == 5,
              "stall: 5 time-outs counted at dot")
    res.check(t["msgs_accepted"] == 35 and len(st.messages) == 35,
              "stall: the other 35 accepted (%d)" % t["msgs_accepted"])
    res.check(took < 40, "stall: run ended in %.1f s" % took)
    time.sleep(1)

    # A server that resets after the greeting: every session counted.
    rs = ResetServer("0.0.0.0", 2525)
    try:
        doc = tap_bench("reset", "mxgbt2",
                        ["--duration", "2", "--sessions", "4"], 60)
        # by count, capped by --duration: no message is ever accepted,
        # the run still ends
        t0 = time.time()
        capped = tap_bench("reset-count", "mxgbt3",
                           ["--count", "10", "--duration", "2",
                            "--sessions", "4"], 60)
        took = time.time() - t0
    finally:
        rs.close()
    tc = gen_total(capped)
    res.check(tc["msgs_accepted"] == 0 and tc["sessions_started"] > 4 and
              took < 40,
              "reset-count: a --count run against a resetting server ends "
              "at its --duration cap (%d sessions, %.1f s)" %
              (tc["sessions_started"], took))
    t = gen_total(doc)
    log("reset: %s, server reset %d" % (json.dumps(t["bad_peer"]),
                                        rs.resets))
    res.check(t["msgs_accepted"] == 0, "reset: nothing accepted")
    res.check(t["bad_peer"].get("reset_at_ehlo", 0) > 0 and
              t["bad_peer"]["resets"] + t["bad_peer"]["closed_early"] +
              t["bad_peer"]["timeouts"] == t["sessions_started"],
              "reset: every session (%d) ended counted as a bad-peer event"
              % t["sessions_started"])


def scenario_afpacket(res):
    # one end of a veth pair for mxgate-bench, the other the kernel's;
    # no checksum offload on either (af_packet would otherwise hand the
    # stack half-done checksums, as in test_ports.py)
    sh("ip", "link", "add", "mxgba", "type", "veth", "peer", "name", "mxgbb")
    sh("ethtool", "-K", "mxgbb", "tx", "off", check=False)
    sh("ethtool", "-K", "mxgba", "rx", "off", "tx", "off", check=False)
    sh("ip", "addr", "add", "198.18.11.1/24", "dev", "mxgbb")
    sh("ip", "link", "set", "mxgba", "up")
    sh("ip", "link", "set", "mxgbb", "up")
    sink = SmtpSink("198.18.11.1", 2525, count=True).start()
    try:
        doc = run_bench(["--port", "net_af_packet0,iface=mxgba", "--ip",
                         "198.18.11.2/24", "--cpu", "0", "--target",
                         "198.18.11.1:2525", "--warmup", "0", "--count",
                         "300", "--sessions", "8", "--rcpts", "1-2"],
                        120, "afpacket")
        time.sleep(1.5)  # smtp-sink prints its counters periodically
        got = sink.received()
    finally:
        sink.stop()
    t = gen_total(doc)
    log("afpacket: generator accepted %d, smtp-sink counted %d, %s" %
        (t["msgs_accepted"], got, json.dumps(t["bad_peer"])))
    res.check(t["msgs_accepted"] == 300 and bad_events(t) == 0,
              "afpacket: all 300 accepted, no bad-peer event")
    res.check(got == 300, "afpacket: smtp-sink counted %d" % got)


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TLS_NAME = "gw.bench.mxgt.test"


def make_certs(d, name):
    subprocess.run([os.path.join(ROOT, "scripts", "make-tls-certs.sh"), d,
                    name], check=True, capture_output=True)
    return d


def scenario_starttls(res):
    tmp = tempfile.mkdtemp(prefix="mxgt-bench-tls-")
    certs = make_certs(os.path.join(tmp, "tls"), TLS_NAME)
    other = make_certs(os.path.join(tmp, "other"), TLS_NAME)
    sock = os.path.join(tmp, "mx.sock")
    conf = os.path.join(tmp, "mx.conf")
    with open(conf, "w") as f:
        f.write('''
stack = { port = "net_memif0,role=server,socket=%(sock)s,id=0";
          address = "198.18.9.2/24"; };
listeners = (
  { name = "mx"; port = 25; role = "mx"; hostname = "%(name)s";
    tls = "optional";
    certificates = ( { cert = "%(c)s/ecdsa.crt"; key = "%(c)s/ecdsa.key"; } );
  },
  { name = "plain"; port = 2525; role = "mx"; hostname = "%(name)s"; } );
pools = ( { name = "default"; type = "smtp"; client_info = "none";
            servers = ( { address = "198.18.9.3"; port = 2526; } ); } );
maildir = { path = "%(tmp)s/Maildir"; };
log = { file = "%(tmp)s/mx.log"; level = "warn"; };
policy = { relay_networks = [ "198.18.0.0/15" ]; };
''' % {"sock": sock, "name": TLS_NAME, "c": certs, "tmp": tmp})
    gw = mxgtest.Mxgate(MXGATE, stats_dir=tmp)
    gw.args = ["--config", conf, "--stats-file", gw.stats_file,
               "--stats-interval-ms", "100"]
    gw.start(wait=False)
    try:
        deadline = time.time() + 30
        while not os.path.exists(gw.stats_file) and time.time() < deadline:
            if gw.proc.poll() is not None:
                break
            time.sleep(0.1)
        res.check(os.path.exists(gw.stats_file), "mxgate on memif runs")
        time.sleep(0.5)
        base = ["--port", "net_memif0,role=client,socket=%s,id=0" % sock,
                "--ip", "198.18.9.3/24", "--cpu", "0",
                "--sink-port", "2526", "--sink-check-digest",
                "--warmup", "0", "--step-timeout-ms", "5000",
                "--drain-ms", "3000", "--starttls"]
        n = 200
        h0 = gw.total("gw_tls_handshakes")
        r0 = gw.total("gw_tls_resumed")
        d = run_bench(base + ["--target", "198.18.9.2:25", "--count", str(n),
                              "--sessions", "8", "--tls-resume",
                              "--tls-ca", os.path.join(certs, "ca.pem"),
                              "--tls-name", TLS_NAME], 120, "starttls")
        t, sk = gen_total(d), d["sink"]
        time.sleep(0.5)
        hs = gw.total("gw_tls_handshakes") - h0
        rs = gw.total("gw_tls_resumed") - r0
        log("starttls: generator %s; sink %s; mxgate handshakes %d" % (
            json.dumps({k: t[k] for k in ("msgs_sent", "msgs_accepted",
                                          "tls_handshakes", "bad_peer")}),
            json.dumps(sk), hs))
        res.check(t["msgs_accepted"] == n and bad_events(t) == 0 and
                  t["bad_peer"]["tls_failed"] == 0,
                  "starttls: all %d accepted over TLS, no bad-peer event" % n)
        res.check(sk["msgs"] == n and sk["duplicates"] == 0 and
                  sk["digest_bad"] == 0,
                  "starttls: sink counted %d once each, digests good" %
                  sk["msgs"])
        res.check(t["tls_handshakes"] == n and hs == n,
                  "starttls: %d handshakes at the generator, %d in mxgate's "
                  "stats (want %d: 1 message per connection)" %
                  (t["tls_handshakes"], hs, n))
        # --tls-resume: the 8 first sessions have no ticket yet; the
        # later ones offer the last one's, and mxgate resumes them
        res.check(n - 8 >= t["tls_resumed"] > 0 and rs == t["tls_resumed"],
                  "starttls: %d handshakes resumed from a ticket, %d in "
                  "mxgate's gw_tls_resumed" % (t["tls_resumed"], rs))
        res.check(t["replies"]["starttls"].get("2xx") == n and
                  t["latency"]["starttls"]["count"] == n and
                  t["replies"]["ehlo"].get("2xx") == 2 * n,
                  "starttls: %d 220s to STARTTLS, a starttls latency each, "
                  "EHLO twice per session" % n)

        # wrong trust anchor: another CA with the same name. Failed
        # sessions give their messages back, so --duration 2 ends it.
        # Each run from source addresses of its own (--client-ips): a
        # new mxgate-bench starts its ports where the last one did, and
        # mxgate may still hold those 4-tuples in TIME_WAIT.
        m = 20
        d = run_bench(base + ["--target", "198.18.9.2:25", "--count", str(m),
                              "--client-ips", "198.18.9.64/32",
                              "--sessions", "2", "--duration", "2",
                              "--tls-ca", os.path.join(other, "ca.pem"),
                              "--tls-name", TLS_NAME], 120, "wrongca")
        t, sk = gen_total(d), d["sink"]
        b = t["bad_peer"]
        log("wrongca: %s" % json.dumps(b))
        res.check(t["msgs_accepted"] == 0 and sk["msgs"] == 0 and
                  t["tls_handshakes"] == 0,
                  "wrongca: nothing accepted, nothing at the sink")
        res.check(b["tls_failed"] > 0 and
                  b["tls_failed"] + b["timeouts"] == t["sessions_started"]
                  and b["timeouts"] <= 2 and
                  b.get("tls_failed_peer_certificate") == b["tls_failed"],
                  "wrongca: %d sessions, %d handshake failures, all "
                  "peer_cert (%s), %d cut at the end" % (
                      t["sessions_started"], b["tls_failed"],
                      b.get("tls_failed_peer_certificate"), b["timeouts"]))

        # a listener that does not offer STARTTLS: never plaintext mail
        d = run_bench(base + ["--target", "198.18.9.2:2525", "--count",
                              str(m), "--client-ips", "198.18.9.65/32", "--sessions", "2", "--duration", "2"],
                      120, "notls")
        t, sk = gen_total(d), d["sink"]
        b = t["bad_peer"]
        log("notls: %s" % json.dumps(b))
        res.check(t["msgs_accepted"] == 0 and sk["msgs"] == 0 and
                  b["protocol_errors"] > 0 and
                  b["protocol_errors"] + b["timeouts"] ==
                  t["sessions_started"] and b["timeouts"] <= 2,
                  "notls: %d sessions, each a protocol error, no mail" %
                  t["sessions_started"])
    finally:
        gw.shutdown(res)


def main():
    global BENCH, MXGATE
    BENCH = os.path.abspath(sys.argv[1])
    scenario = sys.argv[2]
    if len(sys.argv) > 3:
        MXGATE = os.path.abspath(sys.argv[3])
    res = Result("bench_" + scenario)
    with Netns("bench"):
        {"memif": scenario_memif, "tap": scenario_tap,
         "afpacket": scenario_afpacket,
         "starttls": scenario_starttls}[scenario](res)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
