#!/usr/bin/env python3
"""submit.py - submit one message over SMTP to 127.0.0.1, for the tests
whose submission swaks cannot make (tests/mta/lib.sh, tests/mta/blind.sh).

Usage: submit.py [--rcpt-options PARAMS] [--raw] [--refused FILE]
                 PORT SENDER MESSAGE_FILE RCPT...

  --rcpt-options PARAMS  ESMTP parameters ("NOTIFY=SUCCESS ORCPT=...") on
                         every RCPT (swaks cannot send them)
  --raw                  send each RCPT verbatim ("RCPT TO:" + RCPT, e.g.
                         "<@relay.example:carol@corp.example>"); SMTPUTF8
                         when an address is not ASCII
  --refused FILE         recipients the server refuses are left out, as a
                         client does, and written to FILE as "ADDR CODE"
                         lines; without it any refusal fails

MESSAGE_FILE has LF line ends (sent as CRLF). The SMTP dialogue goes to
stderr. Exit 0 only if the message was accepted.
"""
import argparse
import smtplib
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rcpt-options", default="")
    p.add_argument("--raw", action="store_true")
    p.add_argument("--refused")
    p.add_argument("port", type=int)
    p.add_argument("sender")
    p.add_argument("message")
    p.add_argument("rcpts", nargs="+")
    a = p.parse_args()
    with open(a.message, "rb") as f:
        msg = f.read().replace(b"\n", b"\r\n")
    with smtplib.SMTP("127.0.0.1", a.port, local_hostname="client.example", timeout=30) as s:
        s.set_debuglevel(1)
        if a.raw:
            raw(s, a.sender, a.rcpts, msg)
            return 0
        refused = s.sendmail(a.sender, a.rcpts, msg, rcpt_options=a.rcpt_options.split())
    if a.refused is not None:
        with open(a.refused, "w") as f:
            for addr, (code, _) in refused.items():
                f.write("%s %d\n" % (addr, code))
    elif refused:
        print("refused:", refused)
        return 1
    return 0


def raw(s, sender, rcpts, msg):
    utf8 = any(not r.isascii() for r in rcpts)
    s.ehlo()
    if utf8:
        s.command_encoding = "utf-8"
    code, text = s.mail(sender, ["SMTPUTF8"] if utf8 else [])
    if code != 250:
        sys.exit("MAIL: %d %s" % (code, text))
    for r in rcpts:
        code, text = s.docmd("RCPT TO:" + r)
        if code not in (250, 251):
            sys.exit("RCPT %s: %d %s" % (r, code, text))
    code, text = s.data(msg)
    if code != 250:
        sys.exit("DATA: %d %s" % (code, text))


if __name__ == "__main__":
    sys.exit(main())
