#!/usr/bin/env python3
"""Connection and relay policy (issue 6) end to end: real SMTP clients bound
to chosen source addresses of the tap's kernel side talk to mxgate, whose
backend is Postfix smtp-sink, in a network namespace the test creates
(gateway 198.18.0.2, kernel side 198.18.0.1 plus extra 198.18.0.x
addresses, backend on 198.18.0.1:2525). Every refusal is checked by its
exact reply code and enhanced status code, every acceptance by what
reached the backend, and each limit exactly at its configured value.

usage: test_policy.py MXGATE SCENARIO [--cores N] [--mxgatectl PATH]
                      [--flood-tool PATH]

Scenarios:
  acl        global deny with an allow exception, a listener deny with an
             allow exception, listener networks, deny_action reply (554
             5.7.1 in place of the greeting, and no mail accepted after
             it) and close (no greeting at all); a listener's own
             deny_action; a block pushed with mxgatectl (when the gateway
             serves it); then the same with policy.deny_action = "close".
             Allowed clients deliver; nothing from a denied one arrives.
  relay      accepted domains (exact, ".subdomain", authoritative /
             internal / external relay), relaying refused 554 5.7.1 from
             outside relay_networks and allowed from inside (boundary
             addresses of the network), require_auth (530 5.7.0 on 587 and
             on an mx listener that asks for it), sender and recipient
             restrictions 550 5.7.1 (address, domain, .domain forms; the
             domain compared case-insensitively), a listener's own accept
             and reject lists; unknown users at an accepted domain are
             passed on to the backend.
  openrelay  an unauthenticated client outside the relay networks tries
             46 relay tricks in raw SMTP (percent hack, bang paths, source
             routes, several '@', quoted local parts, address literals,
             trailing dots, look-alike Unicode and punycode domains, ours
             as a label or suffix of theirs, ...): every one refused with a
             5xx and nothing reaches the backend (neither a message nor a
             RCPT command); a control recipient at the accepted domain is
             delivered.
  limits     max_connections (all cores), max_connections_per_ip (two
             addresses, independent), connection_rate_per_ip, rate_limits
             on connections / messages / recipients / sender_domain and
             ip24 (on two cores: clients placed on each core by their
             observed owner, the limits spread across both),
             max_messages_per_connection,
             max_recipients (452) and max_message_size (SIZE, 552): each
             passes exactly at its value and refuses one more.
  flood      200,000 complete TCP handshakes from 129,794 distinct
             spoofed sources of 198.18.0.0/15 (tools/handshake_flood.c)
             against a rate_limits rule keyed by IP with rate_table_size =
             4096: the table stays bounded and evicts, no flooding source
             is refused (none exceeded its rate), a legitimate client
             delivers before, during and after, and the rule still limits
             a client that exceeds it afterwards.
"""

import argparse
import contextlib
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
import peers  # noqa: E402
from mxgtest import GATEWAY_IP, KERNEL_IP, log  # noqa: E402
from test_gateway import gw_log, smtp_pool  # noqa: E402

BACKEND_PORT = 2525
TAP = "mxgt0"
OURS = "ours.example"
SENDER = "sender@client.example"
STARTED = []

# ---------------------------------------------------------------- config


class CfgList(list):
    """A libconfig list "( ... )" (mixed strings and groups), where a plain
    Python list of scalars is written as an array "[ ... ]"."""


def cfg_value(v, indent=0):
    pad = "  " * indent
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -2**31 <= v < 2**31 else "%dL" % v
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, dict):
        inner = "".join("%s  %s = %s;\n" % (pad, k, cfg_value(x, indent + 1))
                        for k, x in v.items())
        return "{\n%s%s}" % (inner, pad)
    if isinstance(v, list):
        if isinstance(v, CfgList) or (v and isinstance(v[0], dict)):
            return "(\n%s\n%s)" % (",\n".join(
                pad + "  " + cfg_value(x, indent + 1) for x in v), pad)
        return "[ %s ]" % ", ".join(cfg_value(x, indent) for x in v)
    raise TypeError(v)


def write_config(path, top):
    text = "# written by tests/integration/test_policy.py\n" + "".join(
        "%s = %s;\n" % (k, cfg_value(v)) for k, v in top.items())
    with open(path, "w") as f:
        f.write(text)
    return text


def listener(name, port, role="mx", **kw):
    d = {"name": name, "port": port, "role": role,
         "hostname": "gw.mxgt.test", "max_errors": 1000}
    d.update(kw)
    return d


def start_gateway(a, tmp, res, listeners, policy, gateway=None, tag="gw"):
    """Writes the configuration, checks it with --check-config, starts
    mxgate on it (admin socket in tmp) and returns it."""
    stack = {"port": "net_tap0,iface=%s" % TAP,
             "address": GATEWAY_IP + "/24", "cores": a.cores}
    if gateway:
        stack["gateway"] = gateway
    top = {"stack": stack, "listeners": listeners,
           "default_pool": "default",
           "pools": [smtp_pool("default", port=BACKEND_PORT)],
           "policy": policy,
           "log": {"file": os.path.join(tmp, "mxgate.log"),
                   "level": "info"}}
    path = os.path.join(tmp, "%s.conf" % tag)
    text = write_config(path, top)
    r = subprocess.run([a.mxgate, "--check-config", path],
                       capture_output=True, text=True, timeout=30)
    ok = r.returncode == 0
    res.check(ok, "mxgate --check-config accepts %s (%d %s)" %
              (os.path.basename(path), r.returncode,
               (r.stdout + r.stderr).strip()[-600:]))
    if not ok:
        log(text)
        raise RuntimeError("configuration refused")
    a.admin_sock = os.path.join(tmp, "admin-%s.sock" % tag)
    gw = mxgtest.Mxgate(a.mxgate, ["--config", path, "--admin-socket",
                                   a.admin_sock])
    STARTED.append(gw)
    gw.start()
    res.check(gw.stats().get("cores") == a.cores, "gateway runs %s "
              "dataplane core(s) (asked %d)" % (gw.stats().get("cores"),
                                                a.cores))
    return gw


def add_addrs(hosts):
    """Extra kernel-side addresses 198.18.0.<h>/24 on the tap."""
    ips = []
    for h in hosts:
        ip = "198.18.0.%d" % h
        mxgtest.sh("ip", "addr", "add", ip + "/24", "dev", TAP)
        ips.append(ip)
    return ips


def make_sink(tmp, verbose=False):
    """smtp-sink on 198.18.0.1:2525 capturing every message (-v: and
    logging every command). Started once the gateway's tap carries the
    address."""
    return peers.SmtpSink(KERNEL_IP, BACKEND_PORT,
                          capture_dir=os.path.join(tmp, "capture"),
                          args=["-v"] if verbose else [],
                          out_path=os.path.join(tmp, "sink.out"))


def sink_rcpts(sink):
    """Envelope recipients of every captured message: Message-ID ->
    list of X-Rcpt-Args values."""
    out = {}
    for p in sink.captured():
        hs = peers.read_headers(p)
        mid = peers.header_values(hs, "Message-ID")
        out.setdefault(mid[0] if mid else None, []).extend(
            peers.header_values(hs, "X-Rcpt-Args"))
    return out


def sink_commands(sink, verb):
    """Command lines the backend received (smtp-sink -v), e.g. 'RCPT'."""
    lines = []
    for i in range(1, sink.starts + 1):
        try:
            with open("%s.%d" % (sink.out_path, i), "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        for ln in data.splitlines():
            k = ln.find("smtp-sink: ")
            if k < 0:
                continue
            cmd = ln[k + len("smtp-sink: "):]
            if cmd.upper().startswith(verb.upper() + " "):
                lines.append(cmd)
    return lines


# ---------------------------------------------------------------- clients


class Client(peers.SmtpClient):
    """peers.SmtpClient from a chosen source address. The greeting is
    (code, text), or None with `ended` saying how the connection ended
    without one: "refused" (RST to the SYN), "closed" (FIN), "reset",
    "timeout"."""

    def __init__(self, src, port, timeout=10.0, retries=1):
        self.caps = []
        self.greeting = None
        self.ended = None
        self.sock = None
        self.f = None
        last = None
        for _ in range(retries):
            try:
                self.sock = socket.create_connection(
                    (GATEWAY_IP, port), timeout=timeout,
                    source_address=(src, 0))
                break
            except ConnectionRefusedError as e:
                last = e
                self.ended = "refused"
            except ConnectionResetError as e:
                # RST right after the SYN-ACK, before connect() returned
                last = e
                self.ended = "reset"
                break
            except OSError as e:
                last = e
                self.ended = "connect: %r" % e
            time.sleep(0.1)
        if self.sock is None:
            if retries > 1 and last:
                log("  connect %s -> %d: %r" % (src, port, last))
            return
        self.ended = None
        self.sock.settimeout(timeout)
        self.f = self.sock.makefile("rb")
        try:
            self.greeting = self.reply()
        except peers.SmtpError:
            self.ended = "closed"
        except ConnectionResetError:
            self.ended = "reset"
        except socket.timeout:
            self.ended = "timeout"

    def code(self):
        return self.greeting[0] if self.greeting else None

    def shown(self):
        return self.greeting[1] if self.greeting else "(%s)" % self.ended

    def wait_closed(self, timeout=5.0):
        """How the server ends the connection from here: "eof", "reset",
        "timeout" (still open) or "data: ..." (it said more)."""
        if self.sock is None or self.ended:
            return "eof"
        self.sock.settimeout(timeout)
        try:
            b = self.f.read1(4096) if hasattr(self.f, "read1") else \
                self.sock.recv(4096)
        except ConnectionResetError:
            return "reset"
        except socket.timeout:
            return "timeout"
        except OSError as e:
            return "error %r" % e
        return "eof" if not b else "data: %r" % b[:200]

    def try_cmd(self, line):
        """cmd() that reports a closed connection as (None, why)."""
        try:
            return self.cmd(line)
        except (peers.SmtpError, OSError) as e:
            return (None, "connection ended: %r" % e)


def has(reply, code, enh=None, text=None):
    if not reply or reply[0] != code:
        return False
    if enh and enh not in reply[1]:
        return False
    return not text or text.lower() in reply[1].lower()


def greeted(c):
    return c.code() == 220


def quit_and_wait(c):
    """QUIT, then wait until the gateway has closed its end."""
    with contextlib.suppress(Exception):
        c.cmd("QUIT")
    c.wait_closed(5)
    c.close()


def deliver(c, mid, rcpts, mail_from=SENDER, size=600):
    """One whole transaction on an open session; the transaction dict."""
    return c.transaction(mail_from, rcpts,
                         peers.message(mid, mail_from, rcpts, size=size),
                         pipelining=False)


def wait_ready(res, port=25, src=KERNEL_IP):
    """The gateway greets on port (ARP, tap up); returns the greeting."""
    c = Client(src, port, retries=100)
    res.check(greeted(c), "gateway greets %s on %d (%s)" %
              (src, port, c.shown()))
    quit_and_wait(c)


def wait_sessions_idle(gw, res, timeout=15):
    try:
        gw.wait_for(lambda t: t.get("gw_sessions_live", -1) == 0, timeout,
                    "gw_sessions_live == 0")
    except AssertionError as e:
        res.check(False, str(e))
    time.sleep(0.3)  # one more stats interval
    return gw.stats()["total"]


def ctl(a, *args):
    r = subprocess.run([a.mxgatectl, "-s", a.admin_sock] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).strip()


# -------------------------------------------------------------------- acl


def acl_expect_denied_reply(res, c, what):
    ok = has(c.greeting, 554, "5.7.1")
    res.check(ok, "%s: greeting replaced by 554 5.7.1 (%s)" %
              (what, c.shown()))
    if c.greeting is None:
        return
    # No mail may be accepted after a refused greeting (RFC 5321 3.1).
    e = c.try_cmd("EHLO acl.mxgt.test")
    m = c.try_cmd("MAIL FROM:<%s>" % SENDER)
    r = c.try_cmd("RCPT TO:<user@%s>" % OURS)
    d = c.try_cmd("DATA")
    bad = [x for x in (m, r, d) if x[0] is not None and x[0] // 100 in (2, 3)]
    res.check(not bad, "%s: nothing accepted after the 554 (EHLO %s, MAIL "
              "%s, RCPT %s, DATA %s)" % (what, e[0], m[0], r[0], d[0]))


def acl_expect_closed(res, c, what):
    how = c.ended if c.greeting is None else "greeting %r" % c.shown()
    ok = c.greeting is None and c.ended in ("closed", "reset", "refused")
    res.check(ok, "%s: connection closed without a greeting (%s)" %
              (what, how))


def acl_expect_served(res, c, what, mid, sent):
    if not greeted(c):
        res.check(False, "%s: greeted with 220 (%s)" % (what, c.shown()))
        return
    try:
        c.ehlo("acl.mxgt.test")
        r = deliver(c, mid, ["user@%s" % OURS])
        res.check(r["outcome"] == 250, "%s: greeted 220 and the message "
                  "accepted (%s)" % (what, r["dot"] or r))
        if r["outcome"] == 250:
            sent.add("<%s>" % mid)
    except (peers.SmtpError, OSError) as e:
        res.check(False, "%s: session after the 220: %r" % (what, e))


def acl_run(res, cases, tag, sent):
    """cases: (src, port, expect) with expect in "serve", "reply",
    "close". Returns how many were refused."""
    denied = 0
    for src, port, expect, why in cases:
        what = "%s %s -> %d (%s)" % (tag, src, port, why)
        c = Client(src, port)
        if expect == "serve":
            mid = "acl-%s-%s-%d@mxgt.test" % (tag, src, port)
            acl_expect_served(res, c, what, mid, sent)
        elif expect == "reply":
            denied += 1
            acl_expect_denied_reply(res, c, what)
        else:
            denied += 1
            acl_expect_closed(res, c, what)
        quit_and_wait(c)
    return denied


def scenario_acl(a, tmp, res):
    G = "198.18.0.%d"
    policy = {
        "deny_action": "reply",
        "deny": ["198.18.0.8/29"],          # .8 - .15
        "allow": ["198.18.0.12/32"],        # exception inside it
        "accepted_domains": [OURS],
        "block_table_size": 16,             # pushes past it are refused
    }
    listeners = [
        # mx: its own deny list with an exception, and an exception to
        # the global deny list (.11).
        listener("mx", 25, deny=["198.18.0.16/29"],
                 allow=["198.18.0.20/32", "198.18.0.11/32"]),
        # inner: only these networks are served.
        listener("inner", 2526, networks=["198.18.0.24/29",
                                          "198.18.0.1/32"]),
        # quiet: refuses without a word.
        listener("quiet", 2527, deny=["198.18.0.28/30"],
                 deny_action="close"),
    ]
    sink = make_sink(tmp)
    gw = None
    sent = set()
    try:
        gw = start_gateway(a, tmp, res, listeners, policy, tag="acl1")
        sink.start()
        add_addrs([10, 11, 12, 17, 20, 25, 29])
        wait_ready(res)
        cases = [
            (KERNEL_IP, 25, "serve", "no list names it"),
            (KERNEL_IP, 2526, "serve", "in inner's networks"),
            (KERNEL_IP, 2527, "serve", "no list names it"),
            (G % 10, 25, "reply", "global deny"),
            (G % 10, 2526, "reply", "global deny, not in networks"),
            (G % 10, 2527, "close", "global deny on a close listener"),
            (G % 11, 25, "serve", "global deny, mx allow exception"),
            (G % 11, 2527, "close", "global deny, no exception here"),
            (G % 12, 25, "serve", "global allow exception"),
            (G % 12, 2526, "reply", "allowed, but not in networks"),
            (G % 12, 2527, "serve", "global allow exception"),
            (G % 17, 25, "reply", "mx deny"),
            (G % 17, 2526, "reply", "not in networks"),
            (G % 17, 2527, "serve", "mx deny is mx's only"),
            (G % 20, 25, "serve", "mx allow exception in mx deny"),
            (G % 25, 2526, "serve", "in inner's networks"),
            (G % 25, 25, "serve", "no list names it"),
            (G % 29, 2527, "close", "quiet deny, deny_action close"),
            (G % 29, 25, "serve", "quiet deny is quiet's only"),
        ]
        denied = acl_run(res, cases, "reply", sent)

        # A block pushed at run time, then lifted.
        if a.mxgatectl:
            rc, out = ctl(a, "block", "198.18.0.25/32")
            res.check(rc == 0, "mxgatectl block 198.18.0.25/32: %d %s"
                      % (rc, out))
            time.sleep(0.5)
            denied += acl_run(res, [
                (G % 25, 2526, "reply", "pushed block"),
                (G % 25, 25, "reply", "pushed block"),
                (KERNEL_IP, 25, "serve", "not blocked")],
                "pushed", sent)
            rc, out = ctl(a, "unblock", "198.18.0.25/32")
            res.check(rc == 0, "mxgatectl unblock: %d %s" % (rc, out))
            time.sleep(0.5)
            acl_run(res, [(G % 25, 2526, "serve", "block lifted")],
                    "unblocked", sent)
            # The pushed-block table holds block_table_size (16)
            # entries per core: the 17th push is refused with the reason
            # and a non-zero exit, and room comes back with an unblock.
            rcs = []
            for i in range(16):
                rcs.append(ctl(a, "block", "198.19.7.%d/32" % i)[0])
            res.check(rcs == [0] * 16, "16 blocks fill the table: %s" % rcs)
            rc, out = ctl(a, "block", "198.19.7.16/32")
            res.check(rc != 0 and "table full" in out,
                      "17th block refused, reason given: %d %s" % (rc, out))
            rc, out = ctl(a, "unblock", "198.19.7.0/32")
            res.check(rc == 0, "unblock frees a slot: %d %s" % (rc, out))
            rc, out = ctl(a, "block", "198.19.7.16/32")
            res.check(rc == 0, "block accepted again: %d %s" % (rc, out))
            time.sleep(0.3)
            t = gw.stats()["total"]
            res.check(t.get("gw_pushes_applied", 0) >= 2 + 16 + 2,
                      "gw_pushes_applied %s >= 20" %
                      t.get("gw_pushes_applied"))
            res.check(t.get("gw_pushes_failed") == 1,
                      "gw_pushes_failed %s == 1" % t.get("gw_pushes_failed"))
        t = wait_sessions_idle(gw, res)
        res.check(t.get("gw_conn_denied_acl") == denied,
                  "gw_conn_denied_acl %s == %d refused connections" %
                  (t.get("gw_conn_denied_acl"), denied))
        gw.shutdown(res)
        gw.kill()
        gw = None

        # Second run: policy.deny_action = "close" is what listeners
        # without their own deny_action do.
        policy2 = dict(policy, deny_action="close")
        listeners2 = [
            listener("mx", 25, deny=["198.18.0.16/29"]),
            listener("loud", 2526, deny=["198.18.0.16/29"],
                     deny_action="reply"),
        ]
        gw = start_gateway(a, tmp, res, listeners2, policy2, tag="acl2")
        sink.restart()  # its address went away with the old tap
        add_addrs([10, 12, 17])
        wait_ready(res)
        denied = acl_run(res, [
            (G % 10, 25, "close", "global deny, global close"),
            (G % 17, 25, "close", "mx deny, inherited close"),
            (G % 10, 2526, "reply", "global deny, listener says reply"),
            (G % 17, 2526, "reply", "listener deny, listener says reply"),
            (G % 12, 25, "serve", "global allow exception"),
            (KERNEL_IP, 25, "serve", "no list names it"),
        ], "close", sent)
        t = wait_sessions_idle(gw, res)
        res.check(t.get("gw_conn_denied_acl") == denied,
                  "second run: gw_conn_denied_acl %s == %d" %
                  (t.get("gw_conn_denied_acl"), denied))
        ids = sink.message_ids()
        res.check(set(ids) == sent and all(v == 1 for v in ids.values()),
                  "the backend got exactly the %d messages of served "
                  "clients, once each (extra %s, missing %s)" %
                  (len(sent), sorted(set(ids) - sent)[:5],
                   sorted(sent - set(ids))[:5]))
    finally:
        if gw:
            gw.shutdown(res)
            gw.kill()
        sink.stop()


# ------------------------------------------------------------------ relay


def run_txn_cases(res, cases, sent, tag):
    """cases: (src, port, mail_from, rcpt, mail_expect, rcpt_expect, why)
    where an expectation is (code, enh) or (code, enh, text) or a tuple of
    codes. Each case is its own transaction on a session per (src, port);
    when MAIL and RCPT are accepted the message is sent (its Message-ID
    names the case) and expected at the backend with that recipient."""
    sessions = {}
    counts = {}
    n = 0
    for src, port, mfrom, rcpt, mexp, rexp, why in cases:
        n += 1
        key = (src, port)
        c = sessions.get(key)
        if c is None:
            c = Client(src, port)
            if not greeted(c):
                res.check(False, "%s %s -> %d greeted (%s)" %
                          (tag, src, port, c.shown()))
                continue
            c.ehlo("relay.mxgt.test")
            sessions[key] = c
        what = "%s %s->%d MAIL <%s> RCPT <%s> (%s)" % (tag, src, port,
                                                       mfrom, rcpt, why)
        m = c.try_cmd("MAIL FROM:<%s>" % mfrom)
        ok = matches(m, mexp)
        res.check(ok, "%s: MAIL %s (expected %s)" % (what, m, mexp))
        counts.setdefault(("mail", m[0]), 0)
        counts[("mail", m[0])] += 1
        if m[0] is None:
            sessions.pop(key).close()
            continue
        if m[0] != 250 or rexp is None:
            if m[0] == 250:
                c.try_cmd("RSET")
            continue
        r = c.try_cmd("RCPT TO:<%s>" % rcpt)
        res.check(matches(r, rexp), "%s: RCPT %s (expected %s)" %
                  (what, r, rexp))
        counts.setdefault(("rcpt", r[0]), 0)
        counts[("rcpt", r[0])] += 1
        if r[0] == 250:
            mid = "%s-%d@mxgt.test" % (tag, n)
            d = c.try_cmd("DATA")
            if d[0] == 354:
                c.send(peers.dot_stuff(peers.message(mid, mfrom, [rcpt],
                                                     300)) + b".\r\n")
                try:
                    d = c.reply()
                except (peers.SmtpError, OSError) as e:
                    d = (None, repr(e))
                if d[0] == 250:
                    sent["<%s>" % mid] = "<%s>" % rcpt
            res.check(d[0] == 250, "%s: message accepted (%s)" % (what, d))
        else:
            rs = c.try_cmd("RSET")
            if rs[0] is None:
                sessions.pop(key).close()
    for c in sessions.values():
        quit_and_wait(c)
    return counts


def matches(reply, exp):
    if reply is None or reply[0] is None:
        return False
    if isinstance(exp, int):
        return reply[0] == exp
    if all(isinstance(x, int) for x in exp):
        return reply[0] in exp
    return has(reply, *exp)


def scenario_relay(a, tmp, res):
    G = "198.18.0.%d"
    policy = {
        "relay_networks": ["198.18.0.20/30"],   # .20 - .23
        "accepted_domains": CfgList([
            OURS,
            {"domain": ".sub.example", "type": "internal_relay"},
            {"domain": "ext.example", "type": "external_relay"},
            "blockeddom.example",
            ".blk.example",
        ]),
        "senders": {"reject": ["spammer@bad.example", "bad2.example",
                               ".bad3.example"]},
        "recipients": {"reject": ["blocked@ours.example",
                                  "blockeddom.example", ".blk.example"]},
    }
    listeners = [
        listener("mx", 25, senders={"reject": ["listenerbad.example"]}),
        listener("submission", 587, role="submission"),
        listener("mx2", 2526,
                 recipients={"accept": [".sub.example",
                                        "vip@ours.example"]}),
        listener("mxauth", 2527, require_auth=True,
                 allow_anonymous=False),
        listener("subopen", 2528, role="submission", require_auth=False,
                 allow_anonymous=True),
    ]
    OK = (250,)
    RELAY = (554, "5.7.1", "Relay access denied")
    RESTRICT = (550, "5.7.1")
    AUTH = (530, "5.7.0")
    out = KERNEL_IP
    u = "user@" + OURS
    cases = [
        # accepted domains, from outside the relay networks
        (out, 25, SENDER, u, OK, OK, "authoritative domain"),
        (out, 25, SENDER, "USER@OURS.EXAMPLE", OK, OK, "domain in capitals"),
        (out, 25, SENDER, "user@Ours.Example", OK, OK, "mixed case"),
        (out, 25, SENDER, "a@sub.example", OK, OK,
         "'.sub.example' covers sub.example"),
        (out, 25, SENDER, "a@deep.x.sub.example", OK, OK,
         "'.sub.example' covers its subdomains"),
        (out, 25, SENDER, "a@ext.example", OK, OK, "external_relay domain"),
        (out, 25, SENDER, "nosuchuser@" + OURS, OK, OK,
         "unknown user is the backend's to reject"),
        (out, 25, SENDER, "a@x.ext.example", OK, RELAY,
         "exact entry does not cover subdomains"),
        (out, 25, SENDER, "a@them.example", OK, RELAY, "not accepted"),
        (out, 25, SENDER, "a@example", OK, RELAY, "parent of nothing"),
        (out, 25, SENDER, "a@notsub.example", OK, RELAY,
         "'.sub.example' is no bare suffix"),
        # recipient restrictions (all at accepted domains)
        (out, 25, SENDER, "blocked@ours.example", OK, RESTRICT,
         "address entry"),
        (out, 25, SENDER, "blocked@OURS.EXAMPLE", OK, RESTRICT,
         "address entry, domain in capitals"),
        (out, 25, SENDER, "anyone@blockeddom.example", OK, RESTRICT,
         "domain entry"),
        (out, 25, SENDER, "anyone@BlockedDom.Example", OK, RESTRICT,
         "domain entry, mixed case"),
        (out, 25, SENDER, "x@blk.example", OK, RESTRICT,
         "'.blk.example' entry, the domain"),
        (out, 25, SENDER, "x@a.b.blk.example", OK, RESTRICT,
         "'.blk.example' entry, a subdomain"),
        (out, 25, SENDER, "other@ours.example", OK, OK,
         "address entry is that address only"),
        # sender restrictions
        (out, 25, "spammer@bad.example", u, RESTRICT, None, "address entry"),
        (out, 25, "spammer@BAD.EXAMPLE", u, RESTRICT, None,
         "address entry, domain in capitals"),
        (out, 25, "other@bad.example", u, OK, OK,
         "address entry is that address only"),
        (out, 25, "x@bad2.example", u, RESTRICT, None, "domain entry"),
        (out, 25, "x@Bad2.Example", u, RESTRICT, None,
         "domain entry, mixed case"),
        (out, 25, "x@sub.bad2.example", u, OK, OK,
         "domain entry does not cover subdomains"),
        (out, 25, "x@bad3.example", u, RESTRICT, None, "'.bad3' domain"),
        (out, 25, "x@a.b.bad3.example", u, RESTRICT, None,
         "'.bad3' subdomain"),
        (out, 25, "x@A.BAD3.EXAMPLE", u, RESTRICT, None,
         "'.bad3' subdomain in capitals"),
        (out, 25, "x@notbad3.example", u, OK, OK,
         "'.bad3.example' is no bare suffix"),
        (out, 25, "x@listenerbad.example", u, RESTRICT, None,
         "mx listener's own sender list"),
        (out, 25, "", u, OK, OK, "null sender (bounces)"),
        # mx2: its recipient accept list, no listener sender list
        (out, 2526, "x@listenerbad.example", "vip@ours.example", OK, OK,
         "mx's sender list is mx's only; vip in mx2's accept list"),
        (out, 2526, SENDER, "other@ours.example", OK, RESTRICT,
         "not in mx2's accept list"),
        (out, 2526, SENDER, "a@x.sub.example", OK, OK,
         "in mx2's accept list ('.sub.example')"),
        (out, 2526, SENDER, "a@ext.example", OK, RESTRICT,
         "accepted domain, but not in mx2's accept list"),
        (out, 2526, "spammer@bad.example", u, RESTRICT, None,
         "global sender list applies on every listener"),
        (out, 2526, SENDER, "a@them.example", OK, (550, 554),
         "relaying and not in the accept list"),
        # relay networks .20/30: boundaries and inside
        (G % 21, 25, SENDER, "a@them.example", OK, OK,
         "inside relay_networks"),
        (G % 20, 25, SENDER, "b@them.example", OK, OK,
         "first address of relay_networks"),
        (G % 23, 25, SENDER, "c@x.ext.example", OK, OK,
         "last address of relay_networks"),
        (G % 24, 25, SENDER, "d@them.example", OK, RELAY,
         "just past relay_networks"),
        (G % 19, 25, SENDER, "e@them.example", OK, RELAY,
         "just before relay_networks"),
        (G % 21, 25, SENDER, "blocked@ours.example", OK, RESTRICT,
         "restrictions apply to relay clients too"),
        (G % 21, 25, "x@bad2.example", u, RESTRICT, None,
         "sender restrictions apply to relay clients too"),
        # AUTH required
        (out, 587, SENDER, u, AUTH, None, "submission requires AUTH"),
        (G % 21, 587, SENDER, "a@them.example", AUTH, None,
         "submission requires AUTH from relay networks too"),
        (out, 2527, SENDER, u, AUTH, None, "mx listener with require_auth"),
        (out, 2528, SENDER, u, OK, OK,
         "submission with require_auth = false"),
        (out, 2528, SENDER, "a@them.example", OK, RELAY,
         "anonymous submission still may not relay"),
    ]
    sink = make_sink(tmp)
    gw = None
    try:
        gw = start_gateway(a, tmp, res, listeners, policy, tag="relay")
        sink.start()
        add_addrs([19, 20, 21, 23, 24])
        wait_ready(res)
        sent = {}
        counts = run_txn_cases(res, cases, sent, "relay")
        log("  reply counts: %s" % sorted(counts.items(),
                                          key=lambda x: str(x)))
        t = wait_sessions_idle(gw, res)
        got = sink_rcpts(sink)
        res.check(set(got) == set(sent),
                  "the backend got exactly the %d accepted messages (extra "
                  "%s, missing %s)" % (len(sent), sorted(set(got) -
                                                         set(sent))[:5],
                                       sorted(set(sent) - set(got))[:5]))
        wrong = [(m, got[m], r) for m, r in sent.items()
                 if m in got and [x.lower() for x in got[m]] != [r.lower()]]
        res.check(not wrong, "each delivered with its one recipient "
                  "(wrong: %s)" % wrong[:3])
        n_relay = sum(1 for x in cases if x[5] == RELAY and x[4] == OK)
        n_restr = sum(1 for x in cases if x[5] == RESTRICT and x[4] == OK)
        n_both = sum(1 for x in cases if x[5] == (550, 554))
        n_sender = sum(1 for x in cases if x[4] == RESTRICT)
        n_auth = sum(1 for x in cases if x[4] == AUTH)
        rr, rs = t.get("gw_rcpt_denied_relay"), t.get(
            "gw_rcpt_denied_restrict")
        res.check(rr is not None and rs is not None and
                  n_relay <= rr <= n_relay + n_both and
                  n_restr <= rs <= n_restr + n_both and
                  rr + rs == n_relay + n_restr + n_both,
                  "gw_rcpt_denied_relay %s (expected %d..%d) and "
                  "gw_rcpt_denied_restrict %s (expected %d..%d)" %
                  (rr, n_relay, n_relay + n_both, rs, n_restr,
                   n_restr + n_both))
        res.check(t.get("gw_mail_denied_sender") == n_sender,
                  "gw_mail_denied_sender %s == %d" %
                  (t.get("gw_mail_denied_sender"), n_sender))
        res.check(t.get("gw_mail_denied_auth") == n_auth,
                  "gw_mail_denied_auth %s == %d" %
                  (t.get("gw_mail_denied_auth"), n_auth))
    finally:
        if gw:
            gw.shutdown(res)
            gw.kill()
        sink.stop()


# -------------------------------------------------------------- openrelay

THEM = "them.example"
LOOKALIKE = "\u043eurs.example"   # Cyrillic small letter o

RELAY_TRICKS = [
    # (name, RCPT argument, needs SMTPUTF8)
    ("percent hack", "TO:<user%them.example@ours.example>", False),
    ("double percent",
     "TO:<user%them.example%ours.example@ours.example>", False),
    ("bang path", "TO:<them.example!user@ours.example>", False),
    ("bang path, two hops",
     "TO:<ours.example!them.example!user@ours.example>", False),
    ("source route", "TO:<@ours.example:user@them.example>", False),
    ("source route, two hops",
     "TO:<@ours.example,@x.example:user@them.example>", False),
    ("source route to a percent hack",
     "TO:<@ours.example:user%them.example@ours.example>", False),
    ("two @", "TO:<user@them.example@ours.example>", False),
    ("two @, ours first", "TO:<user@ours.example@them.example>", False),
    ("quoted @", 'TO:<"user@them.example"@ours.example>', False),
    ("quoted %", 'TO:<"user%them.example"@ours.example>', False),
    ("quoted !", 'TO:<"them.example!user"@ours.example>', False),
    ("quoted, backslash @", 'TO:<"user\\@them.example"@ours.example>',
     False),
    ("quoted, backslash %", 'TO:<"user\\%them.example"@ours.example>',
     False),
    ("quoted, escaped quote", 'TO:<"us\\"er@them.example"@ours.example>',
     False),
    ("quoted local part to them", 'TO:<"user"@them.example>', False),
    ("route plus quoted @",
     'TO:<@ours.example:"user@them.example"@ours.example>', False),
    ("upper-case percent hack", "TO:<USER%THEM.EXAMPLE@OURS.EXAMPLE>",
     False),
    ("upper-case bang path", "TO:<THEM.EXAMPLE!USER@OURS.EXAMPLE>", False),
    ("upper-case quoted @", 'TO:<"USER@THEM.EXAMPLE"@OURS.EXAMPLE>', False),
    ("plain them", "TO:<user@them.example>", False),
    ("upper-case them", "TO:<USER@THEM.EXAMPLE>", False),
    ("postmaster at them", "TO:<postmaster@them.example>", False),
    ("IP literal of the gateway", "TO:<user@[198.18.0.2]>", False),
    ("IP literal, percent hack", "TO:<user%them.example@[198.18.0.2]>",
     False),
    ("two @ to an IP literal", "TO:<user@them.example@[198.18.0.2]>", False),
    ("IPv6 literal (mapped)", "TO:<user@[IPv6:::ffff:198.18.0.2]>", False),
    ("IPv6 literal", "TO:<user@[IPv6:2001:db8::2]>", False),
    ("trailing dot, them", "TO:<user@them.example.>", False),
    ("trailing dot, percent hack", "TO:<user%them.example.@ours.example>",
     False),
    ("trailing dot on ours, percent hack",
     "TO:<user%them.example@ours.example.>", False),
    ("ours as the first labels of theirs",
     "TO:<user@ours.example.them.example>", False),
    ("same, upper case", "TO:<user@OURS.EXAMPLE.them.example>", False),
    ("ours as a bare suffix", "TO:<user@evilours.example>", False),
    ("subdomain of an exact entry", "TO:<user@them.ours.example>", False),
    ("ours with a hyphen", "TO:<user@ours-example.them.example>", False),
    ("percent and bang", "TO:<them.example!user%other.example@ours.example>",
     False),
    ("bang after percent", "TO:<user%them.example!x@ours.example>", False),
    ("no angle brackets", "TO:user@them.example", False),
    ("space after the colon", "TO: <user@them.example>", False),
    ("punycode of a look-alike",
     "TO:<user@%s>" % LOOKALIKE.encode("idna").decode(), False),
    ("Cyrillic look-alike (SMTPUTF8)", "TO:<user@%s>" % LOOKALIKE, True),
    ("fullwidth look-alike (SMTPUTF8)",
     "TO:<user@\uff4f\uff55\uff52\uff53.example>", True),
    ("ideographic full stop (SMTPUTF8)", "TO:<user@ours\u3002example>",
     True),
    ("one dot leader (SMTPUTF8)", "TO:<user@ours\u2024example>", True),
    ("non-ASCII local part, percent hack (SMTPUTF8)",
     "TO:<\u00fcser%them.example@ours.example>", True),
]


class RawSmtp:
    """smtplib with raw docmd(): what is typed is what is sent."""

    def __init__(self, src):
        self.s = smtplib.SMTP(GATEWAY_IP, 25, local_hostname="probe.example",
                              timeout=20, source_address=(src, 0))
        self.s.command_encoding = "utf-8"
        self.s.ehlo()

    def cmd(self, verb, arg=""):
        try:
            code, msg = self.s.docmd(verb, arg)
            return code, msg.decode("utf-8", "replace")
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            return None, "disconnected: %r" % e

    def close(self):
        with contextlib.suppress(Exception):
            self.s.quit()
        with contextlib.suppress(Exception):
            self.s.close()


def scenario_openrelay(a, tmp, res):
    policy = {"relay_networks": ["198.18.0.200/32"],
              "accepted_domains": [OURS]}
    sink = make_sink(tmp, verbose=True)
    gw = None
    try:
        gw = start_gateway(a, tmp, res, [listener("mx", 25)], policy,
                           tag="openrelay")
        sink.start()
        wait_ready(res)
        conn = RawSmtp(KERNEL_IP)
        feats = sorted(conn.s.esmtp_features)
        log("  EHLO extensions: %s" % feats)
        results = []
        for i, (name, arg, utf8) in enumerate(RELAY_TRICKS):
            if conn is None:
                conn = RawSmtp(KERNEL_IP)
            m = conn.cmd("MAIL", "FROM:<probe@client.example>" +
                         (" SMTPUTF8" if utf8 else ""))
            if m[0] != 250:
                res.check(False, "trick %d %s: MAIL accepted first (%s)" %
                          (i, name, m))
                conn.close()
                conn = None
                continue
            r = conn.cmd("RCPT", arg)
            results.append((name, arg, r))
            refused = r[0] is not None and 500 <= r[0] < 600
            res.check(refused, "trick %2d %-44s RCPT %s -> %s %s" %
                      (i, name, ascii(arg), r[0], r[1][:60]))
            if r[0] is not None and r[0] // 100 == 2:
                # Wrongly accepted: send it, so the backend would show it.
                d = conn.cmd("DATA")
                if d[0] == 354:
                    conn.s.send(b"Message-ID: <trick-%d@mxgt.test>\r\n\r\n"
                                b"relayed\r\n.\r\n" % i)
                    log("    DATA end: %s" % (conn.s.getreply(),))
            if r[0] is None:
                conn.close()
                conn = None
                continue
            rs = conn.cmd("RSET")
            if rs[0] != 250:
                conn.close()
                conn = None
        by_code = {}
        for name, arg, r in results:
            by_code.setdefault(r[0], []).append(name)
        log("  refusal codes: %s" % {k: len(v) for k, v in by_code.items()})
        for code, names in sorted(by_code.items(), key=lambda x: str(x)):
            log("    %s: %s" % (code, " | ".join(names)))
        # The control: the accepted domain works on the same path.
        if conn is None:
            conn = RawSmtp(KERNEL_IP)
        m = conn.cmd("MAIL", "FROM:<probe@client.example>")
        r = conn.cmd("RCPT", "TO:<user@%s>" % OURS)
        d = conn.cmd("DATA")
        end = (None, "")
        if d[0] == 354:
            conn.s.send(b"Message-ID: <control@mxgt.test>\r\n\r\n"
                        b"control\r\n.\r\n")
            end = conn.s.getreply()
        res.check(m[0] == 250 and r[0] == 250 and end[0] == 250,
                  "control recipient user@%s accepted and delivered (MAIL "
                  "%s, RCPT %s, DATA %s, end %s)" % (OURS, m[0], r[0], d[0],
                                                     end[0]))
        conn.close()
        t = wait_sessions_idle(gw, res)
        time.sleep(0.5)
        ids = sink.message_ids()
        res.check(list(ids) == ["<control@mxgt.test>"] and
                  sink.received() == 1,
                  "the backend received exactly one message, the control "
                  "(got %s, smtp-sink count %d)" % (sorted(ids),
                                                    sink.received()))
        rcpts = sink_commands(sink, "RCPT")
        res.check(rcpts == ["RCPT TO:<user@%s>" % OURS],
                  "the only RCPT the backend ever saw is the control's "
                  "(%s)" % rcpts[:6])
        n554 = len(by_code.get(554, []))
        res.check(t.get("gw_rcpt_denied_relay") == n554,
                  "gw_rcpt_denied_relay %s == %d refusals with 554" %
                  (t.get("gw_rcpt_denied_relay"), n554))
    finally:
        if gw:
            gw.shutdown(res)
            gw.kill()
        sink.stop()


# ----------------------------------------------------------------- limits


def open_clients(srcs, port):
    return [Client(s, port) for s in srcs]


def expect_421_close(res, c, what):
    res.check(has(c.greeting, 421, "4.7.0"),
              "%s: 421 4.7.0 (%s)" % (what, c.shown()))
    if c.greeting:
        how = c.wait_closed(5)
        res.check(how in ("eof", "reset"),
                  "%s: connection closed after the 421 (%s)" % (what, how))
    c.close()


MAP_HOSTS = list(range(56, 80))


def core_map(gw, hosts):
    """198.18.0.<h> -> the core that owns its connections. Steering hashes
    the client address with a seed chosen at start, so a test finds out:
    one connection from each address to the mx listener (no rule there
    counts connections), and the core whose gw_sessions went up."""
    out = {}
    for h in hosts:
        before = {pc["core"]: pc.get("gw_sessions", 0)
                  for pc in gw.stats()["per_core"]}
        c = Client("198.18.0.%d" % h, 25)
        quit_and_wait(c)
        deadline = time.time() + 5
        while time.time() < deadline and h not in out:
            for pc in gw.stats()["per_core"]:
                if pc.get("gw_sessions", 0) > before.get(pc["core"], 0):
                    out[h] = pc["core"]
            time.sleep(0.1)
    return out


def spread_hosts(cmap, per_core, cores):
    """per_core addresses of each core from cmap, or None."""
    by = {k: [h for h in sorted(cmap) if cmap[h] == k] for k in range(cores)}
    if any(len(v) < per_core for v in by.values()):
        return None
    return by


def limits_connections(a, res, counts):
    G = "198.18.0.%d"
    # (a) max_connections = 5 on 2526, from six addresses; on two cores
    #     the five span both cores (3 + 2) and the sixth comes from the
    #     core that holds two: a per-core count would let it in.
    hosts = list(range(30, 36))
    if a.cores > 1:
        by = spread_hosts(a.core_of, 3, a.cores)
        res.check(by is not None, "the %d probe addresses cover every core "
                  "with 3 each (%s)" % (len(a.core_of), a.core_of))
        if by:
            hosts = by[0][:3] + by[1][:3]
            hosts = hosts[:5] + [hosts[5]]
            log("  max_connections clients: %s on cores %s" %
                (hosts, [a.core_of[h] for h in hosts]))
    cs = open_clients([G % h for h in hosts[:5]], 2526)
    res.check(all(greeted(c) for c in cs),
              "max_connections 5: five concurrent connections greeted 220 "
              "(%s)" % [c.shown()[:30] for c in cs])
    if a.cores > 1:
        res.check(len({a.core_of.get(h) for h in hosts[:5]}) == a.cores,
                  "max_connections 5: the five are spread over all %d "
                  "cores (%s)" % (a.cores,
                                  [a.core_of.get(h) for h in hosts[:5]]))
    expect_421_close(res, Client(G % hosts[5], 2526),
                     "max_connections 5: the sixth")
    counts["limit"] += 1
    quit_and_wait(cs.pop(0))
    time.sleep(0.3)
    c = Client(G % hosts[5], 2526)
    res.check(greeted(c), "max_connections 5: after one closed, a new one "
              "is greeted 220 (%s)" % c.shown())
    cs.append(c)
    expect_421_close(res, Client(G % hosts[0], 2526),
                     "max_connections 5: at five again, one more")
    counts["limit"] += 1
    for c in cs:
        quit_and_wait(c)

    # (b) max_connections_per_ip = 3 on 2527: .40 and .41 independent.
    c40 = open_clients([G % 40] * 3, 2527)
    res.check(all(greeted(c) for c in c40),
              "max_connections_per_ip 3: three from .40 greeted 220")
    expect_421_close(res, Client(G % 40, 2527),
                     "max_connections_per_ip 3: the fourth from .40")
    counts["limit"] += 1
    c41 = open_clients([G % 41] * 3, 2527)
    res.check(all(greeted(c) for c in c41),
              "max_connections_per_ip 3: three from .41 greeted 220 while "
              ".40 holds three (%s)" % [c.shown()[:30] for c in c41])
    expect_421_close(res, Client(G % 41, 2527),
                     "max_connections_per_ip 3: the fourth from .41")
    counts["limit"] += 1
    quit_and_wait(c40.pop())
    time.sleep(0.3)
    c = Client(G % 40, 2527)
    res.check(greeted(c), "max_connections_per_ip 3: after one of .40's "
              "closed, .40 is greeted 220 again (%s)" % c.shown())
    c40.append(c)
    for c in c40 + c41:
        quit_and_wait(c)

    # (c) connection_rate_per_ip = 4 per minute on 2528.
    t0 = time.time()
    codes = []
    for _ in range(4):
        c = Client(G % 42, 2528)
        codes.append(c.code())
        quit_and_wait(c)
    res.check(codes == [220] * 4, "connection_rate_per_ip 4: four "
              "connections in a row greeted 220 (%s)" % codes)
    expect_421_close(res, Client(G % 42, 2528),
                     "connection_rate_per_ip 4: the fifth within %.1f s" %
                     (time.time() - t0))
    counts["rate"] += 1
    c = Client(G % 43, 2528)
    res.check(greeted(c), "connection_rate_per_ip: another address still "
              "greeted (%s)" % c.shown())
    quit_and_wait(c)

    # (d) rate_limits what = connections, 3 per minute, on 2529.
    codes = []
    for _ in range(3):
        c = Client(G % 44, 2529)
        codes.append(c.code())
        quit_and_wait(c)
    res.check(codes == [220] * 3, "rate rule connections 3/min: three "
              "greeted 220 (%s)" % codes)
    expect_421_close(res, Client(G % 44, 2529),
                     "rate rule connections 3/min: the fourth")
    counts["rate"] += 1
    c = Client(G % 45, 2529)
    res.check(greeted(c), "rate rule connections: another address still "
              "greeted (%s)" % c.shown())
    quit_and_wait(c)

    # (j) key ip24, 4 connections a minute. Buckets are per core
    #     (docs/configuration.md, "Rate limits"): on one core the /24
    #     shares one bucket; on two, the addresses of a /24 that one core
    #     owns share that core's bucket, and the other core counts its
    #     own. Three addresses of one core, then one of the other.
    if a.cores == 1:
        x1, x2, x3, other = 53, 54, 55, None
    else:
        by = spread_hosts(a.core_of, 3, a.cores)
        if by:
            k = max(by, key=lambda c: len(by[c]))
            x1, x2, x3 = by[k][-3:]
            other = by[1 - k][-1]
            log("  ip24: %s on core %d, %d on core %d" %
                ([x1, x2, x3], k, other, 1 - k))
        else:
            x1 = None
    if x1 is not None:
        codes = []
        for h in (x1, x2, x1, x2):
            c = Client(G % h, 2534)
            codes.append(c.code())
            quit_and_wait(c)
        res.check(codes == [220] * 4, "rate rule ip24 connections 4/min: "
                  "four from two addresses of the /24 greeted (%s)" % codes)
        expect_421_close(res, Client(G % x3, 2534),
                         "rate rule ip24: a fifth from a third address of "
                         "the same /24%s" % (" on the same core"
                                             if other else ""))
        counts["rate"] += 1
        if other is not None:
            c = Client(G % other, 2534)
            res.check(greeted(c), "rate rule ip24: an address of the same "
                      "/24 owned by the other core is greeted (buckets are "
                      "per core) (%s)" % c.shown())
            quit_and_wait(c)


def limits_messages(a, res, counts, sent):
    G = "198.18.0.%d"
    u = "user@" + OURS

    def session(src, port):
        c = Client(src, port)
        if greeted(c):
            c.ehlo("limits.mxgt.test")
        return c

    def txn(c, tag, rcpts, mail_from=SENDER):
        mid = "%s-%d@mxgt.test" % (tag, len(sent))
        r = deliver(c, mid, rcpts, mail_from=mail_from)
        if r["outcome"] == 250:
            sent["<%s>" % mid] = [x for x, y in zip(rcpts, r["rcpts"])
                                  if y[0] == 250]
        return r

    # (e) messages 5/min per IP on listener mx (25).
    c = session(G % 46, 25)
    outs = [txn(c, "msgs46", [u])["outcome"] for _ in range(5)]
    res.check(outs == [250] * 5, "rate rule messages 5/min: five messages "
              "accepted (%s)" % outs)
    m = c.try_cmd("MAIL FROM:<%s>" % SENDER)
    res.check(has(m, 451, "4.7.1"), "rate rule messages 5/min: the sixth "
              "MAIL gets 451 4.7.1 (%s)" % (m,))
    counts["mail_rate"] += 1
    quit_and_wait(c)
    c = session(G % 47, 25)
    r = txn(c, "msgs47", [u])
    res.check(r["outcome"] == 250, "rate rule messages: another address "
              "still accepted (%s)" % r["outcome"])
    quit_and_wait(c)
    c = session(G % 46, 2532)
    r = txn(c, "msgs46other", [u])
    res.check(r["outcome"] == 250, "rate rule messages is listener mx's "
              "only: .46 on another listener accepted (%s)" % r["outcome"])
    quit_and_wait(c)

    # (f) recipients 7/min per IP on 2530, across two transactions.
    c = session(G % 48, 2530)
    r1 = txn(c, "rcpt48", ["r%d@%s" % (i, OURS) for i in range(4)])
    res.check(r1["outcome"] == 250 and
              [x[0] for x in r1["rcpts"]] == [250] * 4,
              "rate rule recipients 7/min: four recipients accepted (%s)" %
              [x[0] for x in r1["rcpts"]])
    r2 = txn(c, "rcpt48", ["r%d@%s" % (i, OURS) for i in range(4, 8)])
    codes = [x[0] for x in r2["rcpts"]]
    res.check(codes[:3] == [250] * 3 and len(codes) == 4 and
              has(r2["rcpts"][3], 451, "4.7.1") and r2["outcome"] == 250,
              "rate rule recipients 7/min: three more accepted, the eighth "
              "451 4.7.1, message accepted for the three (%s)" %
              r2["rcpts"])
    counts["rcpt_rate"] += 1
    quit_and_wait(c)
    c = session(G % 49, 2530)
    r = txn(c, "rcpt49", [u])
    res.check(r["outcome"] == 250, "rate rule recipients: another address "
              "still accepted (%s)" % r["outcome"])
    quit_and_wait(c)

    # (g) max_messages_per_connection = 3 on 2531.
    c = session(G % 50, 2531)
    outs = [txn(c, "mpc50", [u])["outcome"] for _ in range(3)]
    res.check(outs == [250] * 3, "max_messages_per_connection 3: three "
              "messages accepted (%s)" % outs)
    m = c.try_cmd("MAIL FROM:<%s>" % SENDER)
    res.check(has(m, 421, "4.7.0"), "max_messages_per_connection 3: the "
              "fourth MAIL gets 421 4.7.0 (%s)" % (m,))
    how = c.wait_closed(5) if m[0] is not None else "eof"
    res.check(how in ("eof", "reset"), "max_messages_per_connection: "
              "connection closed after the 421 (%s)" % how)
    c.close()
    counts["count"] += 1
    c = session(G % 50, 2531)
    r = txn(c, "mpc50b", [u])
    res.check(r["outcome"] == 250, "max_messages_per_connection: a new "
              "connection accepts again (%s)" % r["outcome"])
    quit_and_wait(c)

    # (h) max_recipients = 4 and max_message_size = 10240 on 2532.
    c = session(G % 51, 2532)
    r = txn(c, "maxrcpt51", ["m%d@%s" % (i, OURS) for i in range(5)])
    codes = [x[0] for x in r["rcpts"]]
    res.check(codes == [250] * 4 + [452] and r["outcome"] == 250,
              "max_recipients 4: four accepted, the fifth 452, message "
              "accepted (%s)" % r["rcpts"][-1:])
    size_line = [ln for ln in c.ehlo("size.mxgt.test")[1].split("\n")
                 if ln[4:].upper().startswith("SIZE")]
    res.check(size_line and size_line[0][4:].split() == ["SIZE", "10240"],
              "SIZE 10240 advertised (%s)" % size_line)
    m = c.try_cmd("MAIL FROM:<%s> SIZE=10241" % SENDER)
    res.check(has(m, 552), "MAIL SIZE=10241 over the 10240 limit: 552 (%s)"
              % (m,))
    c.try_cmd("RSET")
    m = c.try_cmd("MAIL FROM:<%s> SIZE=10240" % SENDER)
    res.check(m[0] == 250, "MAIL SIZE=10240 at the limit: 250 (%s)" % (m,))
    c.try_cmd("RSET")
    for n, expect in ((10240, 250), (10241, 552)):
        mid = "size%d-51@mxgt.test" % n
        hdr = b"Message-ID: <%s>\r\nSubject: size\r\n\r\n" % mid.encode()
        body = hdr
        while n - len(body) > 80:     # lines of 78 octets + CRLF
            body += b"x" * 78 + b"\r\n"
        body += b"y" * (n - len(body) - 2) + b"\r\n"
        assert len(body) == n
        m = c.try_cmd("MAIL FROM:<%s>" % SENDER)
        rc = c.try_cmd("RCPT TO:<%s>" % u)
        d = c.try_cmd("DATA")
        end = (None, "")
        if d[0] == 354:
            c.send(body + b".\r\n")
            end = c.reply()
        res.check(m[0] == 250 and rc[0] == 250 and end[0] == expect,
                  "message of %d octets (limit 10240): %s (expected %d)" %
                  (n, end, expect))
        if end[0] == 250:
            sent["<%s>" % mid] = [u]
    quit_and_wait(c)

    # (i) sender_domain 2/min on 2533 (one address: exact per core).
    c = session(G % 52, 2533)
    outs = [txn(c, "sdom52", [u], mail_from=f)["outcome"]
            for f in ("x@sd.example", "y@SD.Example")]
    res.check(outs == [250, 250], "rate rule sender_domain 2/min: two "
              "messages from sd.example (any case) accepted (%s)" % outs)
    m = c.try_cmd("MAIL FROM:<z@sd.example>")
    res.check(has(m, 451, "4.7.1"), "rate rule sender_domain: the third "
              "from sd.example gets 451 4.7.1 (%s)" % (m,))
    counts["mail_rate"] += 1
    c.try_cmd("RSET")
    r = txn(c, "sdom52b", [u], mail_from="x@other-sd.example")
    res.check(r["outcome"] == 250, "rate rule sender_domain: another "
              "domain still accepted (%s)" % r["outcome"])
    quit_and_wait(c)


def scenario_limits(a, tmp, res):
    rules = [
        {"name": "msgs", "key": "ip", "what": "messages", "per_minute": 5,
         "burst": 5, "listener": "mx"},
        {"name": "conns", "key": "ip", "what": "connections",
         "per_minute": 3, "burst": 3, "listener": "rlconn"},
        {"name": "rcpts", "key": "ip", "what": "recipients",
         "per_minute": 7, "burst": 7, "listener": "rcpts"},
        {"name": "sdom", "key": "sender_domain", "what": "messages",
         "per_minute": 2, "burst": 2, "listener": "sdom"},
        {"name": "net24", "key": "ip24", "what": "connections",
         "per_minute": 4, "burst": 4, "listener": "net24"},
    ]
    policy = {"accepted_domains": [OURS], "rate_limits": rules}
    listeners = [
        listener("mx", 25),
        listener("conns", 2526, max_connections=5),
        listener("perip", 2527, max_connections_per_ip=3),
        listener("crate", 2528, connection_rate_per_ip=4),
        listener("rlconn", 2529),
        listener("rcpts", 2530),
        listener("mpc", 2531, max_messages_per_connection=3),
        listener("small", 2532, max_recipients=4, max_message_size=10240),
        listener("sdom", 2533),
        listener("net24", 2534),
    ]
    sink = make_sink(tmp)
    gw = None
    try:
        gw = start_gateway(a, tmp, res, listeners, policy, tag="limits")
        sink.start()
        add_addrs(list(range(30, 36)) + list(range(40, 56)) +
                  (MAP_HOSTS if a.cores > 1 else []))
        wait_ready(res)
        a.core_of = core_map(gw, MAP_HOSTS) if a.cores > 1 else {}
        if a.cores > 1:
            log("  core of each probe address: %s" % a.core_of)
            res.check(len(a.core_of) == len(MAP_HOSTS),
                      "every probe address was seen on a core (%d of %d)" %
                      (len(a.core_of), len(MAP_HOSTS)))
        counts = {"limit": 0, "rate": 0, "mail_rate": 0, "rcpt_rate": 0,
                  "count": 0}
        sent = {}
        t0 = time.time()
        limits_connections(a, res, counts)
        limits_messages(a, res, counts, sent)
        log("  limit checks took %.1f s" % (time.time() - t0))
        t = wait_sessions_idle(gw, res)
        for key, field in (("limit", "gw_conn_denied_limit"),
                           ("rate", "gw_conn_denied_rate"),
                           ("mail_rate", "gw_mail_rate_limited"),
                           ("rcpt_rate", "gw_rcpt_rate_limited"),
                           ("count", "gw_mail_denied_count")):
            res.check(t.get(field) == counts[key], "%s %s == %d" %
                      (field, t.get(field), counts[key]))
        got = sink_rcpts(sink)
        res.check(set(got) == set(sent),
                  "the backend got exactly the %d accepted messages (extra "
                  "%s, missing %s)" % (len(sent), sorted(set(got) -
                                                         set(sent))[:5],
                                       sorted(set(sent) - set(got))[:5]))
        if a.cores > 1:
            per = gw.stats().get("per_core", [])
            log("  per core: %s" % [
                {k: v for k, v in pc.items() if k in (
                    "core", "gw_sessions", "gw_conn_denied_limit",
                    "gw_conn_denied_rate", "gw_ipconn_entries")}
                for pc in per])
            res.check(len(per) == a.cores and
                      all(pc.get("gw_sessions", 0) > 0 for pc in per),
                      "every core served sessions (steering spread the "
                      "client addresses)")
        wrong = [m for m, r in sent.items() if m in got and
                 sorted(x.strip("<>") for x in got[m]) != sorted(r)]
        res.check(not wrong, "each delivered to exactly its accepted "
                  "recipients (wrong: %s)" % [(m, got[m]) for m in
                                              wrong[:3]])
    finally:
        if gw:
            gw.shutdown(res)
            gw.kill()
        sink.stop()


# ------------------------------------------------------------------ flood

FLOOD_COUNT = 200000
FLOOD_DISTINCT = 511 * 254   # handshake_flood.c: 198.18.1.1-198.19.255.254
RATE_TABLE = 4096
CONN_RATE = 30


def legit_delivery(res, tag, sent, timeout=30):
    """One message from the legitimate client; True when it was greeted
    and its message accepted (each attempt is also a check)."""
    t0 = time.time()
    try:
        c = Client(KERNEL_IP, 25, timeout=timeout, retries=3)
        greet_s = time.time() - t0
        if not greeted(c):
            res.check(False, "legitimate client %s: greeted (%s)" %
                      (tag, c.shown()))
            return False
        c.ehlo("legit.mxgt.test")
        mid = "legit-%s@mxgt.test" % tag
        r = deliver(c, mid, ["user@" + OURS])
        quit_and_wait(c)
        res.check(r["outcome"] == 250, "legitimate client %s: greeted in "
                  "%.2f s, message accepted in %.2f s (%s)" %
                  (tag, greet_s, time.time() - t0, r["outcome"]))
        if r["outcome"] == 250:
            sent.add("<%s>" % mid)
            return True
    except (peers.SmtpError, OSError) as e:
        res.check(False, "legitimate client %s: %r" % (tag, e))
    return False


def tap_tx_dropped():
    """Frames the kernel dropped on their way into the tap (its TX side:
    what the flood tool and the clients send towards the gateway)."""
    st = json.loads(mxgtest.sh("ip", "-s", "-j", "link", "show", TAP))
    return st[0]["stats64"]["tx"]["dropped"]


def macs():
    link = json.loads(mxgtest.sh("ip", "-j", "link", "show", TAP))
    neigh = json.loads(mxgtest.sh("ip", "-j", "neigh", "show", GATEWAY_IP,
                                  "dev", TAP))
    return link[0]["address"], neigh[0]["lladdr"]


def scenario_flood(a, tmp, res):
    tool = a.flood_tool or os.path.join(tmp, "handshake_flood")
    if not a.flood_tool:
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "tools", "handshake_flood.c")
        mxgtest.sh("cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-o", tool, src)
    policy = {
        "accepted_domains": [OURS],
        "rate_limits": [{"name": "conn_ip", "key": "ip",
                         "what": "connections", "per_minute": CONN_RATE,
                         "burst": CONN_RATE}],
        "rate_table_size": RATE_TABLE,
    }
    sink = make_sink(tmp)
    gw = None
    proc = None
    try:
        # Replies to the spoofed sources go to the kernel, which does not
        # forward them (as scenario_synflood of test_stack.py).
        gw = start_gateway(a, tmp, res, [listener("mx", 25)], policy,
                           gateway=KERNEL_IP, tag="flood")
        sink.start()
        add_addrs([60])
        wait_ready(res)
        sent = set()
        legit_delivery(res, "before", sent)
        smac, dmac = macs()
        cmd = [tool, "--iface", TAP, "--src-mac", smac, "--dst-mac", dmac,
               "--dst", GATEWAY_IP, "--port", "25", "--count",
               str(FLOOD_COUNT), "--window", "256", "--seconds", "110"]
        log("  flood: %s" % " ".join(cmd))
        out_path = os.path.join(tmp, "flood.out")
        drop0 = tap_tx_dropped()
        t0 = time.time()
        with open(out_path, "w") as out:
            proc = subprocess.Popen(cmd, stdout=out,
                                    stderr=subprocess.STDOUT)
        max_entries = 0
        during = 0
        during_ok = 0
        next_legit = time.time() + 1.0
        while proc.poll() is None and time.time() - t0 < 130:
            t = gw.stats()["total"]
            max_entries = max(max_entries, t.get("gw_rl_entries", 0))
            if time.time() >= next_legit and during < 3:
                during_ok += legit_delivery(res, "during-%d" % during, sent)
                during += 1
                next_legit = time.time() + 3.0
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
            res.check(False, "flood tool did not finish in 130 s")
        proc.wait(10)
        dt = time.time() - t0
        with open(out_path) as f:
            text = f.read()
        log("  flood: %s (%.1f s)" % (text.strip(), dt))
        try:
            fl = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            fl = {}
            res.check(False, "flood tool printed its counters (%r)" %
                      text[-300:])
        dropped = tap_tx_dropped() - drop0
        res.check(during_ok >= 1 and during_ok == during,
                  "the legitimate client delivered during the flood: %d of "
                  "%d attempts accepted" % (during_ok, during))
        # The loss bound. The tool never retransmits its SYN; everything
        # after it is retransmitted by one side or the other (the
        # gateway's SYN-ACK and greeting, which the tool answers again
        # statelessly). So a handshake is lost for good only when its SYN
        # frame was: the kernel drops a frame on its way into the tap when
        # the tap's queue is full, and counts it. Lost handshakes <= those
        # drops; nothing else may lose one.
        done = fl.get("greet_220", 0) + fl.get("greet_421", 0)
        lost = fl.get("lost", FLOOD_COUNT)
        res.check(fl.get("syn_sent") == FLOOD_COUNT and
                  done + lost == FLOOD_COUNT and lost <= dropped,
                  "%d handshakes completed and greeted of %d sent from %d "
                  "distinct sources; lost %s <= %d frames the kernel "
                  "dropped into the tap" %
                  (done, fl.get("syn_sent", 0), fl.get("distinct_sources", 0),
                   lost, dropped))
        res.check(fl.get("greet_421") == 0,
                  "no flooding source refused: each connected at most twice, "
                  "under its %d/min (421s: %s)" % (CONN_RATE,
                                                   fl.get("greet_421")))
        t = gw.stats()["total"]
        max_entries = max(max_entries, t.get("gw_rl_entries", 0))
        res.check(max_entries <= RATE_TABLE,
                  "gw_rl_entries stayed <= %d (max seen %d, now %s)" %
                  (RATE_TABLE, max_entries, t.get("gw_rl_entries")))
        res.check(t.get("gw_rl_evictions", 0) >=
                  FLOOD_DISTINCT - RATE_TABLE,
                  "gw_rl_evictions %s >= %d (distinct sources - table)" %
                  (t.get("gw_rl_evictions"), FLOOD_DISTINCT - RATE_TABLE))
        legit_delivery(res, "after", sent)
        # The rule still bites after all that churn.
        codes = []
        for _ in range(CONN_RATE):
            c = Client("198.18.0.60", 25)
            codes.append(c.code())
            quit_and_wait(c)
        res.check(codes == [220] * CONN_RATE, "after the flood: %d "
                  "connections from .60 greeted (%s)" %
                  (CONN_RATE, sorted(set(codes), key=str)))
        expect_421_close(res, Client("198.18.0.60", 25),
                         "after the flood: connection %d from .60" %
                         (CONN_RATE + 1))
        t = wait_sessions_idle(gw, res)
        res.check(t.get("gw_conn_denied_rate") == 1,
                  "gw_conn_denied_rate %s == 1" %
                  t.get("gw_conn_denied_rate"))
        # Left: the pooled backend connection(s) and TIME_WAIT of the
        # legitimate closes; nothing of the flood.
        try:
            x = gw.wait_for(lambda x: x.get("syn_rcvd", 1) == 0 and
                            x.get("live_tcbs", 1) ==
                            x.get("gw_backend_live", 0), 15,
                            "no flood TCB left")["total"]
            res.check(True, "no connection left open by the flood "
                      "(live TCBs %d = backend connections, TIME_WAIT %d)"
                      % (x["live_tcbs"], x.get("timewait", 0)))
        except AssertionError as e:
            res.check(False, str(e)[:300])
        ids = sink.message_ids()
        res.check(set(ids) == sent, "the backend got every legitimate "
                  "message (%d) and nothing else (%s)" % (len(sent),
                                                         sorted(ids)[:6]))
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if gw:
            gw.shutdown(res)
            gw.kill()
        sink.stop()


# ------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mxgate")
    ap.add_argument("scenario")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--mxgatectl", default=None)
    ap.add_argument("--flood-tool", default=None)
    a = ap.parse_args()
    a.mxgate = os.path.abspath(a.mxgate)
    fn = globals().get("scenario_" + a.scenario)
    if fn is None:
        ap.error("unknown scenario %s" % a.scenario)
    res = mxgtest.Result("policy-%s-c%d" % (a.scenario, a.cores))
    tmp = tempfile.mkdtemp(prefix="mxgt-pol-%s-" % a.scenario)
    os.chmod(tmp, 0o755)
    try:
        with mxgtest.Netns("pol" + a.scenario[:5]):
            try:
                fn(a, tmp, res)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res.check(False, "exception: %r" % e)
            finally:
                for gw in STARTED:
                    gw.kill()
    finally:
        if res.failures:
            tail = gw_log(tmp)[-4000:]
            if tail:
                log("--- mxgate log (tail) ---\n" + tail)
            for gw in STARTED:
                log("--- mxgate output (tail) ---\n" + gw.output()[-2000:])
            log("(kept %s for inspection)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
