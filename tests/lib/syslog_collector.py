#!/usr/bin/env python3
"""syslog_collector.py - own /dev/log inside a private mount namespace.

Usage: syslog_collector.py SOCKET_PATH OUTPUT_FILE

Binds an AF_UNIX datagram socket at SOCKET_PATH (chmod 0666) and appends
every datagram it receives to OUTPUT_FILE as one line, e.g.
    <22>Nov 24 18:41:01 coexist-milter[123]: QID: bcc rcpt=<...> ...
(<22> = facility mail, severity info). Creates OUTPUT_FILE.ready once it
listens. Runs until killed.
"""
import os
import socket
import sys


def bind_log_socket(path):
    """The datagram socket at PATH (a /dev/log), writable by every user:
    the daemon under test may have dropped root. Also the benchmark's drain
    (tests/bench/benchtool.py logsink) binds its /dev/log with this."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o666)
    return sock


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: syslog_collector.py SOCKET_PATH OUTPUT_FILE\n")
        return 2
    path, out = sys.argv[1], sys.argv[2]
    sock = bind_log_socket(path)
    with open(out, "ab", buffering=0) as f:
        with open(out + ".ready", "w"):
            pass
        while True:
            data = sock.recv(65536)
            data = data.rstrip(b"\n\0").replace(b"\n", b" ").replace(b"\0", b" ")
            f.write(data + b"\n")


if __name__ == "__main__":
    sys.exit(main())
