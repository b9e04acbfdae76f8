-- t-hostile.lua - hostile input through the milter protocol: recipients
-- that are over-long, carry control characters or unbalanced brackets, a
-- message with thousands of recipients, and a record corrupted inside the
-- TDB. The promise: a clear error or tempfail, never a crash and never a
-- wrong delivery. (NUL cannot reach the milter: the protocol's strings are
-- NUL-terminated, so libmilter cuts a recipient there.)
-- The store is built here; the config has on_db_error = tempfail.

local L = dofile(TESTDIR .. "/lib.lua")
L.script = "t-hostile.lua"

local ADAM = "<adam.barr@corp.example>"
local ALIAS = "<adam@pop.example>"
local function bcc(a) return { addr = a, bcc = true } end

local function one(m)
    local conn = L.connect()
    return conn, L.message(conn, m)
end

-- a hostile recipient is left alone and adam, in the same message, is
-- still routed: the bad one neither crashes nor poisons the message
local function alone_with_adam(qid, hostile)
    local conn, res = one({ qid = qid, rcpts = { hostile, ADAM } })
    L.expect(conn, res, { adds = { bcc(ALIAS) }, header = true })
    L.disconnect(conn)
end

os.remove(STORE)
L.ctl("init")
L.ctl("add adam.barr@corp.example adam@pop.example --mode bcc")
L.ctl("add rita@corp.example rita@pop.example --mode rewrite")

L.case("hostile: daemon starts", function()
    local conn = L.start_daemon()
    mt.disconnect(conn)
end)

L.case("hostile: 65-byte local part left alone", function()
    alone_with_adam("QHO01", "<" .. string.rep("a", 65) .. "@corp.example>")
end)

L.case("hostile: 1000-byte recipient left alone (miltertest sends no more)", function()
    alone_with_adam("QHO02", "<" .. string.rep("x", 980) .. "@corp.example>")
end)

L.case("hostile: 256-byte domain left alone", function()
    alone_with_adam("QHO03", "<adam.barr@" .. string.rep("d", 240) .. ".corp.example>")
end)

L.case("hostile: control characters left alone (TAB, CR, LF, DEL, ESC)", function()
    for i, c in ipairs({ "\t", "\r", "\n", "\127", "\27" }) do
        alone_with_adam("QHO04" .. i, "<adam.barr" .. c .. "@corp.example>")
    end
end)

L.case("hostile: unbalanced or doubled brackets are not taken for adam", function()
    for i, a in ipairs({ "<adam.barr@corp.example", "adam.barr@corp.example>",
                         "<<adam.barr@corp.example>>", "<adam.barr@corp.example>junk",
                         "<>", "<", ">", "@", "<@corp.example>" }) do
        local conn, res = one({ qid = "QHO05" .. i, rcpts = { a } })
        L.expect_untouched(conn, res, { ALIAS })
        L.disconnect(conn)
    end
end)

L.case("hostile: bytes above 0x7f left alone", function()
    alone_with_adam("QHO06", "<ad\195\164m.barr@corp.example>")
end)

L.case("hostile: 3000 recipients, 1500 of them adam+tag: one alias added", function()
    local rcpts = {}
    for i = 1, 1500 do
        rcpts[#rcpts + 1] = string.format("<adam.barr+t%d@corp.example>", i)
        rcpts[#rcpts + 1] = string.format("<stranger%d@corp.example>", i)
    end
    local conn, res = one({ qid = "QHO07", rcpts = rcpts })
    L.expect(conn, res, { adds = { bcc(ALIAS) }, header = true })
    L.disconnect(conn)
end)

L.case("hostile: 2000 rewrite recipients: every one deleted, the alias added once", function()
    local rcpts, dels = {}, {}
    for i = 1, 2000 do
        rcpts[#rcpts + 1] = string.format("<Rita+%d@corp.example>", i)
        dels[#dels + 1] = rcpts[#rcpts]
    end
    local conn, res = one({ qid = "QHO08", rcpts = rcpts })
    if res.stage ~= "EOM" or (res.reply ~= "c" and res.reply ~= "a") then
        error("reply '" .. tostring(res.reply) .. "' at " .. tostring(res.stage))
    end
    if #res.mods.adds ~= 1 or res.mods.adds[1].addr ~= "<rita@pop.example>" then
        error(#res.mods.adds .. " adds, expected exactly <rita@pop.example>")
    end
    if #res.mods.dels ~= #dels then
        error(#res.mods.dels .. " deletes, expected " .. #dels)
    end
    local seen = {}
    for _, d in ipairs(res.mods.dels) do seen[d] = true end
    for _, d in ipairs(dels) do
        if not seen[d] then error(d .. " not deleted") end
    end
    L.disconnect(conn)
end)

L.case("hostile: a corrupt record -> tempfail with a clear log line", function()
    L.sh("tdbtool " .. L.q(STORE) .. " store adam.barr@corp.example 'v=1 state=banana'")
    local _, res = one({ qid = "QHO09", rcpts = { ADAM } })
    L.expect_tempfail(res)
    L.expect_log("QHO09: error: ", "QHO09 logs an error line")
end)

L.case("hostile: a corrupt record does not stop mail to others", function()
    local conn, res = one({ qid = "QHO10", rcpts = { "<stranger@corp.example>" } })
    L.expect_accepted_at_data(res)
    L.disconnect(conn)
end)

L.case("hostile: the record repaired with coexistctl -> routed again", function()
    L.ctl("remove adam.barr@corp.example")
    L.ctl("add adam.barr@corp.example adam@pop.example --mode bcc")
    local conn, res = one({ qid = "QHO11", rcpts = { ADAM } })
    L.expect(conn, res, { adds = { bcc(ALIAS) }, header = true })
    L.disconnect(conn)
end)

L.finish()
