#!/usr/bin/env bash
#
# ./build.sh          build ngx_http_clockchain_module.so against Debian's nginx
# ./build.sh run      build, then run Redis + nginx with the module (foreground)
# ./build.sh test     build, then run the whole test suite
# ./build.sh test asan  the same against an ASan+UBSan build (docs/hardening.md)
# ./build.sh fuzz [s]   build the libFuzzer targets, run each s seconds (60)
# ./build.sh deb       build the Debian package, lintian it, run deb-test
# ./build.sh deb-test  install the .deb into this machine's nginx, try it,
#                      purge it (changes the system: not part of test)
# ./build.sh bench [n]  build, then the benchmarks (t/bench/bench.pl): a table,
#                      and docs/benchmarks.md; minutes, not part of test
# ./build.sh soak [m]   build, then m minutes (10) of mixed load against nginx,
#                      the runner and a flaky Flash stand-in (t/soak/soak.pl):
#                      a report and a PASS/FAIL verdict; not part of test
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
    for f in "$ROOT/config" "$ROOT"/src/lua/*.lua; do
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
        location /api/moments/        { clockchain_moments; }

        location = /metrics {
            clockchain_metrics;
            allow 127.0.0.1;
            deny all;
        }
    }
}
CONF


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

MSG
    wait "$RUN_NGINX_PID"
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

# ---- Debian package (docs/packaging.md) ----------------------------------

DEB_PACKAGE=libnginx-mod-http-clockchain
DEB_DIR="$BUILD/deb"
DEB_SITE=/etc/nginx/conf.d/clockchain-test.conf

# the package's version: the VERSION file, and nowhere else
deb_version() {
    local v
    v=$(tr -d ' \t\n' <"$ROOT/VERSION")
    if ! [[ $v =~ ^[0-9][0-9A-Za-z.+~-]*$ ]]; then
        say "build.sh: VERSION holds \"$v\", not a Debian version"
        exit 1
    fi
    printf '%s' "$v"
}

deb_file() {
    printf '%s/%s_%s_%s.deb' "$DEB_DIR" "$DEB_PACKAGE" "$(deb_version)" \
        "$(dpkg --print-architecture)"
}

# the runtime libraries of the module as Debian dependencies; dpkg-shlibdeps
# wants a debian/control to run from, so it gets a throwaway one
deb_shlibs() {
    local so=$1 tmp out
    tmp=$(mktemp -d)
    mkdir "$tmp/debian"
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' \
        "$DEB_PACKAGE" "$DEB_PACKAGE" >"$tmp/debian/control"
    # the nginx symbols the module uses are the binary's, found at load time
    if ! out=$(cd "$tmp" && dpkg-shlibdeps -O --warnings=1 "$so" 2>"$tmp/log"); then
        cat "$tmp/log" >&2
        rm -rf "$tmp"
        exit 1
    fi
    rm -rf "$tmp"
    printf '%s' "${out#shlibs:Depends=}"
}

# build/deb/libnginx-mod-http-clockchain_<version>_<arch>.deb from a staged
# tree with dpkg-deb, laid out as Debian's own libnginx-mod-* packages are
deb_build() {
    PACKAGES+=(dpkg-dev binutils lintian)
    build

    local pkg="$ROOT/packaging/deb" stage="$DEB_DIR/stage"
    local version arch abi nginx_version shlibs deb doc so changelog epoch size
    version=$(deb_version)
    arch=$(dpkg --print-architecture)
    deb=$(deb_file)

    # the exact ABI this module was built for: what the installed nginx
    # provides (nginx-abi-1.22.1-7 on Debian 12)
    abi=$(dpkg-query -W -f='${Provides}' nginx | tr ',' '\n' \
          | grep -o 'nginx-abi-[^ ]*' | head -n1 || true)
    if [ -z "$abi" ]; then
        say "build.sh: the installed nginx provides no nginx-abi-*"
        exit 1
    fi
    nginx_version=$(dpkg-query -W -f='${Version}' nginx)

    # file times from the last commit: the same tree gives the same .deb
    epoch=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null \
                                 || stat -c %Y "$ROOT/VERSION")}

    rm -rf "$stage"
    mkdir -p "$stage/DEBIAN"
    so="$stage/usr/lib/nginx/modules/ngx_http_clockchain_module.so"
    install -D -m 0644 "$MODULE" "$so"
    # as dh_strip does; the debug info stays in build/
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$so"
    install -D -m 0644 "$pkg/mod-http-clockchain.conf" \
        "$stage/usr/share/nginx/modules-available/mod-http-clockchain.conf"

    doc="$stage/usr/share/doc/$DEB_PACKAGE"
    install -D -m 0644 "$pkg/copyright" "$doc/copyright"
    install -D -m 0644 "$pkg/examples/clockchain.conf" "$doc/examples/clockchain.conf"
    # a native version (no revision) has changelog.gz, as policy 12.7 asks
    changelog=changelog.gz
    [[ $version == *-* ]] && changelog=changelog.Debian.gz
    {
        printf '%s (%s) unstable; urgency=medium\n\n' "$DEB_PACKAGE" "$version"
        printf '  * ngx_http_clockchain_module %s, built against nginx %s\n' \
            "$version" "$nginx_version"
        printf '    (%s).\n' "$abi"
        printf '  * What changed: the git history of the module.\n\n'
        printf ' -- %s  %s\n' \
            "$(sed -n 's/^Maintainer: //p' "$pkg/control.in")" \
            "$(LC_ALL=C date -u -R -d "@$epoch")"
    } | gzip -9n >"$doc/$changelog"

    install -m 0755 "$pkg/postinst" "$pkg/prerm" "$pkg/postrm" "$stage/DEBIAN/"

    shlibs=$(deb_shlibs "$so")
    # Installed-Size as dpkg-gencontrol counts it: KiB per file, 1 per entry
    size=$(cd "$stage" && find . -path ./DEBIAN -prune -o ! -name . -printf '%y %s\n' \
           | awk '{ n += ($1 == "f") ? int(($2 + 1023) / 1024) : 1 } END { print n }')
    sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" \
        -e "s/@INSTALLED_SIZE@/$size/" -e "s/@NGINX_ABI@/$abi/" \
        -e "s/@SHLIBS@/$shlibs/" "$pkg/control.in" >"$stage/DEBIAN/control"
    (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' \
        | LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
    chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

    find "$stage" -type d -exec chmod 0755 {} +
    find "$stage" -exec touch -h -d "@$epoch" {} +
    rm -f "$deb"
    SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2

    say "build.sh: lintian $deb"
    # lintian warns that it runs as root, which says nothing about the package
    lintian --fail-on error --display-info "$deb" 2> >(grep -v 'root privileges' >&2) \
        || { say "build.sh: lintian found errors"; exit 1; }
    say "build.sh: built $deb"
    dpkg-deb --field "$deb" Package Version Depends >&2
}

# Installs the .deb into this machine's nginx, serves a site with it from
# /etc/nginx/nginx.conf, runs a job through it, then purges the package
# and puts everything back as it was (a trap does it whatever happens).
# It changes the system for a minute, so only "deb" and "deb-test" run it.
deb_test() {
    if [ "$(id -u)" -ne 0 ]; then
        exec sudo CLOCKCHAIN_BUILD_DIR="$BUILD" "$0" deb-test
    fi
    local deb
    deb=$(deb_file)
    [ -f "$deb" ] || deb_build
    install_packages

    # not local: the EXIT trap may run after this function has returned
    tmp= pidfile=/run/nginx.pid was_running=no started=no installed=no
    redis_pid= flash_pid= before= step=start debcopy=
    local errlog=/var/log/nginx/error.log log_from=0
    tmp=$(mktemp -d /tmp/clockchain-deb-test.XXXXXX)

    nginx_pid() {
        local pid
        pid=$(cat "$pidfile" 2>/dev/null) || return 1
        [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ] \
            && printf '%s' "$pid"
    }
    stop_nginx() {
        local pid i
        pid=$(nginx_pid) || return 0
        if [ -d /run/systemd/system ] && systemctl -q is-active nginx; then
            systemctl stop nginx
            return
        fi
        kill -QUIT "$pid"
        for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
        kill -TERM "$pid" 2>/dev/null
        sleep 1
    }
    # the system as the test left it, to compare with how it found it
    snapshot() {
        find /etc/nginx /usr/lib/nginx/modules /usr/share/nginx/modules-available \
            -printf '%p %y %l\n' 2>/dev/null | LC_ALL=C sort || true
        dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null \
            | grep -i -e nginx -e clockchain || true
    }
    fail() {
        say "deb-test: FAIL at $step: $*"
        exit 1
    }
    cleanup() {
        local rc=$? problems=
        trap - EXIT INT TERM
        set +e
        say "deb-test: cleaning up"
        [ $started = yes ] && stop_nginx
        [ -n "$flash_pid" ] && kill -TERM "$flash_pid" 2>/dev/null && wait "$flash_pid" 2>/dev/null
        [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
        rm -f "$DEB_SITE" ${debcopy:+"$debcopy"}
        if [ $installed = yes ]; then
            DEBIAN_FRONTEND=noninteractive dpkg --purge "$DEB_PACKAGE" >"$tmp/purge.log" 2>&1 \
                || { cat "$tmp/purge.log" >&2; problems+=" purge-failed"; }
        fi
        if [ $was_running = yes ]; then
            if [ -d /run/systemd/system ]; then systemctl start nginx; else /usr/sbin/nginx; fi \
                || problems+=" nginx-not-restarted"
        fi
        if [ -n "$before" ] && [ "$before" != "$(snapshot)" ]; then
            diff <(printf '%s\n' "$before") <(snapshot) >&2
            problems+=" system-changed"
        fi
        rm -rf "$tmp"
        if [ $rc -eq 0 ] && [ -z "$problems" ]; then
            say "deb-test: PASS: $DEB_PACKAGE installed, served a job through /etc/nginx/nginx.conf, purged; system as before"
        else
            [ -n "$problems" ] && say "deb-test: cleanup problems:$problems"
            say "deb-test: FAIL (see above)"
            [ $rc -eq 0 ] && rc=1
        fi
        exit $rc
    }
    trap cleanup EXIT
    trap 'step="$step (interrupted)"; say "deb-test: interrupted"; exit 130' INT TERM

    step="checking the machine"
    case $(dpkg-query -W -f='${db:Status-Status}' "$DEB_PACKAGE" 2>/dev/null || true) in
        ''|not-installed) ;;
        *) fail "$DEB_PACKAGE is already on this machine: remove it first, the test would purge it" ;;
    esac
    if [ -e "$DEB_SITE" ] && ! grep -q '^# build.sh deb-test' "$DEB_SITE"; then
        fail "$DEB_SITE exists and is not the test's own"
    fi
    rm -f "$DEB_SITE"
    before=$(snapshot)
    [ -f "$errlog" ] && log_from=$(stat -c %s "$errlog")
    if nginx_pid >/dev/null; then
        was_running=yes
        say "deb-test: the system nginx is running: stopping it for the test, it is started again after"
        stop_nginx
    fi

    step="redis and the Flash stand-in"
    local rport fport port key fkey
    rport=$(free_port)
    mkdir -p "$tmp/redis"
    redis-server --bind 127.0.0.1 --port "$rport" --dir "$tmp/redis" --save '' \
        --appendonly no --daemonize no --logfile "$tmp/redis/redis.log" &
    redis_pid=$!
    fport=$(free_port)
    fkey=$(random_key)
    python3 "$ROOT/t/flash/standin.py" --port "$fport" --delay 0.5 --key "$fkey" \
        --log "$tmp/flash.log" >/dev/null 2>&1 &
    flash_pid=$!
    for _ in $(seq 50); do
        redis-cli -p "$rport" ping >/dev/null 2>&1 \
            && curl -s -o /dev/null "http://127.0.0.1:$fport/" && break
        sleep 0.1
    done
    redis-cli -p "$rport" ping >/dev/null 2>&1 || fail "redis-server did not start"

    step="apt-get install $deb"
    installed=yes
    # apt reads the file as _apt: give it a copy it can read
    debcopy="$tmp.deb"
    install -m 0644 "$deb" "$debcopy"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "$debcopy" >"$tmp/install.log" 2>&1 \
        || { cat "$tmp/install.log" >&2; fail "install failed"; }
    [ -f /usr/lib/nginx/modules/ngx_http_clockchain_module.so ] || fail "no module file"
    [ "$(readlink /etc/nginx/modules-enabled/50-mod-http-clockchain.conf)" \
        = /usr/share/nginx/modules-available/mod-http-clockchain.conf ] \
        || fail "modules-enabled/50-mod-http-clockchain.conf is not linked"
    [ -f "/usr/share/doc/$DEB_PACKAGE/examples/clockchain.conf" ] || fail "no example"
    # enabled but not yet configured: nginx must still start as it did
    /usr/sbin/nginx -t -q 2>"$tmp/t.log" || { cat "$tmp/t.log" >&2; fail "nginx -t with the module loaded"; }

    step="the site"
    port=$(free_port)
    key=$(random_key)
    (umask 077
     printf '%s\n' "$key" >"$tmp/service.keys"
     printf '%s\n' "$fkey" >"$tmp/flash.key")
    cat >"$DEB_SITE" <<CONF
# build.sh deb-test: removed when the test ends
clockchain_zone clockchain_deb_test:8m;
clockchain_redis 127.0.0.1:$rport;
clockchain_flash_url http://127.0.0.1:$fport;
clockchain_flash_key_file $tmp/flash.key;

server {
    listen 127.0.0.1:$port;
    clockchain_service_key_file $tmp/service.keys;

    location = /api/generate { clockchain_generate; }
    location /api/jobs/      { clockchain_jobs; }
}
CONF
    /usr/sbin/nginx -t -q 2>"$tmp/t.log" || { cat "$tmp/t.log" >&2; fail "nginx -t with the site"; }

    step="starting /usr/sbin/nginx"
    started=yes
    /usr/sbin/nginx 2>"$tmp/start.log" || { cat "$tmp/start.log" >&2; fail "nginx did not start"; }
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.1
    done

    step="POST /api/generate"
    local base="http://127.0.0.1:$port" code id status path
    code=$(curl -sS -o "$tmp/post.json" -w '%{http_code}' -XPOST "$base/api/generate" \
        -H "X-Service-Key: $key" -H 'Content-Type: application/json' \
        -d '{"query":"moon landing"}') || fail "curl failed"
    [ "$code" = 200 ] || fail "HTTP $code: $(cat "$tmp/post.json")"
    read -r id status < <(json_fields "$tmp/post.json" job_id status) || true
    [[ $id =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] \
        || fail "no job_id in $(cat "$tmp/post.json")"
    [ "$status" = pending ] || fail "status \"$status\", expected pending"
    say "deb-test: POST /api/generate: 200, job $id pending"

    step="GET /api/jobs/$id"
    code=$(curl -sS -o /dev/null -w '%{http_code}' "$base/api/jobs/$id") || fail "curl failed"
    [ "$code" = 401 ] || fail "HTTP $code without a key, expected 401"
    for _ in $(seq 100); do
        code=$(curl -sS -o "$tmp/get.json" -w '%{http_code}' "$base/api/jobs/$id" \
            -H "X-Service-Key: $key") || fail "curl failed"
        [ "$code" = 200 ] || fail "HTTP $code: $(cat "$tmp/get.json")"
        read -r status path < <(json_fields "$tmp/get.json" status path) || true
        case $status in
            pending|processing) sleep 0.2 ;;
            *) break ;;
        esac
    done
    [ "$(json_fields "$tmp/get.json" job_id)" = "$id" ] || fail "another job: $(cat "$tmp/get.json")"
    [ "$status" = completed ] && [[ $path == /* ]] \
        || fail "job not completed by the runner: $(cat "$tmp/get.json")"
    say "deb-test: GET /api/jobs/$id: 200, completed, path $path"

    step="error log"
    if [ -f "$errlog" ] && tail -c +$((log_from + 1)) "$errlog" | grep -E '\[(alert|emerg|crit)\]' >&2; then
        fail "nginx logged the lines above to $errlog"
    fi
    step="cleanup"
    cleanup
}

# prints the named top-level fields of a JSON object file, space separated
json_fields() {
    python3 - "$@" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(" ".join("" if j.get(k) is None else str(j[k]) for k in sys.argv[2:]))
PY
}

# The benchmarks of issue 7 (t/bench/bench.pl): ratios against nginx's own
# limit measured side by side in one run, a table on stdout and the measured
# part of docs/benchmarks.md rewritten.  Needs wrk (and perf with
# BENCH_PERF=1).  ./build.sh bench 1 5 runs only those measures and leaves
# the docs alone.
bench() {
    PACKAGES+=(wrk)
    [ -z "${BENCH_PERF:-}" ] || PACKAGES+=(linux-perf)
    build
    cd "$ROOT"
    CLOCKCHAIN_MODULE="$MODULE" perl -I t/lib t/bench/bench.pl "$@"
}

# The soak (t/soak/soak.pl, docs/hardening.md): m minutes (10) of mixed
# traffic with wrk at 64 connections against nginx with the runner and a
# slow, sometimes failing Flash stand-in; RSS and fds of each nginx
# process sampled every 30 s; a report, and exit 1 unless it passes.
soak() {
    PACKAGES+=(wrk)
    build
    cd "$ROOT"
    CLOCKCHAIN_MODULE="$MODULE" perl -I t/lib t/soak/soak.pl "$@"
}

run_tests() {
    build
    cd "$ROOT"
    CLOCKCHAIN_MODULE="$MODULE" prove -I t/lib -r --timer t/
}

# The module with AddressSanitizer + UndefinedBehaviorSanitizer, in its own
# build dir, and the whole suite against it.  Debian's nginx is not
# instrumented: the sanitizer runtime is preloaded into each nginx the
# harness starts (through NGINX_BIN, so perl, redis and python stay as they
# are); the workers are forked from that master and inherit it.  clang, not
# gcc: gcc splits ASan and UBSan into two runtimes and, with both loaded,
# UBSan's reports ignore log_path and vanish into nginx's error.log; clang's
# ASan runtime carries UBSan.  Any report fails the run (docs/hardening.md).
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
LLVM_BIN=/usr/lib/llvm-14/bin

run_tests_asan() {
    BUILD="$BUILD/asan"
    MODULE="$BUILD/ngx_http_clockchain_module.so"
    # private aliases: the generated ngx_modules[] of the module must not
    # have its redzone laid over nginx's own ngx_modules[] (same name)
    CONF_EXTRA=(--with-cc=clang
                --with-cc-opt="$SAN_FLAGS -g -mllvm -asan-use-private-alias=1"
                --with-ld-opt="$SAN_FLAGS")
    PACKAGES+=(clang libclang-rt-14-dev)
    build
    cd "$ROOT"

    # workers run as nobody: they write their reports, and LSan reads its
    # suppressions at their exit, in a directory they can reach wherever
    # the tree is
    local run logs rt
    run=$(mktemp -d "${TMPDIR:-/tmp}/clockchain-asan.XXXXXX")
    logs="$run/logs"
    mkdir -m 1777 "$logs"
    chmod 755 "$run"
    install -m 644 "$ROOT/t/asan/lsan.supp" "$ROOT/t/asan/ubsan.supp" "$run/"

    rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    [ -f "$rt" ] || { say "build.sh: no $rt (libclang-rt-14-dev)"; exit 1; }
    clang -shared -fPIC -O2 -Wall -Werror -o "$BUILD/nodlclose.so" \
        "$ROOT/t/asan/nodlclose.c"
    cat >"$BUILD/nginx" <<WRAP
#!/bin/sh
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

    # nginx under ASan is two to three times slower: a test file that
    # fails on a timing assumption gets one more run, said out loud; one
    # that fails twice fails the run, and every sanitizer report of both
    # runs counts
    local rc=0 state="$BUILD/prove.state"
    rm -f "$state"
    if ! prove -I t/lib -r --timer --state=save --statefile="$state" \
            "${@:-t/}"; then
        local again
        again=$(prove --state=failed --statefile="$state" --dry 2>/dev/null)
        if [ -z "$again" ]; then
            rc=1    # prove itself gave up: nothing to run again
        else
            say "build.sh: under ASan these test files failed; once more:" $again
            # shellcheck disable=SC2086
            prove -I t/lib --timer $again || rc=1
        fi
    fi

    if perl t/asan/check-logs.pl "$logs" >&2; then
        rm -rf "$run"
    else
        rc=1
        say "build.sh: the sanitizer logs are kept in $logs"
    fi
    return $rc
}

# libFuzzer targets for the nginx-free code (t/fuzz/, docs/hardening.md),
# built with clang: each runs for $1 seconds (60) from its committed seeds;
# what it finds goes to build/fuzz/corpus/ (not to the repo) and a crash
# to build/fuzz/TARGET-crash-*.  ./build.sh fuzz 60 scene runs one target.
FUZZ_TARGETS=(generate bulk create scene id_json path)

fuzz() {
    local secs=${1:-60} dir="$BUILD/fuzz" t rc=0
    local targets=("${@:2}")
    [ ${#targets[@]} -gt 0 ] || targets=("${FUZZ_TARGETS[@]}")
    PACKAGES+=(clang libclang-rt-14-dev)
    install_packages
    mkdir -p "$dir"

    for t in "${targets[@]}"; do
        local srcs=("$ROOT/t/fuzz/fuzz_$t.c" "$ROOT/src/ngx_http_clockchain_job.c")
        [ "$t" = scene ] && srcs+=("$ROOT/src/ngx_http_clockchain_scene.c")
        [ "$t" = create ] && srcs+=("$ROOT/src/ngx_http_clockchain_create.c")
        clang -g -O1 -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=all -Wall -Wextra -Werror -I"$ROOT/src" \
            -o "$dir/fuzz_$t" "${srcs[@]}" -ljansson -lutf8proc
    done

    for t in "${targets[@]}"; do
        local args=(-max_total_time="$secs" -artifact_prefix="$dir/$t-"
                    -print_final_stats=1)
        case $t in
            generate|bulk|create|scene) args+=(-dict="$ROOT/t/fuzz/json.dict") ;;
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
    return $rc
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
    *) say "usage: $0 [build|run|test [asan]|asan|fuzz [seconds]|deb|deb-test|bench [n...]|soak [minutes]]"; exit 2 ;;
esac
