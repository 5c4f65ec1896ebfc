# The writers' workflow (issue 16, item 3): the original's
# tests/test_propose_challenge.py as HTTP calls.  POST /api/moments/propose,
# and on a moment (the ninth segment after its eight) challenge, verify,
# reconcile, challenges and history, with the original's statuses
# (proposed, challenged, verified, alternative), challenged_by and its
# "challenges" edges.
#
# Ported with canonical paths: the original's ids ("/test/propose/basic")
# are not moments' paths here (eight segments, /year/month/day/HHMM/
# country/region/city/slug); each test's id becomes one, its slug the
# original's last words.  The place and time fields of its payload
# ("Japan", day 6) are display forms; the path decides them here.
# Not ported: test_list_moments_filter_by_status (GET /api/moments?status=)
# is a filter of the list, not of this workflow; the list here has no
# status filter yet.
# Beyond the original: two challenges of one moment sent at once both
# count (one step each in Redis); bad bodies are 400 and write nothing;
# a status change reaches a cached public answer.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Clockchain::Test;

my $redis = start_redis();
my $P = 'clockchain:{cc}:v1:';
my $ADMIN = 'test-admin-token-propose';

my $ng = start_nginx(redis => $redis, files => { 'admin.token' => "$ADMIN\n" },
                     conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_admin_token_file %%PREFIX%%/admin.token;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        rewrite ^/api/v1/(.*)\$ /api/\$1 last;
        location = /api/agents { clockchain_agents; }
        location /api/agents/ { clockchain_agents; }
        location /api/moments/ { clockchain_moments; }
        location /api/graph/neighbors/ { clockchain_graph_neighbors; }
    }
CONF

sub call {
    my ($method, $path, %o) = @_;
    my %h = ('X-Service-Key' => 'test-key-1');
    $h{Authorization} = "Bearer $o{token}" if defined $o{token};
    return http($method => $ng->url($path), headers => \%h,
                exists $o{json} ? (json => $o{json}) : (),
                exists $o{body} ? (body => $o{body}, headers => { %h, 'Content-Type' => 'application/json' }) : ());
}

my $reg = call(POST => '/api/v1/agents/register', token => $ADMIN,
               json => { agent_name => 'test-writer', permissions => 'write' });
is($reg->{status}, 200, 'writer_client: a writer registered');
my $WRITER = json_body($reg)->{token};
my $OTHER = json_body(call(POST => '/api/agents/register', token => $ADMIN,
                           json => { agent_name => 'other-writer' }))->{token};

# the original's ids as canonical paths
sub id { "/1945/august/06/0815/japan/hiroshima/hiroshima/$_[0]" }
sub url { '/api/v1/moments' . id($_[0]) . ($_[1] ? "/$_[1]" : '') }

sub payload {
    my ($slug, %kw) = @_;
    my $name = $kw{name} // 'Test Moment';
    return {
        id => id($slug), name => $name,
        one_liner => $kw{one_liner} // "A test moment: $name",
        year => 1945, month => 'august', month_num => 8, day => 6,
        country => 'Japan', region => 'Hiroshima', city => 'Hiroshima',
        visibility => $kw{visibility} // 'public', tags => ['test'],
        figures => [], source_type => 'historical',
    };
}

sub propose { call(POST => '/api/v1/moments/propose', token => $WRITER, json => payload(@_)) }
sub challenge {
    my ($orig, $comp, %o) = @_;
    return call(POST => url($orig, 'challenge'), token => $o{token} // $WRITER,
                json => { competing_moment => payload($comp, %o), reason => $o{reason} // 'test' });
}
sub moment { json_body(call(GET => url($_[0]))) // {} }

# ---------- TestPropose

my $r = propose('basic');
is($r->{status}, 200, 'test_propose_creates_moment: 200');
my $d = json_body($r);
is($d->{path}, id('basic'), 'path');
is($d->{status}, 'proposed', 'status proposed');
is($d->{proposed_by}, 'test-writer', 'proposed_by the writer');
is($d->{name}, 'Test Moment', 'name');

propose('status-check');
my $m = moment('status-check');
is($m->{status}, 'proposed', 'test_propose_sets_proposed_status: the moment is proposed');
is($m->{proposed_by}, 'test-writer', 'and proposed_by the writer');
is($m->{country}, 'japan', 'its place is its path\'s');
is($m->{visibility}, 'public', 'a proposal is public unless it says otherwise');
is($redis->cmd('ZSCORE', "${P}idx:time", id('status-check')), '194508060815',
   'indexed as a completion\'s node is (idx:time)');

# a proposal is linked as a Flash completion or an ingest links its node
# (lib/node.lua; the original's propose calls add_node), and stays proposed
my $pearl = '/1941/december/07/0755/united-states/hawaii/pearl-harbor/attack';
is(call(POST => '/api/moments/propose', token => $WRITER,
        json => { %{ payload('x') }, id => $pearl, name => 'Pearl Harbor' })->{status},
   200, 'a proposal four years before');
is(propose('linked', name => 'Linked Moment')->{status}, 200, 'a proposal on the day of others');
my %nb = map { ("$_->{path} $_->{edge_type}" => $_) }
         @{ json_body(call(GET => '/api/graph/neighbors' . id('linked'))) // [] };
ok($nb{id('basic') . ' contemporaneous'}, 'auto-edge: contemporaneous, the same day');
is($nb{id('basic') . ' contemporaneous'}{created_by}, 'auto', '... created by auto');
ok($nb{id('basic') . ' same_location'}, 'auto-edge: same_location');
ok($nb{id('basic') . ' thematic'}, 'auto-edge: thematic, the tag test');
ok($nb{"$pearl same_era"}, 'auto-edge: same_era, within ten years');
ok($nb{"$pearl follows"}, 'auto-edge: follows the earlier one');
%nb = map { ("$_->{path} $_->{edge_type}" => 1) }
      @{ json_body(call(GET => '/api/graph/neighbors' . id('basic'))) // [] };
ok($nb{id('linked') . ' contemporaneous'}, 'written both ways: the older proposal sees it');
$m = moment('linked');
is($m->{status}, 'proposed', 'a linked proposal is still proposed');
is($m->{proposed_by}, 'test-writer', 'by its writer');
is($redis->cmd('HGET', "${P}node:" . id('linked'), 'challenged_by'), '[]',
   'an empty list is stored as a list');
is_deeply($m->{challenged_by}, [], '... and answered as one');

is(propose('dup')->{status}, 200, 'test_propose_duplicate_fails: first 200');
$r = propose('dup');
is($r->{status}, 409, 'second 409');
like(json_body($r)->{detail}, qr/already exists\. Use challenge/, 'saying to challenge');

propose('target');
my $p = payload('with-edge');
$p->{edges} = [ { source => id('with-edge'), target => id('target'), type => 'causes', weight => 0.9 } ];
$r = call(POST => '/api/moments/propose', token => $WRITER, json => $p);
is($r->{status}, 200, 'test_propose_with_edges: 200');
my $edge = decode_json($redis->cmd('HGET', "${P}edges:" . id('with-edge'), 'causes|' . id('target')) // '{}');
is($edge->{created_by}, 'test-writer', 'the edge is stored, created by the writer');
is($edge->{weight}, 0.9, 'with its weight');

$r = call(POST => '/api/moments/propose', json => payload('noauth'));
is($r->{status}, 401, 'test_propose_requires_auth: 401 without a token');
is($r->{headers}{'www-authenticate'}, 'Bearer', 'WWW-Authenticate: Bearer');
is($redis->cmd('EXISTS', "${P}node:" . id('noauth')), 0, 'and nothing written');

# bad bodies: 400 naming what is wrong, nothing written
for my $bad (
    [ '{"id": ', qr/Invalid body/ ],
    [ encode_json({ %{ payload('bad1') }, id => '/test/propose/basic' }), qr/body\.id .* is not a moment's path/ ],
    [ encode_json({ %{ payload('bad2') }, edges => [ { target => id('target'), type => 'likes' } ] }), qr/edge 0: "type" must be one of the twelve/ ],
    [ encode_json({ %{ payload('bad3') }, edges => [ { source => id('target'), target => id('basic'), type => 'causes' } ] }), qr/body\.edges\[0\]\.source must be the proposed moment/ ],
    [ encode_json({ %{ payload('bad4') }, visibility => 'secret' }), qr/body\.visibility/ ],
    [ encode_json({ %{ payload('bad5') }, name => 'x' x 2001 }), qr/body\.name/ ],
) {
    my $before = $redis->cmd('DBSIZE');
    $r = call(POST => '/api/moments/propose', token => $WRITER, body => $bad->[0]);
    is($r->{status}, 400, 'a bad proposal: 400');
    like(json_body($r)->{detail} // '', $bad->[1], 'naming what is wrong');
    is($redis->cmd('DBSIZE'), $before, 'nothing written');
}
$r = call(GET => '/api/moments/propose', token => $WRITER);
is($r->{status}, 405, 'GET .../propose: 405');

# ---------- TestChallenge

propose('original', name => 'Original Moment');
$r = challenge('original', 'competing', name => 'Competing Moment',
               one_liner => 'A better version', reason => 'This version has better sources');
is($r->{status}, 200, 'test_challenge_moment: 200');
$d = json_body($r);
is($d->{original_moment_id}, id('original'), 'original_moment_id');
is($d->{original_status}, 'challenged', 'original_status');
is($d->{competing_moment_id}, id('competing'), 'competing_moment_id');
is($d->{competing_status}, 'proposed', 'competing_status');
is($d->{challenged_by}, 'test-writer', 'challenged_by');
$edge = decode_json($redis->cmd('HGET', "${P}edges:" . id('competing'), 'challenges|' . id('original')) // '{}');
is($edge->{description}, 'This version has better sources', 'a "challenges" edge, competing -> original, with the reason');
my %cnb = map { ("$_->{path} $_->{edge_type}" => 1) }
          @{ json_body(call(GET => '/api/graph/neighbors' . id('competing'))) // [] };
ok($cnb{id('original') . ' contemporaneous'}, 'the competing moment is linked too (auto-edges)');
ok($cnb{id('original') . ' challenges'}, 'beside its "challenges" edge');

propose('status-orig');
challenge('status-orig', 'status-comp');
is(moment('status-orig')->{status}, 'challenged', 'test_challenge_updates_original_status');

propose('cb-orig');
challenge('cb-orig', 'cb-comp');
ok((grep { $_ eq 'test-writer' } @{ moment('cb-orig')->{challenged_by} // [] }),
   'test_challenge_records_challenged_by');

$r = challenge('nonexistent', 'ghost-comp');
is($r->{status}, 404, 'test_challenge_nonexistent_fails: 404');
is($redis->cmd('EXISTS', "${P}node:" . id('ghost-comp')), 0, 'and the competing moment is not written');

propose('alt-orig');
challenge('alt-orig', 'alt-comp');
call(POST => url('alt-orig', 'reconcile'), token => $ADMIN,
     json => { winner_id => id('alt-orig'), loser_id => id('alt-comp') });
$r = challenge('alt-comp', 'alt-comp2');
is($r->{status}, 400, 'test_challenge_alternative_fails: 400');
is(json_body($r)->{detail}, 'Cannot challenge an alternative moment', 'saying why');
is($redis->cmd('EXISTS', "${P}node:" . id('alt-comp2')), 0, 'nothing written');

$r = challenge('original', 'original');
is($r->{status}, 400, 'a moment cannot challenge itself: 400');
$r = challenge('original', 'competing');
is($r->{status}, 409, 'a competing moment that exists: 409');

# two challenges of one moment at once, by two agents: both count
propose('race-orig');
my @bg = map { my ($slug, $tok) = @$_;
               background(sub { (challenge('race-orig', $slug, token => $tok)->{status}) }) }
         ([ 'race-a', $WRITER ], [ 'race-b', $OTHER ]);
my @st = map { ($_->result)[0] } @bg;
is_deeply([ sort @st ], [ 200, 200 ], 'two challenges at once: both 200');
is_deeply([ sort @{ moment('race-orig')->{challenged_by} } ], [ 'other-writer', 'test-writer' ],
          'challenged_by has both agents');
is(json_body(call(GET => url('race-orig', 'challenges')))->{count}, 2, 'and both challenges are listed');

# ---------- TestVerify

propose('verify-basic');
$r = call(POST => url('verify-basic', 'verify'), token => $ADMIN);
is($r->{status}, 200, 'test_verify_moment: 200');
$d = json_body($r);
is($d->{status}, 'verified', 'status verified');
is($d->{verified_by}, 'admin', 'verified_by admin');
is($d->{moment_id}, id('verify-basic'), 'moment_id');
is(moment('verify-basic')->{status}, 'verified', 'test_verify_updates_status');
$r = call(POST => url('verify-basic', 'verify'), token => $ADMIN);
is($r->{status}, 400, 'test_verify_already_verified_fails: 400');
is(call(POST => url('verify-ghost', 'verify'), token => $ADMIN)->{status}, 404,
   'test_verify_nonexistent_fails: 404');
propose('admin-only');
$r = call(POST => url('admin-only', 'verify'), token => $WRITER);
is($r->{status}, 403, 'test_verify_requires_admin: 403');
is(moment('admin-only')->{status}, 'proposed', 'and the status is unchanged');

# ---------- TestReconcile

propose('rec-orig');
challenge('rec-orig', 'rec-comp', reason => 'dispute');
$r = call(POST => url('rec-orig', 'reconcile'), token => $ADMIN,
          json => { winner_id => id('rec-orig'), loser_id => id('rec-comp') });
is($r->{status}, 200, 'test_reconcile_moments: 200');
$d = json_body($r);
is($d->{winner_status}, 'verified', 'winner_status');
is($d->{loser_status}, 'alternative', 'loser_status');
is($d->{reconciled_by}, 'admin', 'reconciled_by');

propose('s-orig');
challenge('s-orig', 's-comp');
call(POST => url('s-comp', 'reconcile'), token => $ADMIN,
     json => { winner_id => id('s-comp'), loser_id => id('s-orig') });
is(moment('s-comp')->{status}, 'verified', 'test_reconcile_sets_correct_statuses: winner verified');
is(moment('s-orig')->{status}, 'alternative', 'loser alternative');

propose('m1');
propose('m2');
$r = call(POST => url('unrelated', 'reconcile'), token => $ADMIN,
          json => { winner_id => id('m1'), loser_id => id('m2') });
is($r->{status}, 400, 'test_reconcile_path_must_match: 400');
is(moment('m1')->{status}, 'proposed', 'and nothing changed');

propose('admin-a');
challenge('admin-a', 'admin-b');
$r = call(POST => url('admin-a', 'reconcile'), token => $WRITER,
          json => { winner_id => id('admin-a'), loser_id => id('admin-b') });
is($r->{status}, 403, 'test_reconcile_requires_admin: 403');
$r = call(POST => url('m1', 'reconcile'), token => $ADMIN,
          json => { winner_id => id('m1'), loser_id => id('nowhere') });
is($r->{status}, 404, 'reconcile with a loser that does not exist: 404');
like(json_body($r)->{detail}, qr/Loser moment/, 'naming the loser');
is(moment('m1')->{status}, 'proposed', 'and the winner is not verified alone');

# ---------- TestQueryEnhancements (but the list's status filter)

propose('ch-orig');
challenge('ch-orig', 'ch-comp', reason => 'evidence');
$r = call(GET => url('ch-orig', 'challenges'));
is($r->{status}, 200, 'test_get_challenges_endpoint: 200');
$d = json_body($r);
is($d->{count}, 1, 'count 1');
is($d->{challenges}[0]{path}, id('ch-comp'), 'the challenger');
is($d->{moment_id}, id('ch-orig'), 'moment_id');
is(call(GET => url('ch-ghost', 'challenges'))->{status}, 404, 'challenges of no moment: 404');

propose('hist');
$r = call(GET => url('hist', 'history'));
is($r->{status}, 200, 'test_get_history_endpoint: 200');
$d = json_body($r);
is($d->{moment_id}, id('hist'), 'moment_id');
is($d->{status}, 'proposed', 'status');
is($d->{history}[0]{action}, 'proposed', 'first entry: proposed');
is($d->{history}[0]{agent}, 'test-writer', 'by the writer');
is($d->{history}[0]{details}, 'Proposed by test-writer', 'details');

propose('hist-ch-orig');
challenge('hist-ch-orig', 'hist-ch-comp', reason => 'better data');
$d = json_body(call(GET => url('hist-ch-orig', 'history')));
is($d->{status}, 'challenged', 'test_history_shows_challenge: challenged');
is_deeply([ map { $_->{action} } @{ $d->{history} } ], [ 'proposed', 'challenged' ],
          'proposed, then challenged');
is($d->{history}[1]{details}, 'better data', 'with the reason');
call(POST => url('hist-ch-orig', 'verify'), token => $ADMIN);
$d = json_body(call(GET => url('hist-ch-orig', 'history')));
is($d->{history}[-1]{details}, 'Status set to verified (challenged by: test-writer)',
   'a verified moment\'s history ends with it');
is(call(POST => url('hist', 'history'), token => $WRITER)->{status}, 405, 'POST .../history: 405');

# ---------- TestStateMachine

propose('pv');
is(moment('pv')->{status}, 'proposed', 'test_full_lifecycle_propose_verify: proposed');
call(POST => url('pv', 'verify'), token => $ADMIN);
is(moment('pv')->{status}, 'verified', 'then verified');

propose('pcr-orig');
challenge('pcr-orig', 'pcr-comp');
is(moment('pcr-orig')->{status}, 'challenged', 'test_full_lifecycle_propose_challenge_reconcile: challenged');
is(moment('pcr-comp')->{status}, 'proposed', 'the competing one proposed');
call(POST => url('pcr-comp', 'reconcile'), token => $ADMIN,
     json => { winner_id => id('pcr-comp'), loser_id => id('pcr-orig') });
is(moment('pcr-orig')->{status}, 'alternative', 'the original alternative');
is(moment('pcr-comp')->{status}, 'verified', 'the competing one verified');

propose('cv-orig');
challenge('cv-orig', 'cv-comp');
is(call(POST => url('cv-orig', 'verify'), token => $ADMIN)->{status}, 200,
   'test_challenged_moment_can_be_verified: 200');
is(moment('cv-orig')->{status}, 'verified', 'verified');

# a status change reaches the public's cached answer (the zone)
propose('cached');
my $pub = sub { json_body(http(GET => $ng->url(url('cached')))) // {} };
is($pub->()->{status}, 'proposed', 'the public reads it proposed (and the zone keeps it)');
is($pub->()->{status}, 'proposed', 'again, from the zone');
call(POST => url('cached', 'verify'), token => $ADMIN);
is($pub->()->{status}, 'verified', 'verified: the public\'s next read says so');

done();
