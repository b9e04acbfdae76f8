-- t-accept.lua - store missing or corrupt with on_db_error = accept: the
-- message continues unchanged. A valid store in between shows the daemon
-- does route in this configuration (so "unchanged" is not trivially true).

local L = dofile(TESTDIR .. "/lib.lua")
L.script = "t-accept.lua"

local function send(qid)
    local conn = L.connect()
    return conn, L.message(conn, { qid = qid, rcpts = { "<adam.barr@corp.example>" } })
end

local function install_store()
    local tmp = WORK .. "/accept-build.tdb"
    os.remove(tmp)
    L.ctl("init", tmp)
    L.ctl("add adam.barr@corp.example adam@pop.example --mode bcc", tmp)
    assert(os.rename(tmp, STORE))
end

os.remove(STORE)

L.case("db-accept: daemon starts although the store is missing", function()
    local conn = L.start_daemon()
    mt.disconnect(conn)
end)

L.case("db-accept: missing store -> continue unchanged", function()
    local conn, res = send("QDA01")
    L.expect_untouched(conn, res, { "<adam@pop.example>" })
    L.expect_log("QDA01: error: ", "QDA01 logs an error line")
end)

L.case("db-accept: valid store -> routed", function()
    install_store()
    local conn, res = send("QDA02")
    L.expect(conn, res, { adds = { { addr = "<adam@pop.example>", bcc = true } }, header = true })
end)

L.case("db-accept: store replaced by a garbage file -> continue unchanged", function()
    local tmp = WORK .. "/accept-garbage.tdb"
    local f = assert(io.open(tmp, "wb"))
    for _ = 1, 2000 do f:write("this is not a tdb file, it is garbage. ") end
    f:close()
    assert(os.rename(tmp, STORE))
    local conn, res = send("QDA03")
    L.expect_untouched(conn, res, { "<adam@pop.example>" })
    L.expect_log("QDA03: error: ", "QDA03 logs an error line")
end)

L.finish()
