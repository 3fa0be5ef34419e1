#!/usr/bin/env python3
"""SMTP over IPv6 end to end (issue 16, gateway part): real clients on the
kernel side of the tap (fd00:6d78::1 and more addresses of its /64) talk
to mxgate at fd00:6d78::2 (stack.address6), whose backend is Postfix
smtp-sink on 198.18.0.1:2525, in a network namespace the test creates.

usage: test_ipv6.py MXGATE [--cores N] [--mxgatectl PATH]

Checks, in one gateway run:
  backend6 a pool whose server is fd00:6d78::1 (smtp-sink on IPv6): the
           gateway's backend connection goes over IPv6 (the sink sees
           fd00:6d78::2), the message arrives byte for byte.
  xclient  a second pool, Postfix smtpd with XCLIENT, learns the client:
           its Received header names [IPv6:fd00:6d78::1].
  deliver  Python smtplib over IPv6 delivers; the body arrives byte for
           byte at the sink; the gateway logs the client in RFC 5952 form
           ("client=[fd00:6d78::1]:PORT").
  block    mxgatectl block fd00:6d78::/64 refuses the next IPv6 client
           with 554 5.7.1 in place of the greeting; unblock lets it in.
  limit    max_connections_per_ip = 2 counts the client's /64: two
           connections from two addresses of the /64 are greeted, a third
           from a third address gets 421 4.7.0 (rotating addresses does
           not escape the limit); an IPv4 client is not counted with them.
  family   a listener with address = fd00:6d78::2 (port 2600) takes
           smtplib's message over IPv6 (byte for byte at the sink) and
           refuses 198.18.0.2:2600 (RST: connection refused); one with
           address = 198.18.0.2 (port 2601) greets over IPv4 and refuses
           [fd00:6d78::2]:2601.
  swap     a reload swaps the two addresses: port 2600 then greets over
           IPv4 and refuses IPv6, port 2601 the reverse (the listener's
           family follows the snapshot without a restart).
  mld      an MLDv2 general query sent on the tap (hop limit 1, Router
           Alert, link-local source) is answered on the wire within 3 s
           by an MLDv2 report to ff02::16 with a valid checksum naming
           ff02::1:ff00:2, the solicited-node group of fd00:6d78::2.
"""

import argparse
import contextlib
import os
import re
import smtplib
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
import peers  # noqa: E402
from mxgtest import GATEWAY_IP, KERNEL_IP, log  # noqa: E402
from test_stack import csum  # noqa: E402
from test_policy import (BACKEND_PORT, TAP, ctl, listener,  # noqa: E402
                         make_sink, start_gateway)

GW6 = "fd00:6d78::2"
K6 = "fd00:6d78::1"
PF_PORT = 2526
V6_PORT = 2527
V6ONLY_PORT = 2600
V4ONLY_PORT = 2601
HOSTS6 = ["fd00:6d78::a1", "fd00:6d78::a2", "fd00:6d78::a3"]


def greeting6(src, timeout=10.0):
    """Connects from src to the gateway's port 25 over IPv6; returns the
    socket and the first reply line (or None and why)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    try:
        s.connect((GW6, 25))
        f = s.makefile("rb")
        ln = f.readline(4096)
    except OSError as e:
        s.close()
        return None, "connect/read: %r" % e
    return s, ln.decode("latin-1").rstrip("\r\n") or "(closed)"


def wait_v6(res, timeout=20.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        s, g = greeting6(K6, timeout=2)
        if s:
            s.close()
            if g.startswith("220"):
                res.check(True, "gateway greets over IPv6 (%s)" % g)
                return
        last = g
        time.sleep(0.3)
    res.check(False, "gateway greets over IPv6 (%s)" % last)


def wait_captured(sink, marker, timeout=10.0):
    """The sink's capture files that contain marker, waiting up to
    timeout seconds for the first."""
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline and not got:
        got = [p for p in sink.captured() if marker in open(p, "rb").read()]
        time.sleep(0.1)
    return got


def scenario_deliver(a, gw, sink, tmp, res):
    body = ("Subject: ipv6 %d\r\nMessage-ID: <v6.%d@client.example>\r\n\r\n"
            "line one\r\n.leading dot\r\n%s\r\n" %
            (os.getpid(), os.getpid(), "x" * 900))
    with smtplib.SMTP(GW6, 25, source_address=(K6, 0), timeout=20) as c:
        c.ehlo("client.example")
        refused = c.sendmail("s@client.example", ["u@ours.example"], body)
    res.check(refused == {}, "smtplib over IPv6: the message is accepted")
    got = wait_captured(sink, b"<v6.%d@client.example>" % os.getpid())
    res.check(len(got) == 1, "the sink captured it (%d)" % len(got))
    if got:
        data = open(got[0], "rb").read()
        # smtp-sink -d writes lines with LF endings, dot-stuffing undone,
        # after its own X-*/Received lines, and one LF at the end
        plain = body.replace("\r\n", "\n").encode()
        res.check(data.endswith(plain + b"\n"),
                  "the message arrived line for line, byte for byte (%d bytes captured, "
                  "ends with the %d sent)" % (len(data), len(plain)))
    logtxt = open(os.path.join(tmp, "mxgate.log")).read()
    res.check("client=[%s]:" % K6 in logtxt,
              "the gateway logs the client as [%s]:port" % K6)


def refused(family, addr, port, res, what):
    """Expects a TCP connect to addr:port to be refused (RST to the SYN)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((addr, port))
        res.check(False, "%s: connect succeeded, expected refusal" % what)
    except ConnectionRefusedError:
        res.check(True, "%s: connection refused" % what)
    except OSError as e:
        res.check(False, "%s: expected refusal, got %r" % (what, e))
    finally:
        s.close()


def scenario_family(sink, res):
    """Listeners that name an address serve only that address."""
    body = ("Subject: v6only %d\r\nMessage-ID: <v6only.%d@client.example>"
            "\r\n\r\nonly over IPv6\r\n" % (os.getpid(), os.getpid()))
    with smtplib.SMTP(GW6, V6ONLY_PORT, source_address=(K6, 0),
                      timeout=20) as c:
        c.ehlo("client.example")
        rej = c.sendmail("s@client.example", ["u@ours.example"], body)
    res.check(rej == {}, "smtplib to [%s]:%d (v6-only listener): accepted"
              % (GW6, V6ONLY_PORT))
    got = wait_captured(sink, b"<v6only.%d@client.example>" % os.getpid())
    res.check(len(got) == 1 and open(got[0], "rb").read().endswith(
        body.replace("\r\n", "\n").encode() + b"\n"),
        "the v6-only listener's message arrived byte for byte (%d)"
        % len(got))
    refused(socket.AF_INET, GATEWAY_IP, V6ONLY_PORT, res,
            "IPv4 %s:%d on the v6-only listener" % (GATEWAY_IP, V6ONLY_PORT))
    with smtplib.SMTP(GATEWAY_IP, V4ONLY_PORT, timeout=20) as c:
        code, _ = c.ehlo("client.example")
    res.check(code == 250, "IPv4 %s:%d (v4-only listener) answers EHLO (%d)"
              % (GATEWAY_IP, V4ONLY_PORT, code))
    refused(socket.AF_INET6, GW6, V4ONLY_PORT, res,
            "IPv6 [%s]:%d on the v4-only listener" % (GW6, V4ONLY_PORT))


def greets(family, addr, port):
    """True when a connection to addr:port gets a 220 greeting."""
    try:
        with socket.create_connection((addr, port), timeout=5) as c:
            return c.makefile("rb").readline(512).startswith(b"220")
    except OSError:
        return False


def scenario_swap(a, tmp, res):
    """Reload with the v6-only and v4-only listeners' addresses swapped."""
    path = os.path.join(tmp, "gw.conf")
    text = open(path).read()
    text = re.sub(r'(name = "v6only";[^}]*address = )"[^"]*"',
                  r'\1"%s"' % GATEWAY_IP, text)
    text = re.sub(r'(name = "v4only";[^}]*address = )"[^"]*"',
                  r'\1"%s"' % GW6, text)
    with open(path, "w") as f:
        f.write(text)
    rc, out = ctl(a, "reload")
    res.check(rc == 0, "reload with the addresses swapped (%d %s)" % (rc, out))
    want = [(socket.AF_INET, GATEWAY_IP, V6ONLY_PORT, True),
            (socket.AF_INET6, GW6, V6ONLY_PORT, False),
            (socket.AF_INET6, GW6, V4ONLY_PORT, True),
            (socket.AF_INET, GATEWAY_IP, V4ONLY_PORT, False)]
    deadline = time.time() + 10
    got = None
    while time.time() < deadline:
        got = [greets(f, ad, p) for f, ad, p, _ in want]
        if got == [w for _, _, _, w in want]:
            break
        time.sleep(0.3)
    res.check(got == [w for _, _, _, w in want],
              "after the reload: %s:%d greets, [%s]:%d refused, [%s]:%d "
              "greets, %s:%d refused (got %s)" %
              (GATEWAY_IP, V6ONLY_PORT, GW6, V6ONLY_PORT, GW6, V4ONLY_PORT,
               GATEWAY_IP, V4ONLY_PORT, got))


def icmp6_sum(src, dst, msg):
    """The ICMPv6 checksum of msg (checksum field zero) from src to dst
    (16-byte addresses)."""
    return csum(src + dst + struct.pack("!I3xB", len(msg), 58) + msg)


def scenario_mld(res):
    """An MLDv2 general query on the link gets mxgate's report."""
    group = socket.inet_pton(socket.AF_INET6, "ff02::1:ff00:2")
    src = socket.inet_pton(socket.AF_INET6, "fe80::6d:1")
    dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
    query = bytearray(struct.pack("!BBHHH16sBBH", 130, 0, 0, 100, 0,
                                  b"\0" * 16, 2, 125, 0))
    query[2:4] = struct.pack("!H", icmp6_sum(src, dst, bytes(query)))
    hbh = bytes([58, 0, 5, 2, 0, 0, 1, 0])
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(hbh) + len(query), 0, 1,
                      src, dst)
    eth = bytes.fromhex("333300000001") + bytes.fromhex("02006d000001") + \
        struct.pack("!H", 0x86dd)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
    s.bind((TAP, 0))
    s.settimeout(0.5)
    s.send(eth + ip6 + hbh + bytes(query))
    seen, ok = 0, False
    deadline = time.time() + 3
    while time.time() < deadline and not ok:
        try:
            f = s.recv(2048)
        except socket.timeout:
            continue
        if len(f) < 14 + 40 + 8 + 8 or f[14 + 6] != 0 or \
                f[14 + 24:14 + 40] != socket.inet_pton(socket.AF_INET6,
                                                       "ff02::16"):
            continue
        hl = (f[14 + 40 + 1] + 1) * 8
        msg = f[14 + 40 + hl:14 + 40 + struct.unpack("!H", f[18:20])[0]]
        if f[14 + 40] != 58 or not msg or msg[0] != 143:
            continue
        seen += 1
        n = struct.unpack("!H", msg[6:8])[0]
        groups = [msg[8 + 20 * i + 4:8 + 20 * i + 20] for i in range(n)]
        zeroed = msg[:2] + b"\0\0" + msg[4:]
        ok = group in groups and f[14 + 7] == 1 and \
            icmp6_sum(f[14 + 8:14 + 24], f[14 + 24:14 + 40], zeroed) == \
            struct.unpack("!H", msg[2:4])[0]
    s.close()
    res.check(ok, "an MLDv2 query is answered by a report naming "
              "ff02::1:ff00:2 (hop limit 1, checksum valid; %d reports "
              "seen)" % seen)


def scenario_backend6(sink6, res):
    """A pool whose server is an IPv6 address: the gateway opens its
    backend connection over IPv6 (smtp-sink on [fd00:6d78::1]:2527 sees
    the gateway's fd00:6d78::2 as its client)."""
    body = "Subject: backend v6\r\nMessage-ID: <b6.%d@client.example>\r\n" \
        "\r\nto an IPv6 backend\r\n" % os.getpid()
    with smtplib.SMTP(GW6, 25, source_address=(K6, 0), timeout=30) as c:
        c.ehlo("client6.example")
        refused = c.sendmail("s@client.example", ["u@v6.example"], body)
    res.check(refused == {}, "pool with an IPv6 server: accepted")
    deadline = time.time() + 10
    got = []
    while time.time() < deadline and not got:
        got = sink6.captured()
        time.sleep(0.1)
    res.check(len(got) == 1, "the IPv6 sink captured it (%d)" % len(got))
    if got:
        data = open(got[0], "rb").read()
        hs = peers.read_headers(got[0])
        ca = peers.header_values(hs, "X-Client-Addr")
        res.check(ca and ca[0].strip().lower() in (GW6, "ipv6:" + GW6),
                  "the backend connection came over IPv6 from %s (%s)" %
                  (GW6, ca))
        res.check(data.endswith(body.replace("\r\n", "\n").encode() +
                                b"\n"),
                  "the message arrived byte for byte at the IPv6 sink")


def scenario_xclient(a, pf, res):
    """The pool "pf" (Postfix smtpd, XCLIENT authorised for the gateway)
    learns the IPv6 client: Postfix's Received names [IPv6:fd00:6d78::1]."""
    body = "Subject: xclient v6\r\nMessage-ID: <xc6.%d@client.example>\r\n" \
        "\r\nhello over IPv6\r\n" % os.getpid()
    with smtplib.SMTP(GW6, 25, source_address=(K6, 0), timeout=30) as c:
        c.ehlo("client6.example")
        refused = c.sendmail("s@client.example", ["u@xc.example"], body)
    res.check(refused == {}, "XCLIENT pool: accepted over IPv6")
    files = pf.wait_delivered(1, 30)
    res.check(len(files) == 1, "Postfix delivered it (%d)" % len(files))
    if files:
        rec = peers.header_values(peers.read_headers(files[0]), "Received")
        res.check(rec and "[IPv6:%s]" % K6 in rec[0],
                  "Postfix's Received names the IPv6 client via XCLIENT "
                  "ADDR=IPv6: (%s)" % (rec[:1],))


def scenario_block(a, gw, res):
    rc, out = ctl(a, "block", "fd00:6d78::/64", "--expire", "60")
    res.check(rc == 0, "mxgatectl block fd00:6d78::/64 (%d %s)" % (rc, out))
    s, g = greeting6(HOSTS6[0])
    res.check(g.startswith("554") and "5.7.1" in g,
              "a client of the blocked /64 gets 554 5.7.1 (%s)" % g)
    if s:
        s.close()
    rc, out = ctl(a, "unblock", "fd00:6d78::/64")
    res.check(rc == 0, "mxgatectl unblock fd00:6d78::/64 (%d %s)" %
              (rc, out))
    s, g = greeting6(HOSTS6[0])
    res.check(g.startswith("220"), "after unblock it is greeted (%s)" % g)
    if s:
        s.close()
    rc, out = ctl(a, "block", "2001:db8::1")
    res.check(rc == 0, "mxgatectl block 2001:db8::1 (%d %s)" % (rc, out))


def scenario_limit(a, gw, res):
    held = []
    try:
        for src in HOSTS6[:2]:
            s, g = greeting6(src)
            res.check(g.startswith("220"),
                      "%s: greeted, within the /64's 2 (%s)" % (src, g))
            if s:
                held.append(s)
        s, g = greeting6(HOSTS6[2])
        res.check(g.startswith("421") and "4.7.0" in g,
                  "%s: a third address of the same /64 gets 421 4.7.0 "
                  "(%s)" % (HOSTS6[2], g))
        if s:
            s.close()
        c = socket.create_connection((GATEWAY_IP, 25), timeout=10)
        g4 = c.makefile("rb").readline().decode("latin-1").strip()
        c.close()
        res.check(g4.startswith("220"),
                  "an IPv4 client is counted apart (%s)" % g4)
    finally:
        for s in held:
            with contextlib.suppress(OSError):
                s.sendall(b"QUIT\r\n")
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mxgate")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--mxgatectl", required=True)
    a = ap.parse_args()
    res = mxgtest.Result("ipv6")
    tmp = tempfile.mkdtemp(prefix="mxgt-ipv6-")
    os.chmod(tmp, 0o755)
    with mxgtest.Netns("ipv6", ipv6=True):
        gw = None
        try:
            policy = {"accepted_domains": ["ours.example", "xc.example",
                                           "v6.example"]}
            lst = [listener("mx", 25, max_connections_per_ip=2),
                   listener("v6only", V6ONLY_PORT, address=GW6),
                   listener("v4only", V4ONLY_PORT, address=GATEWAY_IP)]
            import test_policy
            orig = test_policy.write_config

            def with_v6(path, top):
                top["stack"]["address6"] = GW6 + "/64"
                top["pools"].append({
                    "name": "v6", "type": "smtp", "domains": ["v6.example"],
                    "servers": [{"address": K6, "port": V6_PORT}]})
                top["pools"].append({
                    "name": "pf", "type": "smtp", "client_info": "xclient",
                    "domains": ["xc.example"],
                    "servers": [{"address": KERNEL_IP, "port": PF_PORT}]})
                return orig(path, top)
            test_policy.write_config = with_v6
            gw = start_gateway(a, tmp, res, lst, policy)
            mxgtest.sh("sysctl", "-qw",
                       "net.ipv6.conf.%s.accept_ra=0" % TAP)
            for h in [K6] + HOSTS6:
                mxgtest.sh("ip", "-6", "addr", "add", h + "/64", "dev", TAP,
                           "nodad")
            gw.wait_for(lambda t: t["nd_solicits_out"] >= 2, 10,
                        "the stack's DAD probes")
            # Postfix refuses XCLIENT ADDR=IPv6:... (and drops the
            # connection) unless inet_protocols includes ipv6
            pf = peers.Postfix(listen="%s:%d" % (KERNEL_IP, PF_PORT),
                               xclient_hosts=GATEWAY_IP,
                               main_extra={"inet_protocols": "all"})
            sink6 = peers.SmtpSink(K6, V6_PORT,
                                   capture_dir=os.path.join(tmp, "capture6"),
                                   out_path=os.path.join(tmp, "sink6.out"))
            with make_sink(tmp) as sink, pf, sink6:
                wait_v6(res)
                scenario_backend6(sink6, res)
                scenario_deliver(a, gw, sink, tmp, res)
                scenario_xclient(a, pf, res)
                scenario_block(a, gw, res)
                scenario_limit(a, gw, res)
                scenario_family(sink, res)
                scenario_mld(res)
                scenario_swap(a, tmp, res)
            gw.shutdown(res)
            gw = None
        except Exception as e:  # noqa: BLE001
            res.check(False, "exception: %r" % e)
        finally:
            if gw is not None:
                gw.kill()
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
