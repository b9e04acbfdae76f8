# tests/bench/syslogd.sh - Debian's rsyslogd as the benchmark's syslog
# daemon (sourced by tests/bench/run.sh, inside its private /dev).
#
# DESIGN section 8 measures the milter "with log_level = info and a real
# syslog daemon (rsyslog, writing a file) receiving every line": the cost of
# a line is the send, the daemon's wake-up and its write, and a Python drain
# would understate the last two. imuxsock's rate limit is off, as a mail
# host that must keep every routing line sets it; with it on, rsyslog would
# drop lines under load and the count below would catch that.

# bench_syslogd_start DIR - rsyslogd owning /dev/log, mail.* to DIR/mail.log.
bench_syslogd_start() {
    local dir=$1
    mkdir -p "$dir/spool" || return 1
    cat >"$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir/spool")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0"
       SysSock.UsePIDFromSystem="on")
mail.* action(type="omfile" file="$dir/mail.log" template="RSYSLOG_TraditionalFileFormat")
CONF
    rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" >"$dir/rsyslogd.out" 2>&1 &
    SYSLOGD_PID=$!
    SYSLOGD_LOG=$dir/mail.log
    poll 10 test -S /dev/log || return 1
    # One line through it proves the whole path before any number counts.
    logger -p mail.info -t coexist-bench "syslogd self-test $$"
    poll 10 grep -q "coexist-bench.*syslogd self-test $$" "$SYSLOGD_LOG"
}

# syslog_bcc - how many "bcc rcpt=" lines rsyslog has written so far.
syslog_bcc() {
    local n
    n=$(grep -c ': bcc rcpt=' "$SYSLOGD_LOG" 2>/dev/null)
    echo "${n:-0}"
}

# syslog_bcc_reach N SECS - wait until rsyslog has written N bcc lines (it
# writes behind the milter); prints the count reached.
syslog_bcc_reach() {
    local want=$1 deadline=$(($(now_ms) + $2 * 1000)) n
    while :; do
        n=$(syslog_bcc)
        [ "$n" -lt "$want" ] && [ "$(now_ms)" -lt "$deadline" ] || break
        sleep 0.2
    done
    echo "$n"
}
