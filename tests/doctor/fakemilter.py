#!/usr/bin/env python3
"""tests/doctor/fakemilter.py - another milter on the socket, for doctor.

Usage: fakemilter.py SOCKET ACTIONS|reply:C READYFILE
Listens on the unix socket SOCKET and answers every SMFIC_OPTNEG with a
negotiation reply that asks for ACTIONS (e.g. 0x01: only add header), or
with the one-letter reply C (e.g. "t", tempfail). READYFILE is created once
it listens.
"""
import os
import socket
import struct
import sys


def serve(conn, answer):
    head = conn.recv(4, socket.MSG_WAITALL)
    if len(head) < 4:
        return
    (length,) = struct.unpack(">I", head)
    conn.recv(length, socket.MSG_WAITALL)
    if answer.startswith("reply:"):
        conn.sendall(struct.pack(">Ic", 1, answer[6:].encode()))
    else:
        conn.sendall(struct.pack(">IcIII", 13, b"O", 6, int(answer, 0), 0))


def main():
    path, answer, ready = sys.argv[1:4]
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o777)
    srv.listen(8)
    open(ready, "w").close()
    while True:
        conn, _ = srv.accept()
        with conn:
            serve(conn, answer)


if __name__ == "__main__":
    main()
