#!/usr/bin/env bash
#
# ./build.sh          build ngx_http_clockchain_module.so against Debian's nginx
# ./build.sh run      build, then run Redis + nginx with the module (foreground)
# ./build.sh test     build, then run the whole test suite
#
# Installs what it needs with apt when it is missing.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
BUILD="${CLOCKCHAIN_BUILD_DIR:-$ROOT/build}"
MODULE="$BUILD/ngx_http_clockchain_module.so"
NGX_SRC=/usr/share/nginx/src

PACKAGES=(nginx nginx-dev libjansson-dev libcurl4-openssl-dev libhiredis-dev
          libutf8proc-dev redis-server build-essential perl curl python3)

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
    for f in "$ROOT/config" "$ROOT"/src/lua/*.lua; do
        [ "$f" -nt "$BUILD/Makefile" ] && reconf=yes
    done

    if [ $reconf = yes ]; then
        say "build.sh: configuring against $(/usr/sbin/nginx -v 2>&1)"
        (
            cd "$src"
            # shellcheck disable=SC1091
            . ./conf_flags
            ./configure "${NGX_CONF_FLAGS[@]}" \
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
    local dir="$ROOT/run"
    local prefix="$dir/nginx"
    local redis_pid= nginx_pid= flash_pid=

    stop() {
        trap - INT TERM EXIT
        [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
        [ -n "$flash_pid" ] && kill -TERM "$flash_pid" 2>/dev/null && wait "$flash_pid" 2>/dev/null
        [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
        say "build.sh: stopped"
    }
    trap stop INT TERM EXIT

    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/temp" "$dir/redis"
    chmod 700 "$dir"

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
        redis_pid=$!
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
        flash_pid=$!
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

    cat >"$prefix/conf/nginx.conf" <<CONF
load_module $MODULE;

worker_processes 2;
error_log stderr notice;
pid logs/nginx.pid;

events {
    worker_connections 1024;
}

http {
    access_log logs/access.log;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;

    clockchain_zone clockchain:16m;
    clockchain_redis $redis_conf;
    clockchain_flash_url $flash_url;
    clockchain_flash_key_file flash.key;

    server {
        listen 127.0.0.1:$port;

        clockchain_service_key_file service.keys;
        clockchain_admin_key_file admin.keys;

        location = /api/generate      { clockchain_generate; }
        location = /api/bulk-generate { clockchain_bulk_generate; }
        location /api/jobs/           { clockchain_jobs; }
    }
}
CONF


    /usr/sbin/nginx -p "$prefix" -c conf/nginx.conf -t -q
    /usr/sbin/nginx -p "$prefix" -c conf/nginx.conf -g 'daemon off;' &
    nginx_pid=$!

    [ -n "$generated" ] && say "generated keys:$generated"
    cat >&2 <<MSG

Clockchain jobs API on http://127.0.0.1:$port/  (Ctrl-C stops nginx and Redis)

  curl -s -XPOST http://127.0.0.1:$port/api/generate \\
       -H 'X-Service-Key: $service_key' -H 'Content-Type: application/json' \\
       -d '{"query":"moon landing"}'
  curl -s http://127.0.0.1:$port/api/jobs/JOB_ID -H 'X-Service-Key: $service_key'

MSG
    wait "$nginx_pid"
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

run_tests() {
    build
    cd "$ROOT"
    CLOCKCHAIN_MODULE="$MODULE" prove -I t/lib -r --timer t/
}

case "${1:-build}" in
    build) build ;;
    run) run ;;
    test) run_tests ;;
    *) say "usage: $0 [build|run|test]"; exit 2 ;;
esac
