#!/usr/bin/env python3
"""TLS on the gateway's client connections (issue 13), with real peers, in a
network namespace the test creates (mxgate on a net_tap port at 198.18.0.2,
the kernel side and every client at 198.18.0.1). Certificates: a test CA and
ECDSA/RSA leaves made by scripts/make-tls-certs.sh in a temporary directory.

usage: test_tls.py MXGATE SCENARIO [--cores N]

Listeners: 25 tls "optional", 2525 tls "required", 465 role "smtps"
(implicit TLS, anonymous senders allowed for the test), 2526 "optional"
without RFC 2920 enforcement, next hop the Maildir.

Scenarios:
  clients   swaks --tls on 25; openssl s_client -starttls smtp on 25 and
            on 465 (chain verified against the test CA, TLS 1.3 and 1.2);
            Python smtplib starttls() + sendmail on 25 and SMTP_SSL on
            465 with special bodies (dot lines, 998-octet lines, 8-bit,
            sizes around record and segment boundaries up to 256 KiB),
            every body byte-exact in the Maildir and its Received: saying
            "with ESMTPS" and the cipher; 530 5.7.0 on the required
            listener for MAIL, RCPT, DATA, BDAT (chunk skipped) and AUTH
            before STARTTLS, then the same session delivers after it;
            TLS 1.1 refused (openssl s_client -tls1_1 fails, the
            gateway counts a version failure); counters by version
  boundary  STARTTLS injection (CVE-2011-0411): "STARTTLS\\r\\nRSET\\r\\n" in
            one write gets 554 where synchronisation is enforced (25) and
            never gets an answer inside TLS where it is not (2526): the
            first reply inside TLS is the 503 to a MAIL sent before EHLO
            (the session was reset, RFC 3207 4.2), and EHLO inside TLS no
            longer offers STARTTLS; RSET sent in clear after the 220
            (before the ClientHello) fails the handshake as not TLS and
            never gets a 250
  abandon   400 clients (bounded in time) that stop mid-handshake: a
            partial ClientHello then close, a full ClientHello then reset,
            STARTTLS then close; then a full session still delivers, and
            with every connection gone no TLS transport is left
            (tls_live 0, sessions_live 0), handshakes are counted, and
            mxgate stops cleanly (ASan/LSan: no leaked SSL or job)
  flood     --flood N (2000) connections at once, each stopped halfway
            through its handshake (465: full ClientHello then RST, 40
            octets of it then FIN, full one then stall; 25: STARTTLS then
            half a ClientHello then stall), all N holding a TLS transport
            together (tls_live = N); then, with the stalled half still
            open, --messages M (1000) messages over STARTTLS on 25 (6
            threads, 5 per session, 300 octets to 40 KB) byte-exact in
            the Maildir; then no TLS transport or session left,
            handshakes counted (exactly M/5 ok), clean shutdown (ASan)
  reload    certificate reload under load: 8 sessions inside DATA on
            the old certificate, 3 threads of STARTTLS sessions (one
            message each) looping; the config is rewritten to name new
            certificates from a new CA and SIGHUPed; once every core runs
            the new generation, every new connection's certificate
            (SHA-256 of the DER) is a new one; the 8 finish their DATA
            and deliver on the old one; no load session failed, every
            message delivered; s_client verifies against the new CA
  resume    tls.workers = 3 gives 3 mxg-worker threads (and says so at
            start); openssl s_client -sess_out, then -sess_in (-ign_eof:
            until the gateway closes) reports "Reused" for TLS 1.2 and
            1.3 tickets, STARTTLS on 25 and implicit on 465, and the
            TLS 1.3 ticket a resumed session got resumes again; every
            resumption counted (gw_tls_resumed) and logged resumed=yes;
            on 2 cores the tickets of 198.18.0.1's core are also resumed
            from other source addresses until the other core served one
  backend   STARTTLS to backends (pools routed by recipient domain): a
            real Postfix smtpd with the test certificate
            (smtpd_tls_security_level = may) behind a pool with tls
            "required", CA and name: two messages delivered over TLS
            (Postfix logs "TLS connection established from", mxgate
            event=backend_tls verified=yes), XCLIENT inside TLS; the same
            Postfix behind a wrong pin and behind a wrong tls_name, and
            smtp-sink (no STARTTLS) behind "required": 4xx to the client
            and no message at either backend; smtp-sink behind
            "opportunistic": delivered in clear. The pool sends a client
            certificate, which Postfix (smtpd_tls_ask_ccert) verifies
            ("Trusted TLS connection established from")
"""

import argparse
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
import peers  # noqa: E402
from mxgtest import log  # noqa: E402

GW = mxgtest.GATEWAY_IP
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STARTED = []


def make_certs(tmp):
    d = os.path.join(tmp, "tls")
    subprocess.run([os.path.join(ROOT, "scripts", "make-tls-certs.sh"), d,
                    "gw.mxgt.test"], check=True, capture_output=True)
    return d


def write_config(path, tmp, certs, extra=""):
    md = os.path.join(tmp, "Maildir")
    c = ('( { cert = "%s/ecdsa.crt"; key = "%s/ecdsa.key"; },\n'
         '    { cert = "%s/rsa.crt"; key = "%s/rsa.key"; } )'
         % (certs, certs, certs, certs))
    text = """
listeners = (
  { name = "mx"; port = 25; role = "mx"; tls = "optional";
    certificates = %s; },
  { name = "req"; port = 2525; role = "mx"; tls = "required";
    certificates = %s; },
  { name = "smtps"; port = 465; role = "smtps";
    allow_anonymous = true; require_auth = false;
    certificates = %s; },
  { name = "loose"; port = 2526; role = "mx"; tls = "optional";
    pipelining_enforce = false; certificates = %s; }
);
pools = ( { name = "default"; type = "maildir"; } );
maildir = { path = "%s"; };
policy = { accepted_domains = ( "example.com" ); };
%s
""" % (c, c, c, c, md, extra)
    with open(path, "w") as f:
        f.write(text)
    return md


def start(a, tmp, extra=""):
    certs = make_certs(tmp)
    conf = os.path.join(tmp, "tls.conf")
    md = write_config(conf, tmp, certs, extra)
    logf = os.path.join(tmp, "mxgate.log")
    gw = mxgtest.Mxgate(a.mxgate, ["--config", conf, "--maildir", md,
                                   "--log-file", logf, "--cores",
                                   str(a.cores), "--metrics",
                                   "127.0.0.1:9183"])
    STARTED.append(gw)
    gw.start()
    for port in (25, 2525, 465, 2526):
        peers.wait_listen(GW, port, timeout=20)
    return gw, certs, md, logf


def client_ctx(certs):
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    ctx.check_hostname = False  # the name is checked by s_client below
    return ctx


def maildir_files(md):
    d = os.path.join(md, "new")
    return [os.path.join(d, n) for n in sorted(os.listdir(d))] \
        if os.path.isdir(d) else []


def find_by_id(md, msgid):
    for p in maildir_files(md):
        if peers.message_id_of(p) == "<%s>" % msgid:
            return p
    return None


def wait_idle(gw, timeout=20):
    return gw.wait_for(lambda t: t["gw_sessions_live"] == 0 and
                       t["gw_tls_live"] == 0, timeout,
                       "no session and no TLS transport left")["total"]


def recv_reply(f):
    """One SMTP reply (all its lines) from a file-like object."""
    lines = []
    while True:
        ln = f.readline()
        if not ln:
            return lines
        lines.append(ln.decode(errors="replace").rstrip("\r\n"))
        if len(ln) < 4 or ln[3:4] != b"-":
            return lines


def raw_starttls(port, what):
    """A raw client: greeting, EHLO, then `what` (STARTTLS and whatever
    follows it in the same write). Returns (socket, its file, the reply
    to `what`)."""
    s = mxgtest.connect(GW, port)
    f = s.makefile("rb")
    recv_reply(f)
    s.sendall(b"EHLO raw.mxgt.test\r\n")
    recv_reply(f)
    s.sendall(what)
    return s, f, recv_reply(f)


def close_all(*objs):
    """Closes sockets and their makefile() objects: a socket with an open
    file object is not really closed (no FIN)."""
    for o in objs:
        try:
            o.close()
        except OSError:
            pass


def s_client(args, stdin=b"QUIT\r\n", timeout=15):
    r = subprocess.run(["openssl", "s_client"] + args, input=stdin,
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace") + \
        r.stderr.decode(errors="replace")


# ---------------------------------------------------------------- clients


def scenario_clients(a, tmp, res):
    gw, certs, md, logf = start(a, tmp)
    ca = os.path.join(certs, "ca.pem")
    try:
        t0 = gw.stats()["total"]
        # swaks --tls on 25 (optional)
        r = subprocess.run(["swaks", "--server", GW, "--port", "25", "--tls",
                            "--tls-verify", "--tls-ca-path", ca,
                            "--tls-sni", "gw.mxgt.test",
                            "--from", "s@example.org",
                            "--to", "postmaster@example.com",
                            "--header", "Message-ID: <swaks-tls@mxgt.test>",
                            "--timeout", "20"],
                           capture_output=True, text=True, timeout=60)
        res.check(r.returncode == 0 and "<~  250 2.0.0" in r.stdout,
                  "swaks --tls on 25 delivered (exit %d)" % r.returncode)
        if r.returncode != 0:
            log(r.stdout[-2000:] + r.stderr[-1000:])
        # openssl s_client, STARTTLS on 25 and implicit on 465, verified
        for args, what in (
                (["-starttls", "smtp", "-connect", GW + ":25"],
                 "s_client -starttls smtp on 25"),
                (["-connect", GW + ":465"], "s_client on 465"),
                (["-connect", GW + ":465", "-tls1_2"],
                 "s_client -tls1_2 on 465")):
            rc, out = s_client(args + ["-CAfile", ca, "-verify_return_error",
                                       "-verify_hostname", "gw.mxgt.test",
                                       "-servername", "gw.mxgt.test",
                                       "-brief"])
            want = "TLSv1.2" if "-tls1_2" in args else "TLSv1.3"
            res.check(rc == 0 and "Verification: OK" in out and
                      ("Protocol version: " + want) in out,
                      "%s: handshake %s, chain verified against the test "
                      "CA (rc %d)" % (what, want, rc))
            if rc != 0:
                log(out[-1500:])
        # RSA certificate chosen when the client offers only RSA
        rc, out = s_client(["-connect", GW + ":465", "-tls1_2", "-cipher",
                            "ECDHE-RSA-AES128-GCM-SHA256", "-CAfile", ca,
                            "-brief"])
        res.check(rc == 0 and "RSA" in out,
                  "an RSA-only TLS 1.2 client gets the RSA certificate "
                  "(rc %d)" % rc)
        # smtplib starttls() + sendmail on 25, SMTP_SSL on 465: bodies
        sent = {}
        bodies = peers.special_bodies()
        for i, (tag, body) in enumerate(bodies):
            port = 25 if i % 2 == 0 else 465
            mid = "tls-%s-%d@mxgt.test" % (tag, port)
            msg = peers.with_headers(mid, "s@example.org",
                                     ["postmaster@example.com"], body)
            try:
                if port == 25:
                    c = smtplib.SMTP(GW, 25, local_hostname="py.mxgt.test",
                                     timeout=30)
                    c.ehlo()
                    c.starttls(context=client_ctx(certs))
                    c.ehlo()
                else:
                    c = smtplib.SMTP_SSL(GW, 465,
                                         local_hostname="py.mxgt.test",
                                         context=client_ctx(certs),
                                         timeout=30)
                    c.ehlo()
                # smtplib sends bytes as they are: CRLF line ends
                c.sendmail("s@example.org", ["postmaster@example.com"],
                           msg.replace(b"\n", b"\r\n"))
                c.quit()
                sent[mid] = msg
            except Exception as e:  # noqa: BLE001
                res.check(False, "smtplib %s on %d: %r" % (tag, port, e))
        bad = []
        for mid, msg in sent.items():
            p = find_by_id(md, mid)
            if not p:
                bad.append((mid, "missing"))
                continue
            data = peers.read_file(p)
            why = peers.body_mismatch(data, msg)
            if why:
                bad.append((mid, why))
            head = data.split(b"\n\n", 1)[0].decode(errors="replace")
            if not re.search(r"\(using TLSv1\.3 with cipher TLS_\w+ "
                             r"\(\d+/\d+ bits\)\)\n\tby .* with ESMTPS id",
                             head):
                bad.append((mid, "Received: " + head[:300]))
        res.check(len(sent) == len(bodies) and not bad,
                  "smtplib over STARTTLS (25) and 465: %d/%d messages "
                  "byte-exact in the Maildir with Received: ... with ESMTPS "
                  "and the cipher (bad: %s)" % (len(sent) - len(bad),
                                                len(bodies), bad[:3]))
        # required TLS: 530 before STARTTLS, then the same session
        # delivers
        s = mxgtest.connect(GW, 2525)
        f = s.makefile("rb")
        greet = recv_reply(f)
        s.sendall(b"EHLO raw.mxgt.test\r\n")
        ehlo = recv_reply(f)
        res.check(any("STARTTLS" in ln for ln in ehlo),
                  "required listener advertises STARTTLS")
        got = {}
        for cmd in (b"MAIL FROM:<s@example.org>", b"RCPT TO:<postmaster@"
                    b"example.com>", b"DATA", b"AUTH PLAIN AGFAYg=="):
            s.sendall(cmd + b"\r\n")
            got[cmd.split()[0].decode()] = recv_reply(f)[-1]
        s.sendall(b"BDAT 5 LAST\r\nhello")
        got["BDAT"] = recv_reply(f)[-1]
        s.sendall(b"NOOP\r\n")
        noop = recv_reply(f)[-1]
        res.check(greet and all(v.startswith("530 5.7.0 Must issue a "
                                             "STARTTLS command first")
                                for v in got.values()),
                  "MAIL, RCPT, DATA, AUTH and BDAT get 530 5.7.0 before "
                  "STARTTLS (%s)" % got)
        res.check(noop.startswith("250"),
                  "the refused BDAT chunk was skipped, not parsed as "
                  "commands (NOOP: %r)" % noop)
        s.sendall(b"STARTTLS\r\n")
        st = recv_reply(f)[-1]
        res.check(st.startswith("220"), "STARTTLS: %r" % st)
        ts = client_ctx(certs).wrap_socket(s, server_hostname="gw.mxgt.test")
        tf = ts.makefile("rb")
        ts.sendall(b"EHLO raw.mxgt.test\r\n")
        recv_reply(tf)
        lines = []
        mid = "tls-required@mxgt.test"
        for cmd in (b"MAIL FROM:<s@example.org>",
                    b"RCPT TO:<postmaster@example.com>", b"DATA"):
            ts.sendall(cmd + b"\r\n")
            lines.append(recv_reply(tf)[-1])
        ts.sendall(b"Message-ID: <" + mid.encode() + b">\r\n\r\nafter "
                   b"TLS\r\n.\r\n")
        lines.append(recv_reply(tf)[-1])
        ts.sendall(b"QUIT\r\n")
        recv_reply(tf)
        close_all(tf, ts, f, s)
        res.check([ln[:3] for ln in lines] == ["250", "250", "354", "250"]
                  and find_by_id(md, mid) is not None,
                  "after STARTTLS the same session delivers on the "
                  "required listener (%s)" % lines)
        # TLS 1.1: refused by the gateway (the client is allowed to offer
        # it: SECLEVEL=0), a version failure counted
        rc, out = s_client(["-connect", GW + ":465", "-tls1_1", "-cipher",
                            "DEFAULT@SECLEVEL=0"], stdin=b"")
        res.check(rc != 0, "openssl s_client -tls1_1 fails (rc %d)" % rc)
        try:
            gw.wait_for(lambda t: t["gw_tls_fail_version"] >
                        t0["gw_tls_fail_version"], 10, "tls_fail_version")
            refused = True
        except AssertionError:
            refused = False
        res.check(refused, "the gateway refused TLS 1.1 itself "
                  "(tls_fail_version counted)")
        t = wait_idle(gw)
        n_ok = t["gw_tls_handshakes"] - t0["gw_tls_handshakes"]
        v12 = t["gw_tls_tlsv1_2"] - t0["gw_tls_tlsv1_2"]
        v13 = t["gw_tls_tlsv1_3"] - t0["gw_tls_tlsv1_3"]
        res.check(v12 == 2 and v13 == n_ok - 2 and
                  n_ok >= 3 + len(bodies) + 1,
                  "handshakes counted by version: %d ok, TLS 1.2 %d, "
                  "TLS 1.3 %d" % (n_ok, v12, v13))
        import urllib.request
        m = urllib.request.urlopen("http://127.0.0.1:9183/metrics",
                                   timeout=10).read().decode()
        res.check(re.search(r'^mxgate_tls_handshakes_total\{result="ok",'
                            r'version="TLSv1\.2"\} 2$', m, re.M) and
                  re.search(r'^mxgate_tls_handshake_failures_total\{reason='
                            r'"version"\} [1-9]', m, re.M) and
                  re.search(r'^mxgate_tls_sessions_open 0$', m, re.M),
                  "Prometheus: handshakes by version, failures by reason, "
                  "open TLS sessions")
        with open(logf) as lf:
            lines = [ln for ln in lf if "event=session" in ln]
        res.check(any(re.search(r" tls=TLSv1\.3 cipher=TLS_\w+ bits=\d+ "
                                r"sni=gw\.mxgt\.test resumed=(yes|no)", ln)
                      for ln in lines) and
                  any(" tls=failed tls_reason=version" in ln for ln in lines),
                  "session log lines carry tls=, cipher=, sni= and the "
                  "failure reason")
    finally:
        gw.shutdown(res)


# ---------------------------------------------------------------- boundary


def scenario_boundary(a, tmp, res):
    gw, certs, md, logf = start(a, tmp)
    try:
        t0 = gw.stats()["total"]
        # STARTTLS and RSET in one write. Where RFC 2920 synchronisation
        # is enforced (the default) that is refused outright:
        s, f, st = raw_starttls(25, b"STARTTLS\r\nRSET\r\n")
        res.check(len(st) == 1 and st[0].startswith("554 5.5.0"),
                  "enforced listener: STARTTLS+RSET in one write gets 554 "
                  "and no 220 (%s)" % st)
        close_all(f, s)
        # where it is not, the boundary drops the RSET:
        s, f, st = raw_starttls(2526, b"STARTTLS\r\nRSET\r\n")
        res.check(len(st) == 1 and st[0].startswith("220"),
                  "one 220 to STARTTLS, nothing for RSET in clear (%s)" % st)
        ts = client_ctx(certs).wrap_socket(s, server_hostname="gw.mxgt.test")
        tf = ts.makefile("rb")
        ts.sendall(b"MAIL FROM:<s@example.org>\r\n")
        first = recv_reply(tf)
        ts.sendall(b"EHLO raw.mxgt.test\r\n")
        ehlo = recv_reply(tf)
        res.check(first and first[-1].startswith("503 5.5.1 Error: send "
                                                 "HELO/EHLO first"),
                  "the first reply inside TLS is the 503 to our MAIL: the "
                  "pipelined RSET got no answer and the session was reset "
                  "to before EHLO (%s)" % first)
        res.check(ehlo and ehlo[0].startswith("250-") and
                  not any("STARTTLS" in ln for ln in ehlo),
                  "EHLO again inside TLS: no STARTTLS offered any more")
        ts.sendall(b"QUIT\r\n")
        recv_reply(tf)
        close_all(tf, ts, f, s)
        # RSET in clear after the 220, before the ClientHello
        s, f, _ = raw_starttls(2526, b"STARTTLS\r\n")
        s.sendall(b"RSET\r\n")
        s.settimeout(10)
        data = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        except (socket.timeout, ConnectionResetError):
            pass
        close_all(f, s)
        res.check(b"250" not in data,
                  "RSET after the 220 goes to the TLS layer, never to SMTP "
                  "(got %r, then the connection ended)" % data[:40])
        try:
            gw.wait_for(lambda t: t["gw_tls_fail_protocol"] >
                        t0["gw_tls_fail_protocol"], 10, "tls_fail_protocol")
        except AssertionError:
            pass
        t = wait_idle(gw)
        res.check(t["gw_tls_fail_protocol"] - t0["gw_tls_fail_protocol"] >= 1,
                  "the cleartext RSET failed the handshake as not TLS "
                  "(tls_fail_protocol +%d)" % (t["gw_tls_fail_protocol"] -
                                               t0["gw_tls_fail_protocol"]))
    finally:
        gw.shutdown(res)


# ---------------------------------------------------------------- abandon


def client_hello(certs):
    """A real ClientHello's bytes (TLS 1.3, from Python's ssl)."""
    ctx = client_ctx(certs)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="gw.mxgt.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def scenario_abandon(a, tmp, res):
    gw, certs, md, logf = start(a, tmp)
    try:
        t0 = gw.stats()["total"]
        hello = client_hello(certs)
        n = 0
        deadline = time.time() + 25
        kinds = {"partial": 0, "full-rst": 0, "starttls": 0}
        while n < 400 and time.time() < deadline:
            kind = ("partial", "full-rst", "starttls")[n % 3]
            try:
                if kind == "starttls":
                    s, f, _ = raw_starttls(25, b"STARTTLS\r\n")
                    s.sendall(hello[:len(hello) // 2])
                    close_all(f, s)
                else:
                    s = mxgtest.connect(GW, 465)
                    if kind == "partial":
                        s.sendall(hello[:40])
                        s.close()
                    else:
                        s.sendall(hello)
                        # RST while the worker may hold the session
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
                        s.close()
                kinds[kind] += 1
            except OSError as e:
                log("  client %d (%s): %r" % (n, kind, e))
            n += 1
        log("  %d clients gone mid-handshake: %s" % (n, kinds))
        # a full session still works
        c = smtplib.SMTP_SSL(GW, 465, local_hostname="py.mxgt.test",
                             context=client_ctx(certs), timeout=30)
        mid = "after-abandon@mxgt.test"
        c.sendmail("s@example.org", ["postmaster@example.com"],
                   peers.message(mid, "s@example.org",
                                 ["postmaster@example.com"]).replace(
                                     b"\n", b"\r\n"))
        c.quit()
        res.check(find_by_id(md, mid) is not None,
                  "after %d abandoned handshakes a full session delivers" % n)
        t = wait_idle(gw, timeout=30)
        d = {k: t[k] - t0[k] for k in ("gw_tls_jobs", "gw_tls_jobs_abandoned",
                                        "gw_tls_handshakes",
                                        "gw_tls_handshakes_failed")}
        log("  counters: %s, tls_live %d" % (d, t["gw_tls_live"]))
        res.check(n >= 100 and sum(kinds.values()) == n,
                  "%d clients stopped mid-handshake (at least 100)" % n)
        res.check(t["gw_tls_live"] == 0 and t["gw_sessions_live"] == 0,
                  "no TLS transport and no session left once every "
                  "connection is gone")
        res.check(d["gw_tls_jobs"] >= kinds["full-rst"] and
                  d["gw_tls_handshakes"] >= 1,
                  "every full ClientHello went to a worker (%d jobs for %d)"
                  % (d["gw_tls_jobs"], kinds["full-rst"]))
    finally:
        st = gw.shutdown(res)
        if st:
            res.check(st["total"].get("gw_tls_live", -1) == 0,
                      "final stats: tls_live 0 after shutdown")


# ------------------------------------------------------------------ flood

FLOOD_KINDS = ("full-rst", "partial-fin", "full-stall", "starttls-stall")


def flood_open(n, hello, deadline):
    """n connections at once, each stopped halfway through its handshake:
    on 465 a full ClientHello then RST, 40 octets of it then FIN, or a
    full one then nothing; on 25 greeting, EHLO, STARTTLS, 220, half a
    ClientHello then nothing. Every socket stays open until its hello
    part is out (so the n are in flight together). Returns
    ({kind: [sockets]} of those whose part went out, errors)."""
    import selectors
    sel = selectors.DefaultSelector()
    done = {k: [] for k in FLOOD_KINDS}
    errors = 0
    pending = 0
    for i in range(n):
        kind = FLOOD_KINDS[i % 4]
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex((GW, 25 if kind == "starttls-stall" else 465))
        except OSError:
            errors += 1
            s.close()
            continue
        # state: what we wait for next
        sel.register(s, selectors.EVENT_WRITE, [kind, "connect", b""])
        pending += 1
    while pending and time.time() < deadline:
        for key, ev in sel.select(timeout=0.5):
            s, st = key.fileobj, key.data
            kind = st[0]
            try:
                if st[1] == "connect":
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        raise OSError("connect failed")
                    if kind == "starttls-stall":
                        st[1] = "greeting"
                        sel.modify(s, selectors.EVENT_READ, st)
                        continue
                    s.send(hello[:40] if kind == "partial-fin" else hello)
                else:
                    b = s.recv(4096)
                    if not b:
                        raise OSError("closed by the gateway")
                    st[2] += b
                    last = st[2].rstrip(b"\r\n").split(b"\r\n")[-1]
                    if not st[2].endswith(b"\r\n") or last[3:4] == b"-":
                        continue  # the reply is not complete
                    st[2] = b""
                    if st[1] == "greeting":
                        s.send(b"EHLO flood.mxgt.test\r\n")
                        st[1] = "ehlo"
                        continue
                    if st[1] == "ehlo":
                        s.send(b"STARTTLS\r\n")
                        st[1] = "starttls"
                        continue
                    if not last.startswith(b"220"):
                        raise OSError("STARTTLS: %r" % last)
                    s.send(hello[:len(hello) // 2])
            except OSError:
                errors += 1
                sel.unregister(s)
                s.close()
                pending -= 1
                continue
            sel.unregister(s)
            done[kind].append(s)
            pending -= 1
    for key in list(sel.get_map().values()):
        errors += 1
        key.fileobj.close()
    sel.close()
    return done, errors


def flood_sender(certs, md_msgs, k, per_session, sizes, out, deadline):
    """Sessions over STARTTLS on 25, `per_session` messages each, for
    message numbers k, k + T, ... in md_msgs (a shared list of ids)."""
    ctx = client_ctx(certs)
    while time.time() < deadline:
        batch = []
        with FLOOD_LOCK:
            while md_msgs and len(batch) < per_session:
                batch.append(md_msgs.pop())
        if not batch:
            return
        try:
            c = smtplib.SMTP(GW, 25, local_hostname="flood.mxgt.test",
                             timeout=30)
            c.starttls(context=ctx)
            c.ehlo()
            for i in batch:
                mid = "flood-%d@mxgt.test" % i
                msg = peers.with_headers(
                    mid, "s@example.org", ["postmaster@example.com"],
                    peers.sized_body(sizes[i % len(sizes)], seed=i))
                c.sendmail("s@example.org", ["postmaster@example.com"],
                           msg.replace(b"\n", b"\r\n"))
                out[mid] = msg
            c.quit()
        except Exception as e:  # noqa: BLE001
            log("  sender %d: %r" % (k, e))
            out.setdefault("errors", []).append(repr(e))


FLOOD_LOCK = None


def scenario_flood(a, tmp, res):
    """a.flood parallel handshakes stopped halfway, then a.messages
    messages over STARTTLS while half of them still hang; byte-exact in
    the Maildir, no TLS transport left, counters right."""
    import resource
    import threading
    global FLOOD_LOCK
    FLOOD_LOCK = threading.Lock()
    want = a.flood + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft),
                                                     max(want, hard)))
    gw, certs, md, logf = start(a, tmp)
    stalled = []
    try:
        t0 = gw.stats()["total"]
        hello = client_hello(certs)
        t_start = time.time()
        done, errors = flood_open(a.flood, hello, time.time() + 25)
        n_open = sum(len(v) for v in done.values())
        log("  flood: %d of %d halfway in %.1f s (%s), %d errors" % (
            n_open, a.flood, time.time() - t_start,
            {k: len(v) for k, v in done.items()}, errors))
        res.check(n_open == a.flood and errors == 0,
                  "%d parallel handshakes stopped halfway, every one open "
                  "at once (%d errors)" % (n_open, errors))
        # every one of them holds a TLS transport on the gateway now
        try:
            peak = gw.wait_for(lambda t: t["gw_tls_live"] - t0["gw_tls_live"]
                               >= n_open, 20, "tls_live")["total"]
        except AssertionError:
            peak = gw.stats()["total"]
        res.check(peak["gw_tls_live"] == n_open,
                  "gw_tls_live %d with the %d half handshakes in flight"
                  % (peak["gw_tls_live"], n_open))
        # half go: RST after a full hello, FIN after a partial one
        for s in done["full-rst"]:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            s.close()
        for s in done["partial-fin"]:
            s.close()
        stalled = done["full-stall"] + done["starttls-stall"]
        # the messages, while the other half still hang
        ids = list(range(a.messages))
        sent = {}
        sizes = [300, 1500, 4096, 16000, 17000, 40000, 9000, 700]
        deadline = time.time() + 40
        th = [threading.Thread(target=flood_sender,
                               args=(certs, ids, k, 5, sizes, sent,
                                     deadline)) for k in range(6)]
        t1 = time.time()
        for t in th:
            t.start()
        for t in th:
            t.join(50)
        errs = sent.pop("errors", [])
        log("  %d messages in %.1f s (%d errors)" % (len(sent),
                                                     time.time() - t1,
                                                     len(errs)))
        bad = []
        by_id = {}
        for p in maildir_files(md):
            by_id[peers.message_id_of(p)] = p
        for mid, msg in sent.items():
            p = by_id.get("<%s>" % mid)
            why = "missing" if p is None else \
                peers.body_mismatch(peers.read_file(p), msg)
            if why:
                bad.append((mid, why))
        res.check(len(sent) == a.messages and not errs and not bad,
                  "%d/%d messages over STARTTLS byte-exact in the Maildir "
                  "with %d handshakes still hanging (bad: %s, errors: %s)"
                  % (len(sent) - len(bad), a.messages, len(stalled),
                     bad[:3], errs[:3]))
        res.check(len(by_id) == len(sent),
                  "no other file in the Maildir (%d files)" % len(by_id))
        close_all(*stalled)
        stalled = []
        t = wait_idle(gw, timeout=30)
        d = {k: t[k] - t0[k] for k in (
            "gw_tls_jobs", "gw_tls_jobs_abandoned", "gw_tls_jobs_refused",
            "gw_tls_handshakes", "gw_tls_handshakes_failed",
            "gw_tls_resumed")}
        log("  counters: %s" % d)
        n_sessions = (a.messages + 4) // 5
        res.check(t["gw_tls_live"] == 0 and t["gw_sessions_live"] == 0,
                  "no TLS transport and no session left")
        res.check(d["gw_tls_handshakes"] == n_sessions and
                  d["gw_tls_resumed"] == 0,
                  "handshakes ok: exactly the %d sending sessions (%d)"
                  % (n_sessions, d["gw_tls_handshakes"]))
        # A core's job ring holds 1024: a flood faster than the workers
        # gets some handshakes refused (failed, closed) instead of
        # queued without bound; the senders' all went through (above).
        res.check(d["gw_tls_jobs"] + d["gw_tls_jobs_refused"] >=
                  len(done["full-rst"]) + len(done["full-stall"]) +
                  n_sessions and d["gw_tls_jobs_refused"] <= n_open,
                  "every full ClientHello went to a worker or was refused "
                  "on a full ring (%d jobs, %d refused)"
                  % (d["gw_tls_jobs"], d["gw_tls_jobs_refused"]))
        res.check(d["gw_tls_handshakes_failed"] <= n_open,
                  "failed handshakes at most the flood (%d for %d)"
                  % (d["gw_tls_handshakes_failed"], n_open))
    finally:
        close_all(*stalled)
        st = gw.shutdown(res)
        if st:
            res.check(st["total"].get("gw_tls_live", -1) == 0,
                      "final stats: tls_live 0 after shutdown")


# ----------------------------------------------------------------- reload


def cert_fp(path):
    import hashlib
    der = ssl.PEM_cert_to_DER_cert(open(path).read())
    return hashlib.sha256(der).hexdigest()


def tls_session(certs_any, port=25):
    """A STARTTLS session on port (certificate not verified: the test
    compares fingerprints). Returns (smtplib object, peer fingerprint)."""
    import hashlib
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = smtplib.SMTP(GW, port, local_hostname="reload.mxgt.test", timeout=30)
    c.starttls(context=ctx)
    c.ehlo()
    der = c.sock.getpeercert(binary_form=True)
    return c, hashlib.sha256(der).hexdigest()


def scenario_reload(a, tmp, res):
    """Certificate reload under load: sessions in flight (TLS up, inside
    DATA) keep going across a reload that swaps every certificate, and
    deliver; load threads see the old certificate before and the new one
    after; every connection opened once all cores run the new generation
    gets the new one."""
    import threading
    gw, certs, md, logf = start(a, tmp)
    new = os.path.join(tmp, "tls-new")
    subprocess.run([os.path.join(ROOT, "scripts", "make-tls-certs.sh"), new,
                    "gw.mxgt.test"], check=True, capture_output=True)
    # the gateway picks ECDSA or RSA by the client's offer: either counts
    fp_old = {cert_fp(os.path.join(certs, n)) for n in ("ecdsa.crt",
                                                           "rsa.crt")}
    fp_new = {cert_fp(os.path.join(new, n)) for n in ("ecdsa.crt",
                                                         "rsa.crt")}
    stop = threading.Event()
    seen = []    # (connect time, fingerprint, delivered)
    errors = []
    lock = threading.Lock()

    def load(k):
        i = 0
        deadline = time.time() + 40
        while not stop.is_set() and time.time() < deadline:
            t = time.time()
            try:
                c, fp = tls_session(certs)
                mid = "reload-load-%d-%d@mxgt.test" % (k, i)
                c.sendmail("s@example.org", ["postmaster@example.com"],
                           peers.message(mid, "s@example.org",
                                         ["postmaster@example.com"],
                                         2000, seed=i).replace(b"\n",
                                                               b"\r\n"))
                c.quit()
                with lock:
                    seen.append((t, fp, mid))
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(repr(e))
            i += 1

    inflight = []
    th = []
    try:
        # sessions in flight: TLS up, DATA started, half the body sent
        for k in range(8):
            c, fp = tls_session(certs)
            c.mail("s@example.org")
            c.rcpt("postmaster@example.com")
            code, _ = c.docmd("DATA")
            mid = "reload-inflight-%d@mxgt.test" % k
            msg = peers.message(mid, "s@example.org",
                                ["postmaster@example.com"], 8000,
                                seed=k).replace(b"\n", b"\r\n")
            c.send(msg[:len(msg) // 2])
            inflight.append((c, fp, code, mid, msg))
        res.check(all(x[1] in fp_old and x[2] == 354 for x in inflight),
                  "8 sessions in flight inside DATA on the old certificate")
        th = [threading.Thread(target=load, args=(k,)) for k in range(3)]
        for t in th:
            t.start()
        time.sleep(1.5)
        # swap every certificate: the config now names the new files
        conf = os.path.join(tmp, "tls.conf")
        write_config(conf, tmp, new)
        g0 = gw.stats()["policy"]["generation"]
        os.kill(gw.proc.pid, signal.SIGHUP)
        deadline = time.time() + 20
        while time.time() < deadline:
            st = gw.stats()
            if st["policy"]["generation"] > g0 and all(
                    c.get("policy_generation") == st["policy"]["generation"]
                    for c in st["per_core"]):
                break
            time.sleep(0.1)
        t_swapped = time.time()
        res.check(st["policy"]["generation"] > g0 and
                  st["policy"].get("reloads_failed", 0) == 0,
                  "SIGHUP: new generation %s on every core"
                  % st["policy"]["generation"])
        time.sleep(1.5)
        stop.set()
        for t in th:
            t.join(60)
        # the sessions in flight finish, on the old certificate
        ok = 0
        for c, fp, code, mid, msg in inflight:
            try:
                c.send(msg[len(msg) // 2:] + b".\r\n")
                r = c.getreply()
                fp_now = __import__("hashlib").sha256(
                    c.sock.getpeercert(binary_form=True)).hexdigest()
                c.quit()
                ok += r[0] == 250 and fp_now in fp_old and \
                    find_by_id(md, mid) is not None
            except Exception as e:  # noqa: BLE001
                log("  in flight %s: %r" % (mid, e))
        res.check(ok == len(inflight),
                  "%d/%d sessions in flight across the reload delivered, "
                  "still on the old certificate" % (ok, len(inflight)))
        after = [x for x in seen if x[0] > t_swapped]
        n_old = sum(1 for x in seen if x[1] in fp_old)
        n_new = sum(1 for x in seen if x[1] in fp_new)
        log("  load: %d sessions (%d old cert, %d new), %d after the "
            "swap, %d errors" % (len(seen), n_old, n_new, len(after),
                                 len(errors)))
        res.check(not errors and n_old + n_new == len(seen) and n_old > 0
                  and n_new > 0,
                  "load across the reload: every session on the old or the "
                  "new certificate, none failed (%d old, %d new, errors %s)"
                  % (n_old, n_new, errors[:3]))
        res.check(after and all(x[1] in fp_new for x in after),
                  "every one of the %d connections opened after the swap "
                  "got the new certificate" % len(after))
        missing = [x[2] for x in seen if find_by_id(md, x[2]) is None]
        res.check(not missing, "every load message delivered (%d missing)"
                  % len(missing))
        rc, o = s_client(["-starttls", "smtp", "-connect", GW + ":25",
                          "-CAfile", os.path.join(new, "ca.pem"),
                          "-verify_return_error", "-servername",
                          "gw.mxgt.test", "-ign_eof"])
        res.check(rc == 0 and "Verification: OK" in o,
                  "openssl s_client verifies the new chain (new CA) after "
                  "the reload (rc %d)" % rc)
        wait_idle(gw)
    finally:
        stop.set()
        for t in th:
            t.join(60)
        gw.shutdown(res)


# ----------------------------------------------------------------- resume


def worker_threads(pid):
    """How many mxg-worker-N threads the process runs."""
    n = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                n += f.read().startswith("mxg-worker")
        except OSError:
            pass
    return n


def core_counter(gw, key):
    return [c.get(key, 0) for c in gw.stats()["per_core"]]


def scenario_resume(a, tmp, res):
    """tls.workers sizes the pool; openssl s_client -sess_out then
    -sess_in resumes (TLS 1.2 and 1.3 tickets, STARTTLS on 25 and 465);
    on 2 cores until a resumption was served by each core."""
    gw, certs, md, logf = start(a, tmp, "tls = { workers = 3; };")
    ca = os.path.join(certs, "ca.pem")
    try:
        out = gw.output()
        res.check(re.search(r"worker pool: 3 threads \(tls\.workers", out)
                  is not None and worker_threads(gw.proc.pid) == 3,
                  "tls.workers = 3: start-up says 3 threads and 3 "
                  "mxg-worker threads run (%d)" % worker_threads(gw.proc.pid))
        t0 = gw.stats()["total"]
        pc0 = core_counter(gw, "gw_tls_resumed")
        # -ign_eof: read until the gateway closes after QUIT. Without it
        # s_client closes as soon as its own side of the handshake is
        # done, which for a TLS 1.2 resumption is before the gateway has
        # read the client's Finished (a handshake abandoned, not resumed)
        # and for TLS 1.3 may be before the ticket arrives.
        base = ["-CAfile", ca, "-verify_return_error", "-ign_eof",
                "-servername", "gw.mxgt.test"]
        n_resumed = 0
        for port, ver in ((25, "-tls1_2"), (25, "-tls1_3"),
                          (465, "-tls1_2"), (465, "-tls1_3")):
            what = "%s on %d" % (ver[1:], port)
            args = base + [ver, "-connect", "%s:%d" % (GW, port)]
            if port == 25:
                args += ["-starttls", "smtp"]
            sess = os.path.join(tmp, "sess-%d%s" % (port, ver))
            rc, o = s_client(args + ["-sess_out", sess])
            res.check(rc == 0 and "New, TLSv1." in o and
                      os.path.exists(sess) and os.path.getsize(sess) > 0,
                      "%s: full handshake, session saved (rc %d)"
                      % (what, rc))
            if rc != 0 or not os.path.exists(sess):
                log(o[-2500:])
            # a few resumptions: on 2 cores they land on either core
            tries = 3 if a.cores == 1 else 4
            reused = 0
            for _ in range(tries):
                rc, o = s_client(args + ["-sess_in", sess])
                reused += rc == 0 and "Reused, TLSv1." in o
            n_resumed += reused
            res.check(reused == tries, "%s: %d/%d reconnections with "
                      "-sess_in report Reused" % (what, reused, tries))
            # TLS 1.3: a resumed session hands out a fresh ticket that
            # resumes in turn (clients use a ticket once: without it
            # every other reconnection would be a full handshake). TLS
            # 1.2 keeps its session (above); s_client saves no session
            # for a resumed TLS 1.2 handshake.
            if ver != "-tls1_3":
                continue
            sess2 = sess + ".2"
            rc, o = s_client(args + ["-sess_in", sess, "-sess_out", sess2])
            ok = rc == 0 and "Reused, TLSv1." in o
            rc, o = s_client(args + ["-sess_in", sess2])
            ok2 = rc == 0 and "Reused, TLSv1." in o
            n_resumed += ok + ok2
            res.check(ok and ok2, "%s: the ticket a resumed session got "
                      "resumes too (%s, %s)" % (what, ok, ok2))
        if a.cores > 1:
            # A client's connections all go to one core (steering by
            # source address): every ticket above was issued by the core
            # of 198.18.0.1. Resume them from other source addresses
            # until each core has served at least one (16 addresses; the
            # steering seed is random).
            for i, ver in enumerate(["-tls1_3", "-tls1_2"] * 8):
                if 0 not in [b - a0 for a0, b in zip(
                        pc0, core_counter(gw, "gw_tls_resumed"))]:
                    break
                src = "198.18.0.%d" % (20 + i)
                mxgtest.sh("ip", "addr", "add", src + "/24", "dev",
                           gw.tap)
                port = 465 if i % 4 < 2 else 25
                sess = os.path.join(tmp, "sess-%d%s" % (port, ver))
                args = base + [ver, "-connect", "%s:%d" % (GW, port),
                               "-bind", src + ":0", "-sess_in", sess]
                if port == 25:
                    args += ["-starttls", "smtp"]
                rc, o = s_client(args)
                n_resumed += rc == 0 and "Reused, TLSv1." in o
                time.sleep(0.3)  # the stats file is written every 100 ms
        wait_idle(gw)
        # the cores publish their counters on their own schedule
        try:
            t = gw.wait_for(lambda t: t["gw_tls_resumed"] -
                            t0["gw_tls_resumed"] >= n_resumed, 10,
                            "gw_tls_resumed")["total"]
        except AssertionError:
            t = gw.stats()["total"]
        pc = [b - a0 for a0, b in zip(pc0, core_counter(gw,
                                                         "gw_tls_resumed"))]
        d = t["gw_tls_resumed"] - t0["gw_tls_resumed"]
        res.check(d == n_resumed, "gw_tls_resumed counts every resumption "
                  "(%d for %d; per core %s)" % (d, n_resumed, pc))
        if a.cores > 1:
            res.check(all(x > 0 for x in pc),
                      "resumption with one ticket key ring on both cores "
                      "(per core %s)" % pc)
        deadline = time.time() + 10  # the logger thread writes late
        while True:
            with open(logf) as lf:
                yes = sum(1 for ln in lf if "event=session" in ln and
                          " resumed=yes" in ln)
            if yes >= n_resumed or time.time() > deadline:
                break
            time.sleep(0.2)
        res.check(yes == n_resumed, "%d session log lines say resumed=yes "
                  "(%d resumed)" % (yes, n_resumed))
    finally:
        gw.shutdown(res)


# ------------------------------------------------------------------ backend

PF_PORT = 10025
SINK_PORT = 10026


def client_cert(d):
    """A client certificate (clientAuth) from the test CA, for the pool
    whose backend asks for one."""
    k, csr, ext, crt = (os.path.join(d, "client." + x)
                        for x in ("key", "csr", "ext", "crt"))
    subprocess.run(["openssl", "req", "-new", "-nodes", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", k,
                    "-out", csr, "-subj", "/O=mxgate test/CN=gw.mxgt.test"],
                   check=True, capture_output=True)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA",
                    os.path.join(d, "ca.pem"), "-CAkey",
                    os.path.join(d, "ca.key"), "-CAcreateserial", "-days",
                    "30", "-sha256", "-extfile", ext, "-out", crt],
                   check=True, capture_output=True)
    return crt, k


def backend_config(path, tmp, certs, wrong_pin, ccert):
    ca = os.path.join(certs, "ca.pem")

    def pool(name, dom, port, extra):
        # XCLIENT to Postfix (inside TLS); smtp-sink does not take it
        ci = "xclient" if port == PF_PORT else "none"
        return ('  { name = "%s"; type = "smtp"; client_info = "%s";\n'
                '    domains = [ "%s" ];\n'
                '    servers = ( { address = "198.18.0.1"; port = %d; } );\n'
                '    %s }' % (name, ci, dom, port, extra))
    pools = ",\n".join([
        pool("tls", "tls.example", PF_PORT,
             'tls = "required"; tls_ca_file = "%s"; '
             'tls_name = "backend.mxgt.test";\n'
             '    tls_cert = "%s"; tls_key = "%s";' % ((ca,) + ccert)),
        pool("pin", "pin.example", PF_PORT,
             'tls = "required"; tls_fingerprint = "%s";' % wrong_pin),
        pool("name", "name.example", PF_PORT,
             'tls = "required"; tls_ca_file = "%s"; '
             'tls_name = "other.mxgt.test";' % ca),
        pool("sink", "sink.example", SINK_PORT,
             'tls = "required"; tls_ca_file = "%s"; '
             'tls_name = "backend.mxgt.test";' % ca),
        pool("opp", "opp.example", SINK_PORT, 'tls = "opportunistic";'),
    ])
    text = """
listeners = ( { name = "mx"; port = 25; role = "mx"; } );
pools = (
%s
);
default_pool = "tls";
policy = { relay_networks = [ "198.18.0.0/15" ]; };
""" % pools
    with open(path, "w") as f:
        f.write(text)


def scenario_backend(a, tmp, res):
    d = os.path.join(tmp, "tls")
    subprocess.run([os.path.join(ROOT, "scripts", "make-tls-certs.sh"), d,
                    "backend.mxgt.test"], check=True, capture_output=True)
    # a pin that is not Postfix's certificate (it serves ecdsa.crt)
    fp = subprocess.run(["openssl", "x509", "-in", os.path.join(d, "rsa.crt"),
                         "-noout", "-fingerprint", "-sha256"], check=True,
                        capture_output=True, text=True).stdout
    wrong_pin = fp.strip().split("=", 1)[1]
    # test material: Postfix's smtpd (not root) reads the key
    os.chmod(d, 0o755)
    os.chmod(os.path.join(d, "ecdsa.key"), 0o644)
    conf = os.path.join(tmp, "backend.conf")
    backend_config(conf, tmp, d, wrong_pin, client_cert(d))
    logf = os.path.join(tmp, "mxgate.log")
    gw = mxgtest.Mxgate(a.mxgate, ["--config", conf, "--log-file", logf,
                                   "--cores", str(a.cores)])
    STARTED.append(gw)
    pf = peers.Postfix(listen="198.18.0.1:%d" % PF_PORT, main_extra={
        "smtpd_tls_cert_file": os.path.join(d, "ecdsa.crt"),
        "smtpd_tls_key_file": os.path.join(d, "ecdsa.key"),
        "smtpd_tls_security_level": "may",
        "smtpd_tls_loglevel": "1",
        # asks for a client certificate: "Trusted TLS connection" when
        # the gateway's verifies against the CA
        "smtpd_tls_ask_ccert": "yes",
        "smtpd_tls_CAfile": os.path.join(d, "ca.pem"),
    })
    cap = os.path.join(tmp, "capture")
    sink = peers.SmtpSink("198.18.0.1", SINK_PORT, capture_dir=cap,
                          out_path=os.path.join(tmp, "sink.out"))
    try:
        gw.start()
        peers.wait_listen(GW, 25, timeout=20)
        pf.start()
        sink.start()

        def send(rcpt, mid):
            c = peers.SmtpClient(GW, 25, timeout=40)
            c.ehlo("client.mxgt.test")
            r = c.transaction("sender@client.mxgt.test", [rcpt],
                              peers.message(mid, "sender@client.mxgt.test",
                                            [rcpt], 2000))
            c.quit()
            log("  %s -> rcpt %s dot %s" % (rcpt, r["rcpts"], r["dot"]))
            return r

        ok_ids = []
        for i in range(2):
            mid = "tls-ok-%d@mxgt.test" % i
            r = send("user%d@tls.example" % i, mid)
            res.check(r["dot"] is not None and r["dot"][0] == 250,
                      "required+CA+name to Postfix: message %d accepted "
                      "(%s)" % (i, r["dot"]))
            ok_ids.append("<%s>" % mid)
        for dom, what in (("pin.example", "pin mismatch"),
                          ("name.example", "wrong tls_name"),
                          ("sink.example", "no STARTTLS offered")):
            r = send("user@" + dom, "tls-bad-%s@mxgt.test" % dom[:4])
            codes = [x[0] for x in r["rcpts"]] + \
                ([r["dot"][0]] if r["dot"] else [])
            res.check(r["dot"] is None and len(r["rcpts"]) == 1 and
                      r["rcpts"][0][0] // 100 == 4,
                      "%s: 4xx to the client, never 250 (%s)" % (what, codes))
        r = send("user@opp.example", "tls-opp@mxgt.test")
        res.check(r["dot"] is not None and r["dot"][0] == 250,
                  "opportunistic to smtp-sink (no STARTTLS): delivered in "
                  "clear")
        files = pf.wait_delivered(2, 30)
        time.sleep(1)
        # (Postfix's own notices to the postmaster land there too)
        got = sorted(m for m in (peers.message_id_of(p)
                                 for p in pf.delivered())
                     if m and m.startswith("<tls-"))
        res.check(got == sorted(ok_ids),
                  "Postfix holds exactly the two TLS messages: %s" % got)
        ids = sink.message_ids()
        res.check(list(ids) == ["<tls-opp@mxgt.test>"],
                  "smtp-sink holds only the opportunistic message: %s"
                  % list(ids))
        with open(pf.logfile, errors="replace") as f:
            pflog = f.read()
        n_tls = len(re.findall(r"TLS connection established from", pflog))
        res.check(n_tls >= 1, "Postfix logs %d TLS connections from the "
                  "gateway" % n_tls)
        n_trusted = len(re.findall(r"Trusted TLS connection established "
                                   r"from", pflog))
        res.check(n_trusted >= 2, "Postfix verified the gateway's client "
                  "certificate (%d \"Trusted TLS connection\")" % n_trusted)
        t = gw.wait_for(lambda t: t.get("gw_backend_tls_failed", 0) >= 2,
                        20, "two failed backend handshakes")["total"]
        log("  counters: handshakes %s failed %s missing %s cleartext %s"
            % (t.get("gw_backend_tls_handshakes"),
               t.get("gw_backend_tls_failed"),
               t.get("gw_backend_tls_missing"),
               t.get("gw_backend_tls_cleartext")))
        res.check(t.get("gw_backend_tls_handshakes", 0) >= 1 and
                  t.get("gw_backend_tls_missing", 0) >= 1 and
                  t.get("gw_backend_tls_cleartext", 0) >= 1,
                  "backend TLS counters: handshakes, missing, cleartext")
        with open(logf, errors="replace") as f:
            glog = f.read()
        res.check(re.search(r"event=backend_tls backend=198\.18\.0\.1:%d "
                            r"tls=TLSv1\.[23] .*verified=yes" % PF_PORT,
                            glog) is not None,
                  "mxgate logs the verified backend handshake")
        res.check("reason=peer_cert" in glog,
                  "mxgate logs the refused certificate (reason=peer_cert)")
    finally:
        gw.shutdown(res)
        sink.stop()
        if os.path.exists(pf.logfile):
            shutil.copy(pf.logfile, os.path.join(tmp, "postfix.log"))
        pf.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mxgate")
    ap.add_argument("scenario")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--flood", type=int, default=2000,
                    help="flood: handshakes stopped halfway")
    ap.add_argument("--messages", type=int, default=1000,
                    help="flood: messages sent after them")
    a = ap.parse_args()
    a.mxgate = os.path.abspath(a.mxgate)
    res = mxgtest.Result("tls-%s-%d" % (a.scenario, a.cores))
    fn = globals().get("scenario_" + a.scenario)
    if fn is None:
        ap.error("unknown scenario %s" % a.scenario)
    tmp = tempfile.mkdtemp(prefix="mxgt-tls-%s-" % a.scenario)
    os.chmod(tmp, 0o755)
    try:
        with mxgtest.Netns("tls" + a.scenario[:5]):
            try:
                fn(a, tmp, res)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res.check(False, "exception: %r" % e)
    finally:
        if res.failures:
            for gw in STARTED:
                log("--- mxgate output (tail) ---\n" + gw.output()[-3000:])
            with_log = os.path.join(tmp, "mxgate.log")
            if os.path.exists(with_log):
                with open(with_log) as f:
                    log("--- mxgate log (tail) ---\n" + f.read()[-3000:])
            log("(kept %s for inspection)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
