#!/usr/bin/env python3
"""The man pages agree with the programs and the configuration reference.

- every option `mxgate --help` prints is in mxgate(8)'s OPTIONS and the
  other way round; the same for `mxgatectl -h` (options and commands) and
  mxgatectl(8);
- every key the configuration loader accepts (the `keys[]` tables of
  control/config.c) is in docs/configuration.md, and every key
  docs/configuration.md lists is in the generated mxgate.conf(5);
- the generated pages render without groff warnings;
- contrib/mxgate.conf (the packaged configuration) passes --check-config.

usage: test_docs.py MXGATE MXGATECTL SRCDIR MANDIR
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import mxgtest  # noqa: E402
from mxgtest import log  # noqa: E402


def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def help_options(text):
    """Options in a usage text: --long and -x forms that start an entry."""
    opts = set()
    for ln in text.splitlines():
        s = ln.strip()
        # Entries start with the option; '--rcvbuf N --sndbuf N' has two.
        for m in re.finditer(r"(?:^|\s)(--[a-z][a-z0-9-]*|-[a-zA-Z])\b", s):
            if m.start() > 0 and not re.match(r"^(-\S+( [A-Z][A-Z:/|a-z]*)?"
                                              r"(, )?)+", s):
                break
            opts.add(m.group(1))
    return opts


def page_section(roff, name):
    """Text of section NAME of a roff page."""
    m = re.search(r'^\.SH "?%s"?\n(.*?)(?=^\.SH |\Z)' % name, roff,
                  re.M | re.S)
    return m.group(1) if m else ""


def tags(section):
    """The tag lines of .TP entries, roff escapes undone."""
    out = []
    lines = section.splitlines()
    for i, ln in enumerate(lines):
        if ln == ".TP" and i + 1 < len(lines):
            t = re.sub(r"\\f[BIR]", "", lines[i + 1]).replace("\\-", "-")
            out.append(t)
    return out


def tag_options(section):
    opts = set()
    for t in tags(section):
        for m in re.finditer(r"(?:^|[\s,])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b",
                             t):
            opts.add(m.group(1))
    return opts


def main():
    mxgate, mxgatectl, src, mandir = sys.argv[1:5]
    res = mxgtest.Result("docs")
    pages = {}
    for p in ("mxgate.8", "mxgatectl.8", "mxgate.conf.5",
              "mxgate-setup-nic.8"):
        with open(os.path.join(mandir, p)) as f:
            pages[p] = f.read()

    # mxgate(8) against --help.
    rc, text = run(mxgate, "--help")
    hopt = help_options(text)
    mopt = tag_options(page_section(pages["mxgate.8"], "OPTIONS"))
    res.check(rc == 0 and len(hopt) > 30,
              "mxgate --help lists %d options" % len(hopt))
    res.check(hopt - mopt == set(),
              "every --help option is in mxgate(8) (missing: %s)" %
              sorted(hopt - mopt))
    res.check(mopt - hopt == set(),
              "mxgate(8) documents no option --help lacks (extra: %s)" %
              sorted(mopt - hopt))

    # mxgatectl(8) against -h: options and commands.
    rc, text = run(mxgatectl, "-h")
    copt = help_options(text.split("commands:")[0])
    cmds = set(re.findall(r"^  ([a-z][a-z-]+)\b", text.split("commands:")[1],
                          re.M)) if "commands:" in text else set()
    mcopt = tag_options(page_section(pages["mxgatectl.8"], "OPTIONS"))
    mcmds = {t.split()[0] for t in
             tags(page_section(pages["mxgatectl.8"], "COMMANDS"))}
    res.check(rc == 0 and len(cmds) >= 12,
              "mxgatectl -h lists %d commands" % len(cmds))
    if rc == 0:
        copt.add("-h")  # accepted (it printed this), not listed in itself
    res.check(copt == mcopt, "mxgatectl options: -h %s, page %s" %
              (sorted(copt), sorted(mcopt)))
    res.check(cmds == mcmds, "mxgatectl commands agree (only in -h: %s; "
              "only in the page: %s)" % (sorted(cmds - mcmds),
                                         sorted(mcmds - cmds)))

    # Configuration keys: loader -> reference -> page.
    with open(os.path.join(src, "control", "config.c")) as f:
        csrc = f.read()
    loader = set()
    for m in re.finditer(r"static const char \*const [a-z]*keys\[\] = "
                         r"\{(.*?)\};", csrc, re.S):
        loader |= set(re.findall(r'"([a-z_0-9]+)"', m.group(1)))
    with open(os.path.join(src, "docs", "configuration.md")) as f:
        ref = f.read()
    refkeys = set()
    for ln in ref.splitlines():
        m = re.match(r"^\| `([^`]+)` \|", ln)
        if m:
            refkeys.add(m.group(1))
    # Sub-keys (timeouts, health) and values are documented in the text
    # of their parent's entry: a code span anywhere counts.
    words = set(re.findall(r"`\"?([a-z_0-9]+)\"?`", ref))
    for k in refkeys:
        words |= set(re.split(r"[.\[\]]+", k))
    res.check(len(loader) > 40, "config.c's key tables hold %d keys" %
              len(loader))
    res.check(loader - words == set(),
              "every key the loader accepts is in docs/configuration.md "
              "(missing: %s)" % sorted(loader - words))
    conf5 = re.sub(r"\\f[BIR]", "", pages["mxgate.conf.5"]).replace("\\-", "-")
    ptags = {ln.split(" (")[0] for i, ln in
             enumerate(conf5.splitlines())
             if i and conf5.splitlines()[i - 1] == ".TP"}
    res.check(refkeys - ptags == set(),
              "every key of docs/configuration.md is a tagged entry of "
              "mxgate.conf(5) (missing: %s)" % sorted(refkeys - ptags))

    # groff renders every page without a warning.
    for p in sorted(pages):
        r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l",
                            "-Tutf8", "-Z", os.path.join(mandir, p)],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANROFFSEQ="",
                                    MANWIDTH="80"))
        res.check(r.returncode == 0 and not r.stderr.strip(),
                  "%s renders without warnings %r" % (p, r.stderr[:300]))

    rc, text = run(mxgate, "--check-config",
                   os.path.join(src, "contrib", "mxgate.conf"))
    res.check(rc == 0, "contrib/mxgate.conf is valid (%s)" % text.strip())
    log("mxgate --help: %d options, mxgatectl: %d commands, loader keys: "
        "%d, reference keys: %d" % (len(hopt), len(cmds), len(loader),
                                     len(refkeys)))
    res.finish()


if __name__ == "__main__":
    main()
