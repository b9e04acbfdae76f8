#!/usr/bin/env python3
"""milter_proxy.py - a recording pass-through between miltertest and the milter.

Usage: milter_proxy.py LISTEN_PATH UPSTREAM_PATH RECORD_FILE

Why it exists: the miltertest shipped with Debian 12 (OpenDKIM 2.11) records
SMFIR_ADDRCPT_PAR ('2') replies at end-of-message but mt.eom_check(conn,
MT_RCPTADD, ...) only matches plain SMFIR_ADDRCPT ('+'), and there is no Lua
call that returns the raw EOM requests. coexist-milter adds recipients with
smfi_addrcpt_par (NOTIFY=NEVER / ORCPT=...), so without help a test could not
see the adds nor their ESMTP arguments.

This proxy forwards every byte unchanged in both directions. When it sees
SMFIC_BODYEOB ('E') from the MTA side it starts collecting the milter's
replies; at the final reply of that message it writes them to RECORD_FILE
(one per line, tab-separated) *before* forwarding that final reply, so when
mt.eom() returns in Lua the file is complete:

    ADDRCPT_PAR <addr> <esmtp args>
    ADDRCPT     <addr>
    DELRCPT     <addr>
    ADDHEADER   <name> <value>
    INSHEADER   <index> <name> <value>
    CHGHEADER   <index> <name> <value>
    OTHER       <cmd char> <hex payload>
    REPLY       <cmd char> <text of an SMFIR_REPLYCODE, e.g. "451 4.3.0 ...">

A final reply at any other stage goes to RECORD_FILE.last ("<cmd char> <text>"),
so a script can tell an smfi_setreply 4xx ('y') from other answers.

Every record is also appended to RECORD_FILE.log with a connection number.
"""
import os
import socket
import struct
import sys
import threading
import time

FINAL = {ord(c) for c in "cartdy"}   # continue accept reject tempfail discard replycode
UPSTREAM_TRIES = 20                  # x 0.05 s (the scripts wait for the daemon first)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(sock):
    hdr = recv_exact(sock, 4)
    if hdr is None:
        return None
    (length,) = struct.unpack(">I", hdr)
    if length < 1 or length > 64 * 1024 * 1024:
        return None
    body = recv_exact(sock, length)
    if body is None:
        return None
    return hdr + body, body[0], body[1:]


def cstrings(data):
    parts = data.split(b"\0")
    if parts and parts[-1] == b"":
        parts = parts[:-1]
    return [p.decode("utf-8", "backslashreplace") for p in parts]


def describe(cmd, data):
    c = chr(cmd)
    s = cstrings(data)
    if c == "2":
        return "ADDRCPT_PAR\t%s\t%s" % (s[0] if s else "", s[1] if len(s) > 1 else "")
    if c == "+":
        return "ADDRCPT\t%s" % (s[0] if s else "")
    if c == "-":
        return "DELRCPT\t%s" % (s[0] if s else "")
    if c == "h":
        return "ADDHEADER\t%s\t%s" % (s[0] if s else "", s[1] if len(s) > 1 else "")
    if c in "im" and len(data) >= 4:
        (idx,) = struct.unpack(">I", data[:4])
        s = cstrings(data[4:])
        kind = "INSHEADER" if c == "i" else "CHGHEADER"
        return "%s\t%d\t%s\t%s" % (kind, idx, s[0] if s else "", s[1] if len(s) > 1 else "")
    return "OTHER\t%s\t%s" % (c, data.hex())


class Session:
    counter = 0
    counter_lock = threading.Lock()

    def __init__(self, client, upstream_path, record):
        with Session.counter_lock:
            Session.counter += 1
            self.num = Session.counter
        self.client = client
        self.upstream_path = upstream_path
        self.record = record
        self.lock = threading.Lock()
        self.in_eom = False
        self.recs = []

    def connect_upstream(self):
        last = None
        for _ in range(UPSTREAM_TRIES):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.upstream_path)
                return s
            except OSError as e:
                last = e
                s.close()
                time.sleep(0.05)
        sys.stderr.write("milter_proxy: connect %s: %s\n" % (self.upstream_path, last))
        return None

    def write_record(self):
        tmp = self.record + ".tmp"
        with open(tmp, "w") as f:
            for r in self.recs:
                f.write(r + "\n")
        os.replace(tmp, self.record)
        with open(self.record + ".log", "a") as f:
            for r in self.recs:
                f.write("conn%d\t%s\n" % (self.num, r))

    def mta_to_milter(self, up):
        try:
            while True:
                fr = read_frame(self.client)
                if fr is None:
                    break
                raw, cmd, _ = fr
                if cmd == ord("E"):
                    with self.lock:
                        self.in_eom = True
                        self.recs = []
                up.sendall(raw)
        except OSError:
            pass
        finally:
            try:
                up.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def milter_to_mta(self, up):
        try:
            while True:
                fr = read_frame(up)
                if fr is None:
                    break
                raw, cmd, data = fr
                with self.lock:
                    if cmd in FINAL and not self.in_eom:
                        with open(self.record + ".last", "w") as f:
                            f.write("%s\t%s\n" % (chr(cmd), " ".join(cstrings(data))))
                    if self.in_eom:
                        if cmd in FINAL:
                            self.recs.append("REPLY\t%s\t%s" % (chr(cmd), " ".join(cstrings(data))))
                            self.write_record()
                            self.in_eom = False
                        else:
                            self.recs.append(describe(cmd, data))
                self.client.sendall(raw)
        except OSError:
            pass
        finally:
            try:
                self.client.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def run(self):
        up = self.connect_upstream()
        if up is None:
            self.client.close()
            return
        t = threading.Thread(target=self.mta_to_milter, args=(up,), daemon=True)
        t.start()
        self.milter_to_mta(up)
        t.join()
        up.close()
        self.client.close()


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: milter_proxy.py LISTEN_PATH UPSTREAM_PATH RECORD_FILE\n")
        return 2
    listen_path, upstream_path, record = sys.argv[1:]
    try:
        os.unlink(listen_path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen_path)
    srv.listen(16)
    with open(listen_path + ".ready", "w"):
        pass
    while True:
        client, _ = srv.accept()
        sess = Session(client, upstream_path, record)
        threading.Thread(target=sess.run, daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
