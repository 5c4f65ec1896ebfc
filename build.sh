#!/usr/bin/env bash
#
# ./build.sh          build ngx_http_clockchain_module.so against Debian's nginx
# ./build.sh run      build, then run Redis + nginx with the module (foreground),
#                     serving examples/minimal.conf with this run's values
# ./build.sh test     build, then run the whole test suite
# ./build.sh test asan  the same against an ASan+UBSan build (t/asan/run.sh,
#                     docs/hardening.md); test files may follow
# ./build.sh fuzz [s]   build the libFuzzer targets, run each s seconds (60)
#                      (t/fuzz/run.sh)
# ./build.sh deb       build the Debian package (packaging/deb.sh), lintian
#                      it, run deb-test
# ./build.sh deb-test  install the .deb into this machine's nginx, try it,
#                      purge it (t/90-deb-install.t; changes the system:
#                      skipped by test)
# ./build.sh bench [n]  build, then the benchmarks (t/bench/bench.pl): a table,
#                      a chart (build/bench/bench-ratios.svg), and
#                      docs/benchmarks.md; minutes, not part of test
# ./build.sh export [FILE]  the whole graph of a running nginx as JSONL (TDF
#                      records), to FILE or stdout; ./build.sh import FILE
#                      restores one (docs/migrating.md; CLOCKCHAIN_URL,
#                      SERVICE_API_KEY, ADMIN_API_KEY, CHUNK_BYTES)
# ./build.sh soak [m]   build, then m minutes (10) of mixed load against nginx,
#                      the runner and a flaky Flash stand-in (t/soak/soak.pl):
#                      a report, a chart (build/soak/soak.svg) and a PASS/FAIL
#                      verdict; not part of test
#
# Installs what it needs with apt when it is missing.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
BUILD="${CLOCKCHAIN_BUILD_DIR:-$ROOT/build}"
MODULE="$BUILD/ngx_http_clockchain_module.so"
NGX_SRC=/usr/share/nginx/src

# extra nginx configure arguments (the asan variant sets them)
CONF_EXTRA=()

PACKAGES=(nginx nginx-dev libjansson-dev libcurl4-openssl-dev libhiredis-dev
          libutf8proc-dev redis-server redis-sentinel build-essential perl curl python3)

say() { printf '%s\n' "$*" >&2; }

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    say "build.sh: installing ${missing[*]}"
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
    install_packages

    # nginx's configure writes into the tree it runs from: use a private
    # copy of Debian's (headers and scripts only, a few MB)
    local src="$BUILD/nginx-src"
    if [ ! -f "$src/configure" ] || [ "$NGX_SRC/configure" -nt "$src/configure" ]; then
        rm -rf "$src"
        mkdir -p "$BUILD"
        cp -a "$NGX_SRC" "$src"
    fi

    local reconf=no f
    [ -f "$BUILD/Makefile" ] || reconf=yes
    for f in "$ROOT/config" "$ROOT/VERSION" "$ROOT"/src/lua/*.lua \
             "$ROOT"/src/lua/lib/*.lua \
             "$ROOT/src/openapi.json" "$ROOT"/src/status/*; do
        [ "$f" -nt "$BUILD/Makefile" ] && reconf=yes
    done

    if [ $reconf = yes ]; then
        say "build.sh: configuring against $(/usr/sbin/nginx -v 2>&1)"
        (
            cd "$src"
            # shellcheck disable=SC1091
            . ./conf_flags
            ./configure "${NGX_CONF_FLAGS[@]}" "${CONF_EXTRA[@]}" \
                --add-dynamic-module="$ROOT" \
                --builddir="$BUILD" >"$BUILD/configure.log" 2>&1
        ) || { cat "$BUILD/configure.log" >&2; exit 1; }
    fi

    # nginx's own CFLAGS carry -Werror: a warning fails the build
    make -s -f "$BUILD/Makefile" -C "$src" modules >&2
    say "build.sh: built $MODULE"
}

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}

random_key() {
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

run() {
    build

    local port=${CLOCKCHAIN_PORT:-8080}
    local dir=${CLOCKCHAIN_RUN_DIR:-$ROOT/run}
    local prefix="$dir/nginx"

    # globals, not locals: the EXIT trap may run after run() has returned
    # (Ctrl-C reaches nginx too, its exit fails `wait` and set -e leaves)
    RUN_NGINX_PID= RUN_FLASH_PID= RUN_REDIS_PID=

    stop() {
        trap - INT TERM EXIT
        local pid
        for pid in "$RUN_NGINX_PID" "$RUN_FLASH_PID" "$RUN_REDIS_PID"; do
            [ -n "$pid" ] || continue
            if [ "$pid" = "$RUN_NGINX_PID" ]; then
                kill -QUIT "$pid" 2>/dev/null || true
            else
                kill -TERM "$pid" 2>/dev/null || true
            fi
            wait "$pid" 2>/dev/null || true
        done
        say "build.sh: stopped"
    }
    trap stop INT TERM EXIT

    # 0711: the workers (user nobody) reach the temp paths nginx makes for
    # them, and can list nothing; the keys inside stay 0600
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/temp" "$dir/redis"
    chmod 711 "$dir" "$prefix"
    chmod 700 "$dir/redis" "$prefix/conf"

    local redis_conf
    if [ -n "${REDIS_URL:-}" ]; then
        redis_conf=$(redis_directive "$REDIS_URL" "$dir")
    else
        local rport=${CLOCKCHAIN_REDIS_PORT:-$(free_port)}
        # durable: every write is in the append-only file within a second
        redis-server --bind 127.0.0.1 --port "$rport" --dir "$dir/redis" \
            --appendonly yes --appendfsync everysec --save '' \
            --maxmemory-policy noeviction \
            --daemonize no --logfile "$dir/redis/redis.log" &
        RUN_REDIS_PID=$!
        redis_conf="127.0.0.1:$rport"
        for _ in $(seq 50); do
            redis-cli -p "$rport" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
    fi

    # Flash: the real one when FLASH_URL is given, else the local stand-in
    local flash_url=${FLASH_URL:-} flash_key=${FLASH_SERVICE_KEY:-}
    if [ -z "$flash_url" ]; then
        local fport
        fport=$(free_port)
        flash_key=${flash_key:-$(random_key)}
        python3 "$ROOT/t/flash/standin.py" --port "$fport" \
            --delay "${FLASH_DELAY:-5}" --key "$flash_key" \
            --log "$dir/flash.log" >/dev/null &
        RUN_FLASH_PID=$!
        flash_url="http://127.0.0.1:$fport"
        say "build.sh: no FLASH_URL given: using the local Flash stand-in at $flash_url (${FLASH_DELAY:-5} s a scene)"
    elif [ -z "$flash_key" ]; then
        say "build.sh: FLASH_URL needs FLASH_SERVICE_KEY"
        exit 1
    fi
    (umask 077; printf '%s\n' "$flash_key" >"$prefix/conf/flash.key")

    local service_key=${SERVICE_API_KEY:-}
    local admin_key=${ADMIN_API_KEY:-}
    local generated=
    [ -n "$service_key" ] || { service_key=$(random_key); generated+=" SERVICE_API_KEY=$service_key"; }
    [ -n "$admin_key" ] || { admin_key=$(random_key); generated+=" ADMIN_API_KEY=$admin_key"; }

    (umask 077
     printf '%s\n' "$service_key" >"$prefix/conf/service.keys"
     printf '%s\n' "$admin_key" >"$prefix/conf/admin.keys")

    # the seeds a new graph starts with: examples/seeds.jsonl, another
    # file, or none when SEED_FILE is set empty; nginx reads it from its
    # own prefix, so the path is made absolute
    local seed_line='#clockchain_seed_file  /etc/nginx/clockchain/seeds.jsonl;'
    local seed_file=${SEED_FILE-$ROOT/examples/seeds.jsonl}
    if [ -n "$seed_file" ]; then
        [ -r "$seed_file" ] || { say "build.sh: SEED_FILE $seed_file cannot be read"; exit 1; }
        seed_file=$(realpath "$seed_file")
        seed_line="clockchain_seed_file  $seed_file;"
    fi

    # writers' Bearer tokens (the original's ADMIN_TOKEN and WRITER_TOKENS,
    # "token:agent_name" separated by commas) when the environment has
    # them; without either, the service key alone writes, as "system"
    local admin_token_line='#clockchain_admin_token_file    /etc/nginx/clockchain/admin.token;'
    local writer_tokens_line='#clockchain_writer_tokens_file  /etc/nginx/clockchain/writer.tokens;'
    if [ -n "${ADMIN_TOKEN:-}" ]; then
        (umask 077; printf '%s\n' "$ADMIN_TOKEN" >"$prefix/conf/admin.token")
        admin_token_line='clockchain_admin_token_file    admin.token;'
    fi
    if [ -n "${WRITER_TOKENS:-}" ]; then
        (umask 077; printf '%s\n' "$WRITER_TOKENS" >"$prefix/conf/writer.tokens")
        writer_tokens_line='clockchain_writer_tokens_file  writer.tokens;'
    fi

    # examples/minimal.conf, the operators' example, with the values of
    # this run; its logs, pid and temp paths under the run dir (the
    # compiled-in ones are the system's); two workers, as the test expects
    render_conf "$ROOT/examples/minimal.conf" \
        '#load_module /usr/lib/nginx/modules/ngx_http_clockchain_module.so;' \
        "load_module $MODULE;" \
        'worker_processes  auto;' \
        'worker_processes  2;
error_log  stderr notice;
pid  logs/nginx.pid;' \
        'http {' \
        'http {
    access_log  logs/access.log;
    client_body_temp_path  temp/body;
    proxy_temp_path  temp/proxy;
    fastcgi_temp_path  temp/fastcgi;
    uwsgi_temp_path  temp/uwsgi;
    scgi_temp_path  temp/scgi;
' \
        'clockchain_redis  127.0.0.1:6379;' \
        "clockchain_redis  $redis_conf;" \
        'clockchain_flash_url       https://flash.internal.example;' \
        "clockchain_flash_url       $flash_url;" \
        'clockchain_flash_key_file  /etc/nginx/clockchain/flash.key;' \
        'clockchain_flash_key_file  flash.key;' \
        'listen  127.0.0.1:8080;' \
        "listen  127.0.0.1:$port;" \
        'clockchain_service_key_file  /etc/nginx/clockchain/service.keys;' \
        'clockchain_service_key_file  service.keys;' \
        'clockchain_admin_key_file    /etc/nginx/clockchain/admin.keys;' \
        'clockchain_admin_key_file    admin.keys;' \
        '#clockchain_seed_file  /etc/nginx/clockchain/seeds.jsonl;' \
        "$seed_line" \
        '#clockchain_admin_token_file    /etc/nginx/clockchain/admin.token;' \
        "$admin_token_line" \
        '#clockchain_writer_tokens_file  /etc/nginx/clockchain/writer.tokens;' \
        "$writer_tokens_line" \
        >"$prefix/conf/nginx.conf"

    /usr/sbin/nginx -p "$prefix" -c conf/nginx.conf -t -q
    /usr/sbin/nginx -p "$prefix" -c conf/nginx.conf -g 'daemon off;' &
    RUN_NGINX_PID=$!

    [ -n "$generated" ] && say "generated keys:$generated"
    cat >&2 <<MSG

Clockchain jobs API on http://127.0.0.1:$port/  (Ctrl-C stops nginx and Redis)

  curl -s -XPOST http://127.0.0.1:$port/api/generate \\
       -H 'X-Service-Key: $service_key' -H 'Content-Type: application/json' \\
       -d '{"query":"moon landing"}'
  curl -s http://127.0.0.1:$port/api/jobs/JOB_ID -H 'X-Service-Key: $service_key'
  curl -s http://127.0.0.1:$port/api/browse -H 'X-Service-Key: $service_key'

Status page (from this machine): http://127.0.0.1:$port/status

MSG
    wait "$RUN_NGINX_PID"
}

# render_conf FILE LINE NEW [LINE NEW...]: FILE with each LINE (a whole
# line but its indent, found exactly once) replaced by NEW, each line of it
# indented as LINE was; an example that has drifted fails the run
render_conf() {
    perl -e '
        my ($file, %new) = @ARGV;
        open my $f, "<", $file or die "build.sh: $file: $!\n";
        my @lines = <$f>;
        my %seen;
        for (@lines) {
            my ($indent, $text) = /^(\s*)(.*?)\s*$/;
            next unless exists $new{$text};
            $seen{$text}++;
            $_ = join "", map { "$indent$_\n" } split /\n/, $new{$text}, -1;
        }
        my @bad = grep { ($seen{$_} // 0) != 1 } sort keys %new;
        die map { "build.sh: $file: \"$_\" found " . ($seen{$_} // 0)
                  . " times, expected once\n" } @bad if @bad;
        print "# ./build.sh run: $file with the values of this run\n", @lines;
    ' "$@"
}

# REDIS_URL: redis://[:password@]host[:port][/db] or unix:/path/to/redis.sock
redis_directive() {
    local url=$1 dir=$2 rest auth= host db=
    case "$url" in
        unix:*) printf '%s' "$url"; return ;;
        redis://*) rest=${url#redis://} ;;
        *) say "build.sh: REDIS_URL must be redis://host:port[/db] or unix:/path"; exit 1 ;;
    esac
    if [[ $rest == *@* ]]; then auth=${rest%%@*}; rest=${rest#*@}; fi
    host=${rest%%/*}
    [[ $rest == */* ]] && db=${rest#*/}
    printf '%s' "$host"
    [ -n "$db" ] && printf ' db=%s' "$db"
    if [ -n "$auth" ]; then
        (umask 077; printf '%s\n' "${auth#*:}" >"$dir/redis.pass")
        printf ' password_file=%s' "$dir/redis.pass"
    fi
}

# The benchmarks of issue 7 (t/bench/bench.pl): ratios against nginx's own
# limit measured side by side in one run, a table on stdout and the measured
# part of docs/benchmarks.md rewritten, with its chart (gnuplot; in
# build/bench/, and docs/img/).  Needs wrk (and perf with BENCH_PERF=1).
# ./build.sh bench 1 5 runs only those measures and leaves the docs alone
# (CHARTS_TO_DOCS=1 copies its chart into docs/img/ all the same).
bench() {
    PACKAGES+=(wrk gnuplot-nox)
    [ -z "${BENCH_PERF:-}" ] || PACKAGES+=(linux-perf)
    build
    cd "$ROOT"
    CLOCKCHAIN_MODULE="$MODULE" perl -I t/lib t/bench/bench.pl "$@"
}

# The soak (t/soak/soak.pl, docs/hardening.md): m minutes (10) of mixed
# traffic with wrk at 64 connections against nginx with the runner and a
# slow, sometimes failing Flash stand-in; RSS and fds of each nginx
# process sampled every 30 s; a report, and exit 1 unless it passes.  A
# chart of RSS, fds and latency over the soak's time (gnuplot) in
# build/soak/; CHARTS_TO_DOCS=1 copies it into docs/img/.
soak() {
    PACKAGES+=(wrk gnuplot-nox)
    build
    cd "$ROOT"
    CLOCKCHAIN_MODULE="$MODULE" perl -I t/lib t/soak/soak.pl "$@"
}

# The chaos campaign (t/chaos/chaos.pl, docs/hardening.md): a fleet of
# three nginx on a Redis primary, replica and three Sentinels under m
# minutes (2) of random faults drawn from a seed (random), then a checker
# of invariants over the whole history; exit 1 on a breach.
chaos() {
    PACKAGES+=(iptables)
    build
    waitaof_server
    cd "$ROOT"
    CLOCKCHAIN_MODULE="$MODULE" perl -I t/lib t/chaos/chaos.pl "$@"
}

# The proof that the chaos checker can fail: a module with the planted
# bugs compiled in (its own build dir; never installed), then a short
# seeded campaign with each bug switched on, each of which must end with
# a breach (t/chaos/proof.sh).
chaos_proof() {
    PACKAGES+=(iptables)
    BUILD="$BUILD/planted"
    MODULE="$BUILD/ngx_http_clockchain_module.so"
    CONF_EXTRA=(--with-cc-opt="-g -O2 -DNGX_HTTP_CLOCKCHAIN_PLANTED=1")
    build
    waitaof_server
    cd "$ROOT"
    CLOCKCHAIN_MODULE="$MODULE" t/chaos/proof.sh "$@"
}

# the status page's browser test (t/80-status-page.t): headless Chromium
# driven through Selenium, Debian's packages
BROWSER_PACKAGES=(chromium chromium-driver python3-selenium)

# t/54-waitaof.t needs a Redis with WAITAOF (7.2 or later).  Debian 12's
# is 7.0, so it gets Valkey 8, the Redis fork Debian itself ships, from
# bookworm-backports (pinned low by Debian: nothing else is upgraded from
# it).  Only valkey-tools: it holds the server binary (valkey-server is a
# link to valkey-check-rdb) and installs no service to start.
waitaof_server() {
    local v
    v=$(/usr/bin/redis-server --version | sed -n 's/.* v=\([0-9]*\.[0-9]*\).*/\1/p')
    if [ -n "$v" ] && [ "$(printf '%s\n7.2\n' "$v" | sort -V | head -1)" = 7.2 ]; then
        export CLOCKCHAIN_WAITAOF_SERVER=/usr/bin/redis-server
        return
    fi
    if [ ! -x /usr/bin/valkey-check-rdb ]; then
        local sudo= codename
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
        if ! grep -rqs "$codename-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
            say "build.sh: adding Debian's $codename-backports (for Valkey, which has WAITAOF)"
            printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$codename" | $sudo tee /etc/apt/sources.list.d/debian-backports.sources >/dev/null
        fi
        say "build.sh: installing valkey-tools from $codename-backports"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
            --no-install-recommends -t "$codename-backports" valkey-tools >/dev/null
    fi
    mkdir -p "$BUILD/valkey"
    ln -sfn /usr/bin/valkey-check-rdb "$BUILD/valkey/valkey-server"
    export CLOCKCHAIN_WAITAOF_SERVER="$BUILD/valkey/valkey-server"
}

run_tests() {
    PACKAGES+=("${BROWSER_PACKAGES[@]}")
    build
    waitaof_server
    cd "$ROOT"
    CLOCKCHAIN_MODULE="$MODULE" prove -I t/lib -r --timer t/
}

# The module with AddressSanitizer + UndefinedBehaviorSanitizer, in its own
# build dir, and the suite against it (t/asan/run.sh, docs/hardening.md).
# clang, not gcc: gcc splits ASan and UBSan into two runtimes and, with
# both loaded, UBSan's reports ignore log_path and vanish into nginx's
# error.log; clang's ASan runtime carries UBSan.
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"

run_tests_asan() {
    BUILD="$BUILD/asan"
    MODULE="$BUILD/ngx_http_clockchain_module.so"
    # private aliases: the generated ngx_modules[] of the module must not
    # have its redzone laid over nginx's own ngx_modules[] (same name)
    CONF_EXTRA=(--with-cc=clang
                --with-cc-opt="$SAN_FLAGS -g -mllvm -asan-use-private-alias=1"
                --with-ld-opt="$SAN_FLAGS")
    PACKAGES+=(clang libclang-rt-14-dev "${BROWSER_PACKAGES[@]}")
    build
    waitaof_server
    CLOCKCHAIN_MODULE="$MODULE" SAN_FLAGS="$SAN_FLAGS" "$ROOT/t/asan/run.sh" "$@"
}

# The Debian package (packaging/deb.sh, docs/packaging.md), then its
# install test, t/90-deb-install.t: it changes the system for a minute,
# so only "deb" and "deb-test" run it
deb_build() {
    PACKAGES+=(dpkg-dev binutils lintian)
    build
    CLOCKCHAIN_BUILD_DIR="$BUILD" CLOCKCHAIN_MODULE="$MODULE" \
        "$ROOT/packaging/deb.sh" build
}

deb_test() {
    local deb
    deb=$(CLOCKCHAIN_BUILD_DIR="$BUILD" "$ROOT/packaging/deb.sh" path)
    [ -f "$deb" ] || deb_build
    install_packages
    cd "$ROOT"
    CLOCKCHAIN_DEB_TEST=1 CLOCKCHAIN_DEB="$deb" prove -v t/90-deb-install.t
}

# libFuzzer targets for the nginx-free code (t/fuzz/run.sh,
# docs/hardening.md): ./build.sh fuzz [seconds] [target...]
fuzz() {
    PACKAGES+=(clang libclang-rt-14-dev)
    install_packages
    CLOCKCHAIN_BUILD_DIR="$BUILD" "$ROOT/t/fuzz/run.sh" "$@"
}

# The whole graph out of, or back into, a running nginx (docs/migrating.md):
# GET /api/export a page at a time, POST /api/restore a chunk at a time
# (each chunk within clockchain_max_body_size: CHUNK_BYTES, 200000 bytes).
graph_io_setup() {
    GRAPH_URL=${CLOCKCHAIN_URL:-http://127.0.0.1:${CLOCKCHAIN_PORT:-8080}}
    GRAPH_URL=${GRAPH_URL%/}
    if [ -z "${SERVICE_API_KEY:-}" ] || [ -z "${ADMIN_API_KEY:-}" ]; then
        say "build.sh: $1 needs SERVICE_API_KEY and ADMIN_API_KEY (and"
        say "  CLOCKCHAIN_URL, http://127.0.0.1:8080 by default)"
        exit 2
    fi
    command -v curl >/dev/null || { say "build.sh: $1 needs curl"; exit 2; }
}

graph_export() {
    local out=${1:-} tmp after='' next code pages=0 lines
    graph_io_setup export
    GRAPH_TMP=$(mktemp -d)
    tmp=$GRAPH_TMP
    trap 'rm -rf "$GRAPH_TMP"' EXIT
    : > "$tmp/all"
    while :; do
        code=$(curl -sS -G -o "$tmp/page" -D "$tmp/head" -w '%{http_code}' \
                    -H "X-Service-Key: $SERVICE_API_KEY" \
                    -H "X-Admin-Key: $ADMIN_API_KEY" \
                    --data-urlencode "after=$after" \
                    --data-urlencode "limit=${EXPORT_LIMIT:-200}" \
                    "$GRAPH_URL/api/export") || exit 1
        if [ "$code" != 200 ]; then
            say "build.sh: export: $GRAPH_URL/api/export answered $code:"
            cat "$tmp/page" >&2; say ""
            exit 1
        fi
        cat "$tmp/page" >> "$tmp/all"
        pages=$((pages + 1))
        next=$(tr -d '\r' < "$tmp/head" \
               | sed -n 's/^[Xx]-[Cc]lockchain-[Nn]ext: //p')
        [ -n "$next" ] || break
        after=$next
    done
    lines=$(wc -l < "$tmp/all")
    if [ -n "$out" ]; then
        mv "$tmp/all" "$out"
        say "build.sh: exported $lines moments to $out ($pages pages)"
    else
        cat "$tmp/all"
        say "build.sh: exported $lines moments ($pages pages)"
    fi
}

graph_import() {
    local file=${1:-} tmp chunk first code n=0 line
    [ -n "$file" ] && [ -r "$file" ] || {
        say "usage: $0 import FILE (a ./build.sh export)"; exit 2; }
    graph_io_setup import
    GRAPH_TMP=$(mktemp -d)
    tmp=$GRAPH_TMP
    trap 'rm -rf "$GRAPH_TMP"' EXIT
    # chunks of whole lines, each within CHUNK_BYTES and 1000 lines;
    # "index" names each chunk's first line, to name a bad line in FILE
    LC_ALL=C awk -v max="${CHUNK_BYTES:-200000}" -v dir="$tmp" '
        function flush() { if (nl) { close(f); nl = 0; bytes = 0 } }
        {
            len = length($0) + 1
            if (len > max) {
                printf "line %d: %d bytes, more than CHUNK_BYTES (%d): " \
                       "raise it and clockchain_max_body_size\n", NR, len, \
                       max > "/dev/stderr"
                exit 3
            }
            if (nl && (bytes + len > max || nl >= 1000)) flush()
            if (!nl) { c++; f = sprintf("%s/chunk.%06d", dir, c)
                       print f, NR > (dir "/index") }
            print > f; nl++; bytes += len
        }
        END { flush() }' "$file" || exit 1
    [ -f "$tmp/index" ] || { say "build.sh: import: $file is empty"; exit 1; }
    while read -r chunk first; do
        code=$(curl -sS -o "$tmp/answer" -w '%{http_code}' \
                    -H "X-Service-Key: $SERVICE_API_KEY" \
                    -H "X-Admin-Key: $ADMIN_API_KEY" \
                    -H 'Content-Type: application/x-ndjson' \
                    --data-binary "@$chunk" "$GRAPH_URL/api/restore") || exit 1
        if [ "$code" != 200 ]; then
            line=$(sed -n 's/.*"line \([0-9]*\):.*/\1/p' "$tmp/answer")
            say "build.sh: import: the chunk from line $first of $file was" \
                "refused ($code)${line:+, at line $((first + line - 1))}:"
            cat "$tmp/answer" >&2; say ""
            say "  the chunks before it are restored; running the import" \
                "again once fixed writes only what is missing"
            exit 1
        fi
        n=$((n + 1))
        say "build.sh: import: chunk $n (from line $first): $(cat "$tmp/answer")"
    done < "$tmp/index"
    say "build.sh: imported $file in $n chunks"
}

case "${1:-build}" in
    build) build ;;
    run) run ;;
    test) if [ "${2:-}" = asan ]; then run_tests_asan "${@:3}"; else run_tests; fi ;;
    asan) run_tests_asan "${@:2}" ;;
    fuzz) fuzz "${@:2}" ;;
    deb) deb_build; deb_test ;;
    deb-test) deb_test ;;
    bench) bench "${@:2}" ;;
    soak) soak "${@:2}" ;;
    export) graph_export "${@:2}" ;;
    import) graph_import "${@:2}" ;;
    chaos) chaos "${@:2}" ;;
    chaos-proof) chaos_proof "${@:2}" ;;
    *) say "usage: $0 [build|run|test [asan]|asan|fuzz [seconds]|deb|deb-test|bench [n...]|soak [minutes]|export [FILE]|import FILE|chaos [minutes] [seed]|chaos-proof]"; exit 2 ;;
esac
