#!/usr/bin/env bash
# tests/system/inside.sh - the system tier's cases, run as root inside the
# booted container by tests/system/run.sh (through nsenter): install the
# .deb, follow the README's "Deploying with Postfix" steps (deploy.sh, cut
# out of README.md by run.sh), then mail over SMTP and sendmail(1) into
# an smtp-sink on the container's loopback, and the service stopped,
# started and restarted under systemd; then the README's shared_store
# steps (deploy-shared.sh) with coexist-follow and Debian's PostgreSQL;
# purge, the previous release, upgrade, purge.
#
# Usage: inside.sh DIR   (DIR holds the .debs, deploy*.sh, lib.sh, cases-*.sh)
# Prints "PASS name" or "FAIL name: why" per case; the reasons and every
# step go to stderr.
set -u
D=$1
# shellcheck source=tests/system/lib.sh
. "$D/lib.sh"
mkdir -p "$W"
SOCK=/var/spool/postfix/coexist-milter/coexist-milter.sock
BCC=adam.barr@corp.example BCC_ALIAS=adam@pop.example
REWRITE=bob.kelly@corp.example REWRITE_ALIAS=bob@pop.example
MIGRATED=carol.diaz@corp.example MIGRATED_ALIAS=carol@pop.example
OTHER=dave@elsewhere.example

# run_case NAME FUNCTION [critical] - run one case in a subshell, print its
# verdict. When a critical case fails, the cases after it cannot mean
# anything: one FAIL says how many were not run, and the script ends.
run_case() {
    : >"$W/why"
    echo "==== $1 $(date +%T.%3N)" >&2
    if ( set -u; "$2" ) >&2; then
        echo "PASS $1"
        return 0
    fi
    echo "FAIL $1: $(head -1 "$W/why")"
    [ -s "$W/why" ] || echo "FAIL $1: (no reason recorded)"
    if [ "${3:-}" = critical ]; then
        echo "FAIL not-run: $(grep -c '^run_case ' "$0") cases in all, the rest not run after $1 failed"
        exit 1
    fi
}

# The cases, one file per part; each c_* function is one case.
# shellcheck source=tests/system/cases-deploy.sh
. "$D/cases-deploy.sh"
# shellcheck source=tests/system/cases-admin.sh
. "$D/cases-admin.sh"
# shellcheck source=tests/system/cases-package.sh
. "$D/cases-package.sh"

run_case boot c_boot critical
run_case install c_install critical
run_case readme-deploy-postfix c_readme_steps critical
run_case service-deployed c_service_deployed critical
run_case fixture c_fixture critical
run_case smtp-bcc-rewrite-migrated c_smtp
run_case sendmail-bcc-rewrite-migrated c_sendmail
run_case mail-log c_mail_log
run_case journal c_journal
run_case doctor-clean c_doctor
run_case doctor-five-broken c_doctor_broken
run_case migrate-next-message c_migrate
run_case stop-4xx-queued-start-delivered c_stop_start
run_case restart-under-traffic c_restart_traffic
run_case systemd-analyze-security c_security
run_case shared-store-follow c_follow
run_case purge c_purge_current
run_case previous-release-deployed c_previous_deployed
run_case upgrade-from-previous c_upgrade
run_case purge-after-upgrade c_purge_upgraded
cat "$W/notes" 2>/dev/null
