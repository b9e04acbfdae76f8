#!/usr/bin/env python3
"""utf8sink.py - an SMTPUTF8 sink for tests/lib/sink.sh (the MTA tier's SMTPUTF8 domains).

smtp-sink does not announce SMTPUTF8, so Postfix bounces mail whose
envelope needs it. This sink does, and writes each transaction as a file
in the format sinkq.py reads: one "X-Rcpt-Args: <addr>" line per envelope
recipient, then the message as received.

Usage: utf8sink.py PORT DIR PIDFILE
"""
import asyncore
import os
import sys
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import smtpd  # noqa: E402  (deprecated, but in Debian 12's Python 3.11)


class Sink(smtpd.SMTPServer):
    """Sink - keep every message, answer 250."""

    def __init__(self, port, directory):
        super().__init__(("127.0.0.1", port), None, decode_data=False,
                         enable_SMTPUTF8=True)
        self.directory = directory
        self.count = 0

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        self.count += 1
        name = os.path.join(self.directory, "%d.%d.%d" % (time.time(), os.getpid(), self.count))
        with open(name + ".tmp", "wb") as f:
            for rcpt in rcpttos:
                f.write(("X-Rcpt-Args: <%s>\n" % rcpt).encode("utf-8"))
            f.write(data.replace(b"\r\n", b"\n"))
        os.rename(name + ".tmp", name)
        return None


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    Sink(int(argv[0]), argv[1])
    with open(argv[2], "w") as f:
        f.write("%d\n" % os.getpid())
    asyncore.loop(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
