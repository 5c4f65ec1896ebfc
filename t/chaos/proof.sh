#!/bin/sh
# The chaos checker can fail: each planted bug (src/ngx_http_clockchain_planted.c),
# switched on in a module built with them (./build.sh chaos-proof), must
# give at least one breach of the kind it plants in a short seeded run.
# Exit 0 when every bug was caught.
set -u
cd "$(dirname "$0")/../.."
out=${CHAOS_DIR:-build/chaos-proof}
status=0
mkdir -p "$out"
# bug, the breaches that show it, the faults that make it happen, minutes.
# "epoch" needs a job that one nginx cached unfinished to finish while that
# nginx's subscription is cut: a minute of pub/sub drops alone gave 20
# breaches where a minute mixed with Flash failures gave 0 to 3; "fence"
# gave 1 breach in a minute in CI, 17 in two
for case in "fence changed|twice sigstop,flash_fail 2" \
            "epoch zone|regressed pubsub_drop 1" \
            "ack lost partition,redis_oom 1"; do
    set -- $case
    bug=$1 kinds=$2 faults=$3 minutes=${CHAOS_PROOF_MINUTES:-$4}
    # CHAOS_PROOF_BUGS (all): a comma list of the bugs to run
    case ",${CHAOS_PROOF_BUGS:-$bug}," in *",$bug,"*) ;; *) continue ;; esac
    dir="$out/$bug"
    CLOCKCHAIN_PLANTED=$bug CHAOS_DIR="$dir" CHAOS_SETTLE=60 CHAOS_KINDS=$faults \
        perl -I t/lib t/chaos/chaos.pl "$minutes" \
        "${CHAOS_PROOF_SEED:-7}" >"$dir.log" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -Eq "^  \[($kinds)\]" "$dir/report.txt"; then
        echo "chaos-proof: planted bug \"$bug\" caught: $(grep -Ec "^  \[($kinds)\]" "$dir/report.txt") breach(es) of $kinds"
    else
        echo "chaos-proof: planted bug \"$bug\" NOT caught (exit $rc): see $dir.log"
        status=1
    fi
done
exit $status
