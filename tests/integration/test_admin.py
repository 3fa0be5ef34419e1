#!/usr/bin/env python3
"""The admin socket and the metrics endpoint of a running gateway (a first
slice of issue 5): mxgatectl status/stats against it, Prometheus text over
HTTP, mxgatectl against a stopped gateway and with bad arguments.

usage: test_admin.py MXGATE MXGATECTL
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
from mxgtest import GATEWAY_IP, log  # noqa: E402


def ctl(mxgatectl, sock, *args):
    r = subprocess.run([mxgatectl, "-s", sock] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def main():
    mxgate, mxgatectl = sys.argv[1], sys.argv[2]
    res = mxgtest.Result("admin")
    tmp = tempfile.mkdtemp(prefix="mxgt-admin-")
    sock = os.path.join(tmp, "run", "admin.sock")
    with mxgtest.Netns("admin"):
        gw = mxgtest.Mxgate(mxgate, ["--maildir", os.path.join(tmp, "md"),
                                     "--admin-socket", sock,
                                     "--metrics", "127.0.0.1:9180",
                                     "--log-file",
                                     os.path.join(tmp, "log")])
        try:
            gw.start()
            time.sleep(0.5)
            r = subprocess.run(["swaks", "--server", GATEWAY_IP, "--to",
                                "a@example.com", "--timeout", "30"],
                               capture_output=True, text=True, timeout=60)
            res.check(r.returncode == 0, "swaks delivered one message")
            st = os.stat(sock)
            res.check(oct(st.st_mode & 0o777) == "0o600",
                      "admin socket mode 0600 (%s)" % oct(st.st_mode & 0o777))
            rc, out = ctl(mxgatectl, sock, "status")
            log(out)
            res.check(rc == 0 and "messages_accepted: 1" in out and
                      "address: 198.18.0.2" in out,
                      "mxgatectl status reports the gateway and 1 message")
            rc, out = ctl(mxgatectl, sock, "-j", "stats")
            try:
                tot = json.loads(out)["total"]
            except (ValueError, KeyError):
                tot = {}
            res.check(rc == 0 and tot.get("gw_messages_accepted") == 1,
                      "mxgatectl stats carries the gateway counters")
            rc, out = ctl(mxgatectl, sock, "reload")
            res.check(rc == 1 and "no configuration file" in out,
                      "reload without --config is refused with a reason "
                      "(%r)" % out.strip())
            rc, out = ctl(mxgatectl, sock, "frobnicate")
            res.check(rc == 2 and "unknown command" in out,
                      "an unknown command is refused locally (%r)" %
                      out.strip())
            text = urllib.request.urlopen(
                "http://127.0.0.1:9180/metrics", timeout=10).read().decode()
            res.check('mxgate_messages_total{outcome="accepted"} 1' in text
                      and "# TYPE mxgate_sessions_open gauge" in text,
                      "metrics: messages by outcome and open sessions")
            rc, out = ctl(mxgatectl, sock, "block", "10.0.0.1/8")
            res.check(rc == 2 and "10.0.0.0/8" in out,
                      "bad CIDR refused locally with exit 2 (%r)" %
                      out.strip())
        except Exception as e:  # noqa: BLE001
            res.check(False, "exception %r" % e)
            log(gw.output()[-2000:])
        finally:
            gw.shutdown(res)
            gw.kill()
        rc, out = ctl(mxgatectl, sock, "status")
        res.check(rc == 1 and "is mxgate running?" in out,
                  "mxgatectl against a stopped gateway: exit 1, clear "
                  "message (%r)" % out.strip())
    res.finish()


if __name__ == "__main__":
    main()
