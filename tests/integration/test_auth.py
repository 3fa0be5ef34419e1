#!/usr/bin/env python3
"""SMTP AUTH end to end (issue 14): swaks and a raw client against mxgate
in a network namespace the test creates (gateway 198.18.0.2, clients on
198.18.0.x of the tap's kernel side, backend smtp-sink on
198.18.0.1:2525). The swaks/brute/gssapi listeners that take PLAIN/LOGIN
in clear set auth_allow_cleartext = true; a listener without it must
neither offer nor accept them. The tls scenario runs the listeners the
embedded default has (no allow_cleartext, TLS from scripts/make-tls-certs.sh).

usage: test_auth.py MXGATE SCENARIO [--cores N]

Scenarios:
  swaks   PLAIN (initial response) and LOGIN (challenges) with swaks:
          235 and the message relayed to the backend with XCLIENT-free
          smtp-sink; a bad password 535 5.7.8, an unknown user 535; a
          submission listener with anonymous senders allowed refuses
          relaying (554 5.7.1) without AUTH and relays after it; the
          sender-login map refuses another user's sender (553 5.7.1);
          MAIL to the backend carries AUTH=<login>, or the client's
          own AUTH= as sent after AUTH, or AUTH=<> without AUTH (RFC
          4954 5);
          "*" aborts (501 5.7.0); AUTH in a transaction 503 5.5.1; a
          second AUTH 503; a listener without auth_allow_cleartext does
          not advertise AUTH and answers 538 5.7.11; counters and
          event=auth log lines.
  brute   one address sends bad passwords in a bounded loop (at most 12
          attempts): the replies after ip_delay_after are held (delayed),
          then AUTH gets 454 4.7.0 even with the right password; during
          the attack another address authenticates with swaks and
          delivers (its latency reported, not asserted). Then a flood:
          1,000 bad attempts from a third address over 8 parallel
          connections (bounded at 30 s) reach delay and lockout (454 for
          the rest); meanwhile the good address logs in and delivers and
          a fourth keeps a session answering NOOP (latencies printed).
  tls     PLAIN and LOGIN over STARTTLS on 587 (swaks --tls) and implicit
          TLS on 465 (swaks --tlsc): 235 and delivered, bad password and
          unknown user 535 5.7.8; EHLO on 587 offers AUTH only inside TLS,
          cleartext AUTH 538 5.7.11; 25 offers no AUTH; smtplib inside TLS
          on 587 and 465: "*" aborts PLAIN and LOGIN (501 5.7.0), PLAIN by
          challenge 235 and a second AUTH 503; on a submission listener
          open to anonymous senders relay 554 5.7.1 without AUTH, AUTH in
          the transaction 503 5.5.1, relay after AUTH; each authenticated
          message's Received: in the Maildir says "with ESMTPSA" and the MX
          one "with ESMTPS".
  gssapi  a real MIT KDC in the test's namespace (realm MXG.TEST), alice's
          ticket from kinit, the gateway's keytab for smtp/gw.mxgt.test:
          a python3-gssapi client (tools/gss_smtp_client.py, RFC 4752
          exchange with the security-layer negotiation) gets 235 and
          relays; 535 with the session still answering NOOP for: a token
          GSS-API rejects, a ticket for another service
          (smtp/other.mxgt.test), an expired ticket (4 s ticket, token sent
          after 6 s, clockskew 1), and, after a good login again, a ticket
          for a service key the gateway's keytab does not have (the
          KDC's key changed: stale kvno); then a PLAIN login still works.
"""

import argparse
import base64
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
import peers  # noqa: E402
import test_policy as tp  # noqa: E402
from mxgtest import GATEWAY_IP, log  # noqa: E402
from test_gateway import gw_log, smtp_pool  # noqa: E402

OURS = tp.OURS
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# "secret" for alice and bob: SHA-512 crypt (fast enough for a test;
# the store accepts $6$ as strong)
USERS = ("alice:$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8P"
         "SwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.\n"
         "bob:$6$bcdefghi$03lEkynWXwePgPwguTwz9kxINn1UXdGScak8eIOyM1X3Q6kT"
         "uqJeJajqL2A3w0cMQxbrXNgL3huzfx4872wa8/\n")
SENDER_MAP = "alice alice@%s, @alice.example\nbob bob@%s\n" % (OURS, OURS)


def plain(user, pw):
    return base64.b64encode(b"\0" + user.encode() + b"\0" +
                            pw.encode()).decode()


def raw_txn(c, sender, param, rcpt, mid):
    """MAIL with a parameter, one RCPT, DATA and a small body; the
    replies (the last one None when DATA was not reached)."""
    r1 = c.cmd("MAIL FROM:<%s>%s" % (sender, " " + param if param else ""))
    r2 = c.cmd("RCPT TO:<%s>" % rcpt)
    r3 = c.cmd("DATA")
    if r3[0] != 354:
        return (r1, r2, r3, None)
    c.send(peers.dot_stuff(peers.message(mid, sender, [rcpt])) + b".\r\n")
    return (r1, r2, r3, c.reply())


def swaks(port, src, user=None, pw=None, mech="PLAIN",
          sender="alice@" + OURS, to="x@far.example", timeout=40,
          tls=None):
    cmd = ["swaks", "--server", GATEWAY_IP, "--port", str(port),
           "--local-interface", src, "--from", sender, "--to", to,
           "--timeout", "30", "--helo", "client.mxgt.test"]
    if tls:                     # "--tls" (STARTTLS) or "--tlsc" (465)
        cmd.append(tls)
    if user:
        cmd += ["--auth", mech, "--auth-user", user, "--auth-password", pw]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def start(a, tmp, res, brute=None, gss=None, certs=None):
    users = os.path.join(tmp, "users")
    smap = os.path.join(tmp, "senders")
    with open(users, "w") as f:
        f.write(USERS)
    with open(smap, "w") as f:
        f.write(SENDER_MAP)
    auth = {"users_file": users, "sender_login_map": smap}
    if brute:
        auth["brute_force"] = brute
    sub = {}
    if gss:
        auth["gssapi"] = gss
        sub["auth_mechanisms"] = ["PLAIN", "LOGIN", "GSSAPI"]
    if certs:
        return start_tls(a, tmp, res, auth, certs)
    listeners = [
        tp.listener("mx", 25),
        tp.listener("sub", 587, role="submission", auth="required",
                    auth_allow_cleartext=True, **sub),
        tp.listener("subopen", 2528, role="submission", auth="optional",
                    allow_anonymous=True, auth_allow_cleartext=True),
        tp.listener("subtls", 2587, role="submission", auth="optional",
                    allow_anonymous=True),
    ]
    policy = {"accepted_domains": [OURS]}
    # the auth section goes beside policy: start_gateway writes `policy`;
    # pass it through the policy dict's sibling via a wrapper listener list
    orig = tp.write_config

    def write_config(path, top):
        top["auth"] = auth
        return orig(path, top)
    tp.write_config = write_config
    try:
        return tp.start_gateway(a, tmp, res, listeners, policy, tag="auth")
    finally:
        tp.write_config = orig


def start_tls(a, tmp, res, auth, certs):
    """Listeners as the embedded default has them (no
    auth_allow_cleartext): 25 MX with STARTTLS and no AUTH, 587
    submission with STARTTLS and AUTH required, 465 implicit TLS with
    AUTH required, 2587 submission open to anonymous senders (for the
    relay refusal); next hop a Maildir in tmp (for Received:)."""
    cert = [{"cert": "%s/ecdsa.crt" % certs, "key": "%s/ecdsa.key" % certs}]
    listeners = [
        tp.listener("mx", 25, tls="optional", certificates=cert),
        tp.listener("sub", 587, role="submission", tls="optional",
                    certificates=cert),
        tp.listener("smtps", 465, role="smtps", certificates=cert),
        tp.listener("subopen", 2587, role="submission", auth="optional",
                    allow_anonymous=True, tls="optional",
                    certificates=cert),
    ]
    md = os.path.join(tmp, "Maildir")
    orig = tp.write_config

    def write_config(path, top):
        top["auth"] = auth
        top["pools"] = [{"name": "default", "type": "maildir"}]
        top["maildir"] = {"path": md}
        return orig(path, top)
    tp.write_config = write_config
    try:
        return tp.start_gateway(a, tmp, res, listeners,
                                {"accepted_domains": [OURS]}, tag="auth")
    finally:
        tp.write_config = orig


def auth_lines(tmp):
    return [ln for ln in gw_log(tmp).splitlines() if "event=auth " in ln]


def scenario_swaks(a, tmp, res):
    sink = tp.make_sink(tmp, verbose=True)
    gw = None
    src = "198.18.0.10"
    try:
        gw = start(a, tmp, res)
        sink.start()
        tp.add_addrs([10])
        tp.wait_ready(res)

        rc, out = swaks(587, src, "alice", "secret", "PLAIN")
        res.check(rc == 0 and "235 2.7.0" in out,
                  "swaks --auth PLAIN on 587: 235 and delivered (rc %d)"
                  % rc)
        if rc:
            log(out[-1500:])
        rc, out = swaks(587, src, "alice", "secret", "LOGIN")
        res.check(rc == 0 and "334 VXNlcm5hbWU6" in out and
                  "235 2.7.0" in out,
                  "swaks --auth LOGIN on 587: challenges, 235, delivered "
                  "(rc %d)" % rc)
        rc, out = swaks(587, src, "alice", "wrong", "PLAIN")
        res.check(rc != 0 and "535 5.7.8" in out,
                  "bad password: 535 5.7.8 (rc %d)" % rc)
        rc, out = swaks(587, src, "mallory", "secret", "PLAIN")
        res.check(rc != 0 and "535 5.7.8" in out,
                  "unknown user: 535 5.7.8 (rc %d)" % rc)
        rc, out = swaks(2528, src)
        res.check(rc != 0 and "554 5.7.1" in out,
                  "relay without AUTH on a listener open to anonymous "
                  "senders: 554 5.7.1 (rc %d)" % rc)
        rc, out = swaks(2528, src, "alice", "secret")
        res.check(rc == 0, "the same relay after AUTH: delivered (rc %d)"
                  % rc)
        rc, out = swaks(587, src, "alice", "secret",
                        sender="bob@" + OURS)
        res.check(rc != 0 and "553 5.7.1" in out,
                  "alice sending as bob: 553 5.7.1 (rc %d)" % rc)
        rc, out = swaks(587, src, "alice", "secret",
                        sender="x@alice.example")
        res.check(rc == 0, "alice as @alice.example (map by domain): "
                  "delivered (rc %d)" % rc)

        # RFC 4954 5: the client's own AUTH= goes on as sent from an
        # authenticated client, and as AUTH=<> from any other
        c = tp.Client(src, 2528)
        c.ehlo()
        c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        t1 = raw_txn(c, "x@alice.example", "AUTH=x+2Bsub@alice.example",
                     "y@far.example", "<auth-param-1@mxgt.test>")
        c.quit()
        c = tp.Client(src, 2528)
        c.ehlo()
        t2 = raw_txn(c, "a@far.example", "AUTH=boss@far.example",
                     "y@" + OURS, "<auth-param-2@mxgt.test>")
        c.quit()
        res.check(t1[-1] and t1[-1][0] == 250 and t2[-1] and
                  t2[-1][0] == 250,
                  "MAIL with AUTH= after AUTH and without: both accepted "
                  "(%r / %r)" % (t1, t2))

        # raw client: abort, AUTH in a transaction, second AUTH
        c = tp.Client(src, 587)
        c.ehlo()
        r1 = c.cmd("AUTH PLAIN")
        r2 = c.cmd("*")
        res.check(r1[0] == 334 and r2[0] == 501 and "5.7.0" in r2[1],
                  "AUTH PLAIN then '*': 334, 501 5.7.0 (%r %r)" % (r1, r2))
        r3 = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        r4 = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        res.check(r3[0] == 235 and r4[0] == 503,
                  "AUTH 235, a second AUTH 503 (%r %r)" % (r3, r4))
        c.quit()
        c = tp.Client(src, 2528)
        c.ehlo()
        c.cmd("MAIL FROM:<a@%s>" % OURS)
        r5 = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        res.check(r5[0] == 503 and "5.5.1" in r5[1],
                  "AUTH inside a transaction: 503 5.5.1 (%r)" % (r5,))
        c.quit()
        # a listener without auth_allow_cleartext on a cleartext
        # connection
        c = tp.Client(src, 2587)
        e = c.ehlo()
        r6 = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        res.check("AUTH" not in c.caps and r6[0] == 538 and
                  "5.7.11" in r6[1],
                  "no allow_cleartext: AUTH not advertised (%r), 538 "
                  "5.7.11 (%r)" % (e[1].split("\n")[-1], r6))
        c.quit()

        t = tp.wait_sessions_idle(gw, res)
        res.check(t.get("gw_auth_ok_plain", 0) >= 5 and
                  t.get("gw_auth_ok_login") == 1 and
                  t.get("gw_auth_failed_plain") == 2 and
                  t.get("gw_mail_denied_login") == 1,
                  "counters: auth_ok_plain %s (>= 5), auth_ok_login %s (1), "
                  "auth_failed_plain %s (2), mail_denied_login %s (1)" %
                  (t.get("gw_auth_ok_plain"), t.get("gw_auth_ok_login"),
                   t.get("gw_auth_failed_plain"),
                   t.get("gw_mail_denied_login")))
        lines = auth_lines(tmp)
        res.check(any("result=ok" in ln and "user=alice" in ln and
                      "mech=LOGIN" in ln for ln in lines) and
                  any("result=failed" in ln and "user=mallory" in ln
                      for ln in lines),
                  "event=auth lines with user, mech and result (%d lines)"
                  % len(lines))
        n = len(sink.captured())
        res.check(n == 6, "the backend got the 6 accepted messages (%d)"
                  % n)
        mails = tp.sink_commands(sink, "MAIL")
        res.check(len(mails) == 6 and
                  all("AUTH=alice" in m for m in mails[:4]),
                  "RFC 4954 5: each MAIL to the backend (which offers "
                  "AUTH) carries AUTH=alice (%s)" % mails[:4])
        res.check(len(mails) == 6 and
                  mails[4].endswith(" AUTH=x+2Bsub@alice.example") and
                  "AUTH=alice" not in mails[4] and
                  mails[5].endswith(" AUTH=<>") and
                  "boss" not in mails[5],
                  "RFC 4954 5: the client's AUTH= goes on as sent after "
                  "AUTH, as AUTH=<> from an anonymous client (%s)"
                  % mails[4:])
    finally:
        if gw:
            gw.shutdown(res)
            gw.kill()
        sink.stop()


def scenario_brute(a, tmp, res):
    sink = tp.make_sink(tmp)
    gw = None
    bad, good = "198.18.0.10", "198.18.0.11"
    brute = {"ip_delay_after": 3, "ip_lockout_after": 6, "delay": 1,
             "max_delay": 1}
    try:
        gw = start(a, tmp, res, brute)
        sink.start()
        tp.add_addrs([10, 11])
        tp.wait_ready(res)
        c = tp.Client(bad, 587, timeout=20)
        c.ehlo()
        codes = []
        t_end = time.monotonic() + 30
        for i in range(12):       # bounded in count and in time
            if time.monotonic() > t_end:
                break
            r = c.cmd("AUTH PLAIN " + plain("alice", "guess%d" % i))
            codes.append(r[0])
            if r[0] == 454:
                break
            if i == 3:
                # during the attack: another address logs in and sends
                t0 = time.monotonic()
                rc, out = swaks(587, good, "alice", "secret")
                ms = (time.monotonic() - t0) * 1000
                res.check(rc == 0, "a client from another address "
                          "authenticates and delivers during the attack "
                          "(rc %d; took %.0f ms)" % (rc, ms))
                log("  legitimate login + delivery during the attack: "
                    "%.0f ms" % ms)
        res.check(codes[:6] == [535] * 6 and codes[-1] == 454,
                  "bad passwords: six 535 then 454 (%s)" % codes)
        r = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        res.check(r[0] == 454 and "4.7.0" in r[1],
                  "locked out: the right password gets 454 4.7.0 (%r)"
                  % (r,))
        c.quit()
        t = tp.wait_sessions_idle(gw, res)
        res.check(t.get("gw_auth_delayed", 0) >= 3 and
                  t.get("gw_auth_lockouts") == 1 and
                  t.get("gw_auth_locked", 0) >= 1,
                  "counters: auth_delayed %s (>= 3), auth_lockouts %s (1), "
                  "auth_locked %s (>= 1)" %
                  (t.get("gw_auth_delayed"), t.get("gw_auth_lockouts"),
                   t.get("gw_auth_locked")))
        lines = auth_lines(tmp)
        res.check(any("delay_ms=1000" in ln for ln in lines) and
                  "event=auth_lockout" in gw_log(tmp),
                  "log: delayed failures and the lockout")
        flood(a, gw, res, t)
    finally:
        if gw:
            gw.shutdown(res)
            gw.kill()
        sink.stop()


def tls_session(port, src, implicit=False):
    """smtplib over STARTTLS (or implicit TLS on 465) from src: returns
    the client after EHLO inside TLS, and the EHLO text before it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if implicit:
        c = smtplib.SMTP_SSL(GATEWAY_IP, port, source_address=(src, 0),
                             timeout=20, context=ctx)
        c.ehlo("client.mxgt.test")
        return c, ""
    c = smtplib.SMTP(GATEWAY_IP, port, source_address=(src, 0), timeout=20)
    code, before = c.ehlo("client.mxgt.test")
    c.starttls(context=ctx)
    c.ehlo("client.mxgt.test")
    return c, before.decode()


def scenario_tls(a, tmp, res):
    """PLAIN and LOGIN over STARTTLS on 587 and implicit TLS on 465 with
    swaks and smtplib on listeners without auth_allow_cleartext."""
    gw = None
    src = "198.18.0.10"
    certs = os.path.join(tmp, "tls")
    subprocess.run([os.path.join(ROOT, "scripts", "make-tls-certs.sh"),
                    certs, "gw.mxgt.test"], check=True, capture_output=True)
    try:
        gw = start(a, tmp, res, certs=certs)
        tp.add_addrs([10])
        tp.wait_ready(res)
        for port in (25, 587, 465, 2587):
            peers.wait_listen(GATEWAY_IP, port, timeout=20)
        delivered = 0
        for port, tls in ((587, "--tls"), (465, "--tlsc")):
            for mech in ("PLAIN", "LOGIN"):
                rc, out = swaks(port, src, "alice", "secret", mech, tls=tls)
                ok = rc == 0 and "235 2.7.0" in out
                if mech == "LOGIN":
                    ok = ok and "334 VXNlcm5hbWU6" in out
                res.check(ok, "swaks %s --auth %s on %d: 235, delivered "
                          "(rc %d)" % (tls, mech, port, rc))
                if rc:
                    log(out[-1500:])
                delivered += rc == 0
            rc, out = swaks(port, src, "alice", "wrong", tls=tls)
            res.check(rc != 0 and "535 5.7.8" in out,
                      "%d: bad password 535 5.7.8 (rc %d)" % (port, rc))
            rc, out = swaks(port, src, "mallory", "secret", "LOGIN",
                            tls=tls)
            res.check(rc != 0 and "535 5.7.8" in out,
                      "%d: unknown user 535 5.7.8 (rc %d)" % (port, rc))
        # 587 before STARTTLS: no AUTH offered; after it, offered
        rc, out = swaks(587, src, "alice", "secret", tls="--tls")
        delivered += rc == 0
        # swaks marks replies in clear "<-" and inside TLS "<~"
        clear = [ln for ln in out.splitlines() if ln.startswith("<-")]
        inside = [ln for ln in out.splitlines() if ln.startswith("<~")]
        res.check(rc == 0 and not any("AUTH" in ln for ln in clear) and
                  any("AUTH PLAIN LOGIN" in ln for ln in inside),
                  "587: EHLO offers AUTH only after STARTTLS (%s)" %
                  [ln for ln in out.splitlines() if "AUTH" in ln][:2])
        # 25 (MX) never offers AUTH, not even inside TLS
        rc, out = swaks(25, src, tls="--tls", to="x@" + OURS)
        res.check(rc == 0 and not any(ln.startswith(("<-", "<~")) and
                                      "AUTH" in ln
                                      for ln in out.splitlines()),
                  "25: MX delivers over STARTTLS, no AUTH offered "
                  "(rc %d)" % rc)
        delivered += rc == 0

        # cleartext AUTH on 587: refused 538 5.7.11
        c = tp.Client(src, 587)
        c.ehlo()
        r = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        res.check("AUTH" not in c.caps and r[0] == 538 and "5.7.11" in r[1],
                  "cleartext on 587: AUTH not advertised, 538 5.7.11 (%r)"
                  % (r,))
        c.quit()

        for port, implicit in ((587, False), (465, True)):
            c, before = tls_session(port, src, implicit)
            caps = c.esmtp_features.get("auth", "")
            res.check("PLAIN" in caps and "LOGIN" in caps,
                      "%d inside TLS: AUTH %s" % (port, caps))
            r1 = c.docmd("AUTH", "PLAIN")
            r2 = c.docmd("*")
            res.check(r1[0] == 334 and r2[0] == 501 and b"5.7.0" in r2[1],
                      "%d: AUTH PLAIN then '*': 334, 501 5.7.0 (%r %r)" %
                      (port, r1, r2))
            r1 = c.docmd("AUTH", "LOGIN")
            r2 = c.docmd(base64.b64encode(b"alice").decode())
            r3 = c.docmd("*")
            res.check(r1 == (334, b"VXNlcm5hbWU6") and r2[0] == 334 and
                      r3[0] == 501, "%d: LOGIN aborted at the password "
                      "step: 501 (%r)" % (port, r3))
            # challenge form of PLAIN
            r1 = c.docmd("AUTH", "PLAIN")
            r2 = c.docmd(plain("alice", "secret"))
            r3 = c.docmd("AUTH", "PLAIN " + plain("alice", "secret"))
            res.check(r1[0] == 334 and r2[0] == 235 and r3[0] == 503,
                      "%d: PLAIN by challenge 235, a second AUTH 503 "
                      "(%r %r)" % (port, r2, r3))
            c.quit()
        c, _ = tls_session(2587, src)
        r1 = c.docmd("MAIL", "FROM:<alice@%s>" % OURS)
        r2 = c.docmd("RCPT", "TO:<x@far.example>")
        r3 = c.docmd("AUTH", "PLAIN " + plain("alice", "secret"))
        res.check(r1[0] == 250 and r2[0] == 554 and b"5.7.1" in r2[1] and
                  r3[0] == 503 and b"5.5.1" in r3[1],
                  "2587 inside TLS without AUTH: relay 554 5.7.1 (%r), "
                  "AUTH in the transaction 503 5.5.1 (%r)" % (r2, r3))
        c.docmd("RSET")
        c.login("alice", "secret")
        c.sendmail("alice@" + OURS, ["x@far.example"],
                   "Subject: relayed\r\n\r\nafter AUTH\r\n")
        delivered += 1
        c.quit()

        t = tp.wait_sessions_idle(gw, res)
        res.check(t.get("gw_auth_ok_plain", 0) >= 4 and
                  t.get("gw_auth_ok_login", 0) == 2,
                  "counters: auth_ok_plain %s, auth_ok_login %s" %
                  (t.get("gw_auth_ok_plain"), t.get("gw_auth_ok_login")))
        d = os.path.join(tmp, "Maildir", "new")
        files = sorted(os.listdir(d)) if os.path.isdir(d) else []
        heads = []
        for n in files:
            with open(os.path.join(d, n), "rb") as f:
                heads.append(f.read(2048).decode("latin-1"))
        sa = sum("with ESMTPSA" in h for h in heads)
        res.check(len(files) == delivered and sa == delivered - 1 and
                  sum("with ESMTPS " in h or "with ESMTPS\r" in h or
                      "with ESMTPS\n" in h for h in heads) == 1,
                  "Maildir: %d messages (%d), %d say with ESMTPSA (the "
                  "authenticated ones), the MX one ESMTPS" %
                  (len(files), delivered, sa))
    finally:
        if gw:
            gw.shutdown(res)
            gw.kill()


def flood(a, gw, res, before):
    """1,000 bad AUTH attempts from one more address (198.18.0.12) over 8
    parallel connections (bounded: 1,000 attempts, 30 s): they reach the
    delay, then the lockout, and every later one gets 454 at once; during
    the flood 198.18.0.11 logs in and delivers (swaks) and 198.18.0.13
    keeps a session answering NOOPs (latencies printed, not asserted)."""
    import threading
    attacker, good, idle = "198.18.0.12", "198.18.0.11", "198.18.0.13"
    tp.add_addrs([12, 13])
    total, conns = 1000, 8
    codes = {}
    lock = threading.Lock()
    t_end = time.monotonic() + 30
    done = threading.Event()

    def attack(k):
        c = tp.Client(attacker, 587, timeout=20)
        if c.greeting is None:
            return
        c.ehlo()
        for i in range(total // conns):
            if time.monotonic() > t_end:
                break
            try:
                r = c.cmd("AUTH PLAIN " + plain("alice", "f%d-%d" % (k, i)))
            except Exception:  # noqa: BLE001
                break
            with lock:
                codes[r[0]] = codes.get(r[0], 0) + 1
        c.quit()

    noop_ms = []

    def noops():
        c = tp.Client(idle, 25, timeout=20)
        c.ehlo()
        while not done.is_set() and time.monotonic() < t_end:
            t0 = time.monotonic()
            r = c.cmd("NOOP")
            if r[0] == 250:
                noop_ms.append((time.monotonic() - t0) * 1000)
            time.sleep(0.05)
        c.quit()

    t0 = time.monotonic()
    threads = [threading.Thread(target=attack, args=(k,)) for k in
               range(conns)]
    nt = threading.Thread(target=noops)
    nt.start()
    for th in threads:
        th.start()
    time.sleep(0.2)
    t1 = time.monotonic()
    rc, out = swaks(587, good, "alice", "secret")
    ms = (time.monotonic() - t1) * 1000
    for th in threads:
        th.join(40)
    done.set()
    nt.join(40)
    secs = time.monotonic() - t0
    n = sum(codes.values())
    res.check(n == total and codes.get(454, 0) >= total - 10 and
              codes.get(535, 0) >= 1,
              "flood: %d bad attempts from %s in %.1f s over %d "
              "connections: %s (535 until the lockout, then 454)" %
              (n, attacker, secs, conns, codes))
    if codes.get(535, 0) > 6:
        log("  flood: %d attempts were checked before the lockout "
            "(ip_lockout_after 6): up to one per parallel connection is "
            "in flight when it trips" % codes[535])
    res.check(rc == 0 and "235 2.7.0" in out,
              "during the flood %s logs in as alice and delivers (rc %d, "
              "%.0f ms)" % (good, rc, ms))
    noop_ms.sort()
    log("  flood: legitimate login + delivery from another address "
        "during it: %.0f ms; another session's NOOP during it: %d "
        "replies, median %.1f ms, max %.1f ms" %
        (ms, len(noop_ms), noop_ms[len(noop_ms) // 2] if noop_ms else -1,
         noop_ms[-1] if noop_ms else -1))
    res.check(len(noop_ms) > 0, "another session kept answering NOOP "
              "during the flood (%d replies)" % len(noop_ms))
    t = tp.wait_sessions_idle(gw, res)
    res.check(t.get("gw_auth_delayed", 0) > before.get("gw_auth_delayed",
                                                         0),
              "the flood's failures past ip_delay_after were delayed "
              "(auth_delayed %s, was %s)" % (t.get("gw_auth_delayed"),
                                             before.get("gw_auth_delayed")))
    res.check(t.get("gw_auth_lockouts") == before.get("gw_auth_lockouts",
                                                      0) + 1 and
              t.get("gw_auth_locked", 0) - before.get("gw_auth_locked", 0)
              >= total - 10,
              "counters: one more lockout (%s), %d more refused while "
              "locked" % (t.get("gw_auth_lockouts"),
                          t.get("gw_auth_locked", 0) -
                          before.get("gw_auth_locked", 0)))


KDC_PORT = 8889
OTHER_HOST = "other.mxgt.test"
REALM = "MXG.TEST"
SVC_HOST = "gw.mxgt.test"


def kdc_start(tmp):
    """A real MIT KDC (krb5-kdc) on 127.0.0.1 of the test's namespace,
    realm MXG.TEST: alice (password alice-pw) and smtp/gw.mxgt.test in a
    keytab; alice's ticket in a cache. Returns (kdc process, keytab)."""
    d = os.path.join(tmp, "krb")
    os.makedirs(d)
    with open(os.path.join(d, "krb5.conf"), "w") as f:
        f.write("[libdefaults]\n default_realm = %s\n dns_lookup_kdc = "
                "false\n dns_lookup_realm = false\n rdns = false\n "
                "clockskew = 1\n "
                "dns_canonicalize_hostname = false\n[realms]\n %s = {\n"
                "  kdc = 127.0.0.1:%d\n }\n" % (REALM, REALM, KDC_PORT))
    with open(os.path.join(d, "kdc.conf"), "w") as f:
        f.write("[kdcdefaults]\n kdc_ports = %d\n kdc_tcp_ports = %d\n"
                "[realms]\n %s = {\n  database_name = %s/principal\n"
                "  key_stash_file = %s/stash\n  acl_file = %s/kadm5.acl\n"
                "  max_life = 1h\n  supported_enctypes = "
                "aes256-cts-hmac-sha1-96:normal\n }\n[logging]\n kdc = "
                "FILE:%s/kdc.log\n" % (KDC_PORT, KDC_PORT, REALM, d, d, d,
                                        d))
    open(os.path.join(d, "kadm5.acl"), "w").close()
    os.environ["KRB5_CONFIG"] = os.path.join(d, "krb5.conf")
    os.environ["KRB5_KDC_PROFILE"] = os.path.join(d, "kdc.conf")
    os.environ["KRB5CCNAME"] = "FILE:" + os.path.join(d, "cc")
    keytab = os.path.join(d, "smtp.keytab")
    mxgtest.sh("kdb5_util", "create", "-s", "-r", REALM, "-P", "master-pw")
    for q in ("addprinc -pw alice-pw alice",
              "addprinc -randkey smtp/%s" % SVC_HOST,
              "addprinc -randkey smtp/%s" % OTHER_HOST,
              "ktadd -k %s smtp/%s" % (keytab, SVC_HOST)):
        mxgtest.sh("kadmin.local", "-r", REALM, "-q", q)
    kdc = subprocess.Popen(["krb5kdc", "-n"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    for _ in range(20):
        r = subprocess.run(["kinit", "alice"], input="alice-pw\n",
                           capture_output=True, text=True, timeout=10)
        if r.returncode == 0:
            break
        time.sleep(0.5)
    return kdc, keytab, r.returncode == 0


def kadmin(q):
    mxgtest.sh("kadmin.local", "-r", REALM, "-q", q)


def kinit(*extra):
    return subprocess.run(["kinit"] + list(extra) + ["alice"],
                          input="alice-pw\n", capture_output=True, text=True,
                          timeout=10).returncode == 0


def gss_client(src, *extra, host=SVC_HOST):
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "tools", "gss_smtp_client.py")
    r = subprocess.run(["/usr/bin/python3", tool, GATEWAY_IP, "587", src,
                        host] + list(extra),
                       capture_output=True, text=True, timeout=40)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        log("gss client: rc %d\n%s\n%s" % (r.returncode, r.stdout,
                                             r.stderr[-1500:]))
        return {}


def scenario_gssapi(a, tmp, res):
    sink = tp.make_sink(tmp)
    gw = None
    kdc = None
    src = "198.18.0.10"
    try:
        kdc, keytab, ok = kdc_start(tmp)
        res.check(ok, "KDC up, kinit alice")
        gw = start(a, tmp, res, gss={
            "keytab": keytab, "service": "smtp/%s@%s" % (SVC_HOST, REALM),
            "realm": REALM})
        sink.start()
        tp.add_addrs([10])
        tp.wait_ready(res)
        out = gss_client(src)
        auth = out.get("auth") or [0, ""]
        res.check("GSSAPI" in (out.get("ehlo") or [0, ""])[1] and
                  auth[0] == 235,
                  "AUTH GSSAPI with a ticket for smtp/%s: 235 (%r)" %
                  (SVC_HOST, auth))
        res.check((out.get("dot") or [0])[0] == 250,
                  "the Kerberos-authenticated client relays a message "
                  "(%r)" % (out.get("dot"),))
        def fails(out, what):
            auth = out.get("auth") or [0, ""]
            noop = out.get("noop") or [0, ""]
            res.check(auth[0] == 535 and noop[0] == 250,
                      "%s: 535, and the session still answers NOOP 250 "
                      "(%r %r)" % (what, auth, noop))

        fails(gss_client(src, "--garbage"), "a token GSS-API cannot accept")
        fails(gss_client(src, host=OTHER_HOST),
              "a ticket for another service (smtp/%s)" % OTHER_HOST)
        # expired: a 4 s ticket, the token made at once and sent after 6 s
        # (krb5.conf clockskew = 1, read by mxgate's acceptor too)
        subprocess.run(["kdestroy"], capture_output=True)
        res.check(kinit("-l", "4s"), "kinit -l 4s alice")
        fails(gss_client(src, "--delay", "6"), "an expired ticket")
        subprocess.run(["kdestroy"], capture_output=True)
        res.check(kinit(), "kinit alice again")
        out = gss_client(src)
        res.check((out.get("auth") or [0])[0] == 235,
                  "after those failures a good ticket still gets 235 (%r)"
                  % (out.get("auth"),))
        # wrong keytab: the service key changes in the KDC (a new kvno in
        # another keytab); the gateway's keytab keeps the old one
        kadmin("ktadd -k %s/krb/new.keytab smtp/%s" % (tmp, SVC_HOST))
        subprocess.run(["kdestroy"], capture_output=True)
        res.check(kinit(), "kinit alice (a ticket for the new key)")
        fails(gss_client(src), "a ticket the gateway's keytab has no key "
              "for (stale kvno)")
        rc, sw = swaks(587, src, "alice", "secret")
        res.check(rc == 0 and "235 2.7.0" in sw,
                  "the process keeps serving: PLAIN login and delivery "
                  "(rc %d)" % rc)
        t = tp.wait_sessions_idle(gw, res)
        res.check(t.get("gw_auth_ok_gssapi") == 2 and
                  t.get("gw_auth_failed_gssapi") == 4,
                  "counters: auth_ok_gssapi %s (2), auth_failed_gssapi %s "
                  "(4)" % (t.get("gw_auth_ok_gssapi"),
                           t.get("gw_auth_failed_gssapi")))
        res.check(any("mech=GSSAPI" in ln and "user=alice " in ln and
                      "result=ok" in ln for ln in auth_lines(tmp)),
                  "event=auth mech=GSSAPI user=alice (realm stripped)")
    finally:
        if gw:
            gw.shutdown(res)
            gw.kill()
        sink.stop()
        if kdc:
            kdc.kill()
            kdc.wait()


def admin_call(path, **req):
    """One JSON request on the admin socket; its reply."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    try:
        s.connect(path)
        f = s.makefile("rwb")
        f.write((json.dumps(req) + "\n").encode())
        f.flush()
        return json.loads(f.readline())
    finally:
        s.close()


def scenario_policy(a, tmp, res):
    """XCLIENT LOGIN= to a backend that offers XCLIENT; 504 for a
    mechanism the listener does not offer; the `user` rate key (alice
    limited to 2 messages, bob counted apart); the users file reloaded
    with the policy (carol refused, added, reload, accepted)."""
    be = peers.StallServer(tp.KERNEL_IP, tp.BACKEND_PORT, stall_at="dot",
                           stall_count=0, xclient=True)
    gw = None
    src = "198.18.0.10"
    users = os.path.join(tmp, "users")
    smap = os.path.join(tmp, "senders")
    with open(users, "w") as f:
        f.write(USERS)
    with open(smap, "w") as f:
        f.write(SENDER_MAP)
    auth = {"users_file": users, "sender_login_map": smap}
    listeners = [
        tp.listener("mx", 25),
        tp.listener("sub", 587, role="submission", auth="required",
                    auth_allow_cleartext=True, auth_mechanisms=["PLAIN"]),
    ]
    policy = {"accepted_domains": [OURS],
              "rate_limits": [{"name": "per_user", "key": "user",
                               "what": "messages", "per_minute": 2,
                               "burst": 2}]}
    orig = tp.write_config

    def write_config(path, top):
        top["auth"] = auth
        top["pools"] = [smtp_pool("default", client_info="xclient")]
        return orig(path, top)
    tp.write_config = write_config
    try:
        gw = tp.start_gateway(a, tmp, res, listeners, policy, tag="auth")
        be.start()
        tp.add_addrs([10])
        tp.wait_ready(res)

        c = tp.Client(src, 587)
        c.ehlo()
        r1 = c.cmd("AUTH LOGIN")
        r2 = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        # RFC 4954 4: a mechanism the listener does not offer is "not
        # supported": 504 (534 is the SASL machine's answer for a known
        # mechanism its policy refuses; the engine answers first here)
        res.check(r1[0] == 504 and "5.5.4" in r1[1] and r2[0] == 235,
                  "AUTH LOGIN where only PLAIN is offered: 504 5.5.4, "
                  "then PLAIN 235 (%r %r)" % (r1, r2))
        sent = [raw_txn(c, "alice@" + OURS, "", "y@far.example",
                        "<rl-%d@mxgt.test>" % i) for i in range(3)]
        c.quit()
        codes = [t[0][0] for t in sent]
        res.check(codes[:2] == [250, 250] and codes[2] == 451 and
                  sent[0][-1] and sent[0][-1][0] == 250 and
                  sent[1][-1] and sent[1][-1][0] == 250,
                  "key user, 2 messages a minute: alice's third MAIL 451 "
                  "(%s)" % codes)
        c = tp.Client(src, 587)
        c.ehlo()
        c.cmd("AUTH PLAIN " + plain("bob", "secret"))
        t = raw_txn(c, "bob@" + OURS, "", "y@far.example",
                    "<rl-bob@mxgt.test>")
        c.quit()
        res.check(t[-1] and t[-1][0] == 250,
                  "bob from the same address has his own bucket: "
                  "delivered (%r)" % (t,))

        xc = [ln for _, ln in be.commands if ln.startswith("XCLIENT")]
        res.check(any(" LOGIN=alice" in ln for ln in xc) and
                  any(" LOGIN=bob" in ln for ln in xc),
                  "XCLIENT to the backend names the login (%s)" % xc[:3])
        res.check(len(be.messages) == 3,
                  "the backend got the 3 accepted messages (%d)"
                  % len(be.messages))

        # the users file is reloaded with the policy
        carol = "carol:" + USERS.split("\n")[0].split(":", 1)[1] + "\n"
        c = tp.Client(src, 587)
        c.ehlo()
        r = c.cmd("AUTH PLAIN " + plain("carol", "secret"))
        c.quit()
        res.check(r[0] == 535, "carol before the reload: 535 (%r)" % (r,))
        with open(users, "a") as f:
            f.write(carol)
        rr = admin_call(a.admin_sock, cmd="reload")
        res.check(rr.get("ok") is True, "reload accepted (%s)"
                  % str(rr)[-200:])
        r = None
        t_end = time.time() + 5
        while time.time() < t_end:
            c = tp.Client(src, 587)
            c.ehlo()
            r = c.cmd("AUTH PLAIN " + plain("carol", "secret"))
            c.quit()
            if r[0] == 235:
                break
            time.sleep(0.2)
        res.check(r and r[0] == 235,
                  "carol after the reload: 235 (%r)" % (r,))
    finally:
        tp.write_config = orig
        if gw:
            gw.shutdown(res)
            gw.kill()
        be.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mxgate")
    ap.add_argument("scenario")
    ap.add_argument("--cores", type=int, default=1)
    a = ap.parse_args()
    a.mxgate = os.path.abspath(a.mxgate)
    fn = globals().get("scenario_" + a.scenario)
    if fn is None:
        ap.error("unknown scenario %s" % a.scenario)
    res = mxgtest.Result("auth-%s-c%d" % (a.scenario, a.cores))
    tmp = tempfile.mkdtemp(prefix="mxgt-auth-%s-" % a.scenario)
    os.chmod(tmp, 0o755)
    try:
        with mxgtest.Netns("auth" + a.scenario[:5]):
            try:
                fn(a, tmp, res)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res.check(False, "exception: %r" % e)
            finally:
                for gw in tp.STARTED:
                    gw.kill()
    finally:
        if res.failures:
            tail = gw_log(tmp)[-4000:]
            if tail:
                log("--- mxgate log (tail) ---\n" + tail)
            log("(kept %s for inspection)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
