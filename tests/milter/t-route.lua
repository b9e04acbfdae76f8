-- t-route.lua - routing decisions of coexist-milter against a valid store.
-- The store is built by run.sh (setup_route_store); the config has
-- on_db_error = tempfail, dry_run = no, instance = INSTANCE.

local L = dofile(TESTDIR .. "/lib.lua")
L.script = "t-route.lua"

local function bcc(a) return { addr = a, bcc = true } end
local function rw(a, orig, notify)
    if type(orig) == "string" then orig = { orig } end
    return { addr = a, orcpt = orig, notify = notify }
end

-- one message on a fresh connection
local function one(m)
    local conn = L.connect()
    local res = L.message(conn, m)
    return conn, res
end

local function no_route_log(qid)
    L.expect_nolog(qid .. ": bcc ", qid .. " logs no bcc")
    L.expect_nolog(qid .. ": rewrite ", qid .. " logs no rewrite")
end

L.case("route: daemon starts and negotiates ADDRCPT_PAR, DELRCPT, ADDHDRS, NOBODY", function()
    local conn = L.start_daemon()
    local missing = {}
    for name, bit in pairs({ SMFIF_ADDRCPT_PAR = SMFIF_ADDRCPT_PAR, SMFIF_DELRCPT = SMFIF_DELRCPT,
                             SMFIF_ADDHDRS = SMFIF_ADDHDRS }) do
        if not mt.test_action(conn, bit) then missing[#missing + 1] = name end
    end
    if not mt.test_option(conn, SMFIP_NOBODY) then missing[#missing + 1] = "SMFIP_NOBODY" end
    if mt.test_option(conn, SMFIP_NOHDRS) then missing[#missing + 1] = "headers (got SMFIP_NOHDRS)" end
    mt.disconnect(conn)
    if #missing > 0 then error("not negotiated: " .. table.concat(missing, ", ")) end
end)

L.case("route: bcc adds exactly the alias with NOTIFY=NEVER", function()
    local conn, res = one({ qid = "QRT01", rcpts = { "<adam.barr@corp.example>" } })
    L.expect(conn, res, { adds = { bcc("<adam@pop.example>") }, header = true,
                          not_added = { "<adam.barr@corp.example>" } })
    L.expect_log("QRT01: bcc rcpt=<adam.barr@corp.example> alias=<adam@pop.example> rule=user")
end)

L.case("route: rewrite adds the alias (NOTIFY kept, ORCPT) and deletes the original", function()
    local conn, res = one({ qid = "QRT02",
        rcpts = { { "<rita.rewrite@corp.example>", "NOTIFY=SUCCESS,FAILURE" } } })
    L.expect(conn, res, { adds = { rw("<rita@pop.example>", "<rita.rewrite@corp.example>", "SUCCESS,FAILURE") },
                          dels = { "<rita.rewrite@corp.example>" }, header = true })
    L.expect_log("QRT02: rewrite rcpt=<rita.rewrite@corp.example> alias=<rita@pop.example> rule=user")
end)

L.case("route: migrated user untouched", function()
    local conn, res = one({ qid = "QRT03", rcpts = { "<mig.user@corp.example>" } })
    L.expect_untouched(conn, res, { "<mig@pop.example>" })
    no_route_log("QRT03")
end)

L.case("route: unknown addresses untouched", function()
    local conn, res = one({ qid = "QRT04", rcpts = { "<nobody@corp.example>", "<someone@elsewhere.example>" } })
    L.expect_accepted_at_data(res)
    no_route_log("QRT04")
end)

L.case("route: scheduled cutover in the past = migrated, untouched", function()
    local conn, res = one({ qid = "QRT05", rcpts = { "<sched.past@corp.example>" } })
    L.expect_untouched(conn, res, { "<sched@pop.example>" })
    no_route_log("QRT05")
end)

L.case("route: scheduled cutover in the future = still routed", function()
    local conn, res = one({ qid = "QRT06", rcpts = { "<sched.future@corp.example>" } })
    L.expect(conn, res, { adds = { bcc("<future@pop.example>") }, header = true })
end)

L.case("route: domain rule rewrites to the same local part at the legacy domain", function()
    local conn, res = one({ qid = "QRT07", rcpts = { "<carol@corp2.example>" } })
    L.expect(conn, res, { adds = { rw("<carol@pop2.example>", "<carol@corp2.example>") },
                          dels = { "<carol@corp2.example>" }, header = true })
    L.expect_log("QRT07: rewrite rcpt=<carol@corp2.example> alias=<carol@pop2.example> rule=domain")
end)

L.case("route: user record wins over its domain rule (migrated user)", function()
    local conn, res = one({ qid = "QRT08", rcpts = { "<dave@corp2.example>" } })
    L.expect_untouched(conn, res, { "<dave@pop2.example>", "<dave.old@pop2.example>" })
end)

L.case("route: user record wins over its domain rule (bcc user)", function()
    local conn, res = one({ qid = "QRT09", rcpts = { "<erin@corp2.example>" } })
    L.expect(conn, res, { adds = { bcc("<erin.old@pop2.example>") }, header = true,
                          not_added = { "<erin@pop2.example>" } })
    L.expect_log("QRT09: bcc rcpt=<erin@corp2.example> alias=<erin.old@pop2.example> rule=user")
end)

L.case("route: mixed case and +tag, bcc user", function()
    local conn, res = one({ qid = "QRT10", rcpts = { "<Adam.Barr+x@Corp.Example>" } })
    L.expect(conn, res, { adds = { bcc("<adam@pop.example>") }, header = true })
end)

-- The unmatched extension goes with a rewrite, spelled as sent (virtual(5)).
L.case("route: mixed case and +tag, rewrite deletes the raw form as sent", function()
    local conn, res = one({ qid = "QRT11", rcpts = { "<Rita.Rewrite+Tag@CORP.example>" } })
    L.expect(conn, res, { adds = { rw("<rita+Tag@pop.example>", "<Rita.Rewrite+Tag@CORP.example>") },
                          dels = { "<Rita.Rewrite+Tag@CORP.example>" }, header = true })
end)

L.case("route: mixed case and +tag, domain rule", function()
    local conn, res = one({ qid = "QRT12", rcpts = { "<Carol+list@Corp2.Example>" } })
    -- the whole local part at the legacy domain, as Postfix makes @domain results
    L.expect(conn, res, { adds = { rw("<Carol+list@pop2.example>", "<Carol+list@Corp2.Example>") },
                          dels = { "<Carol+list@Corp2.Example>" }, header = true })
end)

-- Issue 10: the MTA's resolution ({rcpt_addr}) decides, the raw form is deleted.
L.case("route: {rcpt_addr} of a percent-hack recipient is routed, the raw form deleted", function()
    local raw = "<rita.rewrite%corp.example@mx.local>"
    local conn, res = one({ qid = "QRT40", rcpts = { { raw, rcpt_addr = "rita.rewrite@corp.example" } } })
    L.expect(conn, res, { adds = { rw("<rita@pop.example>", raw) }, dels = { raw }, header = true })
    L.expect_log("QRT40: rewrite rcpt=<rita.rewrite@corp.example> alias=<rita@pop.example> rule=user")
end)

L.case("route: {rcpt_addr} of a quoted local part is routed (bcc)", function()
    local raw = '<"adam.barr@corp.example"@mx.local>'
    local conn, res = one({ qid = "QRT41", rcpts = { { raw, rcpt_addr = "adam.barr@corp.example" } } })
    L.expect(conn, res, { adds = { bcc("<adam@pop.example>") }, header = true })
end)

L.case("route: a recipient nobody resolves is logged with the queue id, left alone", function()
    local conn, res = one({ qid = "QRT42", rcpts = { '<"adam.barr@corp.example"@mx.local>' } })
    L.expect_untouched(conn, res)
    L.expect_log('QRT42: unresolved rcpt=<"adam.barr@corp.example"@mx.local>: invalid character in local part; left alone')
end)

L.case("route: duplicate: alias already a recipient is not added", function()
    local conn, res = one({ qid = "QRT13", rcpts = { "<adam.barr@corp.example>", "<adam@pop.example>" } })
    L.expect_untouched(conn, res)
end)

L.case("route: duplicate: alias already a recipient (other case) is not added", function()
    local conn, res = one({ qid = "QRT14", rcpts = { "<Adam@POP.Example>", "<adam.barr@corp.example>" } })
    L.expect_untouched(conn, res, { "<adam@pop.example>" })
end)

L.case("route: duplicate: two users with one alias add it once", function()
    local conn, res = one({ qid = "QRT15", rcpts = { "<shared1@corp.example>", "<shared2@corp.example>" } })
    L.expect(conn, res, { adds = { bcc("<shared@pop.example>") }, header = true })
end)

L.case("route: duplicate: user and user+tag add the alias once (bcc)", function()
    local conn, res = one({ qid = "QRT16", rcpts = { "<adam.barr@corp.example>", "<adam.barr+news@corp.example>" } })
    L.expect(conn, res, { adds = { bcc("<adam@pop.example>") }, header = true })
end)

-- A rewrite carries the extension: user and user+x are two legacy addresses.
L.case("route: user and user+tag: two aliases, delete both (rewrite)", function()
    local conn, res = one({ qid = "QRT17", rcpts = { "<rita.rewrite@corp.example>", "<Rita.Rewrite+x@corp.example>" } })
    L.expect(conn, res, {
        adds = { rw("<rita@pop.example>", "<rita.rewrite@corp.example>"),
                 rw("<rita+x@pop.example>", "<Rita.Rewrite+x@corp.example>") },
        dels = { "<rita.rewrite@corp.example>", "<Rita.Rewrite+x@corp.example>" }, header = true })
end)

L.case("route: several recipients in one message, each handled once", function()
    local conn, res = one({ qid = "QRT18", rcpts = { "<adam.barr@corp.example>", "<rita.rewrite@corp.example>",
        "<mig.user@corp.example>", "<nobody@corp.example>", "<carol@corp2.example>" } })
    L.expect(conn, res, {
        adds = { bcc("<adam@pop.example>"), rw("<rita@pop.example>", "<rita.rewrite@corp.example>"),
                 rw("<carol@pop2.example>", "<carol@corp2.example>") },
        dels = { "<rita.rewrite@corp.example>", "<carol@corp2.example>" }, header = true,
        not_added = { "<mig@pop.example>" } })
end)

L.case("route: unparseable recipient left alone, others still routed", function()
    local conn, res = one({ qid = "QRT19", rcpts = { "<postmaster>", "<adam.barr@corp.example>" } })
    L.expect(conn, res, { adds = { bcc("<adam@pop.example>") }, header = true })
end)

L.case("route: loop header of this instance: not routed again", function()
    local conn, res = one({ qid = "QRT20", rcpts = { "<adam.barr@corp.example>", "<rita.rewrite@corp.example>" },
        headers = { { TRACE, INSTANCE } } })
    L.expect_untouched(conn, res, { "<adam@pop.example>", "<rita@pop.example>" })
    no_route_log("QRT20")
end)

L.case("route: trace header of another instance does not stop routing", function()
    local conn, res = one({ qid = "QRT21", rcpts = { "<adam.barr@corp.example>" },
        headers = { { TRACE, "some-other-instance" } } })
    L.expect(conn, res, { adds = { bcc("<adam@pop.example>") }, header = true })
end)

L.case("route: flip with coexistctl between two messages on one connection (migrate)", function()
    local conn = L.connect()
    local r1 = L.message(conn, { qid = "QRT22", rcpts = { "<flip.user@corp.example>" } })
    L.expect(conn, r1, { adds = { bcc("<flip@pop.example>") }, header = true })
    L.ctl("migrate flip.user@corp.example")
    local r2 = L.message(conn, { qid = "QRT23", rcpts = { "<flip.user@corp.example>" } })
    local ok, err = pcall(L.expect_untouched, conn, r2, { "<flip@pop.example>" })
    if not ok then error("second message after migrate: " .. tostring(err)) end
    L.disconnect(conn)
    L.expect_log("QRT22: bcc rcpt=<flip.user@corp.example> alias=<flip@pop.example> rule=user")
    no_route_log("QRT23")
end)

L.case("route: flips on one connection: unmigrate, mode rewrite, remove", function()
    local conn = L.connect()
    L.ctl("unmigrate flip.user@corp.example")
    local r = L.message(conn, { qid = "QRT24", rcpts = { "<flip.user@corp.example>" } })
    local ok, err = pcall(L.expect, conn, r, { adds = { bcc("<flip@pop.example>") }, header = true })
    if not ok then error("after unmigrate: " .. tostring(err)) end
    L.ctl("mode flip.user@corp.example rewrite")
    r = L.message(conn, { qid = "QRT25", rcpts = { "<flip.user@corp.example>" } })
    ok, err = pcall(L.expect, conn, r, { adds = { rw("<flip@pop.example>", "<flip.user@corp.example>") },
                                         dels = { "<flip.user@corp.example>" }, header = true })
    if not ok then error("after mode rewrite: " .. tostring(err)) end
    L.ctl("remove flip.user@corp.example")
    r = L.message(conn, { qid = "QRT26", rcpts = { "<flip.user@corp.example>" } })
    ok, err = pcall(L.expect_accepted_at_data, r)
    if not ok then error("after remove: " .. tostring(err)) end
    L.disconnect(conn)
    L.expect_log("QRT25: rewrite rcpt=<flip.user@corp.example> alias=<flip@pop.example> rule=user")
end)

L.case("route: second message on a connection does not inherit recipients", function()
    local conn = L.connect()
    local r1 = L.message(conn, { qid = "QRT27", rcpts = { "<adam.barr@corp.example>" } })
    L.expect(conn, r1, { adds = { bcc("<adam@pop.example>") }, header = true })
    local r2 = L.message(conn, { qid = "QRT28", rcpts = { "<nobody@corp.example>" } })
    local ok, err = pcall(L.expect_accepted_at_data, r2)
    if not ok then error("second message: " .. tostring(err)) end
    L.disconnect(conn)
end)

L.case("route: aborted message does not leak into the next one", function()
    local conn = L.connect()
    L.check(mt.macro(conn, SMFIC_MAIL, "i", "QRT29"), "mt.macro")
    L.check(mt.mailfrom(conn, "<sender@example.net>"), "mt.mailfrom")
    L.check(mt.rcptto(conn, "<rita.rewrite@corp.example>"), "mt.rcptto")
    L.check(mt.abort(conn), "mt.abort")
    local r = L.message(conn, { qid = "QRT30", rcpts = { "<nobody@corp.example>" } })
    L.expect_accepted_at_data(r)
    L.disconnect(conn)
end)

L.case("route: ACCEPT at DATA only for messages no recipient is managed for, on one connection", function()
    local conn = L.connect()
    for i, m in ipairs({
        { rcpts = { "<nobody@corp.example>" }, accept = true },
        { rcpts = { "<nobody@corp.example>", "<adam.barr@corp.example>" } },
        { rcpts = { "<someone@elsewhere.example>" }, accept = true },
        { rcpts = { "<adam.barr@corp.example>" } },
    }) do
        local r = L.message(conn, { qid = "QDA0" .. i, rcpts = m.rcpts })
        local ok, err
        if m.accept then
            ok, err = pcall(L.expect_accepted_at_data, r)
        else
            ok, err = pcall(L.expect, conn, r, { adds = { bcc("<adam@pop.example>") }, header = true })
        end
        if not ok then error("message " .. i .. ": " .. tostring(err)) end
    end
    L.disconnect(conn)
end)

L.case("route: a flip between DATA and end of message is honoured", function()
    local conn = L.connect()
    L.check(mt.macro(conn, SMFIC_MAIL, "i", "QDA10"), "mt.macro")
    L.check(mt.mailfrom(conn, "<sender@example.net>"), "mt.mailfrom")
    L.check(mt.rcptto(conn, "<adam.barr@corp.example>"), "mt.rcptto")
    L.check(mt.data(conn), "mt.data")
    if mt.getreply(conn) ~= SMFIR_CONTINUE then error("DATA did not continue for a bcc user") end
    L.ctl("migrate adam.barr@corp.example")
    L.check(mt.header(conn, "Subject", "flipped after DATA"), "mt.header")
    L.check(mt.macro(conn, L.SMFIC_BODYEOB, "i", "QDA10"), "mt.macro(EOM)")
    L.check(mt.eom(conn), "mt.eom")
    local added = mt.eom_check(conn, MT_RCPTADD, "<adam@pop.example>")
    L.ctl("unmigrate adam.barr@corp.example")
    if added then error("the bcc was added although the user migrated before end of message") end
    L.disconnect(conn)
end)

L.finish()
