#!/usr/bin/env python3
"""mkman.py - write a man page (roff, man macros) from Markdown.

usage: mkman.py SOURCE.md [APPEND.md ...] -o PAGE

The first line of SOURCE is the title: `# NAME(SECTION) -- one-line
summary`; it gives .TH and the NAME section. Further files are appended as
they are (mxgate.conf(5) appends docs/configuration.md, so the page and the
reference are one text). Understood: `##` (.SH) and `###` (.SS) headings,
paragraphs, `- ` and `1. ` lists with indented continuation lines, fenced
and 4-space code blocks, tables (one tagged paragraph per row: the first
cell is the tag, a `meaning`/`effect` column the body, the other columns a
parenthesis), a line that is only a code span followed by indented lines
(a tagged paragraph: how options are written), and inline `code`,
**bold**, *emphasis* and [links](url). Nothing else: the sources keep to
it, and anything unknown is printed as text.
"""

import re
import sys

VERSION = "mxgate 0.1.0"
DATE = "2026-12-03"


def esc(s):
    """Escape text for roff (outside macros)."""
    s = s.replace("\\", "\\e")
    out = []
    for ch in s:
        if ord(ch) < 128:
            out.append(ch)
        else:
            out.append({"\u2264": "\\(<=", "\u2265": "\\(>=",
                        "\u2014": "\\(em", "\u2013": "\\(en",
                        "\u00d7": "\\(mu", "\u2192": "\\(->",
                        "\u2019": "\\(cq", "\u2026": "...",
                        "\u00a0": "\\ "}.get(ch, "\\[u%04X]" % ord(ch)))
    return "".join(out)


def inline(s):
    """Markdown inline markup to roff fonts."""
    codes = []

    def keep(m):
        codes.append(m.group(1))
        return "\x00%d\x00" % (len(codes) - 1)

    s = re.sub(r"`([^`]+)`", keep, s)
    s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 <\2>", s)
    s = esc(s)
    s = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", s)
    s = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"\\fI\1\\fR", s)

    def code(m):
        c = esc(codes[int(m.group(1))]).replace("-", "\\-")
        return "\\fB" + c + "\\fR"

    s = re.sub(r"\x00(\d+)\x00", code, s)
    # A font change inside bold would end the bold: keep it simple.
    s = s.replace("\\fB\\fB", "\\fB").replace("\\fR\\fR", "\\fR")
    return s


def line_out(s):
    """A text line: never starting with a control character."""
    s = s.strip()
    if s.startswith(".") or s.startswith("'"):
        s = "\\&" + s
    return s


def code_out(s):
    """A line of a code block: leading spaces kept."""
    s = esc(s.rstrip())
    if s.lstrip().startswith((".", "'")) or not s:
        s = "\\&" + s
    return s


def split_row(r):
    r = r.strip()
    if r.startswith("|"):
        r = r[1:]
    if r.endswith("|"):
        r = r[:-1]
    cells, cur, in_code = [], "", False
    for ch in r:
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
    cells.append(cur.strip())
    return cells


def table(rows, out):
    head = [h.lower() for h in split_row(rows[0])]
    body_col = None
    for i, h in enumerate(head):
        if h in ("meaning", "effect", "description"):
            body_col = i
    for r in rows[2:]:
        c = split_row(r)
        c += [""] * (len(head) - len(c))
        out.append(".TP")
        extra = ["%s %s" % (head[i], c[i]) for i in range(1, len(head))
                 if i != body_col and c[i]]
        tag = inline(c[0])
        if extra:
            tag += " (" + inline("; ".join(extra)) + ")"
        out.append(line_out(tag))
        if body_col is not None and c[body_col]:
            out.append(line_out(inline(c[body_col])))


def convert(lines, out):
    i, n = 0, len(lines)
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.append(line_out(inline(" ".join(para))))
            para.clear()

    while i < n:
        ln = lines[i].rstrip("\n")
        s = ln.strip()
        if not s:
            flush()
            i += 1
            continue
        m = re.match(r"^(#{1,3}) (.*)$", ln)
        if m:
            flush()
            lvl, txt = len(m.group(1)), m.group(2).replace("`", "")
            if lvl <= 2:
                out.append('.SH "%s"' % esc(txt.upper()))
            else:
                out.append('.SS "%s"' % esc(txt))
            i += 1
            continue
        if s.startswith("```"):
            flush()
            i += 1
            out.extend([".PP", ".RS 4", ".nf"])
            while i < n and not lines[i].strip().startswith("```"):
                out.append(code_out(lines[i]))
                i += 1
            out.extend([".fi", ".RE"])
            i += 1
            continue
        if ln.startswith("    ") and not para:
            out.extend([".PP", ".RS 4", ".nf"])
            while i < n and (lines[i].startswith("    ") or
                             not lines[i].strip()):
                if not lines[i].strip() and (i + 1 >= n or not
                                             lines[i + 1].startswith("    ")):
                    break
                out.append(code_out(lines[i][4:]))
                i += 1
            out.extend([".fi", ".RE"])
            continue
        if s.startswith("|"):
            flush()
            rows = []
            while i < n and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            table(rows, out)
            continue
        m = re.match(r"^( *)(- |\d+\. )(.*)$", ln)
        if m:
            flush()
            ind = len(m.group(1))
            mark = "\\(bu" if m.group(2) == "- " else m.group(2).strip()
            text = [m.group(3)]
            i += 1
            while i < n and lines[i].strip() and \
                    not re.match(r"^ *(- |\d+\. )", lines[i]) and \
                    lines[i].startswith(" " * (ind + 2)):
                text.append(lines[i].strip())
                i += 1
            if ind:
                out.append(".RS 2")
            out.append(".IP %s 4" % mark)
            out.append(line_out(inline(" ".join(text))))
            if ind:
                out.append(".RE")
            continue
        if re.match(r"^`[^`]+`$", s) and i + 1 < n and \
                lines[i + 1].startswith("  "):
            flush()
            out.append(".TP")
            out.append(line_out(inline(s)))
            i += 1
            text = []
            while i < n and lines[i].startswith("  ") and lines[i].strip():
                text.append(lines[i].strip())
                i += 1
            out.append(line_out(inline(" ".join(text))))
            continue
        para.append(s)
        i += 1
    flush()


def main():
    args = sys.argv[1:]
    if "-o" not in args or args.index("-o") + 1 >= len(args):
        sys.exit(__doc__)
    o = args.index("-o")
    dest = args[o + 1]
    srcs = args[:o] + args[o + 2:]
    with open(srcs[0], encoding="utf-8") as f:
        first = f.readline()
        rest = f.readlines()
    m = re.match(r"^# (\S+)\((\d)\) -- (.*)$", first.strip())
    if not m:
        sys.exit("%s: first line must be '# NAME(N) -- summary'" % srcs[0])
    name, sec, summary = m.groups()
    out = ['.\\" Generated by docs/man/mkman.py from %s; do not edit.' %
           " + ".join(s.split("/")[-1] for s in srcs),
           '.TH "%s" "%s" "%s" "%s" "mxgate manual"' %
           (name.upper(), sec, DATE, VERSION),
           ".SH NAME", "%s \\- %s" % (esc(name), inline(summary))]
    convert(rest, out)
    for extra in srcs[1:]:
        with open(extra, encoding="utf-8") as f:
            lines = f.readlines()
        if lines and lines[0].startswith("# "):
            lines = lines[1:]  # its title: the page has one
        convert(lines, out)
    with open(dest, "w", encoding="ascii") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
