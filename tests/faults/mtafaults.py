#!/usr/bin/python3
"""mtafaults.py - SMTP load, coexistctl flips and delivery checks for the
MTA-level fault scripts (tests/faults/mta-*.sh).  Not a test by itself.

Every message carries a unique "X-Test-Id: ID" header.  smtp-sink writes one
file per mail transaction, with one "X-Rcpt-Args: <addr> ..." line per
envelope recipient before the message header; the checks below read those.
All times are time.monotonic() (CLOCK_MONOTONIC, one clock for the process).

Subcommands (options as --name value):
  stream   send --senders x --per-sender messages over SMTP (one connection
           each) from parallel threads, and --local messages through
           sendmail(1); append one JSON line per attempt to --results as it
           happens (the shell polls it); after the stream, retry every SMTP
           message that was not accepted (as a real client would), until
           accepted or --retry-for seconds pass.
  check    wait until every message the client saw accepted (and every
           sendmail(1) message) has reached the sink and the Postfix queue is
           empty, then check each was delivered exactly once with exactly
           --expect recipients and one trace header, and that every attempt
           that was not accepted got a 4xx.  Prints "summary: ..." or
           "bad: ..." lines; exit 0 when all is well.
  flips    parallel SMTP senders while one thread flips users with coexistctl
           as fast as it can; then wait for delivery and check each message
           against the states the users can have had while it was decided.
"""
import json
import os
import random
import smtplib
import subprocess
import sys
import threading
import time

SENDER = "sender@client.example"


def opts(argv):
    """opts - "--name value" pairs as a dict (name without dashes)."""
    out = {}
    i = 0
    while i < len(argv):
        if not argv[i].startswith("--") or i + 1 >= len(argv):
            sys.exit("mtafaults.py: bad argument %r" % argv[i])
        out[argv[i][2:]] = argv[i + 1]
        i += 2
    return out


def message(test_id):
    """message - the bytes of test message TEST_ID (CRLF line ends)."""
    return ("From: <%s>\r\nTo: undisclosed-recipients:;\r\n"
            "Subject: coexist-milter fault test %s\r\nX-Test-Id: %s\r\n"
            "\r\nfault test message %s\r\n" % (SENDER, test_id, test_id, test_id)).encode()


def smtp_attempt(port, test_id, rcpts, timeout=30):
    """smtp_attempt - one SMTP transaction; a dict saying what happened.

    outcome: accepted (250 after DATA), tempfail (a 4xx at some step),
    permfail (5xx), error (connection trouble).  t_data/t_end bound the end
    of DATA, where the milter decides; t0 is before the connection."""
    res = {"id": test_id, "kind": "smtp", "t0": time.monotonic()}
    s = None

    def done(outcome, phase, code, text):
        res.update(outcome=outcome, phase=phase, code=code,
                   text=text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text),
                   t_end=time.monotonic())
        return res

    def classify(code):
        return "tempfail" if 400 <= code < 500 else "permfail"

    try:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=timeout)
        code, text = s.ehlo()
        if code != 250:
            return done(classify(code), "ehlo", code, text)
        code, text = s.mail(SENDER)
        if code != 250:
            return done(classify(code), "mail", code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            if code not in (250, 251):
                s.rset()
                return done(classify(code), "rcpt", code, text)
        res["t_data"] = time.monotonic()
        try:
            code, text = s.data(message(test_id))
        except smtplib.SMTPDataError as e:
            return done(classify(e.smtp_code), "data-cmd", e.smtp_code, e.smtp_error)
        if code == 250:
            return done("accepted", "data", code, text)
        return done(classify(code), "data", code, text)
    except smtplib.SMTPResponseException as e:
        return done(classify(e.smtp_code), "response", e.smtp_code, e.smtp_error)
    except (OSError, smtplib.SMTPException) as e:
        return done("error", "connection", 0, "%s: %s" % (type(e).__name__, e))
    finally:
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass


class Results:
    """Results - attempts, appended to a JSON-lines file as they happen."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.rows = []
        self.f = open(path, "a", encoding="utf-8")

    def add(self, row):
        with self.lock:
            self.rows.append(row)
            self.f.write(json.dumps(row) + "\n")
            self.f.flush()


def local_attempt(sendmail, config_dir, test_id, rcpts):
    """local_attempt - submit TEST_ID through the instance's sendmail(1)."""
    t0 = time.monotonic()
    p = subprocess.run([sendmail, "-C", config_dir, "-f", SENDER, "--"] + rcpts,
                       input=message(test_id).replace(b"\r\n", b"\n"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return {"id": test_id, "kind": "local", "t0": t0, "t_end": time.monotonic(),
            "outcome": "submitted" if p.returncode == 0 else "error",
            "code": p.returncode, "phase": "sendmail",
            "text": p.stdout.decode("utf-8", "replace")[-300:]}


def cmd_stream(o):
    port = int(o["port"])
    rcpts = o["rcpts"].split(",")
    prefix = o["prefix"]
    senders, per = int(o.get("senders", 4)), int(o.get("per-sender", 50))
    nlocal = int(o.get("local", 0))
    backoff = float(o.get("backoff", 0.05))
    results = Results(o["results"])

    def sender(t):
        for i in range(per):
            r = smtp_attempt(port, "%s-s%d-%03d" % (prefix, t, i), rcpts)
            r["attempt"] = 1
            results.add(r)
            if r["outcome"] != "accepted":
                time.sleep(backoff)     # as a client would, a little later

    def local():
        # spread over the expected length of the stream
        for j in range(nlocal):
            r = local_attempt(o["sendmail"], o["config"], "%s-l%03d" % (prefix, j), rcpts)
            r["attempt"] = 1
            results.add(r)
            time.sleep(float(o.get("local-gap", 0.05)))

    threads = [threading.Thread(target=sender, args=(t,)) for t in range(senders)]
    if nlocal:
        threads.append(threading.Thread(target=local))
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    # retry every SMTP message not accepted, as a real client retries a 4xx
    deadline = time.monotonic() + float(o.get("retry-for", 20))
    pending = sorted({r["id"] for r in results.rows if r["kind"] == "smtp"}
                     - {r["id"] for r in results.rows
                        if r["kind"] == "smtp" and r["outcome"] == "accepted"})
    attempt = 1
    while pending and time.monotonic() < deadline:
        attempt += 1
        still = []
        for test_id in pending:
            r = smtp_attempt(port, test_id, rcpts)
            r["attempt"] = attempt
            results.add(r)
            if r["outcome"] != "accepted":
                still.append(test_id)
        pending = still
        if pending:
            time.sleep(0.2)
    return 0


# ---- reading the sink ---------------------------------------------------------

def read_sink(directory):
    """read_sink - {test id: [(file, [rcpt...], [trace header values])]},
    and the files that carry no X-Test-Id (bounces, strays)."""
    by_id, other = {}, []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        rcpts, traces, test_id = [], [], None
        with open(path, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line == "":
                    break
                low = line.lower()
                if low.startswith("x-rcpt-args:"):
                    words = line.split(":", 1)[1].split()
                    if words:
                        rcpts.append(words[0].strip("<>"))
                elif low.startswith("x-test-id:"):
                    test_id = line.split(":", 1)[1].strip()
                elif low.startswith("x-coexist-milter:"):
                    traces.append(line.split(":", 1)[1].strip())
        if test_id is None:
            other.append(path)
        else:
            by_id.setdefault(test_id, []).append((path, sorted(rcpts), traces))
    return by_id, other


def queue_empty(postqueue, config_dir):
    p = subprocess.run([postqueue, "-c", config_dir, "-j"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return p.returncode == 0 and not p.stdout.strip()


def wait_delivered(o, want_ids):
    """wait_delivered - poll the sink until every id in WANT_IDS arrived and
    the queue is empty, or --wait seconds pass; the last read of the sink."""
    deadline = time.monotonic() + float(o.get("wait", 30))
    while True:
        by_id, other = read_sink(o["sink"])
        arrived = want_ids <= set(by_id)
        if arrived and queue_empty(o.get("postqueue", "postqueue"), o["config"]):
            # a last look, in case a duplicate was still on its way
            time.sleep(0.3)
            return read_sink(o["sink"]) + (True,)
        if time.monotonic() > deadline:
            return by_id, other, False
        time.sleep(0.2)


def load_results(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def cmd_check(o):
    rows = load_results(o["results"])
    expect = sorted(o["expect"].split(","))
    trace = o.get("trace", "")
    bad = []
    smtp_ids = sorted({r["id"] for r in rows if r["kind"] == "smtp"})
    local_ids = sorted({r["id"] for r in rows if r["kind"] == "local"})
    accepted = {r["id"] for r in rows if r["kind"] == "smtp" and r["outcome"] == "accepted"}
    first = [r for r in rows if r.get("attempt") == 1 and r["kind"] == "smtp"]
    first_acc = sum(1 for r in first if r["outcome"] == "accepted")
    first_4xx = [r for r in first if r["outcome"] == "tempfail"]
    retried = [r for r in rows if r.get("attempt", 1) > 1]
    phases = {}
    for r in rows:
        if r["kind"] == "smtp" and r["outcome"] == "tempfail":
            key = "%s %d" % (r["phase"], r["code"])
            phases[key] = phases.get(key, 0) + 1

    for r in rows:
        if r["kind"] == "smtp" and r["outcome"] not in ("accepted", "tempfail"):
            bad.append("%s attempt %d: %s at %s: %s %s" % (r["id"], r["attempt"], r["outcome"],
                                                          r["phase"], r["code"], r["text"][:120]))
        if r["kind"] == "local" and r["outcome"] != "submitted":
            bad.append("%s: sendmail(1) failed (exit %s): %s" % (r["id"], r["code"], r["text"][:120]))
    for i in smtp_ids:
        if i not in accepted:
            bad.append("%s: never accepted, even on retry" % i)
        n_acc = sum(1 for r in rows if r["id"] == i and r["outcome"] == "accepted")
        if n_acc > 1:
            bad.append("%s: accepted %d times (the client would not resend)" % (i, n_acc))

    want = accepted | set(local_ids)
    by_id, other, complete = wait_delivered(o, want)
    if not complete:
        missing = sorted(want - set(by_id))
        bad.append("not delivered within %ss: %d messages (%s), queue: %s" % (
            o.get("wait", 30), len(missing), " ".join(missing[:8]),
            subprocess.run([o.get("postqueue", "postqueue"), "-c", o["config"], "-j"],
                           stdout=subprocess.PIPE).stdout.decode()[:300]))
    for i in sorted(want):
        files = by_id.get(i, [])
        if len(files) > 1:
            bad.append("%s: delivered %d times" % (i, len(files)))
        for path, rcpts, traces in files:
            if rcpts != expect:
                bad.append("%s: recipients %s, want %s (%s)" % (i, rcpts, expect, path))
            if trace and traces != [trace]:
                bad.append("%s: trace headers %s, want exactly [%s]" % (i, traces, trace))
    for i in sorted(set(by_id) - want):
        if i.startswith(o["prefix"]):
            bad.append("%s: delivered although the client never saw it accepted" % i)
    if other:
        bad.append("%d sink files without X-Test-Id (bounces?): %s" % (len(other), other[:3]))

    print("summary: %d SMTP messages: %d accepted at once, %d got 4xx first (%s), "
          "%d retries; %d sendmail(1) messages; %d delivered exactly once" % (
              len(smtp_ids), first_acc, len(first_4xx),
              ", ".join("%s x%d" % kv for kv in sorted(phases.items())) or "none",
              len(retried), len(local_ids),
              sum(1 for i in want if len(by_id.get(i, [])) == 1)))
    for b in bad[:20]:
        print("bad: " + b)
    if len(bad) > 20:
        print("bad: ... and %d more" % (len(bad) - 20))
    return 1 if bad else 0


# ---- flips under load -------------------------------------------------------------

def outcome_set(user, st):
    """outcome_set - the recipients USER's message copy arrives at in state ST."""
    state, mode = st
    if state == "migrated":
        return [user["orig"]]
    if mode == "bcc":
        return sorted([user["orig"], user["alias"]])
    return [user["alias"]]


def cmd_flips(o):
    port = int(o["port"])
    ctl = [o["coexistctl"], "-c", o["conf"], "-d", o["db"]]
    users = []
    for spec in o["users"].split(","):
        orig, alias, state, mode = spec.split(":")
        users.append({"orig": orig, "alias": alias, "init": (state, mode)})
    unknown = o["unknown"].split(",")
    rcpts = [u["orig"] for u in users] + unknown
    senders, per = int(o.get("senders", 4)), int(o.get("per-sender", 50))
    prefix = o["prefix"]
    results = Results(o["results"])
    stop = threading.Event()
    # flips[k] = (t_before, t_after, user index, verb, rc, state tuple after)
    flips = []
    state = [u["init"] for u in users]
    rng = random.Random(int(o.get("seed", time.time())))

    def flipper():
        while not stop.is_set():
            k = rng.randrange(len(users))
            st, mode = state[k]
            choice = rng.randrange(3)
            if choice == 0:
                verb = ["unmigrate" if st == "migrated" else "migrate", users[k]["orig"]]
                new = ("unmigrated" if st == "migrated" else "migrated", mode)
            else:
                other = "rewrite" if mode == "bcc" else "bcc"
                verb = ["mode", users[k]["orig"], other]
                new = (st, other)
            t0 = time.monotonic()
            p = subprocess.run(ctl + verb, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            t1 = time.monotonic()
            if p.returncode == 0:
                state[k] = new
            flips.append((t0, t1, k, " ".join(verb), p.returncode, tuple(state),
                          p.stderr.decode("utf-8", "replace")[-200:]))

    def sender(t):
        for i in range(per):
            r = smtp_attempt(port, "%s-s%d-%03d" % (prefix, t, i), rcpts)
            r["attempt"] = 1
            results.add(r)

    fl = threading.Thread(target=flipper)
    fl.start()
    # let a few flips happen before the first message, so none sees only the start
    while len(flips) < 3 and fl.is_alive():
        time.sleep(0.005)
    threads = [threading.Thread(target=sender, args=(t,)) for t in range(senders)]
    t_start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t_send = time.monotonic() - t_start
    stop.set()
    fl.join()

    bad = []
    failed_flips = [f for f in flips if f[4] != 0]
    for f in failed_flips[:5]:
        bad.append("coexistctl %s failed (exit %d): %s" % (f[3], f[4], f[6].strip()))
    for r in results.rows:
        if r["outcome"] != "accepted":
            bad.append("%s: %s at %s: %s %s" % (r["id"], r["outcome"], r["phase"], r["code"],
                                                r["text"][:120]))
    # the store agrees with the flipper's model at the end
    for k, u in enumerate(users):
        p = subprocess.run(ctl + ["show", u["orig"]], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        text = p.stdout.decode("utf-8", "replace")
        st, mode = state[k]
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if (fields.get("state", "").strip(), fields.get("mode", "").strip()) != (st, mode):
            bad.append("store and model disagree on %s: model %s/%s, show: %s" % (
                u["orig"], st, mode, " ".join(text.split())[:200]))

    accepted = {r["id"]: r for r in results.rows if r["outcome"] == "accepted"}
    by_id, other, complete = wait_delivered(o, set(accepted))
    if not complete:
        missing = sorted(set(accepted) - set(by_id))
        bad.append("not delivered within %ss: %d messages (%s)" % (
            o.get("wait", 30), len(missing), " ".join(missing[:8])))
    if other:
        bad.append("%d sink files without X-Test-Id (bounces?): %s" % (len(other), other[:3]))

    # states: S_0 = initial, S_j = after the j-th successful flip
    states = [tuple(u["init"] for u in users)]
    times = []                  # (t_before, t_after) of flip j (1-based: times[j-1])
    for f in flips:
        if f[4] == 0:
            states.append(f[5])
            times.append((f[0], f[1]))
    ambiguous = 0
    seen = {}
    for i, r in sorted(accepted.items()):
        files = by_id.get(i, [])
        if len(files) != 1:
            if files:
                bad.append("%s: delivered %d times" % (i, len(files)))
            continue
        got = files[0][1]
        a, b = r["t_data"], r["t_end"]
        # committed for sure before a: every flip that ended before a
        lo = sum(1 for (t0, t1) in times if t1 < a)
        # possibly committed before b: every flip that began before b
        hi = sum(1 for (t0, t1) in times if t0 <= b)
        rest = list(got)
        for k, u in enumerate(users):
            mine = sorted(x for x in got if x in (u["orig"], u["alias"]))
            valid = {tuple(outcome_set(u, states[j][k])) for j in range(lo, hi + 1)}
            if len(valid) > 1:
                ambiguous += 1
            if tuple(mine) not in valid:
                bad.append("%s: %s arrived as %s; valid while it was decided (states %d..%d): %s" % (
                    i, u["orig"], mine, lo, hi, sorted(valid)))
            for x in mine:
                rest.remove(x)
            label = {(u["orig"],): "original", (u["alias"],): "alias",
                     tuple(sorted((u["orig"], u["alias"]))): "both"}.get(tuple(mine), "other")
            seen[label] = seen.get(label, 0) + 1
        if sorted(rest) != sorted(unknown):
            bad.append("%s: other recipients %s, want %s" % (i, sorted(rest), sorted(unknown)))
    for i in sorted(set(by_id) - set(accepted)):
        if i.startswith(prefix):
            bad.append("%s: delivered although never accepted" % i)

    nflips = sum(1 for f in flips if f[4] == 0)
    print("summary: %d messages from %d senders in %.1fs, %d accepted, %d delivered exactly once; "
          "%d flips (%d failed) = %.0f/s; %d user copies could have seen more than one state; "
          "outcomes seen: %s" % (
              len(results.rows), senders, t_send, len(accepted),
              sum(1 for i in accepted if len(by_id.get(i, [])) == 1), nflips,
              len(failed_flips), nflips / max(t_send, 0.001), ambiguous,
              ", ".join("%s x%d" % kv for kv in sorted(seen.items()))))
    for b in bad[:20]:
        print("bad: " + b)
    if len(bad) > 20:
        print("bad: ... and %d more" % (len(bad) - 20))
    return 1 if bad else 0


def main(argv):
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    o = opts(argv[1:])
    if argv[0] == "stream":
        return cmd_stream(o)
    if argv[0] == "check":
        return cmd_check(o)
    if argv[0] == "flips":
        return cmd_flips(o)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
