#!/usr/bin/env python3
"""Partner connections (issue 13): client certificates on the gateway's
client listeners, relaying by tls_partners, the certificate in the log,
the Received: header and the PROXY v2 TLVs. Real peers (swaks, openssl
s_client) in a network namespace the test creates (mxgate at 198.18.0.2,
clients and the PROXY v2 backend at 198.18.0.1). The test CA and server
certificates come from scripts/make-tls-certs.sh; the partner's client
certificate (from that CA) and a stranger's (from a CA of its own, which
the gateway does not trust) are made here with openssl.

usage: test_tls_partner.py MXGATE

Listeners: 25 tls "optional" with tls_client_cert "ask", 2525 "optional"
with "require", 465 implicit without client certificates; 25 and 2525 trust the test CA and list the partner by SHA-256
(25) or by subject (2525). No relay_networks: only example.com is ours.
Pools: the Maildir by default, "corp.example" to a PROXY v2 backend.

Checks: the partner (swaks --tls-cert/--tls-key) relays to an outside
domain (250, in the Maildir, Received: names its CN and the CA, verified
OK; the session log line has its subject, SHA-256 and partner=yes) and
to corp.example, whose PROXY v2 header carries PP2_TYPE_SSL (client SSL
+ CERT_CONN + CERT_SESS, verify 0, version, cipher, CN) and
PP2_TYPE_AUTHORITY (the SNI); the stranger (unknown CA) and a client
without a certificate get 554 5.7.1 on 25 (the stranger named
"unverified", partner=no); on 2525 both fail the handshake (alert),
counted as peer_certificate failures, while the partner, by subject,
relays there. Last, the session table (sessions_per_core 3) is filled:
a client on 465 (implicit TLS) gets our FIN and no byte, one on 25 the
cleartext 421 4.3.2, both logged as refused.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
import peers  # noqa: E402
from mxgtest import log  # noqa: E402
from test_gateway import ProxyV2Backend  # noqa: E402

GW = mxgtest.GATEWAY_IP
KERNEL = mxgtest.KERNEL_IP
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROXY_PORT = 2527
PARTNER_CN = "partner.mxgt.test"
SESSIONS = 3  # sessions_per_core: the busy check fills the table


def run(*cmd):
    subprocess.run(list(cmd), check=True, capture_output=True)


def leaf(d, name, cn, ca_crt, ca_key):
    """An ECDSA client certificate (clientAuth) signed by ca."""
    k, csr, ext, crt = (os.path.join(d, "%s.%s" % (name, x))
                        for x in ("key", "csr", "ext", "crt"))
    run("openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-keyout", k, "-out", csr, "-subj",
        "/O=Partner Org/CN=%s" % cn)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey",
        ca_key, "-CAcreateserial", "-days", "30", "-sha256", "-extfile",
        ext, "-out", crt)
    return crt, k


def make_certs(tmp):
    d = os.path.join(tmp, "tls")
    run(os.path.join(ROOT, "scripts", "make-tls-certs.sh"), d,
        "gw.mxgt.test")
    # a CA the gateway does not know
    run("openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-keyout", os.path.join(d, "other.key"),
        "-out", os.path.join(d, "other.pem"), "-days", "30", "-subj",
        "/O=elsewhere/CN=unknown test CA")
    partner = leaf(d, "partner", PARTNER_CN, os.path.join(d, "ca.pem"),
                   os.path.join(d, "ca.key"))
    stranger = leaf(d, "stranger", "stranger.mxgt.test",
                    os.path.join(d, "other.pem"),
                    os.path.join(d, "other.key"))
    fp = subprocess.run(["openssl", "x509", "-in", partner[0], "-noout",
                         "-fingerprint", "-sha256"], check=True,
                        capture_output=True, text=True).stdout
    fp = fp.split("=", 1)[1].strip().replace(":", "").lower()
    return d, partner, stranger, fp


def write_config(path, tmp, d, fp):
    md = os.path.join(tmp, "Maildir")
    certs = ('( { cert = "%s/ecdsa.crt"; key = "%s/ecdsa.key"; } )'
             % (d, d))
    ca = os.path.join(d, "ca.pem")
    text = """
stack = { sessions_per_core = %d; };
listeners = (
  { name = "mx"; port = 25; role = "mx"; tls = "optional";
    certificates = %s; tls_client_cert = "ask"; tls_ca_file = "%s";
    tls_partners = [ "sha256:%s" ]; },
  { name = "partners"; port = 2525; role = "mx"; tls = "optional";
    certificates = %s; tls_client_cert = "require"; tls_ca_file = "%s";
    tls_partners = [ "subject:CN=%s,O=Partner Org" ]; },
  { name = "smtps"; port = 465; role = "smtps"; allow_anonymous = true;
    require_auth = false; certificates = %s; }
);
pools = (
  { name = "default"; type = "maildir"; },
  { name = "corp"; type = "smtp"; client_info = "proxy";
    servers = ( { address = "%s"; port = %d; } );
    domains = [ "corp.example" ]; }
);
maildir = { path = "%s"; };
policy = { accepted_domains = ( "example.com" ); };
""" % (SESSIONS, certs, ca, fp, certs, ca, PARTNER_CN, certs, KERNEL,
       PROXY_PORT, md)
    with open(path, "w") as f:
        f.write(text)
    return md


def swaks(port, to, mid, cert=None, extra=()):
    cmd = ["swaks", "--server", GW, "--port", str(port), "--tls",
           "--tls-sni", "gw.mxgt.test", "--from", "p@partner.example",
           "--to", to, "--header", "Message-ID: <%s>" % mid,
           "--timeout", "20"] + list(extra)
    if cert:
        cmd += ["--tls-cert", cert[0], "--tls-key", cert[1]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def find_by_id(md, mid):
    """swaks adds its own Message-Id: look for ours among the headers."""
    d = os.path.join(md, "new")
    want = ("Message-ID: <%s>" % mid).encode()
    for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        p = os.path.join(d, n)
        if want in peers.read_file(p).split(b"\n\n", 1)[0]:
            return p
    return None


def tlvs(raw):
    """PROXY v2 TLVs (proxy-protocol.txt 2.2.7), PP2_TYPE_SSL opened:
    {'authority': str, 'ssl': (client, verify, {subtype: str})}."""
    out, i = {}, 0
    while i + 3 <= len(raw):
        t, n = raw[i], int.from_bytes(raw[i + 1:i + 3], "big")
        v = raw[i + 3:i + 3 + n]
        i += 3 + n
        if t == 0x02:
            out["authority"] = v.decode()
        elif t == 0x20:
            subs, j = {}, 5
            while j + 3 <= len(v):
                st, sn = v[j], int.from_bytes(v[j + 1:j + 3], "big")
                subs[st] = v[j + 3:j + 3 + sn].decode()
                j += 3 + sn
            out["ssl"] = (v[0], int.from_bytes(v[1:5], "big"), subs)
        else:
            out.setdefault("other", []).append(t)
    if i != len(raw):
        out["trailing"] = len(raw) - i
    return out


def first_bytes(port):
    """Connect, read until the gateway closes (bounded): (bytes, how)."""
    s = mxgtest.connect(GW, port)
    s.settimeout(10)
    data, how = b"", "FIN"
    try:
        while len(data) < 4096:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except ConnectionResetError:
        how = "RST"
    except socket.timeout:
        how = "timeout"
    s.close()
    return data, how


def busy_465(gw, res, logf):
    """The session table full: on 465 (implicit TLS) the client gets our
    FIN and no byte (a cleartext 421 would be garbage inside TLS); on 25
    the usual 421 4.3.2."""
    held = []
    try:
        for _ in range(SESSIONS):
            s = mxgtest.connect(GW, 25)
            s.settimeout(10)
            f = s.makefile("rb")
            held.append((s, f, f.readline()))
        res.check(all(g.startswith(b"220 ") for _, _, g in held),
                  "%d clients hold the session table" % SESSIONS)
        data, how = first_bytes(465)
        res.check(data == b"" and how == "FIN",
                  "table full, 465: closed with a FIN, nothing written "
                  "(%r, %s)" % (data[:60], how))
        data, how = first_bytes(25)
        res.check(data == b"421 4.3.2 Service busy, try again later\r\n"
                  and how == "FIN", "table full, 25: 421 4.3.2 (%r, %s)"
                  % (data[:60], how))
        # the logger thread writes a little later (bounded wait)
        want = (r"event=refused .*listener=smtps reason=busy .*action=close",
                r"event=refused .*listener=mx reason=busy .*action=421")
        t0 = time.time()
        while True:
            log_text = open(logf).read()
            ok = all(re.search(w, log_text) for w in want)
            if ok or time.time() - t0 > 5:
                break
            time.sleep(0.1)
        res.check(ok, "refusals logged: action=close on smtps, 421 on mx")
        if not ok:
            log("\n".join(ln for ln in log_text.splitlines()
                          if "event=refused" in ln))
    finally:
        for s, f, _ in held:
            f.close()
            s.close()
    gw.wait_for(lambda t: t["gw_sessions_live"] == 0, 10, "no session")


def scenario(a, tmp, res):
    d, partner, stranger, fp = make_certs(tmp)
    conf = os.path.join(tmp, "partner.conf")
    md = write_config(conf, tmp, d, fp)
    logf = os.path.join(tmp, "mxgate.log")
    proxy = None
    gw = mxgtest.Mxgate(a.mxgate, ["--config", conf, "--maildir", md,
                                   "--log-file", logf, "--cores", "1"])
    try:
        gw.start()
        for port in (25, 2525, 465):
            peers.wait_listen(GW, port, timeout=20)
        # the kernel side's address exists once the tap is up
        proxy = ProxyV2Backend(KERNEL, PROXY_PORT)
        proxy.start()
        t0 = gw.stats()["total"]
        # 1. the partner relays to a domain that is not ours
        rc, out = swaks(25, "someone@outside.example", "partner-1@mxgt.test",
                        partner)
        res.check(rc == 0 and "<~  250 2.0.0" in out,
                  "partner certificate (sha256 in tls_partners) relays to "
                  "outside.example (rc %d)" % rc)
        if rc:
            log(out[-2000:])
        p = find_by_id(md, "partner-1@mxgt.test")
        head = peers.read_file(p).split(b"\n\n", 1)[0].decode(
            errors="replace") if p else ""
        res.check(re.search(r"\(using TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+"
                            r" bits\)\) \(Client CN \"%s\", Issuer \"mxgate "
                            r"test CA\" \(verified OK\)\)\n\tby .* with "
                            r"ESMTPS id" % re.escape(PARTNER_CN), head)
                  is not None,
                  "Received: names the client certificate, Postfix style: "
                  "%r" % head[:400])
        # 2. the same to corp.example: the PROXY v2 pool gets the TLVs
        rc, out = swaks(25, "b@corp.example", "partner-2@mxgt.test", partner)
        res.check(rc == 0 and "proxied" in out,
                  "partner relays to the PROXY v2 pool (rc %d)" % rc)
        tl = tlvs(proxy.tlvs[-1]) if proxy.tlvs else {}
        ssl = tl.get("ssl")
        res.check(ssl is not None and ssl[0] == 0x07 and ssl[1] == 0 and
                  ssl[2].get(0x21) == "TLSv1.3" and
                  ssl[2].get(0x23, "").startswith("TLS_") and
                  ssl[2].get(0x22) == PARTNER_CN and
                  tl.get("authority") == "gw.mxgt.test" and
                  "other" not in tl and "trailing" not in tl,
                  "PROXY v2: PP2_TYPE_SSL (SSL|CERT_CONN|CERT_SESS, verify "
                  "0, version, cipher, CN) and AUTHORITY = SNI: %r" % tl)
        # 3. a certificate from an unknown CA, and none: no relaying
        rc, out = swaks(25, "someone@outside.example", "stranger@mxgt.test",
                        stranger)
        res.check("<~* 554 5.7.1" in out and "<~  250 2.0.0" not in out,
                  "unknown-CA certificate: 554 5.7.1 relay denied")
        rc, out = swaks(25, "someone@outside.example", "nocert@mxgt.test")
        res.check("<~* 554 5.7.1" in out and "<~  250 2.0.0" not in out,
                  "no certificate: 554 5.7.1 relay denied")
        # 4. required: no certificate, or the stranger's, fails the
        #    handshake; the partner (by subject) relays
        for what, cert in (("no certificate", None),
                           ("unknown-CA certificate", stranger)):
            rc, out = swaks(2525, "postmaster@example.com",
                            "req-%s@mxgt.test" % what.split()[0], cert)
            # TLS 1.3: the client's certificate is checked after its
            # Finished, so swaks sees the close at its first command
            res.check(rc != 0 and "<~  250 2.0.0" not in out and
                      "<~  250" not in out,
                      "tls_client_cert require, %s: the handshake fails, "
                      "nothing answered inside TLS (rc %d)" % (what, rc))
        r = subprocess.run(["openssl", "s_client", "-starttls", "smtp",
                            "-connect", GW + ":2525", "-brief", "-ign_eof"],
                           input=b"QUIT\r\n", capture_output=True,
                           timeout=20)
        so = (r.stdout + r.stderr).decode(errors="replace")
        res.check(re.search(r"alert certificate required", so, re.I),
                  "s_client without a certificate gets an alert "
                  "(rc %d): %s" % (r.returncode, so[-300:].strip()))
        rc, out = swaks(2525, "x@outside.example", "partner-3@mxgt.test",
                        partner)
        res.check(rc == 0 and "<~  250 2.0.0" in out,
                  "partner by subject relays through the listener that "
                  "requires certificates (rc %d)" % rc)
        st = gw.wait_for(lambda t: t["gw_sessions_live"] == 0 and
                         t["gw_tls_fail_peer_cert"] -
                         t0["gw_tls_fail_peer_cert"] >= 3 and
                         # the stats file lags: a snapshot from before the
                         # last partner session also has no live session
                         t["gw_tls_partners"] - t0["gw_tls_partners"] >= 3,
                         10, "three peer_certificate failures, three "
                         "partner sessions, no session")
        tt = st["total"]
        res.check(tt["gw_tls_partners"] - t0["gw_tls_partners"] == 3 and
                  tt["gw_rcpt_denied_relay"] - t0["gw_rcpt_denied_relay"]
                  == 2,
                  "counted: 3 partner sessions (%d), 2 relay denials (%d)"
                  % (tt["gw_tls_partners"] - t0["gw_tls_partners"],
                     tt["gw_rcpt_denied_relay"] -
                     t0["gw_rcpt_denied_relay"]))
        lines = open(logf).read().splitlines()
        fails = [ln for ln in lines if "listener=partners" in ln and
                 "tls=failed tls_reason=peer_certificate" in ln]
        res.check(len(fails) == 3, "the log names the 3 handshakes "
                  "failed on the certificate (%d)" % len(fails))
        sess = [ln for ln in lines if "event=session " in ln]
        good = [ln for ln in sess if "client_sha256=%s" % fp in ln and
                'client_subject="CN=%s,O=Partner Org"' % PARTNER_CN in ln
                and "client_cert=verified" in ln and "partner=yes" in ln]
        bad = [ln for ln in sess if "client_cert=unverified" in ln and
               "CN=stranger.mxgt.test" in ln and "partner=no" in ln]
        res.check(len(good) == 3 and len(bad) == 1,
                  "session log lines name the certificates: %d partner "
                  "(want 3), %d stranger (want 1)" % (len(good), len(bad)))
        if len(good) != 3 or len(bad) != 1:
            log("\n".join(sess[-8:]))
        busy_465(gw, res, logf)
    finally:
        gw.shutdown(res)
        gw.kill()
        if proxy:
            proxy.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mxgate")
    a = ap.parse_args()
    a.mxgate = os.path.abspath(a.mxgate)
    res = mxgtest.Result("tls-partner")
    tmp = tempfile.mkdtemp(prefix="mxgt-tls-partner-")
    os.chmod(tmp, 0o755)
    try:
        with mxgtest.Netns("tlspart"):
            try:
                scenario(a, tmp, res)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res.check(False, "exception: %r" % e)
    finally:
        if res.failures:
            logf = os.path.join(tmp, "mxgate.log")
            if os.path.exists(logf):
                with open(logf) as f:
                    log("--- mxgate log (tail) ---\n" + f.read()[-3000:])
            log("(kept %s for inspection)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
