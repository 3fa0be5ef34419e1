#!/usr/bin/env python3
"""Interop of mxgate's userspace TCP/IP stack with the Linux kernel over a
net_tap port in a network namespace the test creates (issues 2 and 16).

usage: test_stack.py MXGATE SCENARIO [--cores N] [--fault SPEC] [--v6]

--v6 runs the scenario over IPv6: the port at fd00:6d78::2/64 (after
DAD), the kernel at fd00:6d78::1, the same checks.

Scenarios:
  echo50     50 concurrent connections each send and receive 1 MiB through
             the echo service, byte-exact
  seq2000    2,000 sequential short connections; afterwards the stack
             reports zero live TCBs once TIME_WAIT has expired
  active     the stack opens a connection to a kernel listener in the
             namespace and moves 1 MiB each way, verified by both ends
  synflood   100,000 SYNs (and on until the echo is over) from random
             sources while a kernel client completes a 1 MiB echo, sampled
             from the flood's start: the flood outlasts the echo, at least
             10 samples, half-open TCBs seen, cookies engage, memory stays
             bounded
  idlecpu    an idle mxgate uses under 5% of a CPU
  ptb        (IPv6) the client sits behind a kernel router whose link has
             MTU 1280 while it advertises MSS 1440: only the router's
             Packet Too Big lets the 1 MiB echo through
  shutdown   SIGTERM returns every mbuf (also asserted by every scenario)
"""

import argparse
import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
from mxgtest import GATEWAY_IP, KERNEL_IP, log  # noqa: E402

MIB = 1 << 20

GATEWAY_IP6 = "fd00:6d78::2"
KERNEL_IP6 = "fd00:6d78::1"
# The address the kernel clients connect to (GATEWAY_IP6 with --v6).
TARGET = GATEWAY_IP


def echo_roundtrip(seed, nbytes, port=7, chunk=65536):
    """Send nbytes of a pattern to echo, read them back, compare."""
    data = mxgtest.pattern(seed, nbytes)
    s = mxgtest.connect(TARGET, port, timeout=60)
    got = bytearray()
    err = []

    def reader():
        try:
            while len(got) < nbytes:
                b = s.recv(262144)
                if not b:
                    break
                got.extend(b)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for off in range(0, nbytes, chunk):
            s.sendall(data[off:off + chunk])
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        err.append(e)
    t.join(120)
    # After our FIN the echo side closes too: expect EOF.
    tail = b""
    if not err and not t.is_alive():
        try:
            s.settimeout(30)
            tail = s.recv(1)
        except OSError as e:
            err.append(e)
    s.close()
    if err:
        return "error: %s" % err[0]
    if bytes(got) != data:
        return "mismatch: got %d of %d bytes" % (len(got), nbytes)
    if tail:
        return "extra bytes after echo"
    return None


def scenario_echo50(gw, res, n=50):
    # a thread that never finishes leaves its sentinel: a failure
    results = ["never finished"] * n

    def one(i):
        try:
            results[i] = echo_roundtrip(1000 + i, MIB)
        except Exception as e:  # noqa: BLE001
            results[i] = "exception: %r" % e

    t0 = time.time()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.time() + 300
    for t in threads:
        t.join(max(0.1, deadline - time.time()))
    hung = [i for i, t in enumerate(threads) if t.is_alive()]
    res.check(not hung, "every echo thread finished (still running: %s)" %
              hung[:5])
    bad = [(i, r) for i, r in enumerate(results) if r]
    log("  %d connections x 1 MiB echoed in %.1f s" % (n, time.time() - t0))
    res.check(not bad, "%d concurrent 1 MiB echoes byte-exact (bad: %s)" %
              (n, bad[:3]))
    st = gw.wait_for(lambda t: t["svc_echo_bytes"] >= n * MIB, 5,
                     "echo byte count")["total"]
    res.check(st["svc_echo_bytes"] >= n * MIB,
              "echo service counted %d bytes" % st["svc_echo_bytes"])


def client_diag(s):
    """The kernel client's view of a stalled connection (TCP_INFO): its
    port (to find it in a pcap), whether our bytes were acknowledged
    (unacked), when data last came (last_data_recv) and its own
    retransmissions, so a time-out in CI explains itself."""
    try:
        port = s.getsockname()[1]
        f = struct.unpack("8B24I", s.getsockopt(socket.IPPROTO_TCP,
                                                 socket.TCP_INFO, 104))
    except OSError as e:
        return "no TCP_INFO: %s" % e
    return ("port %d state %d unacked %d retransmits %d total_retrans %d "
            "rto %d us rtt %d us last_data_recv %d ms last_ack_recv %d ms" %
            (port, f[0], f[12], f[2], f[31], f[8], f[23], f[19], f[20]))


def short_conns(first, count, bad_box):
    """count sequential short echo connections; failures into bad_box."""
    for i in range(first, first + count):
        s = None
        try:
            s = mxgtest.connect(TARGET, 7, timeout=20)
            msg = b"hello %d\n" % i
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                b = s.recv(100)
                if not b:
                    break
                got += b
            if got != msg:
                bad_box.append(i)
        except OSError as e:
            bad_box.append(i)
            if len(bad_box) < 5:
                log("  conn %d: %s (%s)" % (i, e, client_diag(s) if s
                                            else "no connection"))
        finally:
            if s:
                s.close()


def scenario_seq2000(gw, res, n=2000, lanes=1):
    """n short connections, one after another in each of `lanes` lanes
    (with loss, a lost SYN costs the kernel client a 1 s retransmission,
    so the fault variants run 8 lanes of 250 to stay within CI time)."""
    bad = []
    t0 = time.time()
    per = n // lanes
    ts = [threading.Thread(target=short_conns, args=(k * per, per, bad))
          for k in range(lanes)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    log("  %d sequential connections in %.1f s" % (n, time.time() - t0))
    if bad:
        t = gw.stats()["total"]
        log("  gateway: " + ", ".join("%s %s" % (k, t[k]) for k in (
            "live_tcbs", "tcp_accepted", "tcp_closed", "tcp_retransmits",
            "tcp_timeouts", "tcp_seg_in", "tcp_seg_out", "fault_dropped")
            if k in t))
    res.check(not bad, "%d sequential short connections (%d lane(s)) all "
              "echoed (bad %d)" % (n, lanes, len(bad)))
    # The stats file is rewritten every 100 ms: wait for a snapshot taken
    # after the last connection (accepted >= n), then for the tables to
    # drain.
    st = gw.wait_for(lambda t: t["tcp_accepted"] >= n - len(bad) and
                     t["live_tcbs"] == 0 and t["timewait"] == 0,
                     60, "zero live TCBs after TIME_WAIT")
    t = st["total"]
    res.check(t["live_tcbs"] == 0 and t["timewait"] == 0,
              "zero live control blocks and TIME_WAIT entries once "
              "TIME_WAIT expired (accepted %d, closed %d)" %
              (t["tcp_accepted"], t["tcp_closed"]))
    res.check(t["tcp_accepted"] >= n, "stack accepted %d connections" %
              t["tcp_accepted"])


class KernelEcho(threading.Thread):
    """A kernel TCP echo server in the namespace that verifies nothing
    itself but records how many bytes it echoed."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.ls = socket.socket(socket.AF_INET6)  # dual-stack
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.ls.bind(("::", port))  # tap may not be up yet
        self.ls.listen(16)
        self.echoed = 0
        self.conns = 0

    def run(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns += 1
            while True:
                b = c.recv(262144)
                if not b:
                    break
                c.sendall(b)
                self.echoed += len(b)
            c.close()


def scenario_active(gw_factory, res):
    srv = KernelEcho(5001)
    srv.start()
    target = (["--connect6", "[%s]:5001" % KERNEL_IP6] if TARGET != GATEWAY_IP
              else ["--connect", "%s:5001" % KERNEL_IP])
    gw = gw_factory(target + [
                     "--connect-bytes", str(MIB), "--connect-count", "3",
                     "--exit-after-connect"])
    try:
        gw.proc.wait(180)
    except Exception:  # noqa: BLE001
        pass
    # exits by itself (--exit-after-connect): status 0 only when every
    # check passed and every mbuf came back
    st = gw.shutdown(res)
    out = gw.output()
    log(out.strip())
    res.check("3 ok, 0 failed, 3145728 bytes verified" in out,
              "stack verified 3 x 1 MiB echoed back by the kernel")
    res.check(srv.echoed == 3 * MIB and srv.conns == 3,
              "kernel listener received and echoed %d bytes on %d conns" %
              (srv.echoed, srv.conns))
    if st:
        res.check(st["total"]["tcp_connected"] >= 3,
                  "stack counted %d active opens" %
                  st["total"]["tcp_connected"])
    srv.ls.close()


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def syn_flood(count, stop, sent_box, until=None):
    """Raw SYNs from random sources in 198.19.0.0/16 (inside
    198.18.0.0/15, routed via the gateway so nobody answers them): at
    least `count`, and on until the event `until` is set (the legitimate
    echo is over), 120 s at most."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    rnd = random.Random(42)
    dst = socket.inet_aton(GATEWAY_IP)
    sent = 0
    t_end = time.time() + 120
    while (sent < count or (until is not None and not until.is_set())) \
            and not stop.is_set() and time.time() < t_end:
        src = socket.inet_aton("198.19.%d.%d" % (rnd.randrange(256),
                                                 rnd.randrange(1, 255)))
        sport = rnd.randrange(1024, 65535)
        seq = rnd.getrandbits(32)
        tcp = struct.pack("!HHIIBBHHH", sport, 7, seq, 0, 5 << 4, 0x02,
                          65535, 0, 0)
        ph = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(ph + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp),
                         rnd.getrandbits(16), 0, 64, 6, 0, src, dst)
        try:
            s.sendto(ip + tcp, (GATEWAY_IP, 0))
            sent += 1
        except OSError:
            time.sleep(0.001)
    s.close()
    sent_box.append(sent)


class FloodSampler(threading.Thread):
    """Samples the gateway's stats file (rewritten every 100 ms) from the
    start of the flood to its end: peak half-open and live TCBs, lowest
    free mbufs, how many samples, how many saw half-open TCBs."""

    def __init__(self, gw, flood):
        super().__init__(daemon=True)
        self.gw = gw
        self.flood = flood
        self.samples = 0
        self.halfopen_samples = 0
        self.max_syn = 0
        self.max_live = 0
        self.min_avail = None

    def run(self):
        while True:
            alive = self.flood.is_alive()
            st = self.gw.stats()
            t = st["total"]
            self.samples += 1
            if t["syn_rcvd"] > 0:
                self.halfopen_samples += 1
            self.max_syn = max(self.max_syn, t["syn_rcvd"])
            self.max_live = max(self.max_live, t["live_tcbs"])
            a = st["mbufs"]["available"]
            self.min_avail = a if self.min_avail is None else \
                min(self.min_avail, a)
            if not alive:
                return
            time.sleep(0.1)


MIN_SAMPLES = 10
def syn_flood6(count, stop, sent_box, until=None):
    """Raw IPv6 SYNs from random sources of the test /48 fd00:6d78::/48
    outside our /64 (the stack routes its SYN-ACKs to them via the kernel,
    which does not forward): at least `count`, and on until the event
    `until` is set (the legitimate echo is over), 120 s at most."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rnd = random.Random(42)
    dst = socket.inet_pton(socket.AF_INET6, GATEWAY_IP6)
    sent = 0
    t_end = time.time() + 120
    while (sent < count or (until is not None and not until.is_set())) \
            and not stop.is_set() and time.time() < t_end:
        src = socket.inet_pton(socket.AF_INET6, "fd00:6d78:%x::%x:%x" % (
            rnd.randrange(1, 65536), rnd.randrange(65536),
            rnd.randrange(1, 65536)))
        sport = rnd.randrange(1024, 65535)
        tcp = struct.pack("!HHIIBBHHH", sport, 7, rnd.getrandbits(32), 0,
                          5 << 4, 0x02, 65535, 0, 0)
        ph = src + dst + struct.pack("!I3xB", len(tcp), 6)
        tcp = tcp[:16] + struct.pack("!H", csum(ph + tcp)) + tcp[18:]
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, src, dst)
        try:
            s.sendto(ip + tcp, (GATEWAY_IP6, 0))
            sent += 1
        except OSError:
            time.sleep(0.001)
    s.close()
    sent_box.append(sent)


def scenario_ptb(gw, res):
    """A client namespace behind a kernel router (the test namespace,
    forwarding on) whose link towards the client has MTU 1280. The client
    advertises MSS 1440 (route advmss), so the stack's full segments (1500
    bytes) only pass once the router's Packet Too Big lowered its MSS."""
    peer = "mxgt-ptbc-%d" % os.getpid()
    mxgtest.sh("ip", "netns", "add", peer)
    try:
        mxgtest.sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        mxgtest.sh("ip", "link", "add", "mxgv0", "mtu", "1280", "type",
                   "veth", "peer", "name", "mxgv1", "netns", peer)
        mxgtest.sh("ip", "-6", "addr", "add", "fd00:6d78:2::1/64", "dev",
                   "mxgv0", "nodad")
        mxgtest.sh("ip", "link", "set", "mxgv0", "up")
        ns = ["ip", "netns", "exec", peer]
        mxgtest.sh(*ns, "ip", "link", "set", "lo", "up")
        mxgtest.sh(*ns, "ip", "-6", "addr", "add", "fd00:6d78:2::2/64",
                   "dev", "mxgv1", "nodad")
        mxgtest.sh(*ns, "ip", "link", "set", "mxgv1", "up")
        mxgtest.sh(*ns, "ip", "-6", "route", "add", "default", "via",
                   "fd00:6d78:2::1", "mtu", "1280", "advmss", "1440")
        # The echo service writes back what one read returns. Read while
        # writing, the echo can follow the client's own 1280-byte segments
        # and never send a full 1440-byte one (which only the router
        # refuses): whether a Packet Too Big came then depended on timing
        # (under ASan it once did not). So the client first writes
        # without reading until the whole path is backed up (its small
        # send buffer stops draining: the stack's send buffer is full),
        # and only then reads: the stack resumes from a full buffer with
        # full-size segments, and the router must answer Packet Too Big.
        client = (
            "import socket,sys,threading,time\n"
            "d=bytes((i*7+i//251)&255 for i in range(%d))\n"
            "s=socket.socket(socket.AF_INET6,socket.SOCK_STREAM)\n"
            "s.setsockopt(socket.SOL_SOCKET,socket.SO_SNDBUF,32768)\n"
            "s.settimeout(60);s.connect(('%s',7))\n"
            "g=bytearray();sent=[0]\n"
            "def w():\n"
            "  for o in range(0,len(d),4096):\n"
            "    s.sendall(d[o:o+4096]);sent[0]=o+4096\n"
            "t=threading.Thread(target=w);t.start()\n"
            "last=-1;end=time.time()+30\n"
            "while time.time()<end and sent[0]<len(d):\n"
            "  if sent[0]==last: break\n"
            "  last=sent[0];time.sleep(0.5)\n"
            "print('stalled at',sent[0],file=sys.stderr)\n"
            "while len(g)<len(d):\n"
            "  b=s.recv(65536)\n"
            "  if not b: break\n"
            "  g.extend(b)\n"
            "t.join(90)\n"
            "print('ok' if bytes(g)==d else 'bad %%d' %% len(g))\n"
            % (MIB, GATEWAY_IP6))
        r = mxgtest.subprocess.run(ns + [sys.executable, "-c", client],
                                   capture_output=True, text=True,
                                   timeout=150)
        log("  client behind the 1280-byte link: %s %s" %
            (r.stdout.strip(), r.stderr.strip()[-300:]))
        res.check(r.stdout.strip() == "ok",
                  "1 MiB echoed byte-exact across the 1280-byte link")
        t = gw.wait_for(lambda t: t["icmp6_ptb"] > 0, 5,
                        "a Packet Too Big")["total"]
        res.check(t["icmp6_ptb"] > 0, "the stack took %d Packet Too Big "
                  "message(s) from the kernel router" % t["icmp6_ptb"])
    finally:
        mxgtest.sh("ip", "link", "del", "mxgv0", check=False)
        mxgtest.sh("ip", "netns", "del", peer, check=False)


def scenario_synflood(gw, res, n=100000):
    # Routes: 198.19.0.0/16 (the fake sources) is "behind" this host;
    # SYN-ACKs to them reach the kernel, which does not forward them.
    stop = threading.Event()
    echo_done = threading.Event()
    sent_box = []
    flood = threading.Thread(
        target=syn_flood6 if TARGET != GATEWAY_IP else syn_flood,
        args=(n, stop, sent_box, echo_done))
    flood.start()
    sampler = FloodSampler(gw, flood)
    sampler.start()
    time.sleep(0.5)  # let the backlog fill
    t0 = time.time()
    err = echo_roundtrip(7777, MIB)
    flood_alive = flood.is_alive()
    echo_done.set()
    log("  legitimate 1 MiB echo during flood: %s in %.1f s" %
        (err or "ok", time.time() - t0))
    flood.join(180)
    sampler.join(30)
    stop.set()
    time.sleep(0.5)
    st = gw.stats()
    t = st["total"]
    max_syn, max_live = sampler.max_syn, sampler.max_live
    min_avail = sampler.min_avail
    log("  SYNs sent %s; cookies sent %d; %d samples (%d with half-open "
        "TCBs); syn_rcvd max %d; live max %d; mbufs avail min %s of %d" %
        (sent_box[:1], t["syncookies_sent"], sampler.samples,
         sampler.halfopen_samples, max_syn, max_live, min_avail,
         st["mbufs"]["size"]))
    res.check(sent_box and sent_box[0] >= n,
              "flood sent %s SYNs (>= %d)" % (sent_box[:1], n))
    res.check(flood_alive, "the flood was still running when the "
              "legitimate echo ended")
    res.check(sampler.samples >= MIN_SAMPLES and
              sampler.halfopen_samples > 0 and max_syn > 0,
              "sampled the flood from its start: %d samples (>= %d), %d "
              "of them with half-open TCBs (peak %d)" %
              (sampler.samples, MIN_SAMPLES, sampler.halfopen_samples,
               max_syn))
    res.check(err is None, "kernel client's 1 MiB echo succeeded during "
              "the flood (%s)" % err)
    res.check(t["syncookies_sent"] > 0, "SYN cookies engaged (%d sent)" %
              t["syncookies_sent"])
    backlog = 256
    res.check(max_syn <= backlog * st["cores"],
              "half-open TCBs stayed within the backlog (max %d)" % max_syn)
    res.check(max_live <= backlog * st["cores"] + 64,
              "live TCBs bounded during flood (max %d)" % max_live)
    res.check(min_avail is not None and
              min_avail > st["mbufs"]["size"] // 4,
              "mbuf pool never ran dry (min available %d)" % min_avail)


def scenario_idlecpu(gw, res):
    time.sleep(1.0)
    pid = gw.proc.pid
    hz = os.sysconf("SC_CLK_TCK")

    def cpu():
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / hz

    c0, t0 = cpu(), time.time()
    time.sleep(5.0)
    c1, t1 = cpu(), time.time()
    pct = 100.0 * (c1 - c0) / (t1 - t0)
    log("  idle mxgate CPU: %.2f%% of one CPU over %.1f s" % (pct, t1 - t0))
    res.check(pct < 5.0, "idle CPU %.2f%% < 5%%" % pct)
    # net_tap's per-frame signal is off and each idle core waits on its
    # own queue's descriptor (dataplane/port.c): the mapping held.
    out = gw.output()
    res.check("receive without per-frame signals" in out and
              "no mapping" not in out,
              "net_tap armed, every queue mapped to its descriptor: %s" %
              [ln for ln in out.splitlines() if "net_tap:" in ln])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mxgate")
    ap.add_argument("scenario")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--fault", default="")
    ap.add_argument("--v6", action="store_true")
    a = ap.parse_args()

    global TARGET
    name = "stack-%s-c%d%s%s" % (a.scenario, a.cores,
                                  "-fault" if a.fault else "",
                                  "-v6" if a.v6 else "")
    res = mxgtest.Result(name)
    extra = ["--cores", str(a.cores), "--timewait-ms", "2000",
             "--no-gateway", "--echo-port", "7", "--discard-port", "9"]
    if a.fault:
        extra += ["--fault", a.fault]
    if a.scenario == "synflood":
        extra += ["--syn-backlog", "256", "--gateway", KERNEL_IP]
    if a.v6:
        TARGET = GATEWAY_IP6
        extra += ["--ip6", GATEWAY_IP6 + "/64", "--gateway6", KERNEL_IP6]

    with mxgtest.Netns(a.scenario[:6], ipv6=a.v6):
        gw = None

        def factory(more):
            nonlocal gw
            gw = mxgtest.Mxgate(a.mxgate, extra + more)
            gw.start()
            if a.v6:
                mxgtest.sh("sysctl", "-qw",
                           "net.ipv6.conf.mxgt0.accept_ra=0")
                mxgtest.sh("ip", "-6", "addr", "add", KERNEL_IP6 + "/64",
                           "dev", "mxgt0", "nodad")
                # The stack's DAD: one solicitation, one second.
                gw.wait_for(lambda t: t["nd_solicits_out"] >= 2, 10,
                            "the stack's DAD probes")
                time.sleep(1.2)
            return gw

        try:
            if a.scenario == "active":
                scenario_active(factory, res)
            else:
                factory([])
                fn = globals()["scenario_" + a.scenario]
                if a.scenario == "seq2000" and a.fault:
                    fn(gw, res, lanes=8)
                else:
                    fn(gw, res)
            st = gw.shutdown(res) if a.scenario != "active" else \
                mxgtest.read_stats(gw.stats_file)
            if st and a.fault:
                t = st["total"]
                res.check(t["fault_dropped"] > 0,
                          "fault injector active (dropped %d, dup %d, "
                          "reordered %d, retransmits %d)" %
                          (t["fault_dropped"], t["fault_duplicated"],
                           t["fault_reordered"], t["tcp_retransmits"]))
            if st and a.cores > 1 and a.scenario in ("echo50", "seq2000",
                                                    "synflood"):
                t = st["total"]
                res.check(t["steered_out"] + t["steered_in"] > 0,
                          "software steering moved frames between cores "
                          "(out %d, in %d)" % (t["steered_out"],
                                               t["steered_in"]))
        except Exception as e:  # noqa: BLE001
            res.check(False, "exception: %r" % e)
            if gw:
                log(gw.output()[-3000:])
        finally:
            if gw:
                gw.kill()
    res.finish()


if __name__ == "__main__":
    main()
