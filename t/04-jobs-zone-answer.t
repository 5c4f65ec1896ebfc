# GET /api/jobs/{id} of a finished job answered from the shared zone is,
# byte for byte, the answer Redis gives (issue 19: the zone keeps a job's
# path and error in their JSON form, escaped once when the job is cached,
# and an answer is copied from it).  The contract
# (../shared/reference/seed-get-job-status.txt) decides what that answer
# is: the six keys in its order, path a string only when completed, error
# a string only when failed, null otherwise.
#
# Three ways into the zone, each against an answer read from Redis by an
# nginx that had never heard of the job:
#   1. a job read from Redis (seeded with HSET): the first GET is Redis's,
#      the job is then deleted from Redis and GET answers from the zone;
#   2. a final state heard on the events channel (PUBLISH ...:final);
#   3. the runner's own outcome, from a Flash stand-in.
# The strings are hostile (quotes, backslashes, every control byte, U+2028,
# non-ASCII, invalid UTF-8, markup, long texts) and their sizes sweep the
# answer across 4096, 8192 and 16384 bytes (nginx's pool and buffer
# sizes), and the raw text across the zone's 4096-byte limit.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX qw(strftime);
use Time::HiRes qw(time);
use Clockchain::Test;

my $EVENTS = 'clockchain:{cc}:v1:events';
my $KEY = { 'X-Service-Key' => 'test-key-1' };

my $CONF = <<"EOF";
    clockchain_zone cc:4m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
EOF

# a job id nobody has used
my %USED;
sub new_id {
    while (1) {
        my $h = join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
        substr($h, 12, 1) = '4';
        substr($h, 16, 1) = (qw(8 9 a b))[int rand 4];
        my $id = join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4),
                           substr($h, 16, 4), substr($h, 20);
        return $id unless $USED{$id}++;
    }
}

# times of a job finished a minute ago (a finished job older than
# clockchain_keep_completed would be let go)
sub iso { strftime('%Y-%m-%dT%H:%M:%S', gmtime $_[0]) . sprintf('.%06dZ', $_[1]) }
my $CREATED = iso(time - 90, 123456);
my $DONE    = iso(time - 60, 987654);

# ---------------------------------------------------------------------------
# the answer the contract and the module's escaping make of raw bytes: plain
# printable ASCII as it is, '"' and '\' escaped, control bytes as \u00XX,
# well-formed UTF-8 as it is, any other byte as U+FFFD

my $UTF8 = qr/[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]
             |[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]
             |\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}
             |\xf4[\x80-\x8f][\x80-\xbf]{2}/x;

sub jstr {
    my ($b) = @_;
    return 'null' unless defined $b;
    my $o = '"';
    pos($b) = 0;
    while (pos($b) < length $b) {
        if ($b =~ /\G([\x20-\x21\x23-\x5b\x5d-\x7e]+)/gc) { $o .= $1 }
        elsif ($b =~ /\G(["\\])/gc)                       { $o .= "\\$1" }
        elsif ($b =~ /\G([\x00-\x1f\x7f])/gc)             { $o .= sprintf '\u%04x', ord $1 }
        elsif ($b =~ /\G($UTF8)/gc)                       { $o .= $1 }
        else  { $b =~ /\G./sgc; $o .= "\xef\xbf\xbd" }
    }
    return "$o\"";
}

sub expected {
    my ($id, $status, $path, $error, $created, $done) = @_;
    return qq({"job_id":"$id","status":"$status","path":)
        . ($status eq 'completed' ? jstr($path) : 'null')
        . ',"error":' . ($status eq 'failed' ? jstr($error) : 'null')
        . qq(,"created_at":"$created","completed_at":)
        . (defined $done ? qq("$done") : 'null') . '}';
}

# the answer's shape, as the contract has it, decoded
sub contract_ok {
    my ($body, $name) = @_;
    my $ok = $body =~ /^\{"job_id":"[^"]+","status":"[a-z]+","path":(?:null|".*"),
                        "error":(?:null|".*"),"created_at":"[^"]+",
                        "completed_at":(?:null|"[^"]+")\}\z/sx;
    my $d = eval { JSON::PP->new->utf8->decode($body) };
    $ok &&= ref $d eq 'HASH' && keys %$d == 6;
    ok($ok, "$name: the contract's six keys, in its order") or diag(substr $body, 0, 300);
    return $d;
}

sub same {
    my ($got, $want, $name) = @_;
    my $ok = defined $got && $got eq $want;
    ok($ok, $name) or do {
        my $i = 0;
        $i++ while defined $got && $i < length $got && $i < length $want
                   && substr($got, $i, 1) eq substr($want, $i, 1);
        diag(sprintf "lengths %s vs %d; first difference at byte %d: got %s, want %s",
             defined $got ? length $got : 'undef', length $want, $i,
             JSON::PP->new->ascii->encode([ substr($got // '', $i, 40) ]),
             JSON::PP->new->ascii->encode([ substr($want, $i, 40) ]));
    };
    return $ok;
}

# ---------------------------------------------------------------------------
# the strings

my @HOSTILE = (
    [ 'empty' => '' ],
    [ 'quotes' => 'say "hi" and ""' ],
    [ 'backslashes' => 'C:\\path\\to\\x \\" \\\\ \\u0041 \\n' ],
    [ 'every control byte' => join('', map { chr } 0 .. 31, 127) ],
    [ 'NUL in the middle' => "before\x00after" ],
    [ 'CR LF and tab' => "line 1\r\nline 2\tend\n" ],
    [ 'U+2028 and U+2029' => "a\xe2\x80\xa8b\xe2\x80\xa9c" ],
    [ 'non-ASCII' => "Z\xc3\xbcrich, S\xc3\xa3o Paulo, \xe5\x8c\x97\xe4\xba\xac, \xf0\x9f\x98\x80" ],
    [ 'U+FFFD itself' => "x\xef\xbf\xbdy" ],
    [ 'invalid UTF-8' => "bad \xff \xfe \xc3 \xc0\xaf \xed\xa0\x80 \xf8\x88\x80\x80\x80 \xf4\x90\x80\x80 end" ],
    [ 'a truncated sequence at the end' => "cut \xe2\x80" ],
    [ 'markup' => '<img src=x onerror=alert(1)><script>alert("2")</script>' ],
    [ 'JSON inside' => 'Flash API error: Invalid date format | response: {"detail":"Year must be a valid integer"}' ],
    [ 'a dollar and braces' => '${var} $1 {{x}}' ],
    [ 'long error text' => join(' | ', map { "step $_: \"failed\" at \\x$_\t" } 1 .. 130) ],
);

my %BYTES_PER = (plain => 1, quote => 2, control => 6, u2028 => 3);
my %UNIT = (plain => 'a', quote => '"', control => "\x01", u2028 => "\xe2\x80\xa8");

# a text of $kind (and 'a's to fill) whose JSON form is $json bytes long
sub sized {
    my ($kind, $json) = @_;
    my $u = $BYTES_PER{$kind};
    my $n = int($json / $u);
    my $s = $UNIT{$kind} x $n;
    $s .= 'a' x ($json - $n * $u);
    return $s;
}

# the fixed part of a failed job's answer: all but the error's JSON form
my $FIXED = length(expected(new_id(), 'failed', undef, '', $CREATED, $DONE)) - 2;

my @SIZES;
# raw sizes about the zone's limit (4096 bytes of path and error)
for my $n (1000, 4095, 4096, 4097, 8191, 8192, 8193, 16383, 16384, 16385, 65536) {
    push @SIZES, [ "$n plain bytes" => 'a' x $n ];
}
# answers of 4096, 8192 and 16384 bytes, one less, one more, from texts the
# zone keeps (control bytes take 6 bytes each in JSON, quotes 2)
for my $total (4095, 4096, 4097, 8191, 8192, 8193, 16383, 16384, 16385, 24000) {
    for my $kind ($total <= 8200 ? qw(quote control) : qw(control)) {
        my $s = sized($kind, $total - $FIXED - 2);
        push @SIZES, [ "a $total-byte answer of ${kind}s (" . length($s) . " raw)" => $s ];
    }
}
push @SIZES, [ '4096 control bytes (the most the zone keeps)' => "\x1f" x 4096 ],
             [ '1365 x U+2028 (4095 bytes)' => "\xe2\x80\xa8" x 1365 ],
             [ '1366 x U+2028 (4098 bytes)' => "\xe2\x80\xa8" x 1366 ];

# ---------------------------------------------------------------------------
# 1. read from Redis, then answered from the zone

my $redis = start_redis();
my $B = start_nginx(redis => $redis, conf => $CONF);

sub hmgets {
    my ($r) = @_;
    my ($n) = $r->cmd('INFO', 'commandstats') =~ /^cmdstat_hmget:calls=(\d+)/m;
    return $n // 0;
}

sub seed {
    my ($r, $id, %f) = @_;
    $r->cmd('HSET', $JOB_PREFIX . $id, 'id', $id, 'query', 'zone answer test',
            map { ($_ => $f{$_}) } grep { defined $f{$_} } sort keys %f);
}

my $cases = 0;
for my $c (@HOSTILE, @SIZES) {
    my ($what, $text) = @$c;
    for my $v (
        # (status, fields in Redis)
        [ completed => path => $text ],
        [ failed => error => $text ],
    ) {
        my ($status, $field) = @$v;
        my $id = new_id();
        my $name = "$status, $field: $what";
        seed($redis, $id, status => $status, $field => $text,
             created_at => $CREATED, completed_at => $DONE, version => 5);
        my $want = expected($id, $status, $status eq 'completed' ? $text : undef,
                            $status eq 'failed' ? $text : undef, $CREATED, $DONE);
        my $kept = length($text) <= 4096;

        my $h0 = hmgets($redis);
        my $r1 = get_job($B, $id);
        is($r1->{status}, 200, "$name: 200 from Redis");
        is(hmgets($redis), $h0 + 1, "$name: (read from Redis)");
        same($r1->{content}, $want, "$name: Redis's answer is the contract's");
        contract_ok($r1->{content}, "$name, from Redis") if $cases++ % 4 == 0;
        is(length $r1->{content}, $1, "$name: (the answer's size)")
            if $status eq 'failed' && $what =~ /^a (\d+)-byte answer/;

        # gone from Redis: only the zone can answer now
        $redis->cmd('DEL', $JOB_PREFIX . $id);
        for my $n (1 .. 3) {
            my $r2 = get_job($B, $id);
            if ($kept) {
                is($r2->{status}, 200, "$name: GET $n answered from the zone");
                same($r2->{content}, $r1->{content},
                     "$name: GET $n from the zone is Redis's answer, byte for byte");
            } else {
                is($r2->{status}, 404, "$name: over 4096 bytes, not kept in the zone");
            }
        }
    }
}

# fields the contract leaves null: a completed job without a path, a failed
# one without an error; the other status's field, left over, is not shown
for my $v (
    [ 'completed without a path' => completed => {} ],
    [ 'failed without an error' => failed => {} ],
    [ 'completed with an error left over' => completed => { path => '/x', error => 'old "error"' } ],
    [ 'failed with a path left over' => failed => { path => '/x', error => 'it "failed"' } ],
    [ 'pending with a path and an error' => pending => { path => '/x', error => 'e' }, 'no completed_at' ],
) {
    my ($name, $status, $f, $pending) = @$v;
    my $id = new_id();
    seed($redis, $id, status => $status, %$f, created_at => $CREATED,
         $pending ? () : (completed_at => $DONE), version => 3);
    my $want = expected($id, $status, $f->{path}, $f->{error}, $CREATED,
                        $pending ? undef : $DONE);
    my $r1 = get_job($B, $id);
    same($r1->{content}, $want, "$name: Redis's answer is the contract's");
    contract_ok($r1->{content}, $name);
    next if $pending;
    $redis->cmd('DEL', $JOB_PREFIX . $id);
    my $r2 = get_job($B, $id);
    is($r2->{status}, 200, "$name: answered from the zone");
    same($r2->{content}, $r1->{content}, "$name: the zone's answer is Redis's, byte for byte");
}

# ---------------------------------------------------------------------------
# 2. final states heard on the events channel

my $A = start_nginx(redis => $redis, conf => $CONF);

# event: every worker of A and B is subscribed (to the three channels)
{
    my $nw = () = ($A->worker_pids, $B->worker_pids);
    ok(wait_for(10, sub {
        $nw == grep { /sub=3 / } split /\n/, $redis->cmd('CLIENT', 'LIST', 'TYPE', 'pubsub')
    }), 'every worker is subscribed to the events');
}

sub waiting {
    my ($ng, @w) = @_;
    return wait_for(10, sub {
        !grep({ !$_->sent } @w) && tcp_unread(local => $ng->port) == 0
    });
}

my @heard;    # [ name, id, answer from A's zone, expected ]
for my $c (grep { length $_->[1] <= 4096 } @HOSTILE, @SIZES) {
    my ($what, $text) = @$c;
    my $id = new_id();
    my $name = "event, failed: $what";
    seed($redis, $id, status => 'pending', created_at => $CREATED, version => 1);
    my $w = background_get($A, "/api/jobs/$id?wait=10", timeout => 8);
    waiting($A, $w);
    cmp_ok($redis->cmd('PUBLISH', "$EVENTS:final",
                       "$id failed 4 $CREATED $DONE $text"), '>=', 2,
           "$name: the final state was published");
    my (undef, $st, $wbody) = $w->result;
    is($st, 200, "$name: the waiter is answered");
    my $z = get_job($A, $id);
    is($z->{status}, 200, "$name: a GET after it");
    same($wbody, $z->{content}, "$name: the waiter's answer is the GET's");
    my $want = expected($id, 'failed', undef, $text, $CREATED, $DONE);
    same($z->{content}, $want, "$name: the zone's answer is the contract's");
    # Redis now says so too (Redis said pending when A answered)
    seed($redis, $id, status => 'failed', error => $text, completed_at => $DONE,
         version => 4);
    push @heard, [ $name, $id, $z->{content}, $want ];
}
{
    # a completed one: an event's path must be a canonical path
    my $id = new_id();
    my $path = '/1776/july/04/1200/united-states/pennsylvania/philadelphia/'
             . 'signing-declaration-independence-3f4a';
    seed($redis, $id, status => 'pending', created_at => $CREATED, version => 1);
    my $w = background_get($A, "/api/jobs/$id?wait=10", timeout => 8);
    waiting($A, $w);
    $redis->cmd('PUBLISH', "$EVENTS:final", "$id completed 4 $CREATED $DONE $path");
    my (undef, $st, $wbody) = $w->result;
    my $z = get_job($A, $id);
    same($wbody, $z->{content}, 'event, completed: the waiter\'s answer is the GET\'s');
    seed($redis, $id, status => 'completed', path => $path, completed_at => $DONE,
         version => 4);
    push @heard, [ 'event, completed', $id, $z->{content},
                   expected($id, 'completed', $path, undef, $CREATED, $DONE) ];
}

# ---------------------------------------------------------------------------
# 3. the runner's own outcomes

my $flash = start_flash(delay => 0, key => 'fk');
my $R = start_nginx(redis => $redis, conf => <<"EOF");
    clockchain_zone cc:4m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_flash_attempts 1;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
EOF

my @ran;    # [ name, id, answer from R's zone ]
for my $q ('The signing of the declaration in Zürich',
           '[flash:hostile] markup in the error',
           '[flash:422] an error Flash explains',
           '[flash:500] an error of Flash',
           '[flash:garbage] not JSON',
           '[flash:array] an array',
           '[flash:close] the connection closed',
           '[flash:unsafe] a scene with hostile fields') {
    my $j = created_ok(generate($R, { query => $q }), "runner: '$q' created") or next;
    my $done = wait_job($R, $j->{job_id}, 30) // {};
    like($done->{status} // '', qr/^(completed|failed)$/, "runner: '$q' finished");
    my $z = get_job($R, $j->{job_id});
    push @ran, [ "runner: '$q' ($done->{status})", $j->{job_id}, $z->{content} ];
}

# ---------------------------------------------------------------------------
# the same jobs read from Redis by an nginx that never heard of them

my $C = start_nginx(redis => $redis, conf => $CONF);

for my $h (@heard) {
    my ($name, $id, $zone, $want) = @$h;
    my $r = get_job($C, $id);
    same($zone, $r->{content}, "$name: the zone's answer is Redis's, byte for byte");
    same($r->{content}, $want, "$name: Redis's answer is the contract's");
}
for my $h (@ran) {
    my ($name, $id, $zone) = @$h;
    my $r = get_job($C, $id);
    same($zone, $r->{content}, "$name: the zone's answer is Redis's, byte for byte");
    my $d = contract_ok($r->{content}, $name);
    my $hash = $redis->hash($JOB_PREFIX . $id);
    same($r->{content}, expected($id, $hash->{status}, $hash->{path}, $hash->{error},
                                 $hash->{created_at}, $hash->{completed_at}),
         "$name: Redis's answer is the contract's");
    # and R answers from its zone: the job is gone from Redis
    $redis->cmd('DEL', $JOB_PREFIX . $id);
    my $z = get_job($R, $id);
    is($z->{status}, 200, "$name: R answers without Redis");
    same($z->{content}, $zone, "$name: from its zone, as before");
}

done();
