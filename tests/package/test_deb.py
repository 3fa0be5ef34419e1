#!/usr/bin/env python3
"""The Debian package, end to end on this machine (as root):

build it from a copy of the tree with `dpkg-buildpackage -us -uc -b`
(timed), lintian without errors, install it, check the system user, the
directories and the conffile, `mxgate --check-config` on the installed
configuration, `systemd-analyze verify` on the installed unit, start the
installed binary with the installed configuration in a test namespace on
its tap port, with the unit's capability bounding set and group, deliver one
message into the Maildir, reload through mxgatectl (ExecReload), rotate the
log with the installed logrotate file (its postrotate `mxgatectl
reopen-log`, pointed at the test's socket) while a client keeps sending:
the old file keeps every line written before, the new one starts with a
whole line and gets the next message, and the message lines of both add
up to the messages sent, each once; drain (ExecStop), remove (the conffile stays) and
purge (nothing left but the Maildir and its message).

usage: test_deb.py SRCDIR
"""

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import smtplib
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import mxgtest  # noqa: E402
from mxgtest import GATEWAY_IP, log  # noqa: E402

UNIT = "/lib/systemd/system/mxgate.service"
CONF = "/etc/mxgate/mxgate.conf"
MAILDIR = "/var/lib/mxgate/Maildir"


def sh(*cmd, timeout=600, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       **kw)
    return r.returncode, r.stdout + r.stderr


def copy_tree(src, dst):
    """The tracked and untracked-but-not-ignored files of SRC, no builds."""
    rc, out = sh("git", "-C", src, "ls-files", "-co", "--exclude-standard")
    if rc == 0:
        files = [f for f in out.splitlines() if f and
                 not f.startswith(("build", "obj-", "debian/mxgate/",
                                   "debian/.debhelper"))]
    else:
        files = []
        for root, dirs, names in os.walk(src):
            dirs[:] = [d for d in dirs if not d.startswith(
                ("build", ".git", "obj-"))]
            files += [os.path.relpath(os.path.join(root, n), src)
                      for n in names]
    for f in files:
        s = os.path.join(src, f)
        if not os.path.isfile(s):
            continue
        d = os.path.join(dst, f)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(s, d)


def unit_caps():
    with open(UNIT) as f:
        m = re.search(r"^CapabilityBoundingSet=(.*)$", f.read(), re.M)
    return [c.lower().replace("cap_", "") for c in m.group(1).split()]


def unit_stops(sock, pid):
    """The unit's ExecStop command lines, ready to run."""
    out = []
    with open(UNIT) as f:
        for ln in f:
            if ln.startswith("ExecStop="):
                cmd = ln.split("=", 1)[1].strip().lstrip("-")
                cmd = cmd.replace("/run/mxgate/admin.sock", sock)
                cmd = cmd.replace("${MAINPID}", str(pid))
                out.append(shlex.split(cmd))
    return out


def send_one(subject):
    """One message on its own connection; True when accepted."""
    try:
        with smtplib.SMTP(GATEWAY_IP, 25, timeout=30) as s:
            s.sendmail("a@deb.test", ["postmaster@example.com"],
                       "Subject: %s\r\n\r\nrotate\r\n" % subject)
        return True
    except (smtplib.SMTPException, OSError):
        return False


def read_bytes(path):
    """The file's content; b"" when it does not exist (a missed reopen)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def message_lines(path):
    return [ln for ln in read_bytes(path).split(b"\n")
            if b" event=message " in ln]


def rotate_check(res, tmp, sock, logf, subj):
    """logrotate with the installed file while messages flow; no line lost,
    none doubled, the next line in the new file."""
    with open("/etc/logrotate.d/mxgate") as f:
        rot = f.read()
    res.check("copytruncate" not in rot and
              re.search(r"postrotate\s+/usr/sbin/mxgatectl reopen-log", rot),
              "the installed logrotate file reopens through mxgatectl")
    # Our gateway listens on the test's socket, not /run/mxgate's; and
    # here a failed reopen must fail logrotate, not pass unseen.
    conf = os.path.join(tmp, "logrotate.conf")
    with open(conf, "w") as f:
        f.write(rot.replace("mxgatectl reopen-log",
                            "mxgatectl -s %s reopen-log" % sock)
                .replace(" >/dev/null 2>&1 || true", ""))
    sent = [0]
    for i in range(10):
        sent[0] += send_one("%s %d" % (subj, i))
    for _ in range(100):
        if len(message_lines(logf)) >= sent[0] + 1:
            break
        time.sleep(0.05)
    with open(logf, "rb") as f:
        snap = f.read()
    stop = threading.Event()

    def client():
        while not stop.is_set():
            sent[0] += send_one("%s bg" % subj)
    t = threading.Thread(target=client)
    t.start()
    time.sleep(0.3)
    rc, out = sh("logrotate", "-f", "-s",
                 os.path.join(tmp, "logrotate.state"), conf)
    time.sleep(0.3)
    stop.set()
    t.join()
    res.check(rc == 0 and os.path.exists(logf + ".1"),
              "logrotate -f rotated to mxgate.log.1 (%s)" % out.strip())
    def settle(total):
        for _ in range(100):
            old, new = message_lines(logf + ".1"), message_lines(logf)
            if len(old) + len(new) >= total:
                break
            time.sleep(0.05)
        return old, new
    old0, new0 = settle(sent[0] + 1)  # and swaks' first message
    ok = send_one("%s next" % subj)
    sent[0] += ok
    total = sent[0] + 1
    old, new = settle(total)
    oldtext, newtext = read_bytes(logf + ".1"), read_bytes(logf)
    res.check(oldtext.startswith(snap) and snap.endswith(b"\n"),
              "the old file keeps every line written before the rotation "
              "(%d octets)" % len(snap))
    res.check(ok and newtext.startswith(b"ts=") and b"\0" not in newtext and
              len(old) == len(old0) and len(new) == len(new0) + 1,
              "the new file starts with a whole line and gets the next "
              "message (old %d -> %d, new %d -> %d lines; %r)" %
              (len(old0), len(old), len(new0), len(new), newtext[:60]))
    sids = [re.search(rb"sid=(\S+)", ln).group(1) for ln in old + new]
    res.check(len(old) + len(new) == total and len(set(sids)) == len(sids),
              "message lines across the rotation: %d old + %d new = %d "
              "sent, each once" % (len(old), len(new), total))
    log("rotation: %d messages, %d in the old file, %d in the new" %
        (total, len(old), len(new)))


def main():
    src = os.path.abspath(sys.argv[1])
    res = mxgtest.Result("deb")
    tmp = tempfile.mkdtemp(prefix="mxgt-deb-")
    mine = []  # message files this test put in the Maildir
    try:
        if sh("dpkg-query", "-W", "-f=${Status}", "mxgate")[1].startswith(
                "install ok"):
            log("mxgate was installed before the test: purging it")
            sh("dpkg", "--purge", "mxgate")
        tree = os.path.join(tmp, "src")
        copy_tree(src, tree)
        t0 = time.time()
        rc, out = sh("dpkg-buildpackage", "-us", "-uc", "-b",
                     "-j%d" % (os.cpu_count() or 1), cwd=tree, timeout=1200)
        build_s = time.time() - t0
        res.check(rc == 0, "dpkg-buildpackage -us -uc -b (%.0f s)" % build_s)
        if rc != 0:
            log(out[-4000:])
            res.finish()
        log("package build: %.0f s" % build_s)
        debs = glob.glob(os.path.join(tmp, "mxgate_*_amd64.deb"))
        changes = glob.glob(os.path.join(tmp, "mxgate_*.changes"))
        res.check(len(debs) == 1, "one binary package: %s" % debs)
        rc, out = sh("lintian", "--fail-on", "error", changes[0])
        log(out.strip() or "lintian: no tags")
        res.check(rc == 0 and not re.search(r"^E: ", out, re.M),
                  "lintian: no errors")

        rc, out = sh("dpkg", "-i", debs[0])
        res.check(rc == 0, "dpkg -i (%s)" % out.strip()[-300:])
        rc, out = sh("getent", "passwd", "mxgate")
        res.check(rc == 0 and "/usr/sbin/nologin" in out,
                  "system user mxgate created (%s)" % out.strip())
        for d, mode, owner in ((MAILDIR, 0o2770, "mxgate:mxgate"),
                               ("/var/lib/mxgate", 0o2770, "mxgate:mxgate"),
                               ("/var/log/mxgate", 0o2750, "root:mxgate")):
            rc, out = sh("stat", "-c", "%U:%G", d)
            st = os.stat(d) if os.path.isdir(d) else None
            res.check(st is not None and (st.st_mode & 0o7777) == mode and
                      out.strip() == owner,
                      "%s is %s %o" % (d, owner, mode))
        rc, out = sh("dpkg-query", "-W", "-f=${Conffiles}", "mxgate")
        res.check(CONF in out, "%s is a conffile" % CONF)
        for p in ("/usr/sbin/mxgate", "/usr/sbin/mxgatectl",
                  "/usr/sbin/mxgate-setup-nic", UNIT,
                  "/etc/logrotate.d/mxgate",
                  "/usr/share/man/man8/mxgate.8.gz",
                  "/usr/share/man/man8/mxgatectl.8.gz",
                  "/usr/share/man/man5/mxgate.conf.5.gz",
                  "/usr/share/mxgate/grafana/mxgate-dashboard.json"):
            res.check(os.path.exists(p), "installed: %s" % p)

        rc, out = sh("/usr/sbin/mxgate", "--check-config", CONF)
        res.check(rc == 0, "mxgate --check-config %s (%s)" %
                  (CONF, out.strip()))
        rc, out = sh("systemd-analyze", "verify", UNIT)
        res.check(rc == 0 and not out.strip(),
                  "systemd-analyze verify %s: clean %r" % (UNIT, out))

        # The installed binary and configuration, as the unit runs them:
        # root with the unit's capability bounding set, group mxgate.
        caps = unit_caps()
        sock = os.path.join(tmp, "run", "admin.sock")
        os.makedirs(os.path.dirname(sock))
        with mxgtest.Netns("deb"):
            gw = mxgtest.Mxgate("/usr/bin/setpriv", tap="mxg0")
            gw.args = (["--bounding-set", "-all," + ",".join(
                "+" + c for c in caps), "--regid", "mxgate",
                "--clear-groups", "--", "/usr/sbin/mxgate", "--config",
                CONF, "--admin-socket", sock, "--stats-file",
                gw.stats_file, "--stats-interval-ms", "100"])
            ctl = ["/usr/sbin/mxgatectl", "-s", sock]
            try:
                gw.start()
                subj = "mxgate-deb-test-%d-%d" % (os.getpid(), time.time())
                rc, out = sh("swaks", "--server", GATEWAY_IP, "--to",
                             "postmaster@example.com", "--header",
                             "Subject: " + subj, "--timeout", "30",
                             timeout=60)
                res.check(rc == 0, "swaks delivered one message")
                found = []
                for _ in range(50):
                    for p in glob.glob(os.path.join(MAILDIR, "new", "*")):
                        with open(p, errors="replace") as f:
                            if subj in f.read():
                                found.append(p)
                    if found:
                        break
                    time.sleep(0.1)
                mine += found
                res.check(len(found) == 1, "the message is in %s/new" %
                          MAILDIR)
                if found:
                    st = os.stat(found[0])
                    res.check(st.st_gid == int(sh("getent", "group",
                                                  "mxgate")[1].split(":")[2]),
                              "the message file belongs to group mxgate")
                rc, out = sh(*ctl, "reload", timeout=60)
                res.check(rc == 0, "mxgatectl reload (ExecReload): %s" %
                          out.strip())
                # The logger thread writes every few milliseconds.
                logf = "/var/log/mxgate/mxgate.log"
                for _ in range(100):
                    with open(logf) as f:
                        before = f.read()
                    if "outcome=accepted" in before and \
                            "event=reload by=admin result=ok" in before:
                        break
                    time.sleep(0.05)
                res.check("event=message" in before and
                          "outcome=accepted" in before and
                          "event=reload by=admin result=ok" in before,
                          "the log has the message and the reload")

                rotate_check(res, tmp, sock, logf, subj + "-r")
                for p in glob.glob(os.path.join(MAILDIR, "new", "*")):
                    with open(p, errors="replace") as f:
                        if subj + "-r" in f.read():
                            mine.append(p)

                # The unit's ExecStop lines as systemd runs them (our
                # socket, ${MAINPID} = the gateway): drain, then wait for
                # the process to be gone.
                stops = unit_stops(sock, gw.proc.pid)
                res.check(len(stops) == 2, "two ExecStop lines: %s" % stops)
                rc, out = sh(*stops[0], timeout=30)
                res.check(rc == 0, "ExecStop 1 (%s): %s" %
                          (" ".join(stops[0]), out.strip()))
                # We are mxgate's parent, as systemd is under the unit:
                # reap it, or tail --pid would wait for a zombie.
                t0 = time.time()
                waiter = subprocess.Popen(stops[1])
                try:
                    gw.proc.wait(60)
                except subprocess.TimeoutExpired:
                    pass
                t_exit = time.time() - t0
                try:
                    rc = waiter.wait(30)
                except subprocess.TimeoutExpired:
                    waiter.kill()
                    rc = waiter.wait()
                res.check(rc == 0 and gw.proc.returncode is not None,
                          "ExecStop 2 returned once mxgate exited (exit "
                          "after %.1f s, wait returned after %.1f s)" %
                          (t_exit, time.time() - t0))
                res.check(gw.proc.returncode == 0,
                          "mxgate exited 0 after the drain (%s)" %
                          gw.proc.returncode)
            except Exception as e:  # noqa: BLE001
                res.check(False, "exception %r" % e)
                traceback.print_exc()
                log(gw.output()[-2000:])
            finally:
                if gw.proc and gw.proc.poll() is None:
                    gw.shutdown(res)
                gw.kill()
                out = gw.output()
                log(out[-1500:])

        rc, out = sh("dpkg", "--remove", "mxgate")
        res.check(rc == 0 and not os.path.exists("/usr/sbin/mxgate") and
                  os.path.exists(CONF),
                  "dpkg --remove: binaries gone, conffile kept")
        rc, out = sh("dpkg", "--purge", "mxgate")
        res.check(rc == 0, "dpkg --purge (%s)" % out.strip()[-200:])
        left = [p for p in ("/etc/mxgate", "/var/log/mxgate", UNIT,
                            "/etc/logrotate.d/mxgate", "/run/mxgate",
                            "/usr/share/doc/mxgate")
                if os.path.exists(p)]
        res.check(left == [], "purge left nothing of these: %s" % left)
        inlib = sorted(os.listdir("/var/lib/mxgate")) \
            if os.path.isdir("/var/lib/mxgate") else None
        res.check(inlib == ["Maildir"],
                  "/var/lib/mxgate holds only the Maildir: %s" % inlib)
        res.check(mine and all(os.path.exists(p) for p in mine),
                  "the delivered messages survive the purge")
    finally:
        if sh("dpkg-query", "-W", "-f=${Status}", "mxgate")[1].startswith(
                "install ok"):
            sh("dpkg", "--purge", "mxgate")
        for p in mine:
            try:
                os.unlink(p)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
