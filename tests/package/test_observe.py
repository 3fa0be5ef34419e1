#!/usr/bin/env python3
"""What an operator watches, against a running gateway in a test namespace.

mode `dashboard`: every metric contrib/grafana/mxgate-dashboard.json
queries exists in the Prometheus exposition of the running gateway (after
one message, a refusal and a reload, so labelled series exist), and every
label its queries group by is a label of that metric.

mode `logformat`: the gateway is driven through connect, message
(accepted and tempfail), session, refused, limit, rate_limited,
backend_error, policy, reload (ok and failed) and push; every line of its
log parses by the grammar of docs/logging.md, and every event and key it
carries is listed there; every line starts with ts and core (main-lcore
lines too, core=main) and repeats no key. Then the same run with
log.format = "json": every line is one JSON object (Python's json), the
keys of each event are those of the kv run, documented numeric keys are
numbers; at its end a reload to log.level = "warn" and a message to a dead
backend: after it only warn and error events are written, and the
backend_error is.

usage: test_observe.py MXGATE MXGATECTL SRCDIR dashboard|logformat
"""

import json
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import mxgtest  # noqa: E402
from mxgtest import GATEWAY_IP, log  # noqa: E402

METRICS = "127.0.0.1:9181"

CONF = """
stack = { port = "net_tap0,iface=mxgt0"; address = "198.18.0.2/24"; };
listeners = (
  { name = "mx"; port = 25; role = "mx"; },
  { name = "closed"; port = 2525; role = "mx"; deny = [ "198.18.0.1" ];
    deny_action = "close"; },
  { name = "one"; port = 2526; role = "mx";
    max_messages_per_connection = 1; },
  { name = "slow"; port = 2527; role = "mx"; }
);
policy = {
  accepted_domains = ( "example.com", "dead.example" );
  rate_limits = ( { name = "slow_msgs"; key = "ip"; what = "messages";
                    per_minute = 1; burst = 1; listener = "slow"; } );
};
default_pool = "default";
pools = (
  { name = "default"; type = "maildir"; },
  { name = "dead"; domains = [ "dead.example" ];
    servers = ( { address = "198.18.0.1"; port = 2599; } );
    timeouts = { connect = 2; }; }
);
maildir = { path = "%(maildir)s"; };
log = { file = "%(log)s"; %(logopts)s };
"""

LINE = re.compile(r'^([a-z0-9_]+=("[ !#-~]*"|[!#-~]+))'
                  r'( [a-z0-9_]+=("[ !#-~]*"|[!#-~]+))*$')
PAIR = re.compile(r'([a-z0-9_]+)=("[ !#-~]*"|[!#-~]+)')


def documented(src):
    """{event: set of keys} from docs/logging.md; '' = every line's keys."""
    with open(os.path.join(src, "docs", "logging.md")) as f:
        text = f.read()
    doc, cur = {}, None
    for ln in text.splitlines():
        m = re.match(r"^### `event=([a-z_]+)`", ln)
        if m:
            cur = m.group(1)
            doc[cur] = set()
            continue
        if ln.startswith("## Keys on every line"):
            cur = ""
            doc[cur] = set()
            continue
        if ln.startswith("## ") and not ln.startswith("## Events"):
            cur = None
        m = re.match(r"^\| `([a-z0-9_]+)` \|", ln)
        if m and cur is not None:
            doc[cur].add(m.group(1))
    return doc


def smtp_send(port, rcpt, n=1):
    """n messages on one connection; the replies' codes."""
    codes = []
    with smtplib.SMTP(GATEWAY_IP, port, timeout=30) as s:
        s.ehlo("observe.test")
        for i in range(n):
            try:
                s.sendmail("a@observe.test", [rcpt],
                           "Subject: observe %d\r\n\r\nhello\r\n" % i)
                codes.append(250)
            except smtplib.SMTPResponseException as e:
                codes.append(e.smtp_code)
                try:
                    s.rset()
                except smtplib.SMTPException:
                    break
            except smtplib.SMTPRecipientsRefused as e:
                codes.append(list(e.recipients.values())[0][0])
                s.rset()
            except smtplib.SMTPServerDisconnected:
                codes.append(0)
                break
    return codes


def series(text):
    """{metric sample name: list of label-name sets}"""
    out = {}
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", ln)
        if m:
            labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="',
                                    m.group(3) or ""))
            out.setdefault(m.group(1), []).append(labels)
    return out


def run(mxgate, mxgatectl, res, fmt):
    """The scenario with log.format = fmt; (log path, exposition)."""
    tmp = tempfile.mkdtemp(prefix="mxgt-obs-")
    logf = os.path.join(tmp, "mxgate.log")
    conf = os.path.join(tmp, "mxgate.conf")
    logopts = 'format = "%s";' % fmt
    good = CONF % {"maildir": os.path.join(tmp, "md"), "log": logf,
                   "logopts": logopts}
    with open(conf, "w") as f:
        f.write(good)
    sock = os.path.join(tmp, "admin.sock")
    ctl = [mxgatectl, "-s", sock]
    exposition = ""
    with mxgtest.Netns("obs"):
        gw = mxgtest.Mxgate(mxgate, ["--config", conf, "--admin-socket",
                                     sock, "--metrics", METRICS])
        try:
            gw.start()
            time.sleep(0.5)
            res.check(smtp_send(25, "postmaster@example.com") == [250],
                      "a message accepted into the Maildir")
            c = smtp_send(25, "x@dead.example")
            res.check(c and c[0] // 100 == 4,
                      "a message to a dead backend: 4xx (%s)" % c)
            try:
                import socket
                s = socket.create_connection((GATEWAY_IP, 2525), timeout=5)
                s.settimeout(5)
                got = s.recv(100)
                s.close()
            except OSError:
                got = b""
            res.check(not got.startswith(b"220"),
                      "a denied client gets no greeting (%r)" % got)
            c = smtp_send(2526, "postmaster@example.com", 2)
            res.check(c[:1] == [250] and len(c) == 2 and c[1] in (421, 0),
                      "max_messages_per_connection: second refused (%s)" %
                      c)
            c = smtp_send(2527, "postmaster@example.com", 3)
            res.check(451 in c, "rate limit refuses with 451 (%s)" % c)
            r = subprocess.run(ctl + ["reload"], capture_output=True,
                               text=True, timeout=60)
            res.check(r.returncode == 0, "reload ok")
            with open(conf, "w") as f:
                f.write(good.replace("listeners = (", "listeners = ( frob"))
            r = subprocess.run(ctl + ["reload"], capture_output=True,
                               text=True, timeout=60)
            res.check(r.returncode == 1, "broken reload refused")
            with open(conf, "w") as f:
                f.write(good)
            r = subprocess.run(ctl + ["block", "192.0.2.0/24", "--expire",
                                      "60"], capture_output=True, text=True,
                               timeout=60)
            res.check(r.returncode == 0, "push (block)")
            time.sleep(0.5)
            exposition = urllib.request.urlopen(
                "http://%s/metrics" % METRICS, timeout=10).read().decode()
            if fmt == "json":
                with open(conf, "w") as f:
                    f.write(good.replace(logopts,
                                         logopts + ' level = "warn";'))
                r = subprocess.run(ctl + ["reload"], capture_output=True,
                                   text=True, timeout=60)
                res.check(r.returncode == 0, "reload to log.level warn")
                c = smtp_send(25, "y@dead.example")
                res.check(c and c[0] // 100 == 4,
                          "warn: a message to a dead backend, 4xx (%s)" % c)
                time.sleep(0.5)
        except Exception as e:  # noqa: BLE001
            res.check(False, "exception %r" % e)
            log(gw.output()[-2000:])
        finally:
            gw.shutdown(res)
            gw.kill()
    return logf, exposition


NUMERIC = {"ts", "generation", "rcpts", "size", "ms", "commands",
           "messages", "errors", "pregreet", "code", "value", "seq", "kind",
           "port", "cores_applied", "cores_failed", "latency_us",
           "compile_us"}


def check_json(res, logf, kv_seen):
    """The json run's log against the kv run's keys, and log.level warn
    after the last push line."""
    with open(logf, encoding="utf-8") as f:
        lines = f.read().splitlines()
    seen, bad, after, past_push = {}, [], [], False
    for ln in lines:
        try:
            obj = json.loads(ln)
        except ValueError:
            bad.append(ln)
            continue
        if not isinstance(obj, dict):
            bad.append(ln)
            continue
        ev = obj.get("event")
        if past_push:
            after.append(ev)
            continue
        if ev == "push":
            past_push = True
        seen.setdefault(ev, set()).update(obj)
        for k, v in obj.items():
            if k in NUMERIC and not isinstance(v, (int, float)):
                bad.append("%s not a number: %s" % (k, ln))
            elif k not in NUMERIC and not isinstance(v, str):
                bad.append("%s not a string: %s" % (k, ln))
    res.check(lines and bad == [], "json: %d lines, each one object, numeric "
              "keys numbers (bad: %s)" % (len(lines), bad[:3]))
    for ev in sorted(set(seen) | set(kv_seen), key=str):
        res.check(seen.get(ev) == kv_seen.get(ev),
                  "json event=%s has the kv keys (json %s, kv %s)" %
                  (ev, sorted(seen.get(ev, [])),
                   sorted(kv_seen.get(ev, []))))
    res.check("backend_error" in after and
              set(after) <= {"backend_error", "push_failed", "error"},
              "after the reload to log.level warn: only warn/error events "
              "(%s)" % after)
    log("json: %d lines; after level=warn: %s" % (len(lines), after))


def main():
    mxgate, mxgatectl, src, mode = sys.argv[1:5]
    res = mxgtest.Result("observe-" + mode)
    logf, exposition = run(mxgate, mxgatectl, res, "kv")

    if mode == "dashboard":
        with open(os.path.join(src, "contrib", "grafana",
                               "mxgate-dashboard.json")) as f:
            dash = json.load(f)
        exprs = []
        for p in dash["panels"]:
            exprs += [t["expr"] for t in p.get("targets", [])]
        exprs += [a["expr"] for a in dash["annotations"]["list"]
                  if "expr" in a]
        exprs += [v["definition"] for v in dash["templating"]["list"]
                  if v.get("definition")]
        have = series(exposition)
        res.check(len(have) > 10, "exposition has %d series names" %
                  len(have))
        used = set()
        for e in exprs:
            for name in re.findall(r"\b(mxgate_[a-z0-9_]+)", e):
                used.add(name)
                res.check(name in have, "queried metric exists: %s" % name)
            # `sum by (L) (...(METRIC...))`: L must label METRIC.
            for lab, body in re.findall(r"by \(([a-z_, ]+)\) \((.*)", e):
                for name in re.findall(r"\b(mxgate_[a-z0-9_]+)", body):
                    for label in [x.strip() for x in lab.split(",")]:
                        ok = any(label in ls for ls in have.get(name, []))
                        res.check(ok, "%s carries label %s" % (name, label))
        log("dashboard queries %d metrics: %s" % (len(used), sorted(used)))
        res.check(len(used) >= 15, "the dashboard covers >= 15 metrics")
    else:
        doc = documented(src)
        with open(logf) as f:
            lines = f.read().splitlines()
        seen = {}
        bad = []
        for ln in lines:
            if not LINE.match(ln):
                bad.append(ln)
                continue
            pairs = PAIR.findall(ln)
            keys = [k for k, _ in pairs]
            if keys[:2] != ["ts", "core"] or len(set(keys)) != len(keys):
                bad.append(ln)
            ev = dict(pairs).get("event")
            seen.setdefault(ev, set()).update(keys)
        res.check(bad == [], "every line parses by the grammar (bad: %s)" %
                  bad[:3])
        for ev in sorted(seen, key=str):
            extra = seen[ev] - doc.get(ev, set()) - doc.get("", set())
            res.check(ev in doc and not extra,
                      "event=%s documented with all its keys (undocumented: "
                      "%s)" % (ev, sorted(extra)))
        want = {"connect", "message", "session", "refused", "limit",
                "rate_limited", "backend_error", "policy", "reload", "push"}
        res.check(want <= set(seen), "the run produced these events: %s "
                  "(missing: %s)" % (sorted(seen, key=str),
                                     sorted(want - set(seen))))
        log("%d lines, events: %s" % (len(lines), sorted(seen, key=str)))
        logf, _ = run(mxgate, mxgatectl, res, "json")
        check_json(res, logf, seen)
    res.finish()


if __name__ == "__main__":
    main()
