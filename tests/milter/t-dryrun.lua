-- t-dryrun.lua - dry_run = yes: decide and log, change nothing.
-- Store (built by run.sh): adam.barr -> adam@pop.example bcc,
-- rita.rewrite -> rita@pop.example rewrite, @corp2.example -> @pop2.example rewrite.

local L = dofile(TESTDIR .. "/lib.lua")
L.script = "t-dryrun.lua"

L.case("dry-run: daemon starts", function()
    local conn = L.start_daemon()
    mt.disconnect(conn)
end)

L.case("dry-run: bcc user, nothing changed", function()
    local conn = L.connect()
    local res = L.message(conn, { qid = "QDR01", rcpts = { "<adam.barr@corp.example>" } })
    L.expect_untouched(conn, res, { "<adam@pop.example>" })
    L.expect_log("QDR01: dry-run ", "QDR01 logs a dry-run line")
    L.expect_nolog("QDR01: bcc ", "QDR01 logs no real bcc")
end)

L.case("dry-run: rewrite user, nothing added or deleted", function()
    local conn = L.connect()
    local res = L.message(conn, { qid = "QDR02", rcpts = { "<rita.rewrite@corp.example>" } })
    L.expect_untouched(conn, res, { "<rita@pop.example>" })
    L.expect_log("QDR02: dry-run ", "QDR02 logs a dry-run line")
    L.expect_nolog("QDR02: rewrite ", "QDR02 logs no real rewrite")
end)

L.case("dry-run: several recipients incl. domain rule, nothing changed", function()
    local conn = L.connect()
    local res = L.message(conn, { qid = "QDR03",
        rcpts = { "<adam.barr@corp.example>", "<Rita.Rewrite+x@Corp.Example>", "<carol@corp2.example>" } })
    L.expect_untouched(conn, res, { "<adam@pop.example>", "<rita@pop.example>", "<carol@pop2.example>" })
    L.expect_log("QDR03: dry-run ", "QDR03 logs a dry-run line")
end)

L.finish()
