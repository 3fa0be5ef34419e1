#!/usr/bin/env python3
"""mxgate-setup-nic's argument checks and refusal paths, on a fake sysfs
(no real NIC here): usage errors exit 2; an unknown interface, an interface
that is up, a NIC already bound to vfio-pci, a machine without IOMMU, a
kernel without vfio-pci and a missing dpdk-devbind.py are refused with exit
1 and a message, and dpdk-devbind.py is never called for them; the bind and
unbind paths call it with the right arguments and remember the driver;
hugepages are written and persisted.

usage: test_setup_nic.py SCRIPT
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import mxgtest  # noqa: E402

PCI = "0000:03:00.0"


class Fake:
    def __init__(self, root):
        self.root = root
        self.sys = os.path.join(root, "sys")
        dev = os.path.join(self.sys, "devices", "pci0000:00", PCI)
        os.makedirs(dev)
        for d in ("bus/pci/devices", "bus/pci/drivers/ixgbe",
                  "bus/pci/drivers/vfio-pci", "kernel/iommu_groups",
                  "module/vfio/parameters", "class/net/eth9"):
            os.makedirs(os.path.join(self.sys, d), exist_ok=True)
        os.symlink(dev, os.path.join(self.sys, "bus/pci/devices", PCI))
        os.symlink(dev, os.path.join(self.sys, "class/net/eth9/device"))
        os.makedirs(os.path.join(self.sys, "class/net/lo0"))  # virtual
        self.dev = dev
        self.set_driver("ixgbe")
        self.set_oper("down")
        self.proc = os.path.join(root, "proc")
        os.makedirs(os.path.join(self.proc, "sys/vm"))
        with open(os.path.join(self.proc, "sys/vm/nr_hugepages"), "w") as f:
            f.write("0\n")
        self.calls = os.path.join(root, "devbind.calls")
        bindir = os.path.join(root, "bin")
        os.makedirs(bindir)
        self.devbind = os.path.join(bindir, "dpdk-devbind.py")
        # A devbind that records its arguments and moves the symlink.
        with open(self.devbind, "w") as f:
            f.write("#!/bin/sh\necho \"$*\" >>%s\n"
                    "drv=${1#--bind=}\n"
                    "ln -sfn %s/bus/pci/drivers/$drv %s/driver\n" %
                    (self.calls, self.sys, dev))
        os.chmod(self.devbind, 0o755)
        self.modprobe = os.path.join(bindir, "modprobe")
        self.set_modprobe(True)
        self.state = os.path.join(root, "state")
        self.sysctl = os.path.join(root, "sysctl.d")

    def set_driver(self, drv):
        link = os.path.join(self.dev, "driver")
        if os.path.lexists(link):
            os.unlink(link)
        if drv:
            os.symlink(os.path.join(self.sys, "bus/pci/drivers", drv), link)

    def set_oper(self, state):
        with open(os.path.join(self.sys, "class/net/eth9/operstate"),
                  "w") as f:
            f.write(state + "\n")

    def set_iommu(self, on):
        g = os.path.join(self.sys, "kernel/iommu_groups/7")
        if on:
            os.makedirs(g, exist_ok=True)
        elif os.path.isdir(g):
            os.rmdir(g)

    def set_noiommu(self, on):
        with open(os.path.join(self.sys, "module/vfio/parameters/"
                               "enable_unsafe_noiommu_mode"), "w") as f:
            f.write("Y\n" if on else "N\n")

    def set_modprobe(self, ok):
        with open(self.modprobe, "w") as f:
            f.write("#!/bin/sh\nexit %d\n" % (0 if ok else 1))
        os.chmod(self.modprobe, 0o755)

    def devbind_calls(self):
        try:
            with open(self.calls) as f:
                return f.read().split("\n")[:-1]
        except FileNotFoundError:
            return []

    def run(self, script, *args, devbind=None):
        env = dict(os.environ, MXG_SYSFS=self.sys, MXG_PROC=self.proc,
                   MXG_DEVBIND=devbind or self.devbind,
                   MXG_MODPROBE=self.modprobe, MXG_STATE_DIR=self.state,
                   MXG_SYSCTL_DIR=self.sysctl)
        r = subprocess.run([script] + list(args), capture_output=True,
                           text=True, env=env, timeout=30)
        mxgtest.log("  $ mxgate-setup-nic %s -> %d %s" %
                    (" ".join(args), r.returncode, r.stderr.strip()[:160]))
        return r.returncode, r.stdout + r.stderr


def main():
    script = os.path.abspath(sys.argv[1])
    res = mxgtest.Result("setup_nic")
    tmp = tempfile.mkdtemp(prefix="mxgt-nic-")
    try:
        fk = Fake(tmp)
        for args, what in (((), "no command"),
                           (("frob",), "unknown command"),
                           (("bind",), "bind without a device"),
                           (("bind", "eth9", "eth8"), "bind with two"),
                           (("bind", "../x"), "a path as interface"),
                           (("unbind", "eth9"), "unbind of a name"),
                           (("unbind",), "unbind without PCI"),
                           (("hugepages",), "hugepages without N"),
                           (("hugepages", "12x"), "hugepages not a number"),
                           (("hugepages", "8", "--forever"), "bad flag"),
                           (("status", "x"), "status with an argument")):
            rc, _ = fk.run(script, *args)
            res.check(rc == 2, "usage error exits 2: %s" % what)
        rc, out = fk.run(script, "--help")
        res.check(rc == 0 and "bind IFACE|PCI" in out, "--help")

        rc, out = fk.run(script, "bind", "nosuch0")
        res.check(rc == 1 and "unknown interface 'nosuch0'" in out,
                  "unknown interface refused")
        rc, out = fk.run(script, "bind", "0000:09:00.0")
        res.check(rc == 1 and "no PCI device 0000:09:00.0" in out,
                  "unknown PCI address refused")
        rc, out = fk.run(script, "bind", "lo0")
        res.check(rc == 1 and "not a PCI device" in out,
                  "virtual interface refused")
        fk.set_oper("up")
        rc, out = fk.run(script, "bind", "eth9")
        res.check(rc == 1 and "is up" in out, "interface that is up refused")
        fk.set_oper("down")
        rc, out = fk.run(script, "bind", "eth9")
        res.check(rc == 1 and "no IOMMU" in out and "intel_iommu=on" in out,
                  "no IOMMU refused, with the kernel parameter to set")
        fk.set_iommu(True)
        fk.set_modprobe(False)
        rc, out = fk.run(script, "bind", "eth9")
        res.check(rc == 1 and "cannot load vfio-pci" in out,
                  "missing vfio-pci driver refused")
        fk.set_modprobe(True)
        rc, out = fk.run(script, "bind", "eth9",
                         devbind=os.path.join(tmp, "nope", "devbind"))
        res.check(rc == 1 and "install the Debian package 'dpdk'" in out,
                  "missing dpdk-devbind.py refused")
        res.check(fk.devbind_calls() == [],
                  "no refusal called dpdk-devbind.py")

        rc, out = fk.run(script, "bind", "eth9")
        res.check(rc == 0 and 'stack.port = "%s"' % PCI in out,
                  "bind eth9 succeeds and names the PCI address")
        res.check(fk.devbind_calls() == ["--bind=vfio-pci %s" % PCI],
                  "dpdk-devbind.py called once: %r" % fk.devbind_calls())
        rc, out = fk.run(script, "bind", PCI)
        res.check(rc == 1 and "already bound to vfio-pci" in out,
                  "already bound refused")
        rc, out = fk.run(script, "unbind", PCI)
        res.check(rc == 0 and fk.devbind_calls()[-1] ==
                  "--bind=ixgbe %s" % PCI,
                  "unbind gives the NIC back to its old driver (ixgbe)")
        rc, out = fk.run(script, "unbind", PCI)
        res.check(rc == 1 and "not bound to vfio-pci" in out,
                  "unbind of a NIC not bound refused")

        fk.set_iommu(False)
        fk.set_noiommu(True)
        fk.set_driver(None)
        rc, out = fk.run(script, "bind", PCI)
        res.check(rc == 0, "no-IOMMU mode accepted when vfio has it on")
        rc, out = fk.run(script, "unbind", PCI)
        res.check(rc == 1 and "which driver" in out,
                  "unbind without a remembered driver asks for one")
        rc, out = fk.run(script, "unbind", PCI, "ixgbe")
        res.check(rc == 0, "unbind with an explicit driver")

        rc, out = fk.run(script, "hugepages", "512", "--persist")
        with open(os.path.join(fk.proc, "sys/vm/nr_hugepages")) as f:
            nr = f.read().strip()
        persisted = ""
        p = os.path.join(fk.sysctl, "60-mxgate.conf")
        if os.path.exists(p):
            with open(p) as f:
                persisted = f.read()
        res.check(rc == 0 and nr == "512" and
                  "vm.nr_hugepages = 512" in persisted,
                  "hugepages 512 --persist: reserved and in sysctl.d")
        rc, out = fk.run(script, "status")
        res.check(rc == 0 and "512 x 2 MiB" in out and "iommu: present"
                  in out, "status")

        # The real machine's sysfs: an interface that does not exist.
        r = subprocess.run([script, "bind", "mxgt-nosuch9"],
                           capture_output=True, text=True, timeout=30)
        res.check(r.returncode == 1 and "unknown interface" in r.stderr,
                  "real sysfs: unknown interface refused (%r)" %
                  r.stderr.strip())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
