-- t-dberror.lua - store missing or corrupt with on_db_error = tempfail.
-- STORE does not exist when the daemon starts. The cases run in order and
-- change the store under the running daemon:
--   missing -> created -> deleted -> restored -> replaced by garbage (rename)
--   -> restored -> overwritten in place with garbage (same size, last).

local L = dofile(TESTDIR .. "/lib.lua")
L.script = "t-dberror.lua"

local serial = 0
-- build a valid store next to STORE and rename it into place (new inode)
local function install_store()
    serial = serial + 1
    local tmp = WORK .. "/dberror-build-" .. serial .. ".tdb"
    os.remove(tmp)
    L.ctl("init", tmp)
    L.ctl("add adam.barr@corp.example adam@pop.example --mode bcc", tmp)
    local ok, err = os.rename(tmp, STORE)
    if not ok then error("rename: " .. tostring(err)) end
end

local function garbage_file(path, size)
    local chunk = "this is not a tdb file, it is garbage. "
    local f = assert(io.open(path, "wb"))
    local n = 0
    while n < size do f:write(chunk); n = n + #chunk end
    f:close()
end

local function send(qid)
    local conn = L.connect()
    return conn, L.message(conn, { qid = qid, rcpts = { "<adam.barr@corp.example>" } })
end

local function routed(qid)
    local conn, res = send(qid)
    L.expect(conn, res, { adds = { { addr = "<adam@pop.example>", bcc = true } }, header = true })
end

local function tempfailed(qid)
    local _, res = send(qid)
    L.expect_tempfail(res)
    L.expect_log(qid .. ": error: ", qid .. " logs an error line")
end

os.remove(STORE)

L.case("db-error: daemon starts although the store is missing", function()
    local conn = L.start_daemon()
    mt.disconnect(conn)
end)

L.case("db-error: missing store -> tempfail", function() tempfailed("QDE01") end)

L.case("db-error: store created while running -> routed", function()
    install_store()
    routed("QDE02")
end)

L.case("db-error: store deleted while running -> tempfail", function()
    assert(os.remove(STORE))
    tempfailed("QDE03")
end)

L.case("db-error: store restored -> routed", function()
    install_store()
    routed("QDE04")
end)

L.case("db-error: store replaced by a garbage file -> tempfail", function()
    local tmp = WORK .. "/dberror-garbage.tdb"
    garbage_file(tmp, 64 * 1024)
    assert(os.rename(tmp, STORE))
    tempfailed("QDE05")
end)

L.case("db-error: garbage not turned into an empty store", function()
    local f = assert(io.open(STORE, "rb"))
    local head = f:read(16) or ""
    f:close()
    if head:sub(1, 4) ~= "this" then
        error("the garbage store file was rewritten (starts with " .. string.format("%q", head) .. ")")
    end
end)

L.case("db-error: valid store back -> routed", function()
    install_store()
    routed("QDE06")
end)

L.case("db-error: store overwritten in place with garbage -> tempfail", function()
    local f = assert(io.open(STORE, "rb"))
    local size = f:seek("end")
    f:close()
    -- same size, no truncation (a live tdb must never shrink)
    local chunk = "GARBAGE!"
    f = assert(io.open(STORE, "r+b"))
    local n = 0
    while n < size do
        local piece = chunk:sub(1, math.min(#chunk, size - n))
        f:write(piece)
        n = n + #piece
    end
    f:close()
    tempfailed("QDE07")
end)

L.finish()
