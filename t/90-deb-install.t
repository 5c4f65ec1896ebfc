#!/usr/bin/env bash
#
# The install test of the Debian package (docs/packaging.md): installs the
# .deb into this machine's nginx, serves a site with it from
# /etc/nginx/nginx.conf, runs a job through it, then purges the package
# and puts everything back as it was (a trap does it whatever happens).
# It changes the system for a minute, so it is skipped unless
# CLOCKCHAIN_DEB_TEST=1: `./build.sh deb` and `./build.sh deb-test` set it.
# The .deb is $CLOCKCHAIN_DEB, else the one `packaging/deb.sh path` names.
#
# A shell script in TAP: perl, which prove runs it with, hands a file whose
# #! line names no perl to that interpreter.

set -euo pipefail

if [ "${CLOCKCHAIN_DEB_TEST:-}" != 1 ]; then
    echo "1..0 # SKIP changes the system nginx; ./build.sh deb-test runs it (CLOCKCHAIN_DEB_TEST=1)"
    exit 0
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEB_PACKAGE=libnginx-mod-http-clockchain
DEB_SITE=/etc/nginx/conf.d/clockchain-test.conf

say() { printf '%s\n' "$*" >&2; }

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}

random_key() {
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

# prints the named top-level fields of a JSON object file, space separated
json_fields() {
    python3 - "$@" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(" ".join("" if j.get(k) is None else str(j[k]) for k in sys.argv[2:]))
PY
}

deb_test() {
    local deb=${CLOCKCHAIN_DEB:-}
    [ -n "$deb" ] || deb=$("$ROOT/packaging/deb.sh" path)
    if [ "$(id -u)" -ne 0 ]; then
        exec sudo CLOCKCHAIN_DEB_TEST=1 CLOCKCHAIN_DEB="$deb" bash "$0"
    fi
    echo 1..1
    if [ ! -f "$deb" ]; then
        echo "not ok 1 - no $deb: ./build.sh deb-test builds it"
        exit 1
    fi

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
            echo "ok 1 - deb-test: PASS: $DEB_PACKAGE installed, served a job through /etc/nginx/nginx.conf, purged; system as before"
        else
            [ -n "$problems" ] && say "deb-test: cleanup problems:$problems"
            echo "not ok 1 - deb-test: FAIL at $step (see above)"
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

deb_test
