#!/bin/sh
# Self-test of the Flash stand-in (not part of the module's test suite).
#   sh t/flash/selftest.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pass=0
fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

python3 "$here/standin.py" --port 0 --key sekrit --log "$tmp/log" >"$tmp/out" 2>"$tmp/err" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

i=0
while ! grep -q '^READY ' "$tmp/out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 50 ] && { echo "stand-in did not start"; cat "$tmp/err"; exit 1; }
    sleep 0.1
done
port=$(awk '/^READY/ {print $2}' "$tmp/out")
base="http://127.0.0.1:$port"
echo "stand-in on port $port"

# flash QUERY JOB [extra curl args] -> writes body to $tmp/body, headers to
# $tmp/hdr, prints "<http code> <curl exit>"
flash() {
    q=$1; job=$2; shift 2
    body=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "preset": "hd", "generate_image": True, "model_policy": "permissive", "request_context": {"source": "clockchain", "worker": "renderer", "job_id": sys.argv[2]}}))' "$q" "$job")
    code=$(curl -s -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' "$@" \
        -H 'X-Service-Key: sekrit' -H 'Content-Type: application/json' \
        --data-binary "$body" "$base/api/v1/timepoints/generate/sync")
    rc=$?
    echo "$code $rc"
}
jq_() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$tmp/body" "$1"; }
expect() { # name got want
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2' want '$3'"; fi
}

# --- normal call
r=$(flash "Signing of the Declaration of Independence, Philadelphia 1776" j-normal)
expect "normal: status" "$r" "200 0"
expect "normal: fields" "$(jq_ 'd["year"], d["name"], d["slug"][:-5], type(d["location"]).__name__, d["grounding"]["verified_year"]')" \
    "(1776, 'Signing Of The Declaration Of Independence, Philadelphia 1776', 'signing-of-the-declaration-of-independence-philadelphia-1776', 'str', 1776)"
slug1=$(jq_ 'd["slug"]')
flash "Signing of the Declaration of Independence, Philadelphia 1776" j-normal2 >/dev/null
expect "normal: deterministic slug" "$(jq_ 'd["slug"]')" "$slug1"
r=$(flash "Caesar crosses the Rubicon 49 BC" j-bc)
expect "normal: 49 BC -> -49" "$(jq_ 'd["year"]')" "-49"

# --- key and validation
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'X-Service-Key: wrong' -H 'Content-Type: application/json' \
    --data-binary '{"query":"x"}' "$base/api/v1/timepoints/generate/sync")
expect "wrong key: 401" "$code $(jq_ 'd["detail"]')" "401 Invalid service key"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'X-Service-Key: sekrit' --data-binary 'not json' "$base/api/v1/timepoints/generate/sync")
expect "not json: 422" "$code" "422"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'X-Service-Key: sekrit' --data-binary '{"preset":"hd"}' "$base/api/v1/timepoints/generate/sync")
expect "no query: 422" "$code" "422"

# --- status modes
for m in 402:Insufficient_credits 422:Year_must_be_a_valid_integer 429:Rate_limited 500:Pipeline_error 504:Generation_timed_out 401:Invalid_service_key; do
    c=${m%%:*}; d=$(echo "${m#*:}" | tr _ ' ')
    r=$(flash "Fall of Rome [flash:$c]" "j-$c")
    expect "[flash:$c]" "$r $(jq_ 'd["detail"]')" "$c 0 $d"
done
flash "x [flash:429]" j-429b >/dev/null
expect "429: Retry-After" "$(grep -i '^retry-after:' "$tmp/hdr" | tr -d '\r')" "Retry-After: 1"

# --- body modes
r=$(flash "x [flash:garbage]" j-garbage)
expect "garbage: 200 + body" "$r $(cat "$tmp/body")" "200 0 <html>oops"
expect "garbage: content-type" "$(grep -i '^content-type:' "$tmp/hdr" | tr -d '\r')" "Content-Type: application/json"
r=$(flash "x [flash:array]" j-array)
expect "array" "$r $(cat "$tmp/body")" "200 0 [1,2,3]"
r=$(flash "Great Fire of London 1666 [flash:huge]" j-huge)
size=$(wc -c <"$tmp/body")
expect "huge: status" "$r" "200 0"
expect "huge: >= 20 MiB" "$([ "$size" -ge 20971520 ] && echo yes || echo "no ($size)")" "yes"
expect "huge: valid JSON scene" "$(jq_ 'd["year"], len(d["moment"]["plot_summary"]) > 20000000')" "(1666, True)"
r=$(flash "x [flash:datauri]" j-datauri)
expect "datauri" "$r $(jq_ 'd["image_url"][:22], len(d["image_url"]) > 3000000')" "200 0 ('data:image/png;base64,', True)"
r=$(flash "x [flash:blocked]" j-blocked)
expect "blocked" "$r $(jq_ 'd["model_provider"], d["text_model_used"]')" "200 0 ('google', 'gemini-2.5-flash')"
r=$(flash "x 1999 [flash:noyear]" j-noyear)
expect "noyear" "$r $(jq_ '"year" in d, d["grounding"].get("verified_year")')" "200 0 (False, None)"
r=$(flash "x [flash:stringyear]" j-stringyear)
expect "stringyear" "$r $(jq_ 'repr(d["year"])')" "200 0 '1776'"
r=$(flash "Ides of March [flash:bce]" j-bce)
expect "bce" "$r $(jq_ 'd["year"], d["month"], d["day"], d["location"]')" "200 0 (-44, 3, 15, 'Theatre of Pompey, Rome, Italia')"
r=$(flash "x [flash:close]" j-close)
expect "close: curl error 18" "$r" "200 18"
r=$(flash "x [flash:nonsense]" j-nonsense)
expect "unknown mode: 400" "$r" "400 0"

# --- delay
t0=$(date +%s.%N)
r=$(flash "x [flash:delay=1]" j-delay)
t1=$(date +%s.%N)
expect "delay=1: status" "$r" "200 0"
expect "delay=1: >= 1 s" "$(python3 -c "print($t1 - $t0 >= 1.0)")" "True"
t0=$(date +%s.%N)
r=$(flash "x [flash:delay=1,500]" j-delay500)
t1=$(date +%s.%N)
expect "delay=1,500" "$r $(python3 -c "print($t1 - $t0 >= 1.0)")" "500 0 True"

# --- fail=N / fail429=N
a=$(flash "x [flash:fail=2]" j-fail | cut -d' ' -f1)
b=$(flash "x [flash:fail=2]" j-fail | cut -d' ' -f1)
c=$(flash "x [flash:fail=2]" j-fail | cut -d' ' -f1)
expect "fail=2: 500,500,200" "$a,$b,$c" "500,500,200"
a=$(flash "x [flash:fail429=1]" j-fail429 | cut -d' ' -f1)
b=$(flash "x [flash:fail429=1]" j-fail429 | cut -d' ' -f1)
expect "fail429=1: 429,200" "$a,$b" "429,200"

# --- hang does not block a parallel call
t0=$(date +%s.%N)
curl -s -o /dev/null --max-time 2 -H 'X-Service-Key: sekrit' \
    --data-binary '{"query":"x [flash:hang]","request_context":{"job_id":"j-hang"}}' \
    "$base/api/v1/timepoints/generate/sync" &
hangpid=$!
sleep 0.3
r=$(flash "A normal call during a hang" j-parallel --max-time 1)
t1=$(date +%s.%N)
expect "hang: parallel call answered" "$r $(python3 -c "print($t1 - $t0 < 1.5)")" "200 0 True"
wait $hangpid
expect "hang: curl timed out (28)" "$?" "28"
sleep 0.3

# --- control endpoints
curl -s -o "$tmp/body" "$base/_standin/calls"
expect "calls: by_job fail=3, in_flight=0" "$(jq_ 'd["by_job"]["j-fail"], d["by_job"]["j-hang"], d["in_flight"], d["max_in_flight"] >= 2')" "(3, 1, 0, True)"
expect "calls: total" "$(jq_ 'd["total"] >= 30')" "True"
curl -s -o "$tmp/body" "$base/_standin/calls/j-normal"
expect "calls/<job>: record" "$(jq_ 'len(d), d[0]["headers"]["x-service-key"], d[0]["body"]["request_context"]["job_id"], d[0]["preset"], type(d[0]["t"]).__name__')" \
    "(1, '***', 'j-normal', 'hd', 'float')"
curl -s -o "$tmp/body" -X POST -d '{"default":"402"}' "$base/_standin/mode"
r=$(flash "no token here" j-default)
expect "mode default=402" "$r" "402 0"
r=$(flash "token wins [flash:array]" j-default2)
expect "mode default: token wins" "$r" "200 0"
curl -s -o "$tmp/body" -X POST -d '{"default":null}' "$base/_standin/mode"
r=$(flash "no token here" j-default3)
expect "mode default cleared" "$r" "200 0"
curl -s -o /dev/null -X POST -d '{"default":"500","delay":0.1}' "$base/_standin/mode"
curl -s -o /dev/null -X POST -d '{"all":true}' "$base/_standin/reset"
curl -s -o "$tmp/body" "$base/_standin/mode"
expect "reset all: mode cleared" "$(jq_ 'd["default"], d["delay"]')" "(None, 0.0)"
curl -s -o "$tmp/body" "$base/_standin/calls"
expect "reset" "$(jq_ 'd["total"], d["by_job"]')" "(0, {})"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$base/nope")
expect "404 JSON" "$code $(jq_ 'd["detail"]')" "404 Not Found"

# --- keep-alive: two requests on one connection
n=$(curl -s -v -o /dev/null -o /dev/null "$base/_standin/calls" "$base/_standin/calls" 2>&1 | grep -c 'Re-using existing connection')
expect "keep-alive reuse" "$n" "1"

# --- clean exit on SIGTERM, no tracebacks
kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 30 ] && break; sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then bad "SIGTERM: still running"; else
    wait "$pid"; expect "SIGTERM: exit status" "$?" "0"; fi
expect "stderr empty" "$(wc -c <"$tmp/err" | tr -d ' ')" "0"
[ -s "$tmp/err" ] && cat "$tmp/err"
expect "log lines" "$([ "$(wc -l <"$tmp/log")" -ge 40 ] && echo yes)" "yes"

echo "passed $pass, failed $fail"
[ "$fail" -eq 0 ]
