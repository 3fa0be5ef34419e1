#!/usr/bin/env python3
"""Content rules end to end (issue 15): mxgate with a rule set on its mx
listener relaying to smtp-sink (capture on), driven by Python smtplib and
swaks from the test's network namespace.

usage: test_content.py MXGATE MXGATECTL

One smtplib session sends, in turn: a clean message, a message whose
Subject matches a reject rule, a message whose base64 text part matches a
`mime` rule only after decoding (the raw base64 does not contain the
phrase), a message whose body ends with a tempfail marker after 300 KB (so
the match comes in a late TCP segment, long after the first chunks went to
the backend), a discard, a log-only hit, and a second clean message; swaks
sends one more Subject reject. The client must see 550/451/250 with the
rules' enhanced codes and texts, the session must go on after each
refusal, and smtp-sink must hold exactly the accepted, non-discarded
messages, byte for byte (nothing of a refused one, not even a partial
capture). Every hit is logged with its rule file:line.
Header action: MAIL and RCPT rules add their headers at the top of the
message, a Subject rule its header at the end of the header block (also
when a BDAT chunk boundary falls there), at smtp-sink and in a Maildir
file (a second pool), the rest byte for byte. Exemptions: a rejected Subject passes from a relay-network
client on 587 (content_exempt_relay_networks) and from an authenticated
client on 2528 (content_exempt_authenticated), not from an anonymous one
there.
Quarantine: a message with an invoice.exe attachment (rule 13) gets 250
and lands in the quarantine Maildir (content_quarantine_maildir), byte
for byte after an X-Original-To: line, and neither at smtp-sink nor in
the normal Maildir, both for a smtp-sink recipient and a Maildir one; the
hit is logged, counted per rule and in the per-action total
(`mxgatectl stats`: gw_content_quarantined).
Then reloads: a rule file with a back-reference is refused by mxgatectl
reload and by SIGHUP with the rule file:line and Hyperscan's reason, and
the old rules keep serving; a valid new rule file is taken (its new reply
text is what the next client sees), and the per-rule counters of its
unchanged rules go on from their counts.
"""

import base64
import json
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import shutil
import signal
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
import peers  # noqa: E402
import test_gateway as tg  # noqa: E402
from mxgtest import GATEWAY_IP, KERNEL_IP, log  # noqa: E402

RULES = """# content rules of the integration test
header:Subject /forbidden subject/i reject 5.7.1 Subject refused by policy
mime /secret launch code/i reject 5.7.2 Decoded content refused
body /TEMPFAIL-ME/ tempfail 4.7.3 Try again later
body /DISCARD-ME/ discard
body /LOG-ME/ log logged only
mail /^spammer@/ reject 5.7.1 Sender refused by content rule
rcpt /^blocked@/i tempfail 4.7.4 Recipient refused for now
helo /^bad-helo\\.test$/ reject 5.7.5 HELO name refused
mail /^tagged@/ header X-Content-Rule: tagged sender
rcpt /^tagme@/ header X-Content-Tag: rcpt
header:Subject /tag me/i header X-Subject-Tag: yes
attachment-name /\\.exe$/i quarantine executable attachment
"""
TAG = b"X-Content-Rule: tagged sender\r\n"
TAG2 = b"X-Content-Tag: rcpt\r\n"
SUBJ_TAG = b"X-Subject-Tag: yes\r\n"
MD_DOMAIN = "md.example.net"
USERS = ("alice:$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8P"
         "SwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.\n")  # "secret"
FROM = "sender@client.mxgt.test"
METRICS = "127.0.0.1:9187"
RCPT = "u1@example.net"


def msg(mid, subject, body):
    return peers.with_headers(mid, FROM, [RCPT], body,
                              subject=subject).replace(b"\n", b"\r\n")


def b64_message(mid):
    text = b"Hello,\nthe secret launch code is 0000.\n"
    enc = base64.encodebytes(text)  # LF-separated lines of base64
    assert b"secret" not in enc
    hdr = ("From: <%s>\nTo: <%s>\nSubject: b64\nMessage-ID: <%s>\n"
           "MIME-Version: 1.0\n"
           "Content-Type: multipart/mixed; boundary=\"BND\"\n\n"
           "--BND\nContent-Type: text/plain; charset=utf-8\n"
           "Content-Transfer-Encoding: base64\n\n" % (FROM, RCPT, mid))
    body = hdr.encode() + enc + b"--BND--\n"
    return body.replace(b"\n", b"\r\n")


def scenario(a, tmp, res):
    cap = os.path.join(tmp, "capture")
    rules = os.path.join(tmp, "test.rules")
    with open(rules, "w") as f:
        f.write(RULES)
    conf = os.path.join(tmp, "mxgate.conf")
    lst = tg.listeners()
    lst[0]["content_rules"] = "test"
    # 587: the test network is a relay network (tg.TEST_POLICY) and this
    # listener exempts relay networks; 2528: exempts authenticated
    # clients only
    lst[1]["content_rules"] = "test"
    lst[1]["content_exempt_relay_networks"] = True
    lst.append({"name": "subauth", "port": 2528, "role": "submission",
                "hostname": "gw.mxgt.test", "auth": "optional",
                "allow_anonymous": True, "auth_allow_cleartext": True,
                "content_rules": "test",
                "content_exempt_authenticated": True})
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write(USERS)
    tg.write_config(conf, {
        "stack": {"port": "net_tap0,iface=mxgt0",
                  "address": GATEWAY_IP + "/24", "cores": 1},
        "listeners": lst,
        "content_rule_sets": [{"name": "test", "file": "test.rules"}],
        "pools": [tg.smtp_pool("default"),
                  {"name": "local", "type": "maildir",
                   "domains": [MD_DOMAIN]}],
        "auth": {"users_file": users},
        "maildir": {"path": os.path.join(tmp, "Maildir")},
        "content_quarantine_maildir": os.path.join(tmp, "Quarantine"),
        "content_cache_dir": os.path.join(tmp, "hscache"),
        "log": {"file": os.path.join(tmp, "mxgate.log"), "level": "info"},
        "policy": tg.TEST_POLICY,
    })
    if not tg.check_config(a.mxgate, conf, res):
        return
    sink = peers.SmtpSink(KERNEL_IP, tg.BACKEND_PORT, capture_dir=cap,
                          out_path=os.path.join(tmp, "sink.out"))
    gw = mxgtest.Mxgate(a.mxgate, ["--config", conf, "--admin-socket",
                                   a.sock, "--metrics", METRICS])
    tg.STARTED.append(gw)
    gw.start()
    a.gw_pid = gw.proc.pid
    try:
        sink.start()
        sent = tg.Sent()
        big = (b"x" * 75 + b"\n") * 4000  # 304,000 octets
        cases = [
            # (Message-ID, message, want code, want enhanced code, text)
            ("clean-1", msg("clean-1@mxgt.test", "hello", b"nothing\n"),
             250, None, None),
            ("subject", msg("subject@mxgt.test", "A Forbidden Subject here",
                            b"body\n"), 550, "5.7.1",
             "Subject refused by policy"),
            ("b64", b64_message("b64@mxgt.test"), 550, "5.7.2",
             "Decoded content refused"),
            ("late", msg("late@mxgt.test", "big", big + b"TEMPFAIL-ME\n"),
             451, "4.7.3", "Try again later"),
            ("discard", msg("discard@mxgt.test", "d", b"DISCARD-ME\n"),
             250, None, None),
            ("log", msg("log@mxgt.test", "l", b"a LOG-ME line\n"),
             250, None, None),
            ("clean-2", msg("clean-2@mxgt.test", "big clean", big),
             250, None, None),
        ]
        deliver = {"clean-1", "log", "clean-2", "env-ok", "bdat-clean",
                   "tagged", "exempt-relay", "exempt-auth", "bdat-tag-0",
                   "bdat-tag-1"}
        s = smtplib.SMTP(GATEWAY_IP, 25, local_hostname="smtplib.mxgt.test",
                         timeout=60)
        s.ehlo()
        for name, m, code, enh, text in cases:
            s.mail(FROM)
            s.rcpt(RCPT)
            c, r = s.data(m)
            r = r.decode(errors="replace")
            ok = c == code and (enh is None or r.startswith(enh)) and \
                (text is None or text in r)
            res.check(ok, "%s: client got %d %s (want %d %s %s)" %
                      (name, c, r, code, enh, text))
            if name in deliver:
                sent.add("<%s@mxgt.test>" % name, [RCPT], m)
        # envelope rules answer the command itself
        c, r = s.mail("spammer@bad.test")
        res.check(c == 550 and r.startswith(b"5.7.1 Sender refused by "
                                             b"content rule"),
                  "MAIL spammer@: %d %s (want 550 5.7.1)" % (c, r))
        s.rset()
        s.mail(FROM)
        c, r = s.rcpt("Blocked@example.net")
        res.check(c == 451 and r.startswith(b"4.7.4 Recipient refused"),
                  "RCPT Blocked@: %d %s (want 451 4.7.4)" % (c, r))
        c, r = s.rcpt(RCPT)
        m = msg("env-ok@mxgt.test", "after a refused rcpt", b"fine\n")
        c2, r2 = s.data(m)
        res.check(c == 250 and c2 == 250, "the other recipient and the "
                  "message accepted after it (%d, %d %s)" % (c, c2, r2))
        sent.add("<env-ok@mxgt.test>", [RCPT], m)
        s.quit()
        header_and_exemptions(res, sent, tmp)
        quarantine(res, tmp)
        # a HELO rule answers EHLO; the session goes on with another name
        s = smtplib.SMTP(GATEWAY_IP, 25, local_hostname="bad-helo.test",
                         timeout=60)
        c, r = s.ehlo()
        res.check(c == 550 and r.startswith(b"5.7.5 HELO name refused"),
                  "EHLO bad-helo.test: %d %s (want 550 5.7.5)" % (c, r))
        c, r = s.ehlo("good-helo.test")
        res.check(c == 250, "EHLO with another name then: %d" % c)
        s.quit()
        # BDAT (RFC 3030): the marker split by a chunk boundary is found
        # and the message refused at BDAT LAST; a clean one by BDAT in
        # 7-octet chunks is delivered
        c = peers.SmtpClient(GATEWAY_IP, 25, timeout=60)
        c.ehlo("bdat.mxgt.test")
        m = peers.with_headers("bdat-late@mxgt.test", FROM, [RCPT],
                               b"y" * 50 + b"\nTEMPFAIL-ME\n", subject="b")
        wire = peers.stored_form(m).replace(b"\n", b"\r\n")
        k = wire.index(b"TEMPFAIL-ME") + 5
        r = peers.bdat_transaction(c, FROM, [RCPT], m, k)
        res.check(r["outcome"] == 451, "BDAT in %d-octet chunks, marker split "
                  "by the first boundary: %s (want 451)" % (k, r["dot"]))
        m = peers.with_headers("bdat-clean@mxgt.test", FROM, [RCPT],
                               b"clean body by BDAT\n", subject="bdat")
        r = peers.bdat_transaction(c, FROM, [RCPT], m, 7)
        res.check(r["outcome"] == 250, "clean BDAT message accepted: %s" %
                  (r["dot"],))
        sent.add("<bdat-clean@mxgt.test>", [RCPT], m)
        c.quit()
        # swaks: one more Subject reject, seen by a second client
        r = subprocess.run(
            ["swaks", "--server", GATEWAY_IP, "--port", "25", "--from", FROM,
             "--to", RCPT, "--helo", "swaks.mxgt.test", "--timeout", "60",
             "--header", "Subject: forbidden SUBJECT (swaks)",
             "--header", "Message-ID: <swaks-rej@mxgt.test>"],
            capture_output=True, text=True, timeout=120, errors="replace")
        res.check(r.returncode != 0 and re.search(
            r"^<\*\* +550 5\.7\.1 Subject refused by policy", r.stdout,
            re.M) is not None,
            "swaks: 550 5.7.1 Subject refused by policy (exit %d)" %
            r.returncode)
        tg.wait_idle(gw, res)
        time.sleep(0.5)
        ids = sink.message_ids()
        want = {"<%s@mxgt.test>" % n for n in deliver}
        log("  smtp-sink captured: %s" % sorted(i for i in ids if i))
        res.check(set(ids) == want and all(v == 1 for v in ids.values()),
                  "smtp-sink holds exactly the accepted, non-discarded "
                  "messages once each (%s)" % dict(ids))
        res.check(len(sink.captured()) == len(want),
                  "no other capture, not even a partial one (%d files)" %
                  len(sink.captured()))
        tg.check_bodies(res, "smtp-sink", tg.stored_by_id(sink.captured()),
                        sent, trailer=peers.SINK_TRAILER)
        text = tg.gw_log(tmp)
        hits = tg.log_events(text, "content")
        seen = {(h.get("rule"), h.get("action")) for h in hits}
        for line, act in ((2, "reject"), (3, "reject"), (4, "tempfail"),
                          (5, "discard"), (6, "log"), (7, "reject"),
                          (8, "tempfail"), (9, "reject"), (10, "header"),
                          (11, "header"), (12, "header"),
                          (13, "quarantine")):
            res.check(any(r and r.endswith("test.rules:%d" % line) and
                          a == act for r, a in seen),
                      "hit of test.rules:%d (%s) logged" % (line, act))
        # per-rule counters: mxgate_content_rule_hits_total{set,rule,action}
        text, got = rule_metrics()
        want = {2: ("reject", 3), 3: ("reject", 1), 4: ("tempfail", 2),
                5: ("discard", 1), 6: ("log", 1), 7: ("reject", 1),
                8: ("tempfail", 1), 9: ("reject", 1), 10: ("header", 2),
                11: ("header", 1), 12: ("header", 4), 13: ("quarantine", 2)}
        res.check(got == want, "per-rule metrics %s == %s" % (got, want))
        rc, out = ctl(a, "-j", "stats")
        try:
            cs = {k[len("gw_content_"):]: v for k, v in
                  json.loads(out)["total"].items()
                  if k.startswith("gw_content_")}
        except (ValueError, KeyError):
            cs = {}
        log("  content stats: %s" % cs)
        res.check(cs.get("quarantined") == 2 and
                  cs.get("quarantine_failed") == 0 and
                  cs.get("quarantine_copies", 0) >= 2 and
                  cs.get("rejected") == 6 and cs.get("discarded") == 1,
                  "per-action totals in mxgatectl stats: %s" % cs)
        res.check(re.search(r'^mxgate_content_messages_total\{action='
                            r'"quarantined"\} 2$', text, re.M) is not None,
                  "mxgate_content_messages_total{action=\"quarantined\"} 2")
        reloads(a, res, rules)
        # the compiled classes were stored (one file per class; the
        # check-config and start loads share them)
        hs = [n for n in os.listdir(os.path.join(tmp, "hscache"))
              if n.endswith(".hsdb")]
        res.check(len(hs) >= 6, "compiled databases kept in "
                  "content_cache_dir (%d files)" % len(hs))
        out = gw.output()
        res.check("content cache" not in out,
                  "no cache file refused: %s" % out[-300:])
    finally:
        gw.shutdown(res)
        gw.kill()
        sink.stop()


def exe_message(mid, rcpt):
    """multipart/mixed with a base64 attachment named invoice.exe"""
    hdr = ("From: <%s>\nTo: <%s>\nSubject: invoice\nMessage-ID: <%s>\n"
           "MIME-Version: 1.0\n"
           "Content-Type: multipart/mixed; boundary=\"XB\"\n\n"
           "--XB\nContent-Type: text/plain\n\nsee attached\n"
           "--XB\nContent-Type: application/octet-stream\n"
           "Content-Disposition: attachment; filename=\"invoice.exe\"\n"
           "Content-Transfer-Encoding: base64\n\n" % (FROM, rcpt, mid))
    body = hdr.encode() + base64.encodebytes(b"MZ\x90\x00" * 40) + \
        b"--XB--\n"
    return body.replace(b"\n", b"\r\n")


def quarantine(res, tmp):
    """the quarantine action: 250 at the client, the message in the
    quarantine Maildir only. Returns the Message-IDs quarantined."""
    q_sent = tg.Sent()
    for mid, rcpt in (("exe-sink@mxgt.test", RCPT),
                      ("exe-md@mxgt.test", "u1@" + MD_DOMAIN)):
        m = exe_message(mid, rcpt)
        s = smtplib.SMTP(GATEWAY_IP, 25, local_hostname="q.mxgt.test",
                         timeout=60)
        s.ehlo()
        s.mail(FROM)
        s.rcpt(rcpt)
        c, r = s.data(m)
        s.quit()
        res.check(c == 250 and r.startswith(b"2.0.0"),
                  "%s: quarantined message answered %d %s (want 250)" %
                  (mid, c, r))
        q_sent.add("<%s>" % mid, [rcpt], m)
    new = os.path.join(tmp, "Quarantine", "new")
    files = [os.path.join(new, n) for n in os.listdir(new)] \
        if os.path.isdir(new) else []
    res.check(len(files) == 2, "two files in the quarantine Maildir (%d)" %
              len(files))
    tg.check_bodies(res, "Quarantine", tg.stored_by_id(files), q_sent)
    for p in files:
        head = peers.split_message(peers.read_file(p))[0]
        res.check(re.search(rb"^X-Original-To: (u1@example\.net|"
                            rb"u1@md\.example\.net)\r?$", head, re.M)
                  is not None, "quarantine copy names its recipient")
    md = os.listdir(os.path.join(tmp, "Maildir", "new"))
    res.check(len(md) == 1, "the normal Maildir still holds only its one "
              "message (%d)" % len(md))
    return {"<exe-sink@mxgt.test>", "<exe-md@mxgt.test>"}


def subject_tagged(m, top=b""):
    """m (CRLF) as delivered: top at the top, SUBJ_TAG at the end of the
    header block (before its empty line)."""
    i = m.index(b"\r\n\r\n") + 2
    return top + m[:i] + SUBJ_TAG + m[i:]


def header_and_exemptions(res, sent, tmp):
    """header action: envelope rules add their headers at the top of the
    message, at smtp-sink and in a Maildir file, the rest byte for byte;
    exemptions: a relay-network client on 587 and an authenticated one on
    2528 pass a Subject the rules reject, an anonymous one on 2528 not."""
    s = smtplib.SMTP(GATEWAY_IP, 25, local_hostname="tag.mxgt.test",
                     timeout=60)
    s.ehlo()
    m = msg("tagged@mxgt.test", "please tag me", b"tagged body\n")
    s.sendmail("tagged@client.mxgt.test", ["tagme@example.net"], m)
    sent.add("<tagged@mxgt.test>", ["tagme@example.net"],
             subject_tagged(m, TAG + TAG2))
    m = msg("tagged-md@mxgt.test", "tag me to Maildir", b"md body\n")
    s.sendmail("tagged@client.mxgt.test", ["u1@" + MD_DOMAIN], m)
    s.quit()
    md_sent = tg.Sent()
    md_sent.add("<tagged-md@mxgt.test>", ["u1@" + MD_DOMAIN],
                subject_tagged(m, TAG))
    # the end of the header block split by a BDAT chunk boundary: just
    # before its empty line and between the CR and the LF
    c = peers.SmtpClient(GATEWAY_IP, 25, timeout=60)
    c.ehlo("bdat-tag.mxgt.test")
    for d in (0, 1):
        mid = "bdat-tag-%d@mxgt.test" % d
        m = peers.with_headers(mid, FROM, [RCPT], b"split body\n",
                               subject="tag me, split")
        wire = peers.stored_form(m).replace(b"\n", b"\r\n")
        k = wire.index(b"\r\n\r\n") + 2 + d
        r = peers.bdat_transaction(c, FROM, [RCPT], m, k)
        res.check(r["outcome"] == 250, "BDAT, boundary at the empty line "
                  "+%d: %s" % (d, r["dot"]))
        sent.add("<%s>" % mid, [RCPT], subject_tagged(wire))
    c.quit()
    new = os.path.join(tmp, "Maildir", "new")
    t_end = time.time() + 10
    while time.time() < t_end and not os.listdir(new):
        time.sleep(0.05)
    files = [os.path.join(new, n) for n in os.listdir(new)]
    res.check(len(files) == 1, "one Maildir file (%d)" % len(files))
    tg.check_bodies(res, "Maildir", tg.stored_by_id(files), md_sent)
    if files:
        with open(files[0], "rb") as f:
            head = f.read().split(b"\r\n\r\n", 1)[0]
        res.check(head.count(b"X-Content-Rule:") == 1,
                  "Maildir: the header added once")

    subj = "forbidden subject, exempt"
    for port, name, login, want in ((587, "exempt-relay", None, 250),
                                    (2528, "anon", None, 550),
                                    (2528, "exempt-auth", "alice", 250)):
        m = msg(name + "@mxgt.test", subj, name.encode() + b"\n")
        s = smtplib.SMTP(GATEWAY_IP, port, local_hostname="x.mxgt.test",
                         timeout=60)
        s.ehlo()
        if login:
            s.login(login, "secret")
        s.mail(FROM)
        s.rcpt(RCPT)
        c, r = s.data(m)
        res.check(c == want, "%s on %d: %d %s (want %d; 587 exempts relay "
                  "networks, 2528 authenticated clients)" %
                  (name, port, c, r, want))
        if want == 250:
            sent.add("<%s@mxgt.test>" % name, [RCPT], m)
        s.quit()


def rule_metrics():
    """(metrics text, {rule line: (action, hits)}) of the set test"""
    text = urllib.request.urlopen("http://%s/metrics" % METRICS,
                                  timeout=10).read().decode()
    got = {}
    for m in re.finditer(r'^mxgate_content_rule_hits_total\{set="test",'
                         r'rule="[^"]*test\.rules:(\d+)",action="(\w+)"'
                         r'\} (\d+)$', text, re.M):
        got[int(m.group(1))] = (m.group(2), int(m.group(3)))
    return text, got


def ctl(a, *args):
    r = subprocess.run([a.mxgatectl, "-s", a.sock] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def reloads_failed(a):
    rc, out = ctl(a, "-j", "stats")
    try:
        return json.loads(out)["policy"].get("reloads_failed", 0)
    except (ValueError, KeyError):
        return None


def subject_reply(subject):
    s = smtplib.SMTP(GATEWAY_IP, 25, local_hostname="reload.mxgt.test",
                     timeout=60)
    s.ehlo()
    s.mail(FROM)
    s.rcpt(RCPT)
    c, r = s.data(msg("reload-%d@mxgt.test" % time.time_ns(), subject,
                      b"x\n"))
    s.quit()
    return c, r.decode(errors="replace")


def reloads(a, res, rules):
    with open(rules, "w") as f:
        f.write(RULES + "body /(a)\\1/ reject 5.7.1 back-reference\n")
    rc, out = ctl(a, "reload")
    res.check(rc != 0 and re.search(r"test\.rules:14: pattern /\(a\)\\1/ "
                                    r"refused by Hyperscan: \"Back-"
                                    r"references are unsupported", out),
              "mxgatectl reload refuses the rule file with its file:line "
              "and Hyperscan's reason: %s" % out.strip()[-300:])
    failed = reloads_failed(a)
    os.kill(a.gw_pid, signal.SIGHUP)
    t_end = time.time() + 5
    while time.time() < t_end and (reloads_failed(a) or 0) <= (failed or 0):
        time.sleep(0.05)
    res.check(failed is not None and reloads_failed(a) == failed + 1,
              "SIGHUP with the bad rule file counted as a failed reload")
    c, r = subject_reply("forbidden subject again")
    res.check(c == 550 and "Subject refused by policy" in r,
              "the old rules keep serving: %d %s" % (c, r))
    with open(rules, "w") as f:
        f.write(RULES.replace("Subject refused by policy",
                              "Subject refused, second rule set"))
    rc, out = ctl(a, "reload")
    res.check(rc == 0, "mxgatectl reload takes the new rule file: %s" %
              out.strip()[-200:])
    c, r = subject_reply("forbidden subject once more")
    res.check(c == 550 and "Subject refused, second rule set" in r,
              "the new rules serve after the reload: %d %s" % (c, r))
    # per-rule counters of unchanged rules survive the reload (rule 2's
    # text changed, not its pattern: 3 + 1 before, 1 after); the failed
    # reload's rule 14 was never counted
    got = rule_metrics()[1]
    res.check(got.get(2) == ("reject", 5) and
              got.get(13) == ("quarantine", 2) and 14 not in got,
              "per-rule counters kept across the reload: %s" % got)


def main():
    class A:
        pass
    a = A()
    a.mxgate = os.path.abspath(sys.argv[1])
    a.mxgatectl = os.path.abspath(sys.argv[2])
    res = mxgtest.Result("content")
    tmp = tempfile.mkdtemp(prefix="mxgt-content-")
    a.sock = os.path.join(tmp, "admin.sock")
    os.chmod(tmp, 0o755)
    try:
        with mxgtest.Netns("gwcont"):
            try:
                scenario(a, tmp, res)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res.check(False, "exception: %r" % e)
    finally:
        if res.failures:
            tail = tg.gw_log(tmp)[-4000:]
            if tail:
                log("--- mxgate log (tail) ---\n" + tail)
            for gw in tg.STARTED:
                log("--- mxgate output (tail) ---\n" + gw.output()[-3000:])
            log("(kept %s for inspection)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
