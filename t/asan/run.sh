#!/usr/bin/env bash
#
# t/asan/run.sh [test files]: the suite (t/ by default) against the module
# built with AddressSanitizer + UndefinedBehaviorSanitizer; any sanitizer
# report fails the run (docs/hardening.md).  `./build.sh test asan` builds
# that module in build/asan and runs this with
#   CLOCKCHAIN_MODULE  the ASan module (its directory gets the wrappers)
#   SAN_FLAGS          the -fsanitize flags it was built with
#
# Debian's nginx is not instrumented: the sanitizer runtime is preloaded
# into each nginx the harness starts (through NGINX_BIN, so perl, redis
# and python stay as they are); the workers are forked from that master
# and inherit it.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LLVM_BIN=/usr/lib/llvm-14/bin

say() { printf '%s\n' "$*" >&2; }

if [ -z "${CLOCKCHAIN_MODULE:-}" ] || [ -z "${SAN_FLAGS:-}" ]; then
    say "usage: CLOCKCHAIN_MODULE=... SAN_FLAGS=... $0 [test files]  (./build.sh test asan runs it)"
    exit 2
fi
MODULE=$CLOCKCHAIN_MODULE
BUILD=$(dirname "$MODULE")
cd "$ROOT"

# workers run as nobody: they write their reports, and LSan reads its
# suppressions at their exit, in a directory they can reach wherever
# the tree is
run=$(mktemp -d "${TMPDIR:-/tmp}/clockchain-asan.XXXXXX")
logs="$run/logs"
mkdir -m 1777 "$logs"
chmod 755 "$run"
install -m 644 "$ROOT/t/asan/lsan.supp" "$ROOT/t/asan/ubsan.supp" "$run/"

rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
[ -f "$rt" ] || { say "build.sh: no $rt (libclang-rt-14-dev)"; exit 1; }
clang -shared -fPIC -O2 -Wall -Werror -o "$BUILD/nodlclose.so" \
    "$ROOT/t/asan/nodlclose.c"
# nginx -t and -s exit from main() with the cycle they built unfreed
# (Debian's 1.22.1-9+deb12u11 at least): LeakSanitizer then fails their
# exit status, and every "nginx -t passes" test with it.  Their reports
# still go to the logs, which check-logs.pl reads as for any process (a
# block with a frame of the module counts); only the status is spared.
cat >"$BUILD/nginx" <<WRAP
#!/bin/sh
case " \$* " in
*" -t "*|*" -T "*|*" -s "*) ASAN_OPTIONS="\$ASAN_OPTIONS:exitcode=0"; export ASAN_OPTIONS ;;
esac
LD_PRELOAD="$rt $BUILD/nodlclose.so\${LD_PRELOAD:+ \$LD_PRELOAD}" exec /usr/sbin/nginx "\$@"
WRAP
chmod 755 "$BUILD/nginx"

# the C unit tests built with the same sanitizers
cat >"$BUILD/cc" <<WRAP
#!/bin/sh
exec clang $SAN_FLAGS "\$@"
WRAP
chmod 755 "$BUILD/cc"

# one log_path for both (UBSan's, parsed last, wins); options already
# in the environment are appended: they win.  nginx has no frame
# pointers: unwind with DWARF at malloc, so that a leak the module
# caused through an nginx function shows the module's frames.
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0:log_path=$logs/san${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$run/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:suppressions=$run/ubsan.supp:log_path=$logs/san${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_SYMBOLIZER_PATH="$LLVM_BIN/llvm-symbolizer"
export NGINX_BIN="$BUILD/nginx" CC="$BUILD/cc" CLOCKCHAIN_MODULE="$MODULE"

# nginx under ASan is two to three times slower; the tests wait on
# events, not on the clock (issue 14), so a failed file fails the run:
# there is no second run to hide a flaky one
rc=0
prove -I t/lib -r --timer "${@:-t/}" || rc=1

if perl t/asan/check-logs.pl "$logs" >&2; then
    rm -rf "$run"
else
    rc=1
    say "build.sh: the sanitizer logs are kept in $logs"
fi
exit $rc
