#!/usr/bin/env python3
"""bench/content/gen_gateway.py - inputs of the gateway content benchmark
(bench/compare-postfix.sh with RULES=N, issue 15).

usage: gen_gateway.py DIR RULES SIZE

Writes, deterministically (fixed seed):
  DIR/body.rules        RULES mxgate `body` rules (docs/content-rules.md)
  DIR/body_checks.pcre  the same RULES patterns as a Postfix pcre: table
  DIR/message.txt       one message (headers + English-like body of SIZE
                        octets, 72-column lines) for smtp-source -F
  DIR/probe.txt         a message that the last rule matches
Rule mix: half caseless literals (a spam word and 6 random letters, e.g.
"casino qkzvwe"), half caseless regexes (`\\bWORD[0-9]{2,5}XYZ` with a spam
word and 3 random letters, `(free|cheap)\\s+WXYZ[a-z]{3}[0-9]` with 4 random
letters); none matches the message, so every
rule runs over every line in Postfix and Hyperscan cannot stop early. The
last rule is a literal probe that matches nothing in the load; probe.txt
holds it, to prove after the timed run that both fronts apply the rules.
"""
import random
import sys

SPAM = ("casino viagra lottery bitcoin pharmacy winner prize loan crypto "
        "replica rolex jackpot payday refinance diploma pills").split()
WORDS = ("the a of to and in for on with report meeting team project plan "
         "review schedule budget quarter update draft notes agenda please "
         "see attached thanks regards will can should next week today "
         "client server release version change issue ticket deploy test "
         "result figure table page section office call friday monday "
         "morning afternoon question answer data file folder share").split()
PROBE = "xqjzv-content-probe-7f3k"


def letters(rng, n):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


def main():
    out, nrules, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(15)
    pats = []  # (pattern, literal?)
    for i in range(max(nrules - 1, 0)):
        w = rng.choice(SPAM)
        if i % 2 == 0:
            pats.append(("%s %s" % (w, letters(rng, 6)), True))
        elif i % 4 == 1:
            pats.append((r"\b%s[0-9]{2,5}%s" % (w, letters(rng, 3)), False))
        else:
            pats.append((r"(free|cheap)\s+%s[a-z]{3}[0-9]" % letters(rng, 4),
                         False))
    if nrules > 0:
        pats.append((PROBE, True))
    with open(out + "/body.rules", "w") as mx, \
            open(out + "/body_checks.pcre", "w") as pf:
        for n, (p, lit) in enumerate(pats, 1):
            # literals hold letters, digits, spaces and '-' only: the same
            # text is a valid PCRE pattern (no escaping needed)
            mx.write("body /%s/%s reject 5.7.1 content rule %d\n" %
                     (p, "il" if lit else "i", n))
            pf.write("/%s/i REJECT 5.7.1 content rule %d\n" % (p, n))
    hdr = ("From: load@bench.mxgt.test\nTo: rcpt@example.net\n"
           "Subject: weekly project notes\n\n")
    body, lines = 0, []
    while body < size:
        line = ""
        while len(line) < 66:
            line += rng.choice(WORDS) + " "
        line = line.rstrip().capitalize() + "."
        lines.append(line)
        body += len(line) + 2
    with open(out + "/message.txt", "w") as f:
        f.write(hdr + "\n".join(lines) + "\n")
    with open(out + "/probe.txt", "w") as f:
        f.write(hdr + "\n".join(lines[:3] + ["see " + PROBE] + lines[3:6])
                + "\n")


if __name__ == "__main__":
    main()
