-- t-report.lua - per-user counters, coexistctl report and metrics_file
-- (DESIGN section 12) against the real daemon. The store is built here;
-- the config (run.sh) has counters_interval = 1, stats_interval = 1,
-- metrics_file = WORK/report.prom and counters_db = report-counters.tdb
-- (relative: beside the store, as the default counters.tdb is).
--   adam.barr@corp.example  bcc      unmigrated  wave w1
--   rita@corp.example       rewrite  unmigrated  wave w1
--   mig@corp.example        bcc      migrated    wave w1, reverse on (alias mig.old@pop.example)
--   dora@corp.example       bcc      unmigrated  wave w2, never written to
-- After N messages each and a flush, report must say exactly N for the
-- right users and 0 for the migrated one; after SIGTERM the shutdown flush
-- has the rest; --idle finds a user whose counters were back-dated; and
-- promtool accepts the metrics file the daemon wrote.

local L = dofile(TESTDIR .. "/lib.lua")
L.script = "t-report.lua"

local COUNTERS = WORK .. "/report-counters.tdb"
local METRICS = WORK .. "/report.prom"
local PIDFILE = WORK .. "/report.pid"
local CSV = WORK .. "/report.csv"

os.remove(STORE)
os.remove(COUNTERS)
L.ctl("init")
L.ctl("add adam.barr@corp.example adam@pop.example --mode bcc --wave w1")
L.ctl("add rita@corp.example rita@pop.example --mode rewrite --wave w1")
L.ctl("add mig@corp.example mig.old@pop.example --mode bcc --wave w1 --reverse")
L.ctl("migrate mig@corp.example")
L.ctl("add dora@corp.example dora@pop.example --mode bcc --wave w2")

local function send(qid, rcpt)
    local conn = L.connect()
    local res = L.message(conn, { qid = qid, rcpts = { rcpt } })
    L.disconnect(conn)
    if res.stage ~= "EOM" or res.reply ~= "c" then
        error(string.format("%s to %s: %s answered '%s'", qid, rcpt, tostring(res.stage),
                            tostring(res.reply)))
    end
    return res
end

local function read(path)
    local f = io.open(path, "r")
    if not f then return nil end
    local t = f:read("a")
    f:close()
    return t
end

-- report - coexistctl report ARGS as CSV: rows by address, and the last
-- line (stderr). With POLLING, a failure (no counters_db yet) is nil.
local function report(args, polling)
    os.remove(CSV)
    local cmd = L.q(CTL) .. " -c " .. L.q(CONF) .. " report --format csv " .. (args or "") ..
        " >" .. L.q(CSV) .. " 2>" .. L.q(CSV .. ".err")
    if polling then
        if not os.execute(cmd) then return nil end
    else
        L.sh("sh -c " .. L.q(cmd))
    end
    local rows, header = {}, nil
    for line in io.lines(CSV) do
        local f = {}
        for field in (line .. ","):gmatch("([^,]*),") do f[#f + 1] = field end
        if header == nil then
            header = f
        else
            local row = {}
            for i, name in ipairs(header) do row[name] = f[i] end
            rows[row.address] = row
        end
    end
    return rows, read(CSV .. ".err") or ""
end

local function expect_row(rows, addr, want)
    local row = rows[addr]
    if row == nil then error("report has no row for " .. addr .. ": " .. read(CSV)) end
    for k, v in pairs(want) do
        if row[k] ~= v then
            error(string.format("%s: %s is '%s', want '%s'", addr, k, tostring(row[k]), v))
        end
    end
end

-- wait_until - poll FN (true when done) every 0.1 s for at most TENTHS.
local function wait_until(tenths, fn)
    for _ = 1, tenths do
        if fn() then return true end
        os.execute("sleep 0.1")
    end
    return fn()
end

local N_ADAM, N_RITA, N_MIG, N_REV = 5, 3, 4, 2

L.case("report: daemon starts and writes its metrics file at once", function()
    L.disconnect(L.start_daemon())
    if not wait_until(30, function() return read(METRICS) ~= nil end) then
        error("no metrics file " .. METRICS)
    end
end)

L.case("report: N routed messages per user are counted and flushed within the interval", function()
    for i = 1, N_ADAM do send(string.format("QRP%02d", i), "<adam.barr@corp.example>") end
    for i = 1, N_RITA do send(string.format("QRR%02d", i), "<Rita@corp.example>") end
    for i = 1, N_MIG do send(string.format("QRM%02d", i), "<mig@corp.example>") end
    for i = 1, N_REV do send(string.format("QRV%02d", i), "<mig.old@pop.example>") end
    -- counters_interval = 1: the periodic flush, not the shutdown one
    local rows
    local ok = wait_until(50, function()
        rows = report(nil, true)
        return rows ~= nil and rows["adam.barr@corp.example"] ~= nil and rows["adam.barr@corp.example"].copies == "5"
            and rows["mig@corp.example"] ~= nil and rows["mig@corp.example"].reverse == "2"
    end)
    if not ok then error("no flush with every count within 5 s: " .. (read(CSV) or "")) end
    expect_row(rows, "adam.barr@corp.example",
               { state = "unmigrated", mode = "bcc", wave = "w1", copies = "5", rewrites = "0",
                 reverse = "0", legacy_1d = "5", legacy_7d = "5" })
    expect_row(rows, "rita@corp.example",
               { state = "unmigrated", mode = "rewrite", copies = "0", rewrites = "3",
                 legacy_7d = "3" })
    -- migrated: its own address is left alone (0), its legacy alias came back
    expect_row(rows, "mig@corp.example",
               { state = "migrated", copies = "0", rewrites = "0", reverse = "2",
                 legacy_7d = "0", reverse_7d = "2" })
    expect_row(rows, "dora@corp.example", { copies = "0", rewrites = "0", reverse = "0", last = "" })
    local _, err = report()
    if not err:find("legacy traffic: 8 in the last 1 day, 8 in the last 7 days; " ..
                    "reverse: 2 in the last 1 day, 2 in the last 7 days", 1, true) then
        error("last line: " .. err)
    end
end)

L.case("report: the metrics file has the stats counters and the users", function()
    local text
    local ok = wait_until(30, function()
        text = read(METRICS) or ""
        return text:find("\ncoexist_milter_bcc_total 5\n", 1, true) ~= nil
    end)
    if not ok then error("metrics file without bcc 5: " .. text) end
    for _, want in ipairs({
        "\ncoexist_milter_messages_total 14\n",
        "\ncoexist_milter_rewrites_total 3\n",
        "\ncoexist_milter_reverse_total 2\n",
        "\ncoexist_milter_users{state=\"unmigrated\",mode=\"bcc\"} 2\n",
        "\ncoexist_milter_users{state=\"unmigrated\",mode=\"rewrite\"} 1\n",
        "\ncoexist_milter_users{state=\"migrated\",mode=\"bcc\"} 1\n",
        "\ncoexist_milter_store_up 1\n",
        "\ncoexist_milter_counters_enabled 1\n",
        "# TYPE coexist_milter_counters_flush_age_seconds gauge\n",
    }) do
        if not text:find(want, 1, true) then error("metrics file lacks " .. want .. ":\n" .. text) end
    end
    L.sh("cp " .. L.q(METRICS) .. " " .. L.q(WORK .. "/report-running.prom"))
end)

L.case("report: promtool check metrics accepts the daemon's file", function()
    L.sh("promtool check metrics < " .. L.q(WORK .. "/report-running.prom"))
end)

-- stop - SIGTERM the running daemon and wait for it to be gone.
local function stop()
    local pid = (read(PIDFILE) or ""):match("%d+")
    if not pid then error("no pid in " .. PIDFILE) end
    L.sh("kill -TERM " .. pid)
    -- the pid file goes before the process (valgrind's leak check comes
    -- after); miltertest reaps its child only at the end: a zombie is gone
    local function gone()
        local st = read("/proc/" .. pid .. "/stat")
        return st == nil or st:match("^%d+ %b() (%a)") == "Z"
    end
    if not wait_until(300, function() return read(PIDFILE) == nil and gone() end) then
        error("the daemon did not stop within 30 s")
    end
end

L.case("report: counts wait in memory for the interval and SIGTERM flushes them", function()
    stop()
    -- the same config with an hour between flushes: only the shutdown flush writes
    local conf2 = WORK .. "/report-hour.conf"
    local f = assert(io.open(conf2, "w"))
    for line in io.lines(CONF) do
        if not line:match("^counters_interval") then f:write(line, "\n") end
    end
    f:write("counters_interval = 3600\n")
    f:close()
    mt.startfilter(DAEMON, "-c", conf2, "-f", "-v")
    local ok, conn = pcall(mt.connect, DSOCK, 300, 0.1)
    if not ok or conn == nil then error("the second daemon did not start within 30 s") end
    mt.disconnect(conn)
    for i = 1, 2 do send(string.format("QRS%02d", i), "<adam.barr@corp.example>") end
    os.execute("sleep 1.5")
    expect_row(report(), "adam.barr@corp.example", { copies = "5" })
    stop()
    local rows = report()
    expect_row(rows, "adam.barr@corp.example", { copies = "7" })
    expect_row(rows, "rita@corp.example", { rewrites = "3" })
end)

L.case("report: --idle lists a user whose back-dated counters stopped 40 days ago", function()
    local function iso(ago) return os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - ago * 86400) end
    local day = os.date("!%Y-%m-%d", os.time() - 40 * 86400)
    -- rita's last mail 40 days ago; counting since 60 days
    L.sh("tdbtool " .. L.q(COUNTERS) .. " store rita@corp.example " ..
         L.q("v=1 node=mt copies=0 rewrites=3 reverse=0 first=" .. iso(45) .. " last=" ..
             iso(40) .. " rlast=- days=" .. day .. ":3:0"))
    L.sh("tdbtool " .. L.q(COUNTERS) .. " store '!counters-since' " .. L.q(iso(60)))
    local rows = report("--idle 30")
    expect_row(rows, "rita@corp.example", { why = "idle", rewrites = "3", legacy_7d = "0" })
    expect_row(rows, "dora@corp.example", { why = "never-routed" })
    expect_row(rows, "mig@corp.example", { why = "alias-in-use" })
    if rows["adam.barr@corp.example"] ~= nil then error("adam got mail today: not idle") end
    rows = report("--idle 50")
    if rows["rita@corp.example"] ~= nil then error("rita listed idle for 50 days") end
    rows = report("--wave w2")
    if rows["rita@corp.example"] ~= nil or rows["dora@corp.example"] == nil then
        error("--wave w2: " .. read(CSV))
    end
end)

L.finish()
