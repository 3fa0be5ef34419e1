#!/usr/bin/env python3
"""test_logline's output (pairs of lines: JSON rendering, then the kv
rendering of the same line) checked with Python's json: every JSON line is
one object and carries the same keys, in the same order, as the kv form
split by docs/logging.md's grammar."""
import json
import subprocess
import sys
import tempfile


def kv_keys(line):
    keys, i = [], 0
    while i < len(line):
        if line[i] == ' ':
            i += 1
            continue
        j = i
        while j < len(line) and line[j] not in ' =':
            j += 1
        keys.append(line[i:j])
        if j < len(line) and line[j] == '=':
            j += 1
            if j < len(line) and line[j] == '"':
                k = line.find('"', j + 1)
                j = len(line) if k < 0 else k + 1
            else:
                while j < len(line) and line[j] != ' ':
                    j += 1
        i = j
    return keys


def main():
    with tempfile.NamedTemporaryFile(suffix='.jsonl') as f:
        subprocess.run([sys.argv[1], f.name], check=True)
        lines = open(f.name, 'rb').read().splitlines()
    assert lines and len(lines) % 2 == 0, lines
    for js, kv in zip(lines[0::2], lines[1::2]):
        # JSON lines must be UTF-8 (strict); kv lines carry client bytes.
        js, kv = js.decode('utf-8'), kv.decode('latin-1')
        obj = json.loads(js)
        assert isinstance(obj, dict), js
        assert list(obj) == kv_keys(kv), (js, kv)
        assert isinstance(obj['ts'], float), js
        assert isinstance(obj['core'], str), js
    print(f'{len(lines) // 2} lines: json parses, keys as in kv')


main()
