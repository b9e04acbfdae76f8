-- t-guard.lua - the loop guard with a secret (DESIGN.md section 10) against
-- the real daemon. run.sh builds guard.tdb with coexistctl init, which also
-- made WORK/trace.key; the config names no trace_secret_file, so the daemon
-- finds the secret by the default (trace.key beside state_db).

local L = dofile(TESTDIR .. "/lib.lua")
L.script = "t-guard.lua"
L.guard = true

local MSGID = "<guard-1@example.net>"
local function bcc(a) return { addr = a, bcc = true } end
local function rw(a, orig) return { addr = a, orcpt = { orig } } end

-- send - one message on a fresh connection with Message-ID MSGID (or ID),
-- then HEADERS (so a trace header comes after the Message-ID here; test_mlfi
-- sends one before it).
local function send(qid, rcpts, headers, id)
    local conn = L.connect()
    local res = L.message(conn, { qid = qid, rcpts = rcpts, headers = headers, msgid = id or MSGID })
    return conn, res
end

-- run - a shell command's output (stderr too) and exit code.
local function run(cmd)
    local p = assert(io.popen(cmd .. " 2>&1; echo \"exit=$?\""))
    local out = p:read("a")
    p:close()
    local code = tonumber(out:match("exit=(%d+)%s*$"))
    return out:gsub("exit=%d+%s*$", ""), code
end

L.case("guard: -n accepts the secret and does not warn", function()
    local out, code = run(L.q(DAEMON) .. " -n -c " .. L.q(CONF))
    if code ~= 0 or out:find("loop guard") or not out:find("configuration OK") then
        error(string.format("exit %s, output: %s", tostring(code), out))
    end
end)

L.case("guard: -n warns when trace_secret_file is off or missing", function()
    local conf = WORK .. "/guard-nokey.conf"
    local f = assert(io.open(conf, "w"))
    f:write("state_db = " .. STORE .. "\nallow_root = yes\nsocket = unix:" .. WORK .. "/guard-n.sock\ntrace_secret_file =\n")
    f:close()
    local out, code = run(L.q(DAEMON) .. " -n -c " .. L.q(conf))
    if code ~= 0 or not out:find("loop guard: no trace_secret_file; the trace header is a constant anyone can forge", 1, true) then
        error(string.format("off: exit %s, output: %s", tostring(code), out))
    end
    f = assert(io.open(conf, "w"))
    f:write("state_db = " .. STORE .. "\nallow_root = yes\nsocket = unix:" .. WORK .. "/guard-n.sock\ntrace_secret_file = " .. WORK .. "/no-such.key\n")
    f:close()
    out, code = run(L.q(DAEMON) .. " -n -c " .. L.q(conf))
    if code ~= 0 or not out:find("does not exist; the trace header is a constant anyone can forge", 1, true) then
        error(string.format("missing: exit %s, output: %s", tostring(code), out))
    end
end)

L.case("guard: a short or world-readable secret is fatal (EX_CONFIG), for -n and at start", function()
    local key = WORK .. "/bad.key"
    local conf = WORK .. "/guard-badkey.conf"
    local f = assert(io.open(conf, "w"))
    f:write("state_db = " .. STORE .. "\ntrace_secret_file = " .. key .. "\n" ..
            "socket = unix:" .. WORK .. "/guard-bad.sock\nallow_root = yes\n")
    f:close()
    L.sh("head -c 31 /dev/urandom >" .. L.q(key) .. " && chmod 0600 " .. L.q(key))
    local out, code = run(L.q(DAEMON) .. " -n -c " .. L.q(conf))
    if code ~= 78 or not out:find("31 bytes, at least 32", 1, true) then
        error(string.format("short, -n: exit %s, output: %s", tostring(code), out))
    end
    out, code = run("timeout 10 " .. L.q(DAEMON) .. " -f -c " .. L.q(conf))
    if code ~= 78 or not out:find("fatal: trace_secret_file", 1, true) then
        error(string.format("short, start: exit %s, output: %s", tostring(code), out))
    end
    L.sh("head -c 32 /dev/urandom >" .. L.q(key) .. " && chmod 0644 " .. L.q(key))
    out, code = run("timeout 10 " .. L.q(DAEMON) .. " -f -c " .. L.q(conf))
    if code ~= 78 or not out:find("gives others access", 1, true) then
        error(string.format("mode 0644, start: exit %s, output: %s", tostring(code), out))
    end
end)

L.case("guard: daemon starts with the secret", function()
    local conn = L.start_daemon()
    mt.disconnect(conn)
end)

local first_trace

L.case("guard: a routed message gets a header naming its recipient", function()
    local conn, res = send("QGD01", { "<adam.barr@corp.example>" }, {})
    L.expect(conn, res, { adds = { bcc("<adam@pop.example>") }, header = true })
    first_trace = L.trace_value(res)
    L.expect_log("QGD01: bcc rcpt=<adam.barr@corp.example> alias=<adam@pop.example> rule=user")
end)

L.case("guard: a forged constant header no longer skips routing", function()
    local conn, res = send("QGD02", { "<adam.barr@corp.example>" },
        { { TRACE, INSTANCE } })
    L.expect(conn, res, { adds = { bcc("<adam@pop.example>") }, header = true })
    L.expect_log("QGD02: loop guard: trace header with a bad mac; routing")
    L.expect_log("QGD02: bcc rcpt=<adam.barr@corp.example>")
end)

L.case("guard: the routed message returning is not routed again", function()
    if first_trace == nil then error("no trace header from the first case") end
    local conn, res = send("QGD03", { "<adam.barr@corp.example>" },
        { { TRACE, first_trace } })
    L.expect_untouched(conn, res, { "<adam@pop.example>" })
    L.expect_log("QGD03: loop guard: rcpt=<adam.barr@corp.example> routed already for this message; not again")
    L.expect_nolog("QGD03: bcc ", "QGD03 logs no bcc")
    L.expect_nolog("QGD03: loop guard: trace header with a bad mac", "QGD03 logs no bad mac")
end)

L.case("guard: a re-post to another managed recipient routes that one only", function()
    if first_trace == nil then error("no trace header from the first case") end
    local conn, res = send("QGD04", { "<adam.barr@corp.example>", "<rita.rewrite@corp.example>" },
        { { TRACE, first_trace } })
    L.expect(conn, res, { adds = { rw("<rita@pop.example>", "<rita.rewrite@corp.example>") },
                          dels = { "<rita.rewrite@corp.example>" }, header = true,
                          not_added = { "<adam@pop.example>" } })
    local second = L.trace_value(res)
    if second == first_trace then error("the new header repeats the old one: " .. second) end
    -- and with both headers back, nobody is routed a third time
    local conn2, res2 = send("QGD05", { "<adam.barr@corp.example>", "<rita.rewrite@corp.example>" },
        { { TRACE, first_trace }, { TRACE, second } })
    L.expect_untouched(conn2, res2, { "<adam@pop.example>", "<rita@pop.example>" })
    L.expect_log("QGD04: rewrite rcpt=<rita.rewrite@corp.example>")
    L.expect_nolog("QGD04: bcc ", "QGD04 logs no bcc for adam")
end)

L.case("guard: the header on a message with another Message-ID proves nothing", function()
    if first_trace == nil then error("no trace header from the first case") end
    local conn, res = send("QGD06", { "<adam.barr@corp.example>" },
        { { TRACE, first_trace } }, "<guard-2@example.net>")
    L.expect(conn, res, { adds = { bcc("<adam@pop.example>") }, header = true })
    L.expect_log("QGD06: loop guard: trace header with a bad mac; routing")
end)

L.finish()
