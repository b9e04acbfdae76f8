-- lib.lua - shared helpers for the miltertest scripts of tests/milter/.
--
-- Loaded by each t-*.lua with dofile(TESTDIR .. "/lib.lua"). run.sh passes
-- the environment as miltertest -D globals:
--   TESTDIR   this directory          WORK      the run's temp dir
--   DAEMON    coexist-milter binary   CONF      its config file
--   DSOCK     the daemon's socket     PSOCK     the recording proxy's socket
--   CTL       coexistctl binary       STORE     the state_db of CONF
--   EOMREC    the proxy's EOM record  LOGEXPECT where expected syslog lines go
--   INSTANCE  the configured instance TRACE     the trace header name
--
-- Every case prints "PASS name" or "FAIL name: reason". Cases never stop the
-- script: each runs under pcall with its own connection(s).
--
-- Why a proxy: this miltertest's mt.eom_check(MT_RCPTADD) only matches
-- SMFIR_ADDRCPT, never SMFIR_ADDRCPT_PAR, which is what the milter must use.
-- milter_proxy.py records every EOM request (with ESMTP args) in EOMREC; the
-- checks below use that record and cross-check with mt.eom_check where
-- miltertest can see the request (deletes, headers).

io.stdout:setvbuf("line")

local L = {}

-- This miltertest build only exports SMFIC_CONNECT/HELO/MAIL/RCPT.
L.SMFIC_EOH = SMFIC_EOH or string.byte("N")
L.SMFIC_BODYEOB = SMFIC_BODYEOB or string.byte("E")

L.passed, L.failed = 0, 0
L.script = "?"
-- Set by a script whose daemon has a trace secret: the trace header is then
-- "INSTANCE; r=TAG,...; mac=MAC" rather than INSTANCE alone.
L.guard = false
local open_conns = {}

local function reply_char(conn)
    local r = mt.getreply(conn)
    if r == nil then return "?" end
    r = math.floor(r)
    if r <= 0 then return "(none)" end
    return string.char(r)
end
L.reply_char = reply_char

function L.check(err, what)
    if err ~= nil then error(what .. ": " .. tostring(err), 2) end
end

-- ---------------------------------------------------------------- cases
function L.case(name, fn)
    open_conns = {}
    local ok, err = pcall(fn)
    for conn, _ in pairs(open_conns) do pcall(mt.disconnect, conn, false) end
    open_conns = {}
    if ok then
        L.passed = L.passed + 1
        print("PASS " .. name)
    else
        L.failed = L.failed + 1
        if type(err) ~= "string" then
            -- miltertest raises some errors without a message (lost
            -- connection, protocol error): the reason is on its stderr
            err = "miltertest call failed without a message (connection lost or protocol error; see stderr)"
        end
        err = err:gsub("\n", " | ")
        print("FAIL " .. name .. ": " .. err)
    end
end

function L.finish()
    print(string.format("END %s %d passed %d failed", L.script, L.passed, L.failed))
end

-- ---------------------------------------------------------------- syslog
-- Expectations are checked by run.sh once the daemon has stopped.
local function log_expect(sign, text, name)
    local f = assert(io.open(LOGEXPECT, "a"))
    f:write(sign .. "\t" .. (name or text) .. "\t" .. text .. "\n")
    f:close()
end
function L.expect_log(text, name) log_expect("+", text, name) end
function L.expect_nolog(text, name) log_expect("-", text, name) end

-- ---------------------------------------------------------------- shell
function L.sh(cmd)
    local ok, how, code = os.execute(cmd .. " >>" .. WORK .. "/lua-shell.log 2>&1")
    if not ok then
        error(string.format("command failed (%s %s): %s", tostring(how), tostring(code), cmd), 2)
    end
end

function L.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function L.ctl(args, db)
    L.sh(L.q(CTL) .. " -d " .. L.q(db or STORE) .. " " .. args)
end

-- ---------------------------------------------------------------- daemon
L.daemon = "not started"
function L.start_daemon()
    mt.startfilter(DAEMON, "-c", CONF, "-f", "-v")
    -- wait for the daemon's own socket (not the proxy)
    local ok, conn = pcall(mt.connect, DSOCK, 100, 0.05)
    if not ok or conn == nil then
        L.daemon = "did not start (no socket " .. DSOCK .. " after 5 s; see its stderr)"
        error("the daemon " .. L.daemon)
    end
    L.daemon = nil
    return conn
end

-- ---------------------------------------------------------------- protocol
function L.connect()
    if L.daemon then error("the daemon " .. L.daemon) end
    local conn = mt.connect(PSOCK, 40, 0.05)
    if conn == nil then error("mt.connect(" .. PSOCK .. ") failed") end
    open_conns[conn] = true
    if not mt.test_option(conn, SMFIP_NOCONNECT) then
        L.check(mt.conninfo(conn, "client.example", "192.0.2.10"), "mt.conninfo")
        if reply_char(conn) ~= "c" then error("connect reply '" .. reply_char(conn) .. "'") end
    end
    if not mt.test_option(conn, SMFIP_NOHELO) then
        L.check(mt.helo(conn, "client.example"), "mt.helo")
        if reply_char(conn) ~= "c" then error("HELO reply '" .. reply_char(conn) .. "'") end
    end
    return conn
end

function L.disconnect(conn)
    if open_conns[conn] then
        open_conns[conn] = nil
        mt.disconnect(conn)
    end
end

local function split_tabs(line)
    local t = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do t[#t + 1] = field end
    return t
end

-- The EOM requests recorded by milter_proxy.py for the last message.
function L.read_eom()
    local f = io.open(EOMREC, "r")
    if f == nil then error("the proxy recorded no end-of-message (" .. EOMREC .. ")") end
    local mods = { adds = {}, dels = {}, hdrs = {}, other = {}, seq = {} }
    for line in f:lines() do
        local t = split_tabs(line)
        local k = t[1]
        if k == "ADDRCPT_PAR" or k == "ADDRCPT" then
            mods.adds[#mods.adds + 1] = { addr = t[2], args = t[3] or "", par = (k == "ADDRCPT_PAR") }
            mods.seq[#mods.seq + 1] = "add " .. t[2]
        elseif k == "DELRCPT" then
            mods.dels[#mods.dels + 1] = t[2]
            mods.seq[#mods.seq + 1] = "del " .. t[2]
        elseif k == "ADDHEADER" then
            mods.hdrs[#mods.hdrs + 1] = { name = t[2], value = t[3] or "", how = "add" }
            mods.seq[#mods.seq + 1] = "hdr " .. t[2]
        elseif k == "INSHEADER" then
            mods.hdrs[#mods.hdrs + 1] = { name = t[3], value = t[4] or "", how = "insert" }
            mods.seq[#mods.seq + 1] = "hdr " .. t[3]
        elseif k == "REPLY" then
            mods.reply = t[2]
            mods.reply_text = t[3] or ""
        else
            mods.other[#mods.other + 1] = line
            mods.seq[#mods.seq + 1] = line
        end
    end
    f:close()
    return mods
end

local function describe_mods(mods)
    if mods == nil then return "(none)" end
    if #mods.seq == 0 then return "(no modifications)" end
    local t = {}
    for _, a in ipairs(mods.adds) do
        t[#t + 1] = "add" .. (a.par and "_par " or " ") .. a.addr .. (a.args ~= "" and (" [" .. a.args .. "]") or "")
    end
    for _, d in ipairs(mods.dels) do t[#t + 1] = "del " .. d end
    for _, h in ipairs(mods.hdrs) do t[#t + 1] = h.how .. "header " .. h.name .. ": " .. h.value end
    for _, o in ipairs(mods.other) do t[#t + 1] = o end
    return table.concat(t, "; ")
end
L.describe_mods = describe_mods

local DEFAULT_HEADERS = {
    { "From", "Sender <sender@example.net>" },
    { "To", "Someone <someone@corp.example>" },
    { "Subject", "coexist-milter protocol test" },
    { "Message-ID", "<mt-%s@example.net>" },
}

-- Send one message. m = { qid = "...", from = "<...>",
--   rcpts = { "<a@b>" | { "<a@b>", "NOTIFY=...", rcpt_addr = "a@b" }, ... }
--     (rcpt_addr: the {rcpt_addr} macro the MTA sends with that RCPT),
--   headers = { { name, value }, ... } (sent after the defaults),
--   msgid = the default Message-ID's value instead of "<mt-QID@example.net>" }
-- Returns { stage = "MAIL"|"RCPT n"|"DATA"|"HEADER"|"EOH"|"EOM", reply = c,
--           mods = (EOM only) the recorded requests }
function L.message(conn, m)
    local res = { qid = m.qid }
    local function stopped(stage)
        local r = reply_char(conn)
        if r ~= "c" then
            res.stage, res.reply = stage, r
            -- the text of an SMFIR_REPLYCODE, as recorded by the proxy
            local f = io.open(EOMREC .. ".last", "r")
            if f then
                local t = split_tabs(f:read("l") or "")
                f:close()
                if t[1] == r then res.reply_text = t[2] end
            end
            return true
        end
        return false
    end
    os.remove(EOMREC .. ".last")
    L.check(mt.macro(conn, SMFIC_MAIL, "i", m.qid), "mt.macro(MAIL)")
    L.check(mt.mailfrom(conn, m.from or "<sender@example.net>"), "mt.mailfrom")
    if stopped("MAIL") then return res end
    for i, r in ipairs(m.rcpts) do
        if type(r) == "string" then r = { r } end
        if r.rcpt_addr then
            L.check(mt.macro(conn, SMFIC_RCPT, "{rcpt_addr}", r.rcpt_addr), "mt.macro(RCPT)")
        end
        L.check(mt.rcptto(conn, table.unpack(r)), "mt.rcptto")
        if stopped("RCPT " .. i .. " " .. r[1]) then return res end
    end
    if not mt.test_option(conn, SMFIP_NODATA) then
        L.check(mt.data(conn), "mt.data")
        if stopped("DATA") then return res end
    end
    if not mt.test_option(conn, SMFIP_NOHDRS) then
        local hdrs = {}
        for _, h in ipairs(DEFAULT_HEADERS) do
            local v = h[2]:format(m.qid)
            if h[1] == "Message-ID" and m.msgid then v = m.msgid end
            hdrs[#hdrs + 1] = { h[1], v }
        end
        for _, h in ipairs(m.headers or {}) do hdrs[#hdrs + 1] = h end
        for _, h in ipairs(hdrs) do
            L.check(mt.header(conn, h[1], h[2]), "mt.header")
            if stopped("HEADER " .. h[1]) then return res end
        end
    elseif m.headers and #m.headers > 0 then
        error("the milter negotiated SMFIP_NOHDRS: it cannot see the trace header")
    end
    if not mt.test_option(conn, SMFIP_NOEOH) then
        L.check(mt.eoh(conn), "mt.eoh")
        if stopped("EOH") then return res end
    end
    -- Postfix sends "i" again with the end-of-message macros
    L.check(mt.macro(conn, L.SMFIC_BODYEOB, "i", m.qid), "mt.macro(EOM)")
    os.remove(EOMREC)
    L.check(mt.eom(conn), "mt.eom")
    res.stage, res.reply = "EOM", reply_char(conn)
    res.mods = L.read_eom()
    res.reply_text = res.mods.reply_text
    return res
end

-- ---------------------------------------------------------------- checks
local function xtext_decode(s)
    return (s:gsub("%+(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function parse_args(args)
    local t, n = {}, 0
    for tok in args:gmatch("%S+") do
        local k, v = tok:match("^([^=]+)=(.*)$")
        if k == nil then k, v = tok, true end
        t[k:upper()] = v
        n = n + 1
    end
    return t, n
end

local function strip(a) return (a:gsub("^<", ""):gsub(">$", "")) end

-- exp = {
--   adds = { { addr = "<alias>", bcc = true }
--          | { addr = "<alias>", orcpt = { "<raw original>", ... }, notify = "X"|nil } },
--   dels = { "<raw>", ... },
--   header = true|false,          -- trace header expected
--   not_added = { "<addr>", ... } -- extra explicit negative checks
-- }
function L.expect(conn, res, exp)
    if res.stage ~= "EOM" then
        error(string.format("message stopped at %s with reply '%s'", res.stage, res.reply))
    end
    if res.reply ~= "c" and res.reply ~= "a" then
        error("EOM reply '" .. res.reply .. "', expected continue or accept; requests: " .. describe_mods(res.mods))
    end
    local mods = res.mods
    local got = describe_mods(mods)
    -- recipients added: exactly the expected ones, each once
    local want_adds = exp.adds or {}
    if #mods.adds ~= #want_adds then
        error(string.format("%d recipient add(s), expected %d; got: %s", #mods.adds, #want_adds, got))
    end
    local used = {}
    for _, w in ipairs(want_adds) do
        local found
        for i, a in ipairs(mods.adds) do
            if not used[i] and a.addr == w.addr then found = i; break end
        end
        if not found then error("alias " .. w.addr .. " not added; got: " .. got) end
        used[found] = true
        local a = mods.adds[found]
        if not a.par then
            error(w.addr .. " added with smfi_addrcpt, not smfi_addrcpt_par (no ESMTP args); got: " .. got)
        end
        local args, nargs = parse_args(a.args)
        if w.bcc then
            if args.NOTIFY ~= "NEVER" or nargs ~= 1 then
                error("bcc copy " .. w.addr .. " args '" .. a.args .. "', expected 'NOTIFY=NEVER'")
            end
        else
            if w.notify ~= args.NOTIFY then
                error(string.format("rewrite %s NOTIFY=%s, expected %s (args '%s')", w.addr,
                    tostring(args.NOTIFY), tostring(w.notify), a.args))
            end
            local orcpt = args.ORCPT
            if type(orcpt) ~= "string" or orcpt:sub(1, 7):lower() ~= "rfc822;" then
                error("rewrite " .. w.addr .. " has no ORCPT=rfc822;... (args '" .. a.args .. "')")
            end
            local o = xtext_decode(orcpt:sub(8)):lower()
            local ok = false
            for _, cand in ipairs(w.orcpt) do
                if o == strip(cand):lower() then ok = true end
            end
            if not ok then
                error(string.format("rewrite %s ORCPT '%s' (decoded '%s') does not name the original %s",
                    w.addr, orcpt, o, table.concat(w.orcpt, " or ")))
            end
            for k, _ in pairs(args) do
                if k ~= "NOTIFY" and k ~= "ORCPT" then
                    error("rewrite " .. w.addr .. " unexpected ESMTP arg " .. k .. " (args '" .. a.args .. "')")
                end
            end
        end
        -- miltertest itself must not have seen it as a plain add
        if mt.eom_check(conn, MT_RCPTADD, w.addr) then
            error(w.addr .. " was (also) added with plain smfi_addrcpt")
        end
    end
    -- recipients deleted: exactly the expected raw forms
    local want_dels = exp.dels or {}
    if #mods.dels ~= #want_dels then
        error(string.format("%d recipient delete(s), expected %d; got: %s", #mods.dels, #want_dels, got))
    end
    for _, d in ipairs(want_dels) do
        local found = false
        for _, g in ipairs(mods.dels) do if g == d then found = true end end
        if not found then error("original " .. d .. " not deleted (raw form); got: " .. got) end
        if not mt.eom_check(conn, MT_RCPTDELETE, d) then
            error("miltertest did not see the delete of " .. d)
        end
    end
    -- adds before deletes
    local seen_del = false
    for _, s in ipairs(mods.seq) do
        if s:sub(1, 4) == "del " then seen_del = true
        elseif s:sub(1, 4) == "add " and seen_del then
            error("a recipient was added after a delete: " .. table.concat(mods.seq, ", "))
        end
    end
    -- trace header
    local traces = 0
    for _, h in ipairs(mods.hdrs) do
        if h.name:lower() == TRACE:lower() then
            traces = traces + 1
            local v = h.value:gsub("^%s+", ""):gsub("%s+$", "")
            if L.guard then
                local inst = v:match("^(.-); r=[%w_%-,*]+; mac=[%w_%-]+$")
                if inst ~= INSTANCE then
                    error(string.format("trace header value '%s', expected '%s; r=...; mac=...'",
                        h.value, INSTANCE))
                end
            elseif v ~= INSTANCE then
                error(string.format("trace header value '%s', expected '%s'", h.value, INSTANCE))
            end
        else
            error("unexpected header " .. h.how .. " " .. h.name .. ": " .. h.value)
        end
    end
    local mt_saw = mt.eom_check(conn, MT_HDRADD, TRACE) or mt.eom_check(conn, MT_HDRINSERT, TRACE)
    if exp.header then
        if traces ~= 1 then error(string.format("%d trace header(s) %s, expected 1; got: %s", traces, TRACE, got)) end
        if not mt_saw then error("miltertest did not see the trace header") end
    else
        if traces ~= 0 or mt_saw then error("trace header added although nothing changed; got: " .. got) end
    end
    if #mods.other > 0 then error("unexpected requests: " .. table.concat(mods.other, "; ")) end
    for _, a in ipairs(exp.not_added or {}) do
        if mt.eom_check(conn, MT_RCPTADD, a) then error(a .. " added") end
        for _, g in ipairs(mods.adds) do if g.addr == a then error(a .. " added") end end
    end
end

-- The value of the trace header the milter added at the last end of message.
function L.trace_value(res)
    for _, h in ipairs(res.mods and res.mods.hdrs or {}) do
        if h.name:lower() == TRACE:lower() then return h.value end
    end
    error("no " .. TRACE .. " header added; got: " .. describe_mods(res.mods))
end

-- A message for which no recipient has a record: accepted at DATA (the
-- MTA then sends this milter nothing more of it, so nothing can change).
function L.expect_accepted_at_data(res)
    if res.stage ~= "DATA" or res.reply ~= "a" then
        error(string.format("want ACCEPT at DATA, got reply '%s' at %s%s", res.reply or "?",
            res.stage or "?", res.mods and ("; requests: " .. describe_mods(res.mods)) or ""))
    end
end

function L.expect_untouched(conn, res, also_not_added)
    L.expect(conn, res, { adds = {}, dels = {}, header = false, not_added = also_not_added })
end

-- SMFIS_TEMPFAIL is 't', or 'y' with a 4xx text when the milter called
-- smfi_setreply (libmilter then sends the reply code instead).
function L.expect_tempfail(res)
    local text = res.reply_text or ""
    if res.reply == "t" or (res.reply == "y" and text:match("^4%d%d")) then return end
    local extra = res.mods and ("; requests: " .. describe_mods(res.mods)) or ""
    error(string.format("reply '%s' (%s) at %s, expected tempfail ('t', or 'y' with 4xx)%s",
        res.reply, text, res.stage, extra))
end

return L
