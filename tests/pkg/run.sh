#!/usr/bin/env bash
# tests/pkg/run.sh - the package tier: build the Debian package, install it
# on this machine, run the installed daemon as its systemd unit would, route
# one message through a private Postfix with it, then upgrade, remove and
# purge the package and check what each step keeps and what it leaves.
#
# Usage (as root, on Debian 12):
#   tests/pkg/run.sh [--deb FILE] [--keep]
# --deb installs FILE instead of building with packaging/build-deb.sh
# (which packages this checkout, "nocheck" unless DEB_BUILD_OPTIONS is set);
# --keep keeps the work directory (/tmp/coexist-pkg.*, every log) even when
# all checks pass (it is always kept on failure).
#
# Prints "PASS name" or "FAIL name: why" per check and "pkg: N passed,
# N failed" last; exits non-zero on any failure. Nothing is skipped: a step
# that cannot run is a failure. The package is purged at the end, also
# after a failure, so the machine is left as it was found. The Postfix part
# runs inside private network, mount and UTS namespaces (tests/mta/lib.sh);
# the daemon's unix socket is reachable from there through the file system.
# With systemd running (a real machine) the daemon is the installed
# service itself; without it (a container), the unit's ExecStart is run
# as the unit's User= and Group= with setpriv.
set -u

PKG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PKG_DIR/../.." && pwd)
NAME=coexist-milter
CONF=/etc/coexist-milter/coexist-milter.conf
STATEDIR=/var/lib/coexist-milter
RUNDIR=/run/coexist-milter
UNIT=/lib/systemd/system/coexist-milter.service
MARKER=/var/lib/coexist-milter-pkgtest.installed
USER_ADDR=adam.barr@corp.example
USER_ALIAS=adam@pop.example
OTHER_ADDR=carol@elsewhere.example

# ---- inside the namespaces: the Postfix part only ---------------------------
if [ "${1:-}" = --inner ]; then
    MTA_LIBDIR=$ROOT/tests/mta
    # shellcheck source=tests/mta/lib.sh
    . "$MTA_LIBDIR/lib.sh"
    MTA_T=$2
    # shellcheck disable=SC2034  # read by pf_setup in lib.sh
    MILTER_SOCK=$3
    chmod 755 "$MTA_T"
    hostname pf.test
    rc=0
    msg=pkg-bcc-$$
    other=pkg-other-$$
    inner_fail() { echo "FAIL $1: $(head -1 "$MTA_T/why" 2>/dev/null)"; rc=1; }
    : >"$MTA_T/why"
    if ! { sink_start && pf_setup && pf_start; }; then
        inner_fail postfix-start
    else
        echo "PASS postfix-start"
        : >"$MTA_T/why"
        if pf_send_smtp "$msg" "$USER_ADDR" && pf_wait "$msg" &&
                expect_rcpts "$msg" "$USER_ADDR" "$USER_ALIAS" &&
                expect_notify "$msg" "$USER_ALIAS" NEVER &&
                expect_header "$msg" X-Coexist-Milter &&
                sink_header "$msg" X-Coexist-Milter |
                    grep -qE "^$NAME; r=[A-Za-z0-9_-]+; mac=[A-Za-z0-9_-]+\$"; then
            echo "PASS mail-bcc-arrived"
        else
            inner_fail mail-bcc-arrived
        fi
        : >"$MTA_T/why"
        if pf_send_smtp "$other" "$OTHER_ADDR" && pf_wait "$other" &&
                expect_rcpts "$other" "$OTHER_ADDR" &&
                expect_no_header "$other" X-Coexist-Milter; then
            echo "PASS mail-unknown-untouched"
        else
            inner_fail mail-unknown-untouched
        fi
    fi
    pf_stop
    sink_stop
    exit $rc
fi

# ---- outside --------------------------------------------------------------------
keep=0
deb=
while [ $# -gt 0 ]; do
    case $1 in
    --deb) deb=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
# check NAME WHY COMMAND... - PASS if COMMAND succeeds, else FAIL with WHY.
check() {
    local name=$1 why=$2
    shift 2
    if "$@" >>"$T/checks.log" 2>&1; then pass "$name"; else fail "$name" "$why"; fi
}
finish() {
    echo "# pkg tier took $(( $(date +%s) - start ))s; work directory $T"
    echo "pkg: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
# abort NAME WHY - a step everything after it depends on failed.
abort() { fail "$1" "$2"; finish; }

start=$(date +%s)
if [ "$(id -u)" != 0 ]; then
    T=-
    abort setup "must run as root (it installs and purges a package)"
fi
T=$(mktemp -d /tmp/coexist-pkg.XXXXXX) || { T=-; abort setup "mktemp failed"; }
chmod 755 "$T"
export DEBIAN_FRONTEND=noninteractive

# cleanup - stop the daemon and purge the package if this run installed it.
milter_pid=
cleanup() {
    if [ -n "$milter_pid" ] && kill -0 "$milter_pid" 2>/dev/null; then
        kill -TERM "$milter_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$milter_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$milter_pid" 2>/dev/null
    fi
    if [ -f "$MARKER" ]; then
        echo "# cleanup: purging $NAME" >&2
        dpkg_locked -P "$NAME" >>"$T/dpkg.log" 2>&1
        rm -f "$MARKER"
    fi
    if [ "$failed" -eq 0 ] && [ "$keep" = 0 ]; then rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# dpkg_locked ARGS... - dpkg, waiting up to 5 minutes for another dpkg or apt.
dpkg_locked() {
    local out rc
    for _ in $(seq 300); do
        out=$(dpkg "$@" 2>&1); rc=$?
        printf '%s\n' "$out"
        [ $rc = 0 ] && return 0
        printf '%s' "$out" | grep -qE 'frontend lock|database is locked' || return $rc
        sleep 1
    done
    return $rc
}

# One run at a time: it installs a package and creates a system account.
exec 9>/run/lock/coexist-milter-pkgtest.lock || abort setup "cannot open the lock file"
flock -w 600 9 || abort setup "another tests/pkg/run.sh holds the lock"

# ---- preflight ---------------------------------------------------------------
missing=
for tool in dpkg dpkg-deb dpkg-buildpackage lintian systemd-analyze groff \
        setpriv runuser unshare ip postfix smtp-sink swaks python3 ss; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -z "$missing" ] || abort setup "missing tools:$missing (tests/deps.sh installs them)"
if dpkg-query -W -f='${Status}' "$NAME" 2>/dev/null | grep -qv 'not-installed'; then
    if [ -f "$MARKER" ]; then
        echo "# purging $NAME left installed by an earlier run" >&2
        dpkg_locked -P "$NAME" >>"$T/dpkg.log" 2>&1 || abort setup "cannot purge the $NAME left by an earlier run"
        rm -f "$MARKER"
    else
        abort setup "$NAME is installed on this machine; this test installs and purges it (dpkg -P $NAME first)"
    fi
fi
if getent passwd "$NAME" >/dev/null || getent group "$NAME" >/dev/null; then
    abort setup "user or group $NAME exists without the package; remove it first"
fi
for d in /etc/coexist-milter "$STATEDIR" "$RUNDIR"; do
    [ ! -e "$d" ] || abort setup "$d exists without the package; remove it first"
done

# snapshot - what must be the same after purge as before install. man-db's
# cache of formatted pages (/var/cache/man, filled when systemd-analyze
# verify runs man for the unit's Documentation=) and systemd's own runtime
# state (/run/systemd) are not the package's.
snapshot() {
    find /etc /lib /usr /var /run /srv /opt -xdev \
        \( -path /var/cache/coexist-milter-tests -o -path /var/lib/dpkg -o -path /var/log -o -path /var/cache/man -o -path /run/systemd \
           -o -path /var/cache/apt -o -path /var/lib/apt -o -path /var/cache/debconf \) -prune -o \
        \( -name '*coexist-milter*' -o -name 'coexistctl*' \) -print 2>/dev/null | sort
    grep -h "$NAME" /etc/passwd /etc/group /etc/shadow /etc/gshadow 2>/dev/null
    echo "postfix groups: $(id -nG postfix 2>/dev/null)"
    [ -d /etc/postfix ] && find /etc/postfix -type f -exec md5sum {} + 2>/dev/null | sort
}
# The Postfix configuration alone, to check the package never touches it.
postfix_sum() { [ -d /etc/postfix ] && find /etc/postfix -type f -exec md5sum {} + 2>/dev/null | sort; }
snapshot >"$T/before.snapshot"
postfix_sum >"$T/postfix.before"
systemd_running=0
[ -d /run/systemd/system ] && systemd_running=1
echo "# work directory $T; systemd running: $systemd_running"

# ---- build ---------------------------------------------------------------------
if [ -z "$deb" ]; then
    mkdir -p "$T/deb"
    # The unit tests are a tier of their own: by default the package is
    # built without running them again (DEB_BUILD_OPTIONS= runs them).
    if DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck} \
            sh "$ROOT/packaging/build-deb.sh" "$T/deb" >"$T/build.log" 2>&1; then
        deb=$(ls "$T/deb"/${NAME}_*.deb 2>/dev/null | head -1)
    fi
    [ -n "$deb" ] && [ -f "$deb" ] ||
        abort build-deb "packaging/build-deb.sh failed: $(tail -3 "$T/build.log" | tr '\n' '|')"
    pass build-deb
    lintian --tag-display-limit 0 "$T/deb"/*.changes >"$T/lintian.log" 2>&1
    if grep -q '^E: ' "$T/lintian.log"; then
        fail lintian "errors: $(grep '^E: ' "$T/lintian.log" | head -3 | tr '\n' '|')"
    else
        pass lintian
        echo "# lintian: $(grep -c '^W: ' "$T/lintian.log") warnings, $(grep -c '^I: ' "$T/lintian.log") info (see $T/lintian.log)"
    fi
else
    deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
    [ -f "$deb" ] || abort build-deb "no such file: $deb"
fi

# ---- install -------------------------------------------------------------------
touch "$MARKER"
dpkg_locked -i "$deb" >"$T/install.log" 2>&1 ||
    abort install "dpkg -i failed: $(tail -3 "$T/install.log" | tr '\n' '|')"
pass install

# mode_owner PATH - "MODE USER GROUP" of PATH.
mode_owner() { stat -c '%a %U %G' "$1" 2>/dev/null; }
is_conffile() { dpkg-query -W -f='${Conffiles}\n' "$NAME" | grep -q "^ $CONF "; }
is_system_account() {
    local uid shell home
    uid=$(getent passwd "$NAME" | cut -d: -f3)
    shell=$(getent passwd "$NAME" | cut -d: -f7)
    home=$(getent passwd "$NAME" | cut -d: -f6)
    getent group "$NAME" >/dev/null && [ -n "$uid" ] && [ "$uid" -lt 1000 ] &&
        [ "$shell" = /usr/sbin/nologin ] && [ "$home" = "$STATEDIR" ] &&
        [ "$(id -gn "$NAME")" = "$NAME" ]
}
check account "no system user and group $NAME (uid < 1000, nologin, home $STATEDIR)" is_system_account
check state-dir "$STATEDIR is '$(mode_owner $STATEDIR)', want '750 $NAME $NAME'" \
    test "$(mode_owner $STATEDIR)" = "750 $NAME $NAME"
check trace-key "$STATEDIR/trace.key is '$(mode_owner $STATEDIR/trace.key) $(stat -c %s $STATEDIR/trace.key 2>/dev/null)', want '600 $NAME $NAME 32'" \
    test "$(mode_owner $STATEDIR/trace.key) $(stat -c %s $STATEDIR/trace.key 2>/dev/null)" = "600 $NAME $NAME 32"
check runtime-dir "$RUNDIR is '$(mode_owner $RUNDIR)', want '755 $NAME $NAME'" \
    test "$(mode_owner $RUNDIR)" = "755 $NAME $NAME"
check conffile "$CONF is not a conffile of $NAME" is_conffile
check config-valid "coexist-milter -n rejects the packaged $CONF" /usr/sbin/coexist-milter -n -c "$CONF"
check config-user "the packaged $CONF does not say 'user = $NAME'" grep -qx "user = $NAME" "$CONF"

# unit_key KEY - the value of KEY= in the installed unit (last one wins).
unit_key() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
unit_ok() {
    local want
    [ "$(unit_key Type)" = simple ] || { echo "Type=$(unit_key Type)"; return 1; }
    case " $(unit_key ExecStart) " in *" -f "*) ;; *) echo "ExecStart lacks -f"; return 1 ;; esac
    for want in RuntimeDirectory=coexist-milter StateDirectory=coexist-milter \
            ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
            ReadWritePaths=$STATEDIR User=$NAME 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6'; do
        grep -qx "$want" "$UNIT" || { echo "unit lacks $want"; return 1; }
    done
    [ "$(grep -c '^ReadWritePaths=' "$UNIT")" = 1 ] || { echo "more than one ReadWritePaths"; return 1; }
}
check unit-hardening "$(unit_ok 2>&1 | tail -1)" unit_ok
verify_unit() {
    local out
    out=$(systemd-analyze verify "$UNIT" 2>&1) || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "$out"; return 1; }
}
check unit-verify "systemd-analyze verify: $(verify_unit 2>&1 | head -2 | tr '\n' '|')" verify_unit

# man_clean - every installed man page renders without a groff warning.
man_clean() {
    local page out
    for page in /usr/share/man/man8/coexist-milter.8.gz /usr/share/man/man5/coexist-milter.conf.5.gz \
            /usr/share/man/man8/coexistctl.8.gz; do
        [ -f "$page" ] || { echo "$page missing"; return 1; }
        out=$(zcat "$page" | groff -ww -man -z 2>&1)
        [ -z "$out" ] || { echo "$page: $out"; return 1; }
    done
}
check man-render "$(man_clean 2>&1 | head -1)" man_clean

# man_complete - every option, key and verb the programs know is documented.
man_complete() {
    local page key opt verb bad=
    page=$(zcat /usr/share/man/man5/coexist-milter.conf.5.gz)
    for key in $(sed -n 's/^\([a-z_]*\) *=.*/\1/p' "$CONF"); do
        printf '%s\n' "$page" | grep -qE "^\.B[IR]? $key( |$)" || bad="$bad conf:$key"
    done
    page=$(zcat /usr/share/man/man8/coexist-milter.8.gz)
    for opt in $(/usr/sbin/coexist-milter -h 2>&1 | sed -n 's/^  -\([A-Za-z]\).*/\1/p'); do
        printf '%s\n' "$page" | grep -qE "^\.B[IR]? \\\\-$opt( |$)" || bad="$bad milter:-$opt"
    done
    page=$(zcat /usr/share/man/man8/coexistctl.8.gz)
    for verb in $(/usr/sbin/coexistctl -h 2>&1 | sed -n '/^verbs:/,/^$/s/^  \([a-z]*\).*/\1/p'); do
        printf '%s\n' "$page" | grep -qE "^\.B[IR]? \"?$verb( |\"|$)" || bad="$bad ctl:$verb"
    done
    for opt in $(/usr/sbin/coexistctl -h 2>&1 | grep -o '\-\-[a-z-]*' | sort -u); do
        printf '%s\n' "$page" | grep -qF -- "${opt//-/\\-}" || bad="$bad ctl:$opt"
    done
    [ -z "$bad" ] || { echo "undocumented:$bad"; return 1; }
}
check man-complete "$(man_complete 2>&1 | tail -1)" man_complete

# ---- run it as the package user sees it ------------------------------------------
# ctl ARGS... - coexistctl as the package's user, with the packaged config.
ctl() { (cd / && runuser -u "$NAME" -- /usr/sbin/coexistctl "$@"); }
check ctl-init "coexistctl init as $NAME failed" ctl init
check ctl-add "coexistctl add as $NAME failed" ctl add "$USER_ADDR" "$USER_ALIAS"
check store-owner "$STATEDIR/state.tdb is '$(mode_owner $STATEDIR/state.tdb)', want owner $NAME" \
    sh -c "stat -c %U:%G $STATEDIR/state.tdb | grep -qx $NAME:$NAME"
# root may change the store too; it must stay the daemon's.
ctl_root_add() {
    (cd / && /usr/sbin/coexistctl add bob.kelly@corp.example bob@pop.example --mode rewrite) &&
        [ "$(stat -c %U:%G "$STATEDIR/state.tdb")" = "$NAME:$NAME" ]
}
check ctl-add-root "coexistctl add as root failed, or the store is no longer $NAME's" ctl_root_add
check ctl-explain "coexistctl explain does not say bcc" \
    sh -c "cd / && /usr/sbin/coexistctl explain $USER_ADDR | grep -q bcc"

# The MTA connects to a 0770 socket of user and group coexist-milter: its
# account joins the group, as README.Debian tells the administrator to do.
adduser --quiet postfix "$NAME" >>"$T/checks.log" 2>&1 ||
    fail postfix-group "adduser postfix $NAME failed"

sock=$(sed -n 's/^socket *= *unix://p' "$CONF" | tail -1)
[ -n "$sock" ] || abort milter-start "no unix socket in $CONF"
# sock_ready - the daemon's socket accepts connections.
sock_ready() {
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$sock" 2>/dev/null
}
wait_sock() {
    for _ in $(seq 100); do
        sock_ready && return 0
        # A daemon started here that has exited will not come back.
        [ -z "$milter_pid" ] || kill -0 "$milter_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
if [ "$systemd_running" = 1 ]; then
    systemctl restart "$NAME" >"$T/milter.log" 2>&1 && wait_sock ||
        abort milter-start "systemctl restart $NAME: $(systemctl status --no-pager "$NAME" 2>&1 | tail -3 | tr '\n' '|')"
    milter_user=$(ps -o user= -p "$(systemctl show -p MainPID --value "$NAME")")
else
    # As the unit runs it: its ExecStart, as its User= and Group=, without
    # new privileges; the directories systemd would create exist already.
    exec_start=$(unit_key ExecStart)
    u=$(unit_key User)
    g=$(unit_key Group)
    # shellcheck disable=SC2086
    (cd / && exec setpriv --reuid="$u" --regid="$g" --init-groups --no-new-privs \
        --inh-caps=-all --bounding-set=-all -- $exec_start) >"$T/milter.log" 2>&1 &
    milter_pid=$!
    wait_sock || abort milter-start "'$exec_start' as $u:$g does not accept on $sock: $(tail -3 "$T/milter.log" | tr '\n' '|')"
    milter_user=$(ps -o user= -p "$milter_pid")
fi
pass milter-start
check milter-user "the daemon runs as '$milter_user', want $NAME" test "$milter_user" = "$NAME"
check socket-mode "$sock is '$(mode_owner "$sock")', want '770 $NAME $NAME'" \
    test "$(mode_owner "$sock")" = "770 $NAME $NAME"

mkdir -p "$T/mta"
unshare --net --mount --uts --fork bash -c 'ip link set lo up && exec bash "$0" --inner "$1" "$2"' \
    "$PKG_DIR/run.sh" "$T/mta" "$sock" >"$T/inner.out" 2>"$T/inner.log"
inner_rc=$?
grep -E '^(PASS|FAIL)' "$T/inner.out"
passed=$((passed + $(grep -c '^PASS' "$T/inner.out")))
failed=$((failed + $(grep -c '^FAIL' "$T/inner.out")))
if [ $inner_rc != 0 ] && ! grep -q '^FAIL' "$T/inner.out"; then
    fail postfix-namespace "the namespace part exited $inner_rc: $(tail -3 "$T/inner.log" | tr '\n' '|')"
fi
grep -qE '^(PASS|FAIL) mail-bcc-arrived' "$T/inner.out" ||
    fail mail-bcc-arrived "the message was never sent (see $T/inner.log, $T/mta)"

if [ "$systemd_running" = 1 ]; then
    systemctl stop "$NAME" >>"$T/milter.log" 2>&1
else
    kill -TERM "$milter_pid" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$milter_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$milter_pid" 2>/dev/null; then
        fail milter-stop "the daemon did not stop within 15 s of SIGTERM"
        kill -KILL "$milter_pid"
    else
        pass milter-stop
    fi
    wait "$milter_pid" 2>/dev/null
    milter_pid=
fi

# ---- upgrade: the store and an edited config stay --------------------------------
sed -i 's/^log_level = .*/log_level = debug/' "$CONF"
sum_store=$(ctl export | md5sum)
mkdir -p "$T/upgrade"
if dpkg-deb -R "$deb" "$T/upgrade/root" &&
        sed -i 's/^Version: .*/&+pkgtest1/' "$T/upgrade/root/DEBIAN/control" &&
        dpkg-deb --root-owner-group -b "$T/upgrade/root" "$T/upgrade/new.deb" >/dev/null &&
        dpkg_locked --force-confold -i "$T/upgrade/new.deb" >"$T/upgrade.log" 2>&1; then
    pass upgrade
    check upgrade-version "the installed version is not the new one" \
        sh -c "dpkg-query -W -f='\${Version}' $NAME | grep -q pkgtest1"
    check upgrade-keeps-store "the store changed across the upgrade" \
        test "$(ctl export | md5sum)" = "$sum_store"
    check upgrade-keeps-config "the edited $CONF was replaced" grep -qx 'log_level = debug' "$CONF"
    check upgrade-keeps-perms "$STATEDIR is '$(mode_owner $STATEDIR)' after the upgrade" \
        test "$(mode_owner $STATEDIR)" = "750 $NAME $NAME"
else
    fail upgrade "dpkg -i of a newer version failed: $(tail -3 "$T/upgrade.log" | tr '\n' '|')"
fi

# dpkg_chatter LOG - lines of a dpkg run other than dpkg's own progress
# (warnings, maintainer script output).
dpkg_chatter() {
    grep -vE '^(\(Reading database|Removing |Purging configuration files |Processing triggers )' "$1"
}

# ---- remove: binaries go, store, config and account stay ------------------------
if dpkg_locked -r "$NAME" >"$T/remove.log" 2>&1; then
    pass remove
    check remove-binaries "binaries or unit still there after dpkg -r" \
        sh -c "! test -e /usr/sbin/coexist-milter && ! test -e /usr/sbin/coexistctl && ! test -e $UNIT"
    check remove-keeps-store "the store is gone after dpkg -r" test -s "$STATEDIR/state.tdb"
    check remove-keeps-config "$CONF is gone after dpkg -r" grep -qx 'log_level = debug' "$CONF"
    check remove-keeps-account "the account is gone after dpkg -r" getent passwd "$NAME"
    check remove-quiet "dpkg -r said: $(dpkg_chatter "$T/remove.log" | head -1)" \
        test -z "$(dpkg_chatter "$T/remove.log")"
else
    fail remove "dpkg -r failed: $(tail -3 "$T/remove.log" | tr '\n' '|')"
fi

# ---- purge: nothing is left ---------------------------------------------------------
if dpkg_locked -P "$NAME" >"$T/purge.log" 2>&1; then
    rm -f "$MARKER"
    pass purge
    check purge-status "dpkg still knows $NAME" \
        sh -c "! dpkg-query -W -f='\${Status}' $NAME 2>/dev/null | grep -q installed"
    check purge-account "user or group $NAME left" \
        sh -c "! getent passwd $NAME && ! getent group $NAME"
    check purge-dirs "left: $(ls -d /etc/coexist-milter $STATEDIR $RUNDIR 2>/dev/null | tr '\n' ' ')" \
        sh -c "! test -e /etc/coexist-milter && ! test -e $STATEDIR && ! test -e $RUNDIR"
    snapshot >"$T/after.snapshot"
    check purge-nothing-left "differs from before install: $(diff "$T/before.snapshot" "$T/after.snapshot" | grep '^[<>]' | head -3 | tr '\n' '|')" \
        cmp -s "$T/before.snapshot" "$T/after.snapshot"
    check purge-quiet "dpkg -P said: $(dpkg_chatter "$T/purge.log" | head -1)" \
        test -z "$(dpkg_chatter "$T/purge.log")"
else
    fail purge "dpkg -P failed: $(tail -3 "$T/purge.log" | tr '\n' '|')"
fi
postfix_sum >"$T/postfix.after"
check postfix-untouched "/etc/postfix changed" cmp -s "$T/postfix.before" "$T/postfix.after"

finish
