-- t-reverse.lua - reverse routing (DESIGN section 9) against the real daemon.
-- The store is built by run.sh (setup_reverse_store):
--   adam.barr@corp.example  alias adam@pop.example       rewrite, migrated, reverse
--   bea@corp.example        alias bea.old@pop.example    bcc, migrated, no reverse
--   carl@corp.example       alias carl.old@pop.example   bcc, unmigrated, reverse
--   later@corp.example      alias later.old@pop.example  bcc, cutover passed, reverse
--   @corp3.example          legacy pop3.example          rewrite, migrated, reverse
--   own@corp3.example       alias own.old@pop3.example   bcc, unmigrated (own record)

local L = dofile(TESTDIR .. "/lib.lua")
L.script = "t-reverse.lua"

local function rw(a, orig, notify)
    if type(orig) == "string" then orig = { orig } end
    return { addr = a, orcpt = orig, notify = notify }
end

local function one(m)
    local conn = L.connect()
    return conn, L.message(conn, m)
end

L.case("reverse: daemon starts", function()
    L.disconnect(L.start_daemon())
end)

L.case("reverse: a migrated user's legacy alias goes back to the new address", function()
    local raw = "<Adam@POP.example>"
    local conn, res = one({ qid = "QRV01", rcpts = { { raw, "NOTIFY=SUCCESS,FAILURE" } } })
    L.expect(conn, res, { adds = { rw("<adam.barr@corp.example>", raw, "SUCCESS,FAILURE") },
                          dels = { raw }, header = true })
    L.expect_log("QRV01: reverse rcpt=<adam@pop.example> to=<adam.barr@corp.example> rule=user")
end)

L.case("reverse: a scheduled cutover that passed counts", function()
    local raw = "<later.old@pop.example>"
    local conn, res = one({ qid = "QRV02", rcpts = { raw } })
    L.expect(conn, res, { adds = { rw("<later@corp.example>", raw) }, dels = { raw }, header = true })
end)

L.case("reverse: a domain rule sends its legacy domain back, spelled as sent", function()
    local raw = "<Jane.Doe@pop3.example>"
    local conn, res = one({ qid = "QRV03", rcpts = { raw } })
    L.expect(conn, res, { adds = { rw("<Jane.Doe@corp3.example>", raw) }, dels = { raw }, header = true })
    L.expect_log("QRV03: reverse rcpt=<jane.doe@pop3.example> to=<Jane.Doe@corp3.example> rule=domain")
end)

L.case("reverse: left alone while the owner is unmigrated", function()
    local conn, res = one({ qid = "QRV04", rcpts = { "<carl.old@pop.example>" } })
    L.expect_untouched(conn, res, { "<carl@corp.example>" })
    L.expect_nolog("QRV04: reverse", "no reverse line for an unmigrated owner")
end)

L.case("reverse: left alone without the flag", function()
    local conn, res = one({ qid = "QRV05", rcpts = { "<bea.old@pop.example>" } })
    L.expect_untouched(conn, res, { "<bea@corp.example>" })
end)

L.case("reverse: an address with its own record is not the domain rule's", function()
    local conn, res = one({ qid = "QRV06", rcpts = { "<own@pop3.example>" } })
    L.expect_accepted_at_data(res)
end)

L.case("reverse: the new address already a recipient: no add, still the delete", function()
    local raw = "<adam@pop.example>"
    local conn, res = one({ qid = "QRV07", rcpts = { raw, "<adam.barr@corp.example>" } })
    L.expect(conn, res, { adds = {}, dels = { raw }, header = true,
                          not_added = { "<adam.barr@corp.example>" } })
end)

L.finish()
