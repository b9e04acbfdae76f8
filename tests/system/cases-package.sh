# tests/system/cases-package.sh - the system tier's package cases under systemd: purge,
# the previous release deployed with the README's steps, the upgrade to
# this one, purge again.
# Sourced by inside.sh, which sets the users ($BCC...), $SOCK and $D
# and runs the c_* functions with run_case.
# shellcheck shell=bash disable=SC2154

# ---- purge, the previous release, upgrade, purge: under systemd -------------

# purged - nothing of the package is left running or registered: the
# unit, its enablement, the account, its directories.
purged() {
    local st
    st=$(systemctl show -p LoadState --value coexist-milter)
    [ "$st" = not-found ] || { sys_why "unit LoadState '$st' after purge"; return 1; }
    [ ! -e /etc/systemd/system/multi-user.target.wants/coexist-milter.service ] ||
        { sys_why "the enablement symlink is left"; return 1; }
    ! getent passwd coexist-milter >/dev/null && ! getent group coexist-milter >/dev/null ||
        { sys_why "account coexist-milter left"; return 1; }
    [ ! -e /var/lib/coexist-milter ] && [ ! -e /etc/coexist-milter ] && [ ! -e /run/coexist-milter ] ||
        { sys_why "left: $(ls -d /var/lib/coexist-milter /etc/coexist-milter /run/coexist-milter 2>/dev/null | tr '\n' ' ')"; return 1; }
    st=$(systemctl show -p LoadState --value coexist-follow)
    [ "$st" = not-found ] || { sys_why "coexist-follow LoadState '$st' after purge"; return 1; }
    pgrep -x 'coexist-milter|coexistctl' >/dev/null && { sys_why "a coexist-milter or coexistctl process runs on"; return 1; }
    [ -z "$(systemctl --failed --no-legend --plain)" ] ||
        sys_why "failed units: $(systemctl --failed --no-legend --plain | tr '\n' '|')"
}

c_purge_current() {
    dpkg -P coexist-milter >"$W/purge1.log" 2>&1 ||
        { sys_why "dpkg -P: $(tail -2 "$W/purge1.log" | tr '\n' '|')"; return 1; }
    purged
}

# The previous release, deployed with the README's steps, routing mail.
c_previous_deployed() {
    local id
    dpkg -i "$D/previous.deb" >"$W/install-prev.log" 2>&1 ||
        { sys_why "dpkg -i previous: $(tail -2 "$W/install-prev.log" | tr '\n' '|')"; return 1; }
    sh -ex "$D/deploy.sh" >"$W/deploy-prev.log" 2>&1 ||
        { sys_why "README step failed on the previous release: $(tail -2 "$W/deploy-prev.log" | tr '\n' '|')"; return 1; }
    coexistctl add "$BCC" "$BCC_ALIAS" >>"$W/deploy-prev.log" 2>&1 || { sys_why "coexistctl add failed"; return 1; }
    poll "$SOCK_TIMEOUT" test -S "$SOCK" || { sys_why "no socket"; return 1; }
    id=$(new_id previous)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" "$BCC_ALIAS"
}

# Upgraded in place (the edited conffile kept, as apt's default answer
# would): the service runs the new binary, the store and socket are kept.
c_upgrade() {
    local pid id
    dpkg --force-confdef --force-confold -i "$D/coexist-milter.deb" >"$W/upgrade.log" 2>&1 ||
        { sys_why "dpkg -i (upgrade): $(tail -2 "$W/upgrade.log" | tr '\n' '|')"; return 1; }
    [ "$(dpkg-query -W -f='${Version}' coexist-milter)" = "$(dpkg-deb -f "$D/coexist-milter.deb" Version)" ] ||
        { sys_why "not upgraded"; return 1; }
    poll "$SOCK_TIMEOUT" systemctl is-active --quiet coexist-milter || { sys_why "not active after the upgrade"; return 1; }
    pid=$(systemctl show -p MainPID --value coexist-milter)
    case $(readlink "/proc/$pid/exe") in
    *deleted*) sys_why "the old binary still runs (pid $pid)"; return 1 ;;
    esac
    # The export format changed between the releases: ask the new binary.
    coexistctl explain "$BCC" | grep -qF "bcc: deliver to <$BCC> and add <$BCC_ALIAS>" ||
        { sys_why "the store lost $BCC: $(coexistctl explain "$BCC" 2>&1 | tr '\n' '|')"; return 1; }
    grep -q "^socket = unix:$SOCK" /etc/coexist-milter/coexist-milter.conf ||
        { sys_why "the edited socket line is gone"; return 1; }
    coexist-milter -n -c /etc/coexist-milter/coexist-milter.conf >>"$W/upgrade.log" 2>&1 ||
        { sys_why "the kept config does not pass coexist-milter -n"; return 1; }
    poll "$SOCK_TIMEOUT" test -S "$SOCK" || { sys_why "no socket after the upgrade"; return 1; }
    [ "$(stat -c %a:%U /var/lib/coexist-milter/trace.key)" = 600:coexist-milter ] ||
        { sys_why "trace.key after the upgrade: $(stat -c %a:%U /var/lib/coexist-milter/trace.key)"; return 1; }
    id=$(new_id upgraded)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" "$BCC_ALIAS"
}

c_purge_upgraded() {
    dpkg -P coexist-milter >"$W/purge2.log" 2>&1 ||
        { sys_why "dpkg -P: $(tail -2 "$W/purge2.log" | tr '\n' '|')"; return 1; }
    purged || return 1
    # With the milter gone, Postfix tempfails as milter_default_action says.
    smtp_refused "$(new_id purged)" 451 "$BCC"
}
