# Group commit (src/ngx_http_clockchain_commit.c): a worker sends the
# creates that are ready in one turn of its event loop, or while its create
# call is in flight, to Redis as one create.lua call.  Each request must
# still get its own answer, as if it had gone alone: its jobs, its replay,
# its 409 or its 400, never a neighbour's; and Redis must hold exactly the
# jobs of the requests that were answered 200.
#
# To put many requests in one call without timing, both workers are
# stopped (SIGSTOP) while the requests are written on keep-alive
# connections they already hold; when they go on, each finds all of its
# requests readable at once and reads them in one turn.  Redis is stopped
# the same way to hold a call in flight, and INFO commandstats counts the
# calls it ran.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $json = JSON::PP->new->utf8->canonical;
my $redis = start_redis();

# a Redis stopped for a while must not time out the call it holds
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:4m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% timeout=60s;
    clockchain_max_pending 0;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /ping { return 204; }
    }
CONF

my @stopped;
END { kill 'CONT', @stopped if @stopped }

sub stop { push @stopped, @_; stop_processes(@_) }
sub cont { kill 'CONT', @_; my %c = map { $_ => 1 } @_; @stopped = grep { !$c{$_} } @stopped }

###########################################################################
# keep-alive connections, written to by hand

# a response: (status, body, head), or 599 when none came in $secs
sub read_response {
    my ($s, $secs) = @_;
    my $buf = '';
    my $end = time + ($secs // 30);
    my $sel = '';
    vec($sel, fileno $s, 1) = 1;
    while (1) {
        if ($buf =~ /\A(HTTP\/1\.1 (\d{3}) .*?\r\n\r\n)/s) {
            my ($head, $status) = ($1, $2);
            my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
            $len //= 0;
            return ($status, substr($buf, length $head, $len), $head)
                if length($buf) >= length($head) + $len;
        }
        my $left = $end - time;
        last if $left <= 0;
        my $r = $sel;
        last if select($r, undef, undef, $left) <= 0;
        last unless sysread($s, $buf, 65536, length $buf);
    }
    return (599, '', '');
}

# a connection the workers hold, idle between two requests
sub conn {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                  Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    $s->autoflush(1);
    print {$s} "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n";
    my ($status) = read_response($s, 10);
    die "GET /ping: $status\n" unless $status == 204;
    return $s;
}

# a create request's text
sub post {
    my ($path, $body, %h) = @_;
    $body = $json->encode($body) if ref $body;
    my $req = "POST $path HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        . "X-Service-Key: test-key-1\r\nContent-Length: " . length($body) . "\r\n";
    $req .= "$_: $h{$_}\r\n" for sort keys %h;
    return "$req\r\n$body";
}

# the requests written while the workers are stopped: each worker reads
# all of its own in one turn when it goes on
sub at_once {
    my ($conns, $reqs) = @_;
    my @w = $ng->worker_pids;
    my $bytes = 0;
    $bytes += length for @$reqs;
    stop(@w);
    print { $conns->[$_] } $reqs->[$_] for 0 .. $#$reqs;
    # event: every byte waits in the workers' sockets
    wait_for(10, sub { tcp_unread(local => $ng->port) >= $bytes });
    cont(@w);
    # event: nginx has read them all
    return wait_for(10, sub { tcp_unread(local => $ng->port) == 0 });
}

sub create_calls {
    my $st = $redis->cmd('INFO', 'commandstats');
    my $n = 0;
    $n += $1 while $st =~ /^cmdstat_eval(?:sha)?:calls=(\d+)/mg;
    return $n;
}

# { job id => its hash } of every job in Redis
sub jobs_in_redis {
    my %j;
    for my $k (@{ $redis->cmd('KEYS', "${JOB_PREFIX}*") }) {
        (my $id = $k) =~ s/^\Q$JOB_PREFIX\E//;
        $j{$id} = $redis->hash($k);
    }
    return \%j;
}

###########################################################################
# 1. one call, each request its own answer

# each case: the request, and what it must get
my @cases;
for my $i (1 .. 12) {
    my $vis = $i % 3 ? 'private' : 'public';
    push @cases, { req => post('/api/generate',
                               { query => "Group commit plain $i", ($i % 3 ? () : (visibility => $vis)) },
                               ($i % 2 ? ('X-User-Id' => "user-$i") : ())),
                   status => 200, queries => ["Group commit plain $i"],
                   user => $i % 2 ? "user-$i" : 'system', visibility => $vis };
}
for my $b (1 .. 4) {
    my @q = map { "Group commit bulk $b.$_" } 1 .. 3;
    push @cases, { req => post('/api/bulk-generate', { queries => [ map { { query => $_ } } @q ] },
                               'X-Admin-Key' => 'admin-key', 'X-User-Id' => "bulk-$b"),
                   status => 200, queries => \@q, user => "bulk-$b", visibility => 'private',
                   bulk => 1 };
}
# one Idempotency-Key three times, the same request: one set of jobs
for (1 .. 3) {
    push @cases, { req => post('/api/generate', { query => 'Group commit same key' },
                               'Idempotency-Key' => 'gc-same'),
                   status => 200, queries => ['Group commit same key'], user => 'system',
                   visibility => 'private', key => 'gc-same' };
}
for (1 .. 2) {
    push @cases, { req => post('/api/bulk-generate',
                               { queries => [ { query => 'Group commit bulk key 1' },
                                              { query => 'Group commit bulk key 2' } ] },
                               'X-Admin-Key' => 'admin-key', 'Idempotency-Key' => 'gc-bulk-same'),
                   status => 200, queries => ['Group commit bulk key 1', 'Group commit bulk key 2'],
                   user => 'system', visibility => 'private', key => 'gc-bulk-same', bulk => 1 };
}
# one key, two different requests: one of them wins, the other is a 409
for my $x (qw(a b)) {
    push @cases, { req => post('/api/generate', { query => "Group commit clash $x" },
                               'Idempotency-Key' => 'gc-clash'),
                   status => '200|409', queries => ["Group commit clash $x"], user => 'system',
                   visibility => 'private', key => 'gc-clash' };
}
# refused before Redis: they never join a call
push @cases, { req => post('/api/generate', '{"query": "Group commit bad'), status => 400 },
             { req => post('/api/generate', { query => 'ab' }), status => 400 },
             { req => post('/api/generate', { query => 'Group commit bad preset', preset => 'huge' }),
               status => 400 },
             { req => post('/api/bulk-generate', { queries => [ { query => 'Group commit no admin' } ] }),
               status => '401|403' };

my $n = @cases;
my @conns = map { conn() } 1 .. $n;
$redis->cmd('CONFIG', 'RESETSTAT');
ok(at_once(\@conns, [ map { $_->{req} } @cases ]), "1: nginx read the $n requests at once");

for my $i (0 .. $#cases) {
    my ($status, $body) = read_response($conns[$i]);
    $cases[$i]{got} = $status;
    $cases[$i]{body} = eval { $json->decode($body) };
}

my @bad = grep { $_->{got} !~ /^(?:$_->{status})$/ } @cases;
is(scalar @bad, 0, "1: each of the $n requests got its own status")
    or diag(explain [ map { "$_->{got} for " . substr($_->{req}, 0, 60) } @bad ]);

my $calls = create_calls();
ok($calls >= 1 && $calls <= 2,
   "1: the creates went to Redis in $calls create.lua call(s), at most one a worker")
    or diag($redis->cmd('INFO', 'commandstats'), $ng->error_log);

# what each answered request created, as its answer says
my (%answered, @wrong);
for my $c (grep { $_->{got} == 200 } @cases) {
    my @jobs = $c->{bulk} ? @{ $c->{body} // [] } : ($c->{body});
    if (@jobs != @{ $c->{queries} } || grep { ref ne 'HASH' || ($_->{status} // '') ne 'pending' } @jobs) {
        push @wrong, $c;
        next;
    }
    $c->{ids} = [ map { $_->{job_id} } @jobs ];
    for my $k (0 .. $#jobs) {
        my $id = $jobs[$k]{job_id};
        push @wrong, $c if $answered{$id} && !$c->{key};
        $answered{$id} = { query => $c->{queries}[$k], user => $c->{user},
                           visibility => $c->{visibility} };
    }
}
is(scalar @wrong, 0, '1: every 200 answers its own pending jobs, one per query, none twice');

my $in = jobs_in_redis();
is_deeply([ sort keys %$in ], [ sort keys %answered ],
          '1: Redis holds exactly the jobs the 200s answered');
is_deeply({ map { $_ => { query => $in->{$_}{query}, user => $in->{$_}{created_by},
                          visibility => $in->{$_}{visibility} } } keys %$in },
          \%answered, "1: each job has its own request's query, creator and visibility");
is($redis->cmd('ZCARD', $QUEUE_KEY), scalar keys %answered, '1: each is queued once');

for my $key (qw(gc-same gc-bulk-same)) {
    my @same = grep { ($_->{key} // '') eq $key } @cases;
    my %sets = map { join(',', @{ $_->{ids} // [] }) => 1 } @same;
    is(scalar keys %sets, 1, "1: the requests with key $key were all answered the same jobs");
    is($redis->cmd('HGET', "clockchain:{cc}:v1:idem:$key", 'jobs'), (keys %sets)[0],
       "1: ... the jobs the key holds");
}
my @clash = sort map { $_->{got} } grep { ($_->{key} // '') eq 'gc-clash' } @cases;
is("@clash", '200 409', '1: a key with two different requests: one 200, one 409');
my ($winner) = grep { ($_->{key} // '') eq 'gc-clash' && $_->{got} == 200 } @cases;
is($redis->cmd('HGET', 'clockchain:{cc}:v1:idem:gc-clash', 'jobs'),
   $winner ? $winner->{ids}[0] : 'none', '1: ... and the key holds the winner\'s job');

# the answers are the jobs as GET sees them
my $one = (grep { $_->{got} == 200 && !$_->{bulk} } @cases)[0];
is_deeply(json_body(get_job($ng, $one->{ids}[0])), $one->{body},
          '1: GET answers a created job as its POST did');

close $_ for @conns;

###########################################################################
# 2. Redis down with a call in flight and creates queued behind it

$redis->cmd('FLUSHALL');
# every connection to Redis, the workers' and this test's own
sub redis_clients { scalar(() = $redis->cmd('CLIENT', 'LIST') =~ /^id=/mg) }
my $clients = redis_clients();
my @wave1 = map { post('/api/generate', { query => "Group commit lost $_" }) } 1 .. 10;
push @wave1, post('/api/bulk-generate', { queries => [ map { { query => "Group commit lost bulk $_" } } 1 .. 3 ] },
                  'X-Admin-Key' => 'admin-key');
push @wave1, post('/api/generate', { query => 'Group commit lost key' }, 'Idempotency-Key' => 'gc-lost');
my @wave2 = map { post('/api/generate', { query => "Group commit queued $_" }) } 1 .. 6;
@conns = map { conn() } 1 .. @wave1 + @wave2;

stop($redis->pid);
ok(at_once([ @conns[0 .. $#wave1] ], \@wave1), '2: nginx read the first creates at once');
# event: their calls reached Redis, which holds them unread
ok(wait_for(10, sub { tcp_unread(local => $redis->port) > 0 }),
   '2: their calls are in flight, Redis holds them');
print { $conns[@wave1 + $_] } $wave2[$_] for 0 .. $#wave2;
ok(wait_for(10, sub { tcp_unread(local => $ng->port) == 0 }),
   '2: nginx read the next creates, which wait for the call in flight');

# Redis goes away without having read a byte of them
kill 'KILL', $redis->pid;
cont($redis->pid);
waitpid($redis->pid, 0);

my @got = map { [ read_response($_) ] } @conns;
is(scalar(grep { $_->[0] == 503 } @got), scalar @got,
   '2: every request of the call, and every one queued behind it, answered 503');
is(scalar(grep { $_->[2] =~ /^Retry-After: 2\r$/m
                 && $_->[1] =~ /^\{"detail":"Job store unavailable: [^"]*retry later"\}$/ } @got),
   scalar @got, '2: ... each with Retry-After and a detail that says to retry');

$redis->start;
is(job_count($redis), 0, '2: Redis, back from its AOF, has none of their jobs');
is($redis->cmd('DBSIZE'), 0, '2: ... nor anything else of theirs');
ok(wait_for(15, sub { generate($ng, { query => 'Group commit after' })->{status} == 200 }),
   '2: nginx creates again once Redis is back');
# each worker, not only the one that answered: one still waiting to
# connect again would answer the next section's creates 503
ok(wait_for(15, sub { redis_clients() >= $clients }),
   "2: both workers are connected to Redis again ($clients connections)");
close $_ for @conns;

###########################################################################
# 3. clients that leave while their create is in flight or queued

$redis->cmd('FLUSHALL');
my @q1 = map { "Group commit left $_" } 1 .. 8;
my @q2 = map { "Group commit left later $_" } 1 .. 8;
@conns = map { conn() } 1 .. @q1 + @q2;

stop($redis->pid);
ok(at_once([ @conns[0 .. $#q1] ], [ map { post('/api/generate', { query => $_ }) } @q1 ]),
   '3: nginx read the first creates at once');
ok(wait_for(10, sub { tcp_unread(local => $redis->port) > 0 }),
   '3: their call is in flight, Redis holds it');
print { $conns[@q1 + $_] } post('/api/generate', { query => $q2[$_] }) for 0 .. $#q2;
ok(wait_for(10, sub { tcp_unread(local => $ng->port) == 0 }),
   '3: nginx read the next creates, queued behind the call');

# half of each wave leaves
my @left = (0 .. 3, @q1 .. @q1 + 3);
close $conns[$_] for @left;
cont($redis->pid);

my %gone = map { $_ => 1 } @left;
my @stay = grep { !$gone{$_} } 0 .. $#conns;
my @all = (@q1, @q2);
my @stayed = map { [ read_response($conns[$_]) ] } @stay;
is(scalar(grep { $_->[0] == 200 } @stayed), scalar @stay,
   '3: the clients that stayed got 200')
    or diag(explain([ map { "$_->[0] $_->[1]" } @stayed ]), $ng->error_log);
is_deeply([ map { ($json->decode($_->[1]) // {})->{status} } @stayed ], [ ('pending') x @stay ],
          '3: ... each with its pending job');
my %by_query = map { $_->{query} => $_ } values %{ jobs_in_redis() };
is_deeply([ map { ($by_query{ $all[$_] } // {})->{id} } @stay ],
          [ map { $json->decode($_->[1])->{job_id} } @stayed ],
          '3: ... which Redis holds under the query each sent');
# nginx had read every request; a client that left is not told, but its
# request was taken, as a single POST's was
is_deeply([ sort keys %by_query ], [ sort @all ],
          '3: Redis holds one job for each request nginx read, the leavers\' too, none twice');
close $conns[$_] for @stay;

created_ok(generate($ng, { query => 'Group commit goes on' }), '3: the workers go on');

done();
