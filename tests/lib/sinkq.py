#!/usr/bin/env python3
"""sinkq.py - read what smtp-sink captured, for the tiers that use tests/lib/sink.sh.

smtp-sink -d writes one file per mail transaction: its own X-* lines (one
X-Rcpt-Args line per RCPT command, with the ESMTP parameters as the MTA sent
them), then the message header, then the body.  A bounce carries the original
header inside its body, so only the header section (up to the first empty
line) of each file is looked at.

Usage:
  sinkq.py files  DIR ID          files whose header has "X-Test-Id: ID"
  sinkq.py rcpts  DIR ID          one line per envelope recipient over those
                                  files: ADDR<TAB>NOTIFY<TAB>ORCPT, sorted;
                                  ORCPT is xtext-decoded ("-" when absent)
  sinkq.py header DIR ID NAME     the values of header NAME in those files
"""
import os
import re
import sys


def header_lines(path):
    """header_lines - the lines of PATH before the first empty line."""
    lines = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                break
            lines.append(line)
    return lines


def unfold(lines):
    """unfold - join RFC 5322 continuation lines."""
    out = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def matching(directory, test_id):
    """matching - (path, header lines) of the capture files for TEST_ID."""
    found = []
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return found
    want = "x-test-id: " + test_id.lower()
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        try:
            lines = unfold(header_lines(path))
        except OSError:
            continue
        if any(line.strip().lower() == want for line in lines):
            found.append((path, lines))
    return found


def xtext_decode(text):
    """xtext_decode - RFC 3461 xtext: +XX is the byte with hex value XX."""
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def rcpts(directory, test_id):
    """rcpts - ADDR, NOTIFY, ORCPT of every X-Rcpt-Args line for TEST_ID."""
    rows = []
    for _, lines in matching(directory, test_id):
        for line in lines:
            if not line.lower().startswith("x-rcpt-args:"):
                continue
            words = line.split(":", 1)[1].split()
            if not words:
                continue
            addr = words[0]
            if addr.startswith("<") and addr.endswith(">"):
                addr = addr[1:-1]
            notify, orcpt = "-", "-"
            for word in words[1:]:
                key, _, value = word.partition("=")
                if key.upper() == "NOTIFY":
                    notify = value.upper()
                elif key.upper() == "ORCPT":
                    orcpt = xtext_decode(value)
            rows.append((addr, notify, orcpt))
    return sorted(rows)


def main(argv):
    if len(argv) >= 3 and argv[0] == "files":
        for path, _ in matching(argv[1], argv[2]):
            print(path)
    elif len(argv) >= 3 and argv[0] == "rcpts":
        for row in rcpts(argv[1], argv[2]):
            print("\t".join(row))
    elif len(argv) >= 4 and argv[0] == "header":
        want = argv[3].lower() + ":"
        for _, lines in matching(argv[1], argv[2]):
            for line in lines:
                if line.lower().startswith(want):
                    print(line.split(":", 1)[1].strip())
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
