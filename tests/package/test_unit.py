#!/usr/bin/env python3
"""debian/mxgate.service: `systemd-analyze verify` clean (with the
build tree's binaries in place of /usr/sbin, man pages not looked up: the
installed unit is verified with them by pkg_deb); the settings issue 19
asks for are there (reload through mxgatectl, stop through drain with a
bound, Restart=on-failure, limits); every hardening setting systemd offers
for services is either set or explained under "Not used"; and
`systemd-analyze security --offline` gives its exposure score.

usage: test_unit.py SRCDIR MXGATE MXGATECTL
"""

import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import mxgtest  # noqa: E402
from mxgtest import log  # noqa: E402

HARDENING = (
    "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
    "PrivateDevices", "PrivateNetwork", "ProtectKernelTunables",
    "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
    "ProtectClock", "ProtectHostname", "RestrictNamespaces",
    "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
    "MemoryDenyWriteExecute", "SystemCallFilter", "SystemCallArchitectures",
    "RestrictAddressFamilies", "CapabilityBoundingSet", "DevicePolicy",
    "DynamicUser", "User")


def main():
    src, mxgate, mxgatectl = sys.argv[1:4]
    res = mxgtest.Result("unit")
    with open(os.path.join(src, "debian", "mxgate.service")) as f:
        text = f.read()
    settings = {}
    for ln in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", ln)
        if m:
            settings.setdefault(m.group(1), []).append(m.group(2))
    notused = text.split("# Not used, and why:")[-1] \
        if "# Not used, and why:" in text else ""

    res.check(any("mxgatectl" in v and v.endswith(" reload")
                  for v in settings.get("ExecReload", [])),
              "ExecReload through mxgatectl reload")
    stops = settings.get("ExecStop", [])
    res.check(len(stops) == 2 and stops[0].endswith(" drain") and
              "--pid=${MAINPID}" in stops[1] and "timeout" in stops[1],
              "ExecStop: drain, then a bounded wait for the main process")
    tss = settings.get("TimeoutStopSec", ["0"])[0]
    wait = re.search(r"timeout (\d+)", stops[1] if len(stops) > 1 else "")
    res.check(wait is not None and int(tss) > int(wait.group(1)) >= 300,
              "TimeoutStopSec (%s) bounds the wait (%s), which outlasts the "
              "drain's own 300 s" % (tss, wait.group(1) if wait else None))
    res.check(settings.get("Restart") == ["on-failure"], "Restart=on-failure")
    res.check(settings.get("LimitMEMLOCK") == ["infinity"] and
              "LimitNOFILE" in settings, "LimitMEMLOCK and LimitNOFILE set")
    missing = [h for h in HARDENING if h not in settings and
               not re.search(r"\b%s=" % h, notused)]
    res.check(missing == [], "every hardening setting is set or explained "
              "(neither: %s)" % missing)

    with tempfile.TemporaryDirectory(prefix="mxgt-unit-") as d:
        unit = os.path.join(d, "mxgate.service")
        with open(unit, "w") as f:
            f.write(text.replace("/usr/sbin/mxgatectl",
                                 os.path.abspath(mxgatectl))
                    .replace("/usr/sbin/mxgate ", os.path.abspath(mxgate) +
                             " "))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit],
                           capture_output=True, text=True, timeout=60)
        res.check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
                  "systemd-analyze verify: clean %r" % (r.stdout + r.stderr))
        r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                            unit], capture_output=True, text=True,
                           timeout=60)
        m = re.search(r"Overall exposure level for mxgate.service: "
                      r"([0-9.]+) (\w+)", r.stdout)
        log("systemd-analyze security: %s" %
            (m.group(0) if m else r.stdout[-300:]))
        res.check(m is not None and float(m.group(1)) <= 6.0,
                  "exposure level at most 6.0 (%s)" %
                  (m.group(1) if m else "?"))
    res.finish()


if __name__ == "__main__":
    main()
