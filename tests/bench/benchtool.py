#!/usr/bin/env python3
"""benchtool.py - the helpers of tests/bench/run.sh that shell does badly.

  benchtool.py rusage CMD [ARG...]
      Run CMD; print "secs=S maxrss_kb=K rc=N" (wall time, peak resident set
      of CMD) on stdout. CMD's own output goes to stderr.

  benchtool.py report RESULTS
      Read the RUN/STORE/RSS/E2E/FLIP/REPLICA lines run.sh wrote to RESULTS and print
      the tables of docs/BENCHMARKS.md (Markdown).
"""
import resource
import statistics
import subprocess
import sys
import time


def rusage(cmd):
    t0 = time.monotonic()
    rc = subprocess.call(cmd, stdout=sys.stderr)
    secs = time.monotonic() - t0
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print("secs=%.3f maxrss_kb=%d rc=%d" % (secs, kb, rc))
    return rc


# ---- report -------------------------------------------------------------

def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            rec = {"kind": words[0], "_raw": line.split(None, 1)[1].strip() if len(words) > 1 else ""}
            for w in words[1:]:
                if "=" in w:
                    k, v = w.split("=", 1)
                    rec[k] = v
            rows.append(rec)
    return rows


def num(rec, key):
    return float(rec.get(key, "nan"))


def med(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def users_label(n):
    n = int(n)
    for exp in range(9, 0, -1):
        if n == 10 ** exp:
            return "10^%d" % exp
    return str(n)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if i else ":---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def milter_cells(runs):
    """{(size, conns, rcpts): {round: {milter: RUN}}}"""
    cells = {}
    for r in runs:
        key = (int(r["size"]), int(r["conns"]), int(r["rcpts"]))
        cells.setdefault(key, {}).setdefault(int(r["round"]), {})[r["milter"]] = r
    return cells


def lat(rounds, milter):
    p50 = med([num(rd[milter], "p50_ms") for rd in rounds.values() if milter in rd])
    p99 = med([num(rd[milter], "p99_ms") for rd in rounds.values() if milter in rd])
    mx = max([num(rd[milter], "max_ms") for rd in rounds.values() if milter in rd] or [0])
    return "%.2f / %.2f / %.0f" % (p50, p99, mx)


def col(rounds, milter, key):
    return [num(rd[milter], key) for rd in rounds.values() if milter in rd]


def ratio(rounds, a, b):
    """The median over rounds of A's msg/s over B's, each round's pair run back to back."""
    return med([num(rd[a], "msg_s") / num(rd[b], "msg_s") for rd in rounds.values()
                if a in rd and b in rd and num(rd[b], "msg_s") > 0])


def report_milter(rows):
    runs = [r for r in rows if r["kind"] == "RUN"]
    if not runs:
        return
    routed = milter_cells([r for r in runs if r.get("load", "routed") == "routed"])
    unrouted = milter_cells([r for r in runs if r.get("load") == "unrouted"])
    out = []
    for (size, conns, rcpts), rounds in sorted(routed.items()):
        out.append([
            users_label(size), conns, rcpts,
            "%.0f" % med(col(rounds, "coexist", "msg_s")),
            "%.0f" % med(col(rounds, "null", "msg_s")),
            "**%.2f**" % ratio(rounds, "coexist", "null"),
            "%.0f" % med(col(rounds, "bcc", "msg_s")),
            "%.2f" % ratio(rounds, "coexist", "bcc"),
            lat(rounds, "coexist"), lat(rounds, "null"),
            "%.0f / %.0f / %.0f" % (med(col(rounds, "coexist", "cpu_us")),
                                    med(col(rounds, "null", "cpu_us")),
                                    med(col(rounds, "bcc", "cpu_us"))),
            len(rounds),
        ])
    if out:
        print("### Milter throughput, every recipient a bcc user (load client, same run, alternating)\n")
        print(table(["users", "conns", "rcpts/msg", "coexist msg/s", "null msg/s",
                     "coexist/null", "bcc-milter msg/s", "coexist/bcc", "coexist p50/p99/max ms",
                     "null p50/p99/max ms", "milter CPU µs/msg coexist/null/bcc", "rounds"], out))
        print()
    out = []
    for (size, conns, rcpts), rounds in sorted(unrouted.items()):
        out.append([
            users_label(size), conns, rcpts,
            "%.0f" % med(col(rounds, "coexist", "msg_s")),
            "%.0f" % med(col(rounds, "null", "msg_s")),
            "**%.2f**" % ratio(rounds, "coexist", "null"),
            lat(rounds, "coexist"), lat(rounds, "null"),
            "%.0f / %.0f" % (med(col(rounds, "coexist", "cpu_us")),
                             med(col(rounds, "null", "cpu_us"))),
            len(rounds),
        ])
    if out:
        print("### Milter throughput, recipients unknown to the store (two lookups each, no change)\n")
        print(table(["users", "conns", "rcpts/msg", "coexist msg/s", "null msg/s",
                     "coexist/null", "coexist p50/p99/max ms", "null p50/p99/max ms",
                     "milter CPU µs/msg coexist/null", "rounds"], out))
        print()


def report_store(rows):
    stores = {int(r["size"]): r for r in rows if r["kind"] == "STORE"}
    rss = {}
    for r in rows:
        if r["kind"] == "RSS":
            rss[(int(r["size"]), r["milter"])] = r
    if not stores:
        return
    out = []
    for size, s in sorted(stores.items()):
        c = rss.get((size, "coexist"), {})
        n = rss.get((size, "null"), {})
        out.append([users_label(size), "%.2f" % num(s, "import_s"),
                    "%.1f" % (num(s, "import_maxrss_kb") / 1024),
                    "%.1f" % (num(s, "file_kb") / 1024),
                    "%s / %s" % (c.get("rss_kb", "?"), c.get("hwm_kb", "?")),
                    "%s / %s" % (n.get("rss_kb", "?"), n.get("hwm_kb", "?"))])
    print("### Store: import and memory\n")
    print(table(["users", "coexistctl import s", "import peak RSS MiB", "store file MiB",
                 "coexist-milter RSS / peak kB", "null milter RSS / peak kB"], out))
    print()


def report_e2e(rows):
    runs = [r for r in rows if r["kind"] == "E2E"]
    if not runs:
        return
    for load in ("routed", "unrouted"):
        cells = {}
        for r in runs:
            if r.get("load", "routed") == load:
                cells.setdefault(int(r["rcpts"]), {}).setdefault(int(r["round"]), {})[r["config"]] = r
        if not cells:
            continue
        out = []
        for rcpts, rounds in sorted(cells.items()):
            def col(cfg, key="msg_s"):
                return [num(rd[cfg], key) for rd in rounds.values() if cfg in rd and key in rd[cfg]]

            def ratio(a, b, key="msg_s"):
                return med([num(rd[a], key) / num(rd[b], key) for rd in rounds.values()
                            if a in rd and b in rd and key in rd[a] and num(rd[b], key) > 0])

            def cpu(cfg):
                c = col(cfg, "cpu_us")
                return "%.0f" % med(c) if c else "-"

            some = next(iter(rounds.values()))
            first = next(iter(some.values()))
            row = [users_label(first["users"]), rcpts, first["msgs"], first["sessions"]]
            if load == "routed":
                row += ["%.0f" % med(col("native")), "%.0f" % med(col("bccmilter")),
                        "%.0f" % med(col("coexist")),
                        "**%.2f**" % ratio("coexist", "bccmilter"),
                        "**%.2f**" % ratio("coexist", "native"),
                        "%.2f" % ratio("bccmilter", "native"),
                        "%s / %s" % (cpu("coexist"), cpu("bccmilter")),
                        "**%.2f**" % ratio("coexist", "bccmilter", "cpu_us")
                        if col("coexist", "cpu_us") else "-", len(rounds)]
            else:
                row += ["%.0f" % med(col("nullmilter")), "%.0f" % med(col("coexist")),
                        "**%.2f**" % ratio("coexist", "nullmilter"),
                        "%s / %s" % (cpu("coexist"), cpu("nullmilter")),
                        "**%.2f**" % ratio("coexist", "nullmilter", "cpu_us")
                        if col("coexist", "cpu_us") else "-", len(rounds)]
            out.append(row)
        if load == "routed":
            print("### Postfix end to end (smtp-source -> Postfix -> smtp-sink), every recipient routed\n")
            print(table(["users", "rcpts/msg", "msgs/run", "sessions", "native bcc msg/s",
                         "bcc-milter msg/s", "coexist msg/s", "coexist/bcc-milter",
                         "coexist/native", "bcc-milter/native",
                         "milter CPU µs/msg coexist / bcc-milter", "CPU coexist/bcc-milter",
                         "rounds"], out))
        else:
            print("### Postfix end to end, no recipient managed (coexist-milter against the null milter)\n")
            print(table(["users", "rcpts/msg", "msgs/run", "sessions", "null-milter msg/s",
                         "coexist msg/s", "coexist/null", "milter CPU µs/msg coexist / null",
                         "CPU coexist/null", "rounds"], out))
        print()


def report_flip(rows):
    runs = [r for r in rows if r["kind"] == "FLIP"]
    if not runs:
        return
    out = []
    for r in runs:
        out.append([users_label(r["users"]), r["conns"], r["what"], r.get("flips", "-"),
                    r.get("ctl_max_ms", "-"), r.get("ctl_med_ms", "-"),
                    "%s / %s / %s" % (r["base_p999_ms"], r["base_max_ms"], r["base_slow"]),
                    "%s / %s / %s" % (r["p999_ms"], r["max_ms"], r["slow"]),
                    r["errors"]])
    print("### State flips under load\n")
    print(table(["users", "conns", "flipping", "flips", "coexistctl max ms",
                 "coexistctl median ms", "no flips: p99.9 / max ms / >50ms",
                 "flipping: p99.9 / max ms / >50ms", "errors"], out))
    print()


def report_replica(rows):
    """The shared store (DESIGN 11): import, snapshot, lookups on a replica, a wave applied."""
    cells = milter_cells([r for r in rows if r["kind"] == "RUN" and r.get("load") == "replica"])
    out = []
    for (size, conns, rcpts), rounds in sorted(cells.items()):
        out.append([users_label(size), conns, rcpts,
                    "%.0f" % med(col(rounds, "replica", "msg_s")),
                    "%.0f" % med(col(rounds, "coexist", "msg_s")),
                    "**%.2f**" % ratio(rounds, "replica", "coexist"),
                    lat(rounds, "replica"), lat(rounds, "coexist"), len(rounds)])
    if out:
        print("### coexist-milter on a replica of the shared store against the plain store (routed, alternating)\n")
        print(table(["users", "conns", "rcpts/msg", "replica msg/s", "plain store msg/s",
                     "replica/plain", "replica p50/p99/max ms", "plain p50/p99/max ms",
                     "rounds"], out))
        print()
    out = []
    for r in [r for r in rows if r["kind"] == "REPLICA"]:
        wave = [w for w in rows if w["kind"] == "REPLICA_WAVE" and w["size"] == r["size"]]
        w = wave[0] if wave else {}
        out.append([users_label(r["size"]), r["import_s"], r["snapshot_s"],
                    w.get("rows", "-"), w.get("ctl_ms", "-"), w.get("apply_ms", "-"),
                    w.get("rows_s", "-"),
                    "%s / %s" % (w.get("base_p999_ms", "-"), w.get("base_max_ms", "-")),
                    "%s / %s" % (w.get("p999_ms", "-"), w.get("max_ms", "-")),
                    w.get("errors", "-")])
    if out:
        print("### The shared store: import, snapshot, a wave reaching a replica under load (16 conns)\n")
        print(table(["users", "import into PostgreSQL s", "snapshot s", "wave rows",
                     "migrate --wave ms", "in the replica after ms", "rows/s",
                     "no wave: p99.9 / max ms", "wave applying: p99.9 / max ms", "errors"], out))
        print()


def report(path):
    rows = parse(path)
    for r in rows:
        if r["kind"] == "MACHINE":
            print("- " + r["_raw"])
    print()
    report_milter(rows)
    report_store(rows)
    report_e2e(rows)
    report_flip(rows)
    report_replica(rows)


def main(argv):
    if len(argv) >= 3 and argv[1] == "rusage":
        return rusage(argv[2:])
    elif len(argv) == 3 and argv[1] == "report":
        report(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
