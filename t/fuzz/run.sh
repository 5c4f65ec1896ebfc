#!/usr/bin/env bash
#
# t/fuzz/run.sh [seconds] [target...]: libFuzzer targets for the nginx-free
# code (t/fuzz/, docs/hardening.md), built with clang: each runs for
# `seconds` (60) from its committed seeds; what it finds goes to
# build/fuzz/corpus/ (not to the repo) and a crash to
# build/fuzz/TARGET-crash-*.  `./build.sh fuzz 60 scene` runs one target;
# build.sh installs clang first.  CLOCKCHAIN_BUILD_DIR is build.sh's.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD="${CLOCKCHAIN_BUILD_DIR:-$ROOT/build}"
FUZZ_TARGETS=(generate bulk create scene id_json path query tdf seed restore ingest)

say() { printf '%s\n' "$*" >&2; }

secs=${1:-60} dir="$BUILD/fuzz" rc=0
targets=("${@:2}")
[ ${#targets[@]} -gt 0 ] || targets=("${FUZZ_TARGETS[@]}")
mkdir -p "$dir"

for t in "${targets[@]}"; do
    srcs=("$ROOT/t/fuzz/fuzz_$t.c" "$ROOT/src/ngx_http_clockchain_job.c")
    [ "$t" = scene ] && srcs+=("$ROOT/src/ngx_http_clockchain_scene.c")
    [ "$t" = create ] && srcs+=("$ROOT/src/ngx_http_clockchain_create.c")
    # the query's search words: ngx_http_clockchain_words() is scene.c's
    [ "$t" = query ] && srcs+=("$ROOT/src/ngx_http_clockchain_query.c"
                                "$ROOT/src/ngx_http_clockchain_scene.c")
    # a seeds file: its paths (job.c), words (scene.c), edge types (query.c)
    [ "$t" = seed ] && srcs+=("$ROOT/src/ngx_http_clockchain_seed.c"
                               "$ROOT/src/ngx_http_clockchain_scene.c"
                               "$ROOT/src/ngx_http_clockchain_query.c")
    # a writer's body: built as a seeds record is (seed.c and its own)
    [ "$t" = ingest ] && srcs+=("$ROOT/src/ngx_http_clockchain_ingest.c"
                                 "$ROOT/src/ngx_http_clockchain_seed.c"
                                 "$ROOT/src/ngx_http_clockchain_scene.c"
                                 "$ROOT/src/ngx_http_clockchain_query.c")
    # an export chunk: seed.c's reader, and tdf.c's writer for the round trip
    [ "$t" = restore ] && srcs+=("$ROOT/src/ngx_http_clockchain_seed.c"
                                  "$ROOT/src/ngx_http_clockchain_scene.c"
                                  "$ROOT/src/ngx_http_clockchain_query.c"
                                  "$ROOT/src/ngx_http_clockchain_tdf.c")
    libs=(-ljansson -lutf8proc)
    # OpenSSL's SHA-256 is the reference for the module's own
    [ "$t" = tdf ] && srcs+=("$ROOT/src/ngx_http_clockchain_tdf.c") \
        && libs+=(-lcrypto)
    clang -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=all -Wall -Wextra -Werror -I"$ROOT/src" \
        -o "$dir/fuzz_$t" "${srcs[@]}" "${libs[@]}"
done

for t in "${targets[@]}"; do
    args=(-max_total_time="$secs" -artifact_prefix="$dir/$t-"
          -print_final_stats=1)
    case $t in
        generate|bulk|create|scene|tdf|seed|restore|ingest) args+=(-dict="$ROOT/t/fuzz/json.dict") ;;
    esac
    mkdir -p "$dir/corpus/$t"
    say "build.sh: fuzzing $t for $secs s (log: $dir/$t.log)"
    if "$dir/fuzz_$t" "${args[@]}" "$dir/corpus/$t" \
           "$ROOT/t/fuzz/corpus/$t" >"$dir/$t.log" 2>&1; then
        say "build.sh: fuzz_$t: $(grep -m1 '^Done' "$dir/$t.log"), no crash"
    else
        tail -60 "$dir/$t.log" >&2
        say "build.sh: fuzz_$t FAILED: input saved as $dir/$t-crash-*"
        rc=1
    fi
done
exit $rc
