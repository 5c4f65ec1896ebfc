# Hostile input through the real nginx, the built module and a real Redis:
# broken and malicious JSON bodies, oversized and ambiguous headers, ids and
# moment paths that try to escape, malformed chunked bodies, slow clients.
# Every case is refused with a clear 4xx (the module's JSON {"detail"} where
# the module answers, nginx's own HTML page where nginx refuses the request
# before any module runs) and creates nothing in Redis; at the end the same
# workers are alive and error.log holds no [alert], [emerg] or crash.
#
# Requests are written byte for byte on raw sockets (HTTP::Tiny refuses to
# send most of them); every request says "Connection: close" and is read to
# the server's close.
#
# Where the contract names the code (docs/api.md: 400 malformed JSON, a body
# that is not an object, a wrong field, a header given twice; 401 key; 404
# id; 405; 413 clockchain_max_body_size; 415 Content-Type) the case asserts
# it.  The rest were chosen by observing nginx 1.22 / jansson 2.14, each
# said where it is: nginx's own 400/404/413/414 for what it refuses before
# the module runs, jansson's refusals (a BOM, a number it cannot hold, even
# in an unknown field) as the contract's 400 "Invalid JSON body", an absent
# Content-Length read as an empty body (400, not 411), and a client_body_
# timeout closing without an answer (logged as 408).
use strict;
use warnings;
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use Clockchain::Test;

my $redis = start_redis();

# client_body_timeout / client_header_timeout short for the slow clients;
# /big/* let a 10 MB body reach the JSON parser, /wide/* let it reach the
# module's own size check (clockchain_max_body_size, default 256k) instead
# of nginx's client_max_body_size (1m)
my $LOCATIONS = <<'EOF';
        location /api/moments/ { clockchain_moments; }
        location = /api/search { clockchain_search; }
        location = /api/browse { clockchain_browse; }
        location /api/browse/  { clockchain_browse; }
        location = /big/generate {
            client_max_body_size 24m;
            clockchain_max_body_size 16m;
            clockchain_generate;
        }
        location = /big/bulk-generate {
            client_max_body_size 24m;
            clockchain_max_body_size 16m;
            clockchain_bulk_generate;
        }
        location = /wide/generate {
            client_max_body_size 24m;
            clockchain_generate;
        }
EOF
my $ng = start_nginx(redis => $redis, conf => <<"EOF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        client_body_timeout 1s;
        client_header_timeout 2s;
        $JOBS_LOCATIONS
$LOCATIONS    }
EOF
my @WORKERS = $ng->worker_pids;
my $JSON = JSON::PP->new->utf8->canonical;

###########################################################################
# raw HTTP

# exchange($port, $bytes, $secs) -> ($response, $closed): writes $bytes while
# reading whatever the server answers (it may answer, and stop reading, long
# before a 10 MB body is written), until the server closes or $secs pass
sub exchange {
    my ($port, $bytes, $secs) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    $s->blocking(0);
    my ($buf, $closed, $off) = ('', 0, 0);
    my $end = time + ($secs // 5);
    while (time < $end) {
        my ($r, $w) = ('', '');
        vec($r, fileno $s, 1) = 1;
        vec($w, fileno $s, 1) = 1 if defined $off && $off < length $bytes;
        my $n = select($r, $w, undef, $end - time);
        last if $n < 0;
        next if $n == 0;
        if (vec($r, fileno $s, 1)) {
            my $got = sysread($s, $buf, 1 << 16, length $buf);
            if (defined $got && $got == 0) { $closed = 1; last }
            if (!defined $got && !$!{EAGAIN}) { $closed = 1; last }
        }
        if (defined $off && vec($w, fileno $s, 1)) {
            my $put = syswrite($s, $bytes, 1 << 16, $off);
            if (defined $put) { $off += $put }
            elsif (!$!{EAGAIN}) { undef $off }    # EPIPE: the server is done
        }
    }
    close $s;
    return ($buf, $closed);
}

# parse a raw response into what HTTP::Tiny gives (status, lowercase
# headers, content), so that is_error() and json_body() work on it
sub parse_response {
    my ($raw, $closed) = @_;
    my %res = (status => 0, headers => {}, content => '', closed => $closed,
               raw => $raw);
    return \%res unless $raw =~ m{\AHTTP/1\.[01] (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n(.*)\z}s;
    $res{status} = $1;
    my ($head, $body) = ($2, $3);
    for my $line (split /\r\n/, $head) {
        my ($k, $v) = $line =~ /^([^:]+):\s*(.*)$/ or next;
        $k = lc $k;
        $res{headers}{$k} = exists $res{headers}{$k} ? "$res{headers}{$k}, $v" : $v;
    }
    $body = substr($body, 0, $res{headers}{'content-length'})
        if defined $res{headers}{'content-length'}
           && $res{headers}{'content-length'} =~ /^\d+$/;
    $res{content} = $body;
    return \%res;
}

sub send_raw {
    my ($req, $secs) = @_;
    return parse_response(exchange($ng->port, $req, $secs));
}

# request(method, path, headers => "Name: v\r\n...", body => bytes,
#         length => 0 to send no Content-Length)
sub request {
    my ($method, $path, %o) = @_;
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            . ($o{headers} // '');
    $req .= 'Content-Length: ' . length($o{body}) . "\r\n"
        if defined $o{body} && ($o{length} // 1);
    return send_raw($req . "\r\n" . ($o{body} // ''), $o{secs});
}

my $GEN_HDRS = "X-Service-Key: test-key-1\r\nContent-Type: application/json\r\n";
my $BULK_HDRS = $GEN_HDRS . "X-Admin-Key: admin-key\r\n";
my %HDRS = (generate => $GEN_HDRS, bulk => $BULK_HDRS);
my %PATH = (generate => '/api/generate', bulk => '/api/bulk-generate');

sub post_body {
    my ($ep, $body, %o) = @_;
    return request(POST => $o{path} // $PATH{$ep}, headers => $HDRS{$ep},
                   body => $body, secs => $o{secs});
}

# refused($res, $status, $detail, $name): $detail 'nginx' means nginx's own
# HTML error page (the request never reached the module); otherwise the
# module's JSON error (is_error: status, application/json, {"detail"})
sub refused {
    my ($res, $status, $detail, $name) = @_;
    if (defined $detail && !ref $detail && $detail eq 'nginx') {
        subtest "$name -> $status from nginx" => sub {
            is($res->{status}, $status, "status $status")
                or diag('response: ' . substr($res->{raw} // '', 0, 300));
            like($res->{headers}{'content-type'} // '', qr{^text/html},
                 "nginx's own error page: refused before the module ran");
        };
        return;
    }
    is_error($res, $status, $detail, "$name -> $status");
}

# case($name, $status, $detail, sub { ... }): the request, its answer, and
# nothing created in Redis
sub case {
    my ($name, $status, $detail, $cb) = @_;
    my $res = no_job_created($redis, $name, $cb);
    refused($res, $status, $detail, $name);
    return $res;
}

# a real job, for the id cases, made before the hostile ones start
my $real = created_ok(generate($ng, { query => 'The real job for the id cases' }),
                      'a real job');
my $ID = $real ? $real->{job_id} : '8b0f2c1e-3a4d-4e5f-9a6b-7c8d9e0f1a2b';
my $BASELINE = job_count($redis);

###########################################################################
# bodies, to POST /api/generate and POST /api/bulk-generate
#
# doc:   the same bytes are the whole body of both
# entry: the whole body of generate, and queries[1] of a bulk whose
#        queries[0] is fine (all or nothing: the good entry is not created)
# json:  jansson refuses the document: "Invalid JSON body: ..." (+ regex)
# field: the document parses; the detail names the field (bulk: queries[1].)

my $Q = '"Battle of Hastings"';
my $JSON_ERR = qr/^Invalid JSON body: /;
my $NOT_OBJECT = qr/^(Invalid JSON body: |Request body must be a JSON object)/;
(my $utf16 = '{"query": "Battle of Hastings"}') =~ s/(.)/$1\0/gs;

my @BODIES = (
    # --- empty and truncated
    { name => 'empty body',                 doc => '',              json => qr/expected/ },
    { name => 'white space only',           doc => " \r\n\t ",      json => qr/expected/ },
    { name => 'truncated after {',          doc => '{',             json => qr// },
    { name => 'truncated in a key',         doc => '{"que',         json => qr/premature end/ },
    { name => 'truncated after a key',      doc => '{"query"',      json => qr// },
    { name => 'truncated after the colon',  doc => '{"query":',     json => qr// },
    { name => 'truncated in the string',    doc => '{"query": "Battle of Hast', json => qr/premature end/ },
    { name => 'truncated after the string', doc => "{\"query\": $Q", json => qr// },
    { name => 'truncated after a comma',    doc => "{\"query\": $Q,", json => qr// },
    { name => 'truncated in an escape',     doc => '{"query": "Battle \\', json => qr/escape/ },
    { name => 'truncated in a \\u escape',  doc => '{"query": "Battle \u00', json => qr/escape/ },
    { name => 'truncated in a UTF-8 sequence', doc => "{\"query\": \"Battle \xe2\x82", json => qr/decode byte 0xe2/ },

    # --- nesting: jansson stops at depth 2048 instead of recursing on
    { name => '100000 [',                   doc => '[' x 100_000,   json => qr/maximum parsing depth/ },
    { name => '50000 nested objects',       doc => '{"a":' x 50_000, json => qr/maximum parsing depth/ },
    { name => '100000 [ as the query',      entry => '{"query": ' . ('[' x 100_000) . '}',
      json => qr/maximum parsing depth/ },
    # under the limit it parses (and is freed): only the query is missing
    { name => 'depth 2000, closed',         doc => '{"x": ' . ('[' x 2000) . (']' x 2000) . '}',
      detail => qr/^query: field required/, bulk_detail => qr/^queries: field required/ },

    # --- NUL
    { name => 'raw NUL in the query',       entry => "{\"query\": \"Battle\0of Hastings\"}",
      json => qr/control character 0x0/ },
    { name => '\\u0000 in the query',       entry => '{"query": "Battle\u0000of Hastings"}',
      json => qr/\\u0000 is not allowed/ },
    { name => 'raw NUL after the object',   doc => "{\"query\": $Q}\0", json => qr/end of file expected/ },

    # --- invalid UTF-8 and lone surrogates (the query must stay valid UTF-8)
    { name => 'overlong "/" (c0 af)',       entry => "{\"query\": \"Battle \xc0\xaf of Hastings\"}",
      json => qr/decode byte 0xc0/ },
    { name => 'overlong NUL (e0 80 80)',    entry => "{\"query\": \"Battle \xe0\x80\x80 of Hastings\"}",
      json => qr/decode byte 0xe0/ },
    { name => 'lone continuation byte',     entry => "{\"query\": \"Battle \x80 of Hastings\"}",
      json => qr/decode byte 0x80/ },
    { name => 'surrogate U+D800 as UTF-8',  entry => "{\"query\": \"Battle \xed\xa0\x80 of Hastings\"}",
      json => qr/decode byte 0xed/ },
    { name => 'above U+10FFFF (f4 90 80 80)', entry => "{\"query\": \"Battle \xf4\x90\x80\x80 of Hastings\"}",
      json => qr/decode byte 0xf4/ },
    { name => 'byte ff',                    entry => "{\"query\": \"Battle \xff of Hastings\"}",
      json => qr/decode byte 0xff/ },
    { name => 'lone \\ud800 escape',        entry => '{"query": "Battle \ud800 of Hastings"}',
      json => qr/invalid Unicode/ },
    { name => 'lone \\udc00 escape',        entry => '{"query": "Battle \udc00 of Hastings"}',
      json => qr/invalid Unicode/ },
    { name => '\\ud800 then \\u0041',       entry => '{"query": "Battle \ud800\u0041 of Hastings"}',
      json => qr/invalid Unicode/ },
    # RFC 8259 lets a parser ignore a BOM; jansson does not (observed)
    { name => 'BOM before the object',      doc => "\xef\xbb\xbf{\"query\": $Q}", json => qr/expected/ },
    { name => 'UTF-16LE body with BOM',     doc => "\xff\xfe$utf16", json => qr// },

    # --- duplicate keys: no "last one wins" (nor first)
    { name => 'query twice',                entry => "{\"query\": \"ab\", \"query\": $Q}",
      json => qr/duplicate object key/ },
    { name => 'query twice, same value',    entry => "{\"query\": $Q, \"query\": $Q}",
      json => qr/duplicate object key/ },
    { name => 'query twice, once escaped',  entry => "{\"query\": $Q, \"q\\u0075ery\": $Q}",
      json => qr/duplicate object key/ },
    { name => 'queries twice',              doc => "{\"queries\": [{\"query\": $Q}], \"queries\": [{\"query\": $Q}]}",
      json => qr/duplicate object key/ },

    # --- numbers, arrays, objects, null, booleans where the string belongs
    { name => 'query 1e999999',             entry => '{"query": 1e999999}',  json => qr/real number overflow/ },
    { name => 'query of 400 digits',        entry => '{"query": ' . ('9' x 400) . '}', json => qr/too big integer/ },
    { name => 'query 1e-999999',            entry => '{"query": 1e-999999}', field => 'query: must be a string' },
    { name => 'query -0',                   entry => '{"query": -0}',        field => 'query: must be a string' },
    { name => 'query []',                   entry => '{"query": []}',        field => 'query: must be a string' },
    { name => 'query {}',                   entry => '{"query": {}}',        field => 'query: must be a string' },
    { name => 'query [query]',              entry => "{\"query\": [$Q]}",    field => 'query: must be a string' },
    { name => 'query null',                 entry => '{"query": null}',      field => 'query: must be a string' },
    { name => 'query false',                entry => '{"query": false}',     field => 'query: must be a string' },
    { name => 'preset an array',            entry => "{\"query\": $Q, \"preset\": [\"hd\"]}",
      field => 'preset: must be one of' },
    { name => 'preset null',                entry => "{\"query\": $Q, \"preset\": null}",
      field => 'preset: must be one of' },
    { name => 'visibility an object',       entry => "{\"query\": $Q, \"visibility\": {\"public\": true}}",
      field => 'visibility: must be one of' },
    # unknown fields are ignored, but jansson refuses the whole document when
    # it cannot hold a number (observed): 400, not a job
    { name => 'huge integer in an unknown field', entry => "{\"query\": $Q, \"n\": " . ('9' x 5000) . '}',
      json => qr/too big integer/ },
    { name => 'huge real in an unknown field', entry => "{\"query\": $Q, \"n\": 1e999999}",
      json => qr/real number overflow/ },

    # --- not an object at the top
    { name => 'top-level []',               doc => '[]',            detail => $NOT_OBJECT },
    { name => 'top-level array of the body', doc => "[{\"query\": $Q}]", detail => $NOT_OBJECT },
    { name => 'top-level string',           doc => $Q,              detail => $NOT_OBJECT },
    { name => 'top-level number',           doc => '12345',         detail => $NOT_OBJECT },
    { name => 'top-level true',             doc => 'true',          detail => $NOT_OBJECT },
    { name => 'entry is an array',          entry => "[{\"query\": $Q}]", notobj => 1 },
    { name => 'entry is a string',          entry => $Q,            notobj => 1 },

    # --- trailing garbage: a second document must not become a second job
    { name => 'two objects back to back',   doc => "{\"query\": $Q}{\"query\": $Q}", json => qr/end of file expected/ },
    { name => 'a stray }',                  doc => "{\"query\": $Q}}", json => qr/end of file expected/ },
    { name => 'a trailing comma',           doc => "{\"query\": $Q},", json => qr/end of file expected/ },
    { name => 'a trailing comment',         doc => "{\"query\": $Q} // x", json => qr/end of file expected/ },
    { name => 'a trailing comma inside',    entry => "{\"query\": $Q,}", json => qr// },

    # --- long keys, many keys
    { name => 'a 200k key name',            doc => '{"' . ('k' x 200_000) . '": "x"}',
      detail => qr/^query: field required/, bulk_detail => qr/^queries: field required/ },
    { name => 'a 100k key name in an entry', entry => '{"' . ('k' x 100_000) . '": "x"}',
      field => 'query: field required' },
    { name => '15000 keys, query a number', entry => '{' . join(',', map { "\"k$_\": $_" } 1 .. 15_000)
                                                    . ', "query": 1}',
      field => 'query: must be a string' },
);

for my $c (@BODIES) {
    my (%body, %detail);
    if (exists $c->{doc}) {
        %body = (generate => $c->{doc}, bulk => $c->{doc});
    } else {
        %body = (generate => $c->{entry},
                 bulk => qq({"queries": [{"query": "A fine first query"}, $c->{entry}]}));
    }
    if ($c->{json}) {
        %detail = map { $_ => qr/^Invalid JSON body: .*$c->{json}/s } qw(generate bulk);
    } elsif ($c->{field}) {
        %detail = (generate => qr/^\Q$c->{field}\E/,
                   bulk => qr/^\Qqueries[1].$c->{field}\E/);
    } elsif ($c->{notobj}) {
        %detail = (generate => $NOT_OBJECT, bulk => qr/^\Qqueries[1]: must be a JSON object\E/);
    } else {
        %detail = (generate => $c->{detail}, bulk => $c->{bulk_detail} // $c->{detail});
    }
    for my $ep (qw(generate bulk)) {
        case("$ep, $c->{name}", 400, $detail{$ep},
             sub { post_body($ep, $body{$ep}) });
    }
}

# --- bulk only: entry counts far over clockchain_bulk_max (100)
case('bulk, 50000 empty entries', 400, qr/^queries: at most 100 entries/, sub {
    post_body(bulk => '{"queries": [' . join(',', ('{}') x 50_000) . ']}') });

###########################################################################
# 10 MB: nginx's client_max_body_size (1m) answers first on the usual
# locations (docs/directives.md: "checked first and answers with nginx's HTML
# error page"); with it raised, the module's own limit answers in JSON; with
# both raised, the parser gets the whole string and refuses the query

my $MB10 = 10 * 1024 * 1024;
my $ten = '{"query": "' . ('x' x $MB10) . '"}';
case('generate, 10 MB string', 413, 'nginx', sub { post_body(generate => $ten, secs => 20) });
case('bulk, 10 MB string', 413, 'nginx', sub { post_body(bulk => $ten, secs => 20) });
case('generate, 10 MB string, client_max_body_size 24m', 413,
     qr/^Request body too large: the limit is 262144 bytes/,
     sub { post_body(generate => $ten, path => '/wide/generate', secs => 20) });
{
    # chunked: no Content-Length to check up front; refused once read
    my $chunked = join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) }
                           unpack('(a65536)*', $ten)) . "0\r\n\r\n";
    case('generate, 10 MB chunked, client_max_body_size 24m', 413,
         qr/^Request body too large/, sub {
        request(POST => '/wide/generate', body => $chunked, length => 0,
                headers => "${GEN_HDRS}Transfer-Encoding: chunked\r\n", secs => 20) });
}
case('generate, 10 MB string, both limits raised', 400,
     qr/^query: must be 3 to 500 characters long \(got $MB10\)/,
     sub { post_body(generate => $ten, path => '/big/generate', secs => 20) });
case('bulk, 10 MB string as queries[1], both limits raised', 400,
     qr/^\Qqueries[1].query: must be 3 to 500 characters long (got $MB10)\E/,
     sub { post_body(bulk => qq({"queries": [{"query": "A fine first query"}, $ten]}),
                     path => '/big/bulk-generate', secs => 20) });
{
    my $n = int($MB10 / 6);
    case('generate, 10 MB of \\u00e9 escapes, both limits raised', 400,
         qr/^query: must be 3 to 500 characters long \(got $n\)/,
         sub { post_body(generate => '{"query": "' . ('\u00e9' x $n) . '"}',
                         path => '/big/generate', secs => 20) });
}
# (sizes kept so that a worker under ASan, whose malloc is far slower for
# jansson's many small values, still answers in seconds)
case('generate, a 200000-element array as the query, both limits raised', 400,
     qr/^query: must be a string/,
     sub { post_body(generate => '{"query": [' . join(',', (1) x 200_000) . ']}',
                     path => '/big/generate', secs => 20) });
case('bulk, 20000 entries, both limits raised', 400,
     qr/^queries: at most 100 entries are allowed, got 20000/,
     sub { post_body(bulk => '{"queries": [' . join(',', ('{"query": "abc"}') x 20_000) . ']}',
                     path => '/big/bulk-generate', secs => 20) });

###########################################################################
# headers (the body is a good one: only the headers decide)

my $GOOD = "{\"query\": $Q}";
my $K6 = 'k' x 6144;
my $K9 = 'k' x 9216;
my $CT = "Content-Type: application/json\r\n";
my $SK = "X-Service-Key: test-key-1\r\n";
my @HEADERS = (
    # [ name, header lines, status, detail ]
    # 6 KB: the line fits one of nginx's large_client_header_buffers (4 8k):
    # it reaches the module, which does not know the key
    [ '6 KB X-Service-Key', "X-Service-Key: $K6\r\n$CT", 401, qr/service key/ ],
    # 9 KB: longer than one 8k buffer: nginx refuses the request itself
    # ("400 Request Header Or Cookie Too Large")
    [ '9 KB X-Service-Key', "X-Service-Key: $K9\r\n$CT", 400, 'nginx' ],
    # docs/api.md: a header given twice is a 400, whatever the values
    [ 'X-Service-Key twice, good then bad', "${SK}X-Service-Key: nope\r\n$CT",
      400, qr/X-Service-Key: the header is given more than once/ ],
    [ 'X-Service-Key twice, bad then good', "X-Service-Key: nope\r\n$SK$CT",
      400, qr/X-Service-Key: the header is given more than once/ ],
    [ 'X-Service-Key twice, names in other case', "${SK}x-service-KEY: nope\r\n$CT",
      400, qr/X-Service-Key: the header is given more than once/ ],
    [ 'X-Service-Key twice, both empty', "X-Service-Key: \r\nX-Service-Key: \r\n$CT",
      400, qr/more than once/ ],
    [ 'empty X-Service-Key', "X-Service-Key: \r\n$CT", 401, qr/service key/ ],
    [ 'X-Service-Key with a space inside', "X-Service-Key: test key-1\r\n$CT", 401, qr/service key/ ],
    [ 'X-Service-Key, key plus " x"', "X-Service-Key: test-key-1 x\r\n$CT", 401, qr/service key/ ],
    # nginx strips trailing spaces from a value, not tabs or other bytes
    [ 'X-Service-Key with a trailing tab', "X-Service-Key: test-key-1\t\r\n$CT", 401, qr/service key/ ],
    [ 'X-Service-Key with a trailing \\x0b', "X-Service-Key: test-key-1\x0b\r\n$CT", 401, qr/service key/ ],
    [ 'X-Service-Key with a trailing DEL', "X-Service-Key: test-key-1\x7f\r\n$CT", 401, qr/service key/ ],
    [ 'X-Service-Key in UTF-8', "X-Service-Key: test-key-\xc3\xa9\r\n$CT", 401, qr/service key/ ],
    [ 'X_Service_Key (underscores)', "X_Service_Key: test-key-1\r\n$CT", 401, qr/service key/ ],
    [ 'X-Service-Key with a NUL', "X-Service-Key: test-key-1\0x\r\n$CT", 400, 'nginx' ],
    [ 'X-Service-Key folded (obs-fold)', "X-Service-Key: test-\r\n key-1\r\n$CT", 400, 'nginx' ],
    [ 'space before the colon', "X-Service-Key : test-key-1\r\n$CT", 400, 'nginx' ],
    [ 'a bare CR in a header', "X-Service-Key: test-key-1\rX-Other: y\r\n$CT", 400, 'nginx' ],
    [ 'a header line without a colon', "X-Service-Key test-key-1\r\n$CT", 400, 'nginx' ],
    # Content-Type
    [ 'Content-Type application/jsonx', "${SK}Content-Type: application/jsonx\r\n", 415, qr{application/json} ],
    [ 'Content-Type application/json-patch+json', "${SK}Content-Type: application/json-patch+json\r\n",
      415, qr{application/json} ],
    [ 'Content-Type text/json', "${SK}Content-Type: text/json\r\n", 415, qr{application/json} ],
    [ 'Content-Type "application/json, text/plain"', "${SK}Content-Type: application/json, text/plain\r\n",
      415, qr{application/json} ],
    [ 'Content-Type application/json with a NUL', "${SK}Content-Type: application/json\0\r\n", 400, 'nginx' ],
    [ 'Content-Type empty', "${SK}Content-Type: \r\n", 415, qr{application/json} ],
    [ 'Content-Type twice, application/json last', "${SK}Content-Type: text/plain\r\n$CT",
      415, qr{application/json} ],
    # Idempotency-Key
    [ 'Idempotency-Key of 256 characters', "$SK${CT}Idempotency-Key: " . ('i' x 256) . "\r\n",
      400, qr/^Idempotency-Key: must be 1 to 255 printable/ ],
    [ 'Idempotency-Key with a tab', "$SK${CT}Idempotency-Key: a\tb\r\n",
      400, qr/^Idempotency-Key: must be 1 to 255 printable/ ],
    [ 'Idempotency-Key with UTF-8', "$SK${CT}Idempotency-Key: \xc3\xa9t\xc3\xa9\r\n",
      400, qr/^Idempotency-Key: must be 1 to 255 printable/ ],
    [ 'Idempotency-Key twice', "$SK${CT}Idempotency-Key: a\r\nIdempotency-Key: a\r\n",
      400, qr/^Idempotency-Key: the header is given more than once/ ],
    # Content-Length
    # Content-Length (the last element: send no Content-Length of our own)
    [ 'Content-Length of 30 digits', "$SK${CT}Content-Length: " . ('9' x 30) . "\r\n", 400, 'nginx', 0 ],
    [ 'Content-Length -1', "$SK${CT}Content-Length: -1\r\n", 400, 'nginx', 0 ],
    [ 'Content-Length 12abc', "$SK${CT}Content-Length: 12abc\r\n", 400, 'nginx', 0 ],
    [ 'Content-Length twice', "$SK${CT}Content-Length: " . length($GOOD) . "\r\n", 400, 'nginx' ],
    [ 'Content-Length and Transfer-Encoding', "$SK${CT}Transfer-Encoding: chunked\r\n", 400, 'nginx' ],
);
for my $h (@HEADERS) {
    my ($name, $lines, $status, $detail, $length) = @$h;
    case("generate, $name", $status, $detail, sub {
        request(POST => '/api/generate', headers => $lines, body => $GOOD,
                length => $length // 1) });
}

# bulk: X-Service-Key twice is a 400; X-Admin-Key twice is refused too
{
    my $bulk = "{\"queries\": [{\"query\": $Q}]}";
    case('bulk, X-Service-Key twice', 400, qr/X-Service-Key: the header is given more than once/, sub {
        request(POST => '/api/bulk-generate', body => $bulk,
                headers => "$SK${CT}X-Service-Key: nope\r\nX-Admin-Key: admin-key\r\n") });
    for my $pair ([qw(admin-key nope)], [qw(nope admin-key)]) {
        my $name = "bulk, X-Admin-Key twice (@$pair)";
        my $res = no_job_created($redis, $name, sub {
            request(POST => '/api/bulk-generate', body => $bulk,
                    headers => "$SK${CT}X-Admin-Key: $pair->[0]\r\nX-Admin-Key: $pair->[1]\r\n") });
        # a header given twice is a 400, whichever of the two is good
        is_error($res, 400, qr/^X-Admin-Key: the header is given more than once$/,
                 "$name -> 400 (a header given twice)");
    }
}

# Content-Type given twice, application/json first: nginx 1.22 keeps the
# first one, a proxy in front may have read the other; the body is not
# taken for JSON
for my $order ([ $CT, "Content-Type: text/plain\r\n" ],
               [ "Content-Type: text/plain\r\n", $CT ]) {
    my $name = 'generate, Content-Type twice, '
               . ($order->[0] eq $CT ? 'application/json first' : 'text/plain first');
    my $res = no_job_created($redis, $name, sub {
        request(POST => '/api/generate', body => $GOOD,
                headers => "$SK$order->[0]$order->[1]") });
    is_error($res, 415, qr/^Content-Type must be application\/json/, "$name -> 415");
}

# leading and trailing spaces are not part of a header's value (RFC 9110
# 5.5): nginx strips them, the module gets the key itself and the request
# is a good one
for my $v (' test-key-1', 'test-key-1 ', '   test-key-1   ') {
    my $res = request(POST => '/api/generate', body => $GOOD,
                      headers => "X-Service-Key: $v\r\n$CT");
    created_ok($res, "X-Service-Key '$v' is the key (OWS stripped by nginx)");
}
$BASELINE = job_count($redis);

# no Content-Length and no body: nginx reads it as an empty body (no 411),
# which is malformed JSON
for my $proto ('HTTP/1.1', 'HTTP/1.0') {
    case("generate, $proto, no Content-Length, no body", 400, qr/^Invalid JSON body: /, sub {
        send_raw("POST /api/generate $proto\r\nHost: localhost\r\nConnection: close\r\n"
                 . "$GEN_HDRS\r\n") });
}

# the request line
for my $c (
    [ 'an unknown method', "FOO /api/generate HTTP/1.1", 405, qr/Method Not Allowed/ ],
    [ 'a lowercase method', "post /api/generate HTTP/1.1", 400, 'nginx' ],
    [ 'TRACE', "TRACE /api/generate HTTP/1.1", 405, 'nginx' ],
    [ 'a word after the version', "POST /api/generate HTTP/1.1 x", 400, 'nginx' ],
    [ 'a %00 in the path', "POST /api/generate%00 HTTP/1.1", 400, 'nginx' ],
) {
    my ($name, $line, $status, $detail) = @$c;
    case("request line: $name", $status, $detail, sub {
        send_raw("$line\r\nHost: localhost\r\nConnection: close\r\n$GEN_HDRS"
                 . 'Content-Length: ' . length($GOOD) . "\r\n\r\n$GOOD") });
}

###########################################################################
# ids for GET /api/jobs/{id}

(my $MIXED = $ID) =~ s/([a-f])/\U$1/;
for my $c (
    [ 'a 5000-character id',       'a' x 5000,                 404, 'Job not found' ],
    # the request line passes nginx's 8k large_client_header_buffers
    [ 'a 9000-character id',       'a' x 9000,                 414, 'nginx' ],
    [ 'the real id in uppercase',  uc $ID,                     404, 'Job not found' ],
    [ 'the real id, one letter uppercase', $MIXED,             404, 'Job not found' ],
    [ 'the real id plus %00',      "$ID%00",                   400, 'nginx' ],
    [ '%00',                       '%00',                      400, 'nginx' ],
    [ 'a raw NUL',                 "ab\0cd",                   400, 'nginx' ],
    # nginx resolves dot segments before the location is chosen
    [ '..',                        '..',                       404, 'nginx' ],
    [ '%2e%2e',                    '%2e%2e',                   404, 'nginx' ],
    [ '../../../x (above the root)', '../../../x',             400, 'nginx' ],
    [ '..%2F..%2Fx',               '..%2F..%2Fx',              404, 'nginx' ],
    # %2F is decoded into the uri: not an id
    [ 'the real id plus %2Fx',     "$ID%2Fx",                  404, 'Job not found' ],
    [ 'a non-hex id',              'g' x 8 . '-gggg-4ggg-8ggg-' . 'g' x 12, 404, 'Job not found' ],
    [ 'an empty id',               '',                         404, 'Job not found' ],
    [ 'an encoded CRLF and header', '%0d%0aSet-Cookie:%20x=1', 404, 'Job not found' ],
    # ?wait on the real job
    [ 'wait=-1',                   "$ID?wait=-1",              400, qr/^wait: / ],
    [ 'wait=1e3',                  "$ID?wait=1e3",             400, qr/^wait: / ],
    [ 'wait of 30 digits',         "$ID?wait=" . ('9' x 30),   400, qr/^wait: / ],
    [ 'wait=%00',                  "$ID?wait=%00",             400, qr/^wait: / ],
    [ 'wait empty',                "$ID?wait=",                400, qr/^wait: / ],
) {
    my ($name, $id, $status, $detail) = @$c;
    my $res = case("GET job, $name", $status, $detail, sub {
        request(GET => "/api/jobs/$id", headers => $SK) });
    ok(!exists $res->{headers}{'set-cookie'}, "GET job, $name: no header injected")
        if $name =~ /CRLF/;
}

{
    # %2F before the id decodes to "//": nginx merges the slashes
    # (merge_slashes on), which is the same job, not another key
    my $res = request(GET => "/api/jobs/%2F$ID", headers => $SK);
    is($res->{status}, 200, 'GET job, %2F then the real id: nginx merges the slashes, 200');
    is((json_body($res) // {})->{job_id}, $ID, '  and it is the same job');
}

###########################################################################
# moment paths for GET /api/moments/...

my $CANON = '1776/july/04/1200/a/b/c/d';
for my $c (
    # a path that names no node is 404 whatever its form (issue 15)
    [ '.. back to a short path',   '1776/july/../../x',         404, 'Moment not found' ],
    [ '.. above the root',         '../../../etc/passwd',       400, 'nginx' ],
    [ '.. inside a canonical path', '1776/july/04/1200/a/b/c/../d', 404, 'Moment not found' ],
    # %2f is decoded: the same canonical path, which holds no node
    [ 'every / as %2f',            $CANON =~ s{/}{%2f}gr,       404, 'Moment not found' ],
    [ '%2e%2e%2f to another location', '%2e%2e%2f%2e%2e%2fjobs', 404, 'nginx' ],
    # decoded, it is a ninth segment: no action is "e", and a read of it
    # names no node
    [ 'a %2f inside the slug',     '1776/july/04/1200/a/b/c/d%2fe', 404, 'Moment not found' ],
    [ 'overlong: 60 segments',     join('/', ('x' x 100) x 60), 404, 'Moment not found' ],
    [ 'overlong: a 7000-byte slug', "1776/july/04/1200/a/b/c/" . ('d' x 7000), 404, 'Moment not found' ],
    [ 'overlong: 7000-byte, day unpadded', "1776/july/4/1200/a/b/c/" . ('d' x 7000), 404, 'Moment not found' ],
    [ 'unpadded, longest segments', '-99999999999/september/4/2359/' . join('/', ('z' x 100) x 4),
                                                                404, 'Moment not found' ],
    [ 'unpadded, a 101-byte slug', '1776/july/4/1200/a/b/c/' . ('d' x 101), 404, 'Moment not found' ],
    [ 'day 0',                     '1776/july/0/1200/a/b/c/d',  404, 'Moment not found' ],
    [ 'day 004',                   '1776/july/004/1200/a/b/c/d', 404, 'Moment not found' ],
    [ 'day 32 unpadded form',      '1776/july/32/1200/a/b/c/d', 404, 'Moment not found' ],
    [ 'day a letter',              '1776/july/x/1200/a/b/c/d',  404, 'Moment not found' ],
    [ 'day empty',                 '1776/july//1200/a/b/c/d',   404, 'Moment not found' ],
    [ 'day last, unpadded',        '1776/july/4',               404, 'Moment not found' ],
    [ 'unpadded, a ninth segment', '1776/july/4/1200/a/b/c/d/frob', 404, 'Moment not found' ],
    # ?format= of a moment: "default" or "tdf", nothing else
    [ 'format unknown',            "$CANON?format=xml",         400, qr/^Invalid format/ ],
    [ 'format empty',              "$CANON?format=",            400, qr/^Invalid format/ ],
    [ 'format TDF uppercase',      "$CANON?format=TDF",         400, qr/^Invalid format/ ],
    [ 'format tdf%00',             "$CANON?format=tdf%00",      400, qr/^Invalid format/ ],
    [ 'format tdf plus junk',      "$CANON?format=tdfx",        400, qr/^Invalid format/ ],
    [ 'format 4000 bytes',         "$CANON?format=" . ('t' x 4000), 400, qr/^Invalid format/ ],
    [ 'format, bad path',          "1776/july/*?format=xml",    400, qr/^Invalid format/ ],
    [ 'format tdf, absent node',   "$CANON?format=tdf",         404, 'Moment not found' ],
    [ 'format default, absent',    "$CANON?format=default",     404, 'Moment not found' ],
    [ 'format tdf, unpadded absent', "1776/july/4/1200/a/b/c/d?format=tdf", 404, 'Moment not found' ],
    [ 'overlong: 9000 bytes',      'x' x 9000,                  414, 'nginx' ],
    [ 'a %00 in the slug',         "$CANON%00",                 400, 'nginx' ],
    [ 'a raw NUL in the slug',     "$CANON\0",                  400, 'nginx' ],
    [ 'empty',                     '',                          404, 'Moment not found' ],
) {
    my ($name, $path, $status, $detail) = @$c;
    case("GET moment, $name", $status, $detail, sub {
        request(GET => "/api/moments/$path", headers => $SK) });
}

###########################################################################
# bodies of PATCH /api/moments/.../visibility: a clear 4xx, nothing written

for my $c (
    [ 'empty',                 '',                                 400, qr/body required/ ],
    [ 'not JSON',              'visibility=public',                400, qr/Invalid JSON/ ],
    [ 'a bare string',         '"public"',                         400, qr/Invalid JSON|object/ ],
    [ 'visibility twice',      '{"visibility":"public","visibility":"private"}', 400, qr/Invalid JSON/ ],
    [ 'visibility null',       '{"visibility":null}',              400, qr/visibility/ ],
    [ 'visibility with a NUL', '{"visibility":"public\u0000"}',   400, qr/visibility|Invalid JSON/ ],
    [ 'user_id an object',     '{"visibility":"public","user_id":{}}', 400, qr/user_id/ ],
    [ 'user_id UTF-8',         '{"visibility":"public","user_id":"al\u00e9ce"}', 400, qr/user_id/ ],
    [ 'user_id empty',         '{"visibility":"public","user_id":""}', 400, qr/user_id/ ],
    # within the 4096-byte limit and jansson's depth; an unknown field is
    # ignored, and the path names no node
    [ '1000 nested arrays',    '{"visibility":"public","x":' . ('[' x 1000) . (']' x 1000) . '}',
                                                                   404, 'Moment not found' ],
    [ '5000 bytes',            '{"visibility":"public","x":"' . ('a' x 5000) . '"}',
                                                                   413, qr/too large/ ],
) {
    my ($name, $body, $status, $detail) = @$c;
    my $before = $redis->cmd('DBSIZE');
    case("PATCH visibility, $name", $status, $detail, sub {
        request(PATCH => "/api/moments/$CANON/visibility",
                headers => $GEN_HDRS, body => $body) });
    is($redis->cmd('DBSIZE'), $before, "  PATCH visibility, $name: no key written");
}

###########################################################################
# GET /api/search?q= and /api/browse/{prefix}: a 400 naming the parameter,
# nothing written, nothing crashes

for my $c (
    [ 'q missing',               '',                                400, qr/^q: required/ ],
    [ 'q of 201 bytes',          'q=' . ('a' x 201),                400, qr/^q: must be UTF-8 text of at most 200/ ],
    [ 'q of 70 escaped emoji',   'q=' . ('%F0%9F%98%80' x 70),      400, qr/^q: must be UTF-8/ ],
    [ 'q of 601 raw bytes',      'q=' . ('%' x 601),                400, qr/^q: must be UTF-8/ ],
    [ 'q an overlong NUL',       'q=%C0%80',                        400, qr/^q: must be UTF-8/ ],
    [ 'q a lone surrogate',      'q=%ED%A0%80',                     400, qr/^q: must be UTF-8/ ],
    [ 'q a cut sequence',        'q=ab%E2%82',                      400, qr/^q: must be UTF-8/ ],
    [ 'q a NUL',                 'q=ab%00cd',                       400, qr/^q: must be/ ],
    [ 'q a control character',   'q=ab%09cd',                       400, qr/^q: must be UTF-8/ ],
    [ 'q of 9 words',            'q=a1+b2+c3+d4+e5+f6+g7+h8+i9',   400, qr/^q: must be at most 8 words/ ],
    [ 'q twice',                 'q=&q=caesar',                     400, qr/^q: required/ ],
    [ 'limit with a sign',       'q=caesar&limit=%2B5',             400, qr/^limit: must be an integer from 1 to 50/ ],
    [ 'limit of 30 digits',      'q=caesar&limit=' . ('9' x 30),    400, qr/^limit: must be an integer from 1 to 50/ ],
    [ 'limit 1e1',               'q=caesar&limit=1e1',              400, qr/^limit: must be an integer from 1 to 50/ ],
    # words made only of marks, punctuation or one letter: nothing to look up
    [ 'q of combining marks',    'q=' . ('%CC%81' x 60),            200, undef ],
    [ 'q of Redis glob and Lua pattern characters', 'q=%2A%3F%5B%5D%25%28%29', 200, undef ],
    [ 'q with a key separator',  'q=ab%7Ccd%3Aef',                  200, undef ],
) {
    my ($name, $query, $status, $detail) = @$c;
    my $before = $redis->cmd('DBSIZE');
    my $res = request(GET => "/api/search?$query", headers => "X-Service-Key: test-key-1\r\n");
    if ($status == 200) {
        is($res->{status}, 200, "search, $name: 200");
        is($res->{content}, '[]', "search, $name: nothing found");
    } else {
        case("search, $name", $status, $detail, sub { $res });
    }
    is($redis->cmd('DBSIZE'), $before, "  search, $name: no key written");
}

for my $c (
    [ 'a word',                  '/caesar' ],
    [ 'a Redis glob',            '/1969/%2A' ],
    [ 'a key separator',         '/1969/july%7Calice' ],
    [ 'a colon',                 '/1969:july' ],
    [ 'nine segments',           '/1969/july/16/0000/a/b/c/d/e' ],
    # nginx decodes %2F to "/" and refuses %00 itself, before any module
    [ 'a NUL',                   '/1969/ju%00ly', 'nginx' ],
    [ 'a year of 13 digits',     '/' . ('9' x 13) ],
    [ 'a 600-byte segment',      '/1969/july/16/0000/' . ('a' x 600) ],
    [ 'upper case',              '/1969/JULY' ],
    [ 'UTF-8',                   '/1969/j%C3%BCly' ],
) {
    my ($name, $prefix, $by) = @$c;
    my $before = $redis->cmd('DBSIZE');
    case("browse, $name", 400, $by // qr/^prefix: must be the start of a moment path/, sub {
        request(GET => "/api/browse$prefix", headers => "X-Service-Key: test-key-1\r\n") });
    is($redis->cmd('DBSIZE'), $before, "  browse, $name: no key written");
}

###########################################################################
# chunked bodies

my $TE = "Transfer-Encoding: chunked\r\n";
for my $c (
    [ 'a chunk size that is not hex', "zz\r\n$GOOD\r\n0\r\n\r\n",            400 ],
    [ 'a chunk size overflowing 64 bits', "ffffffffffffffffff\r\n$GOOD\r\n0\r\n\r\n", 400 ],
    [ 'a negative chunk size',        "-1\r\n$GOOD\r\n0\r\n\r\n",            400 ],
    # 4 GB announced: over client_max_body_size (1m) at once
    [ 'a 4 GB chunk',                 "100000000\r\n$GOOD\r\n0\r\n\r\n",     413 ],
    [ 'a chunk longer than its size', "3\r\n$GOOD\r\n0\r\n\r\n",             400 ],
    [ 'no CRLF after the chunk data', sprintf("%x\r\n%s0\r\n\r\n", length $GOOD, $GOOD), 400 ],
) {
    my ($name, $body, $status) = @$c;
    case("generate, $name", $status, 'nginx', sub {
        request(POST => '/api/generate', headers => "$GEN_HDRS$TE", body => $body,
                length => 0) });
}

# the last chunk never comes: the client half-closes after a chunk.  nginx
# answers 400 (invalid chunked body) or just closes; never a job
{
    my $name = 'generate, chunked, no last chunk, then the client closes';
    my $res = no_job_created($redis, $name, sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                      Proto => 'tcp', Timeout => 5) or die;
        syswrite($s, "POST /api/generate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     . "$GEN_HDRS$TE\r\n" . sprintf("%x\r\n%s\r\n", length $GOOD, $GOOD));
        shutdown($s, 1);
        my ($buf, $closed) = read_until_close($s, 3);
        return parse_response($buf, $closed);
    });
    ok($res->{closed}, "$name: the server closes the connection");
    # the client said it is done sending: nginx reads the end of the
    # stream, logs 400 ("client prematurely closed connection") and answers
    # nothing
    is($res->{status}, 0, "$name: no answer") or diag($res->{raw});
}

# a short Content-Length body, then the client closes: no answer, no job
{
    my $name = 'generate, body shorter than Content-Length, then the client closes';
    my $res = no_job_created($redis, $name, sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                      Proto => 'tcp', Timeout => 5) or die;
        syswrite($s, "POST /api/generate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     . "${GEN_HDRS}Content-Length: 100\r\n\r\n$GOOD");
        shutdown($s, 1);
        return parse_response(read_until_close($s, 3));
    });
    ok($res->{closed}, "$name: the server closes the connection");
    # the client said it is done sending: nginx reads the end of the
    # stream, logs 400 ("client prematurely closed connection") and answers
    # nothing
    is($res->{status}, 0, "$name: no answer") or diag($res->{raw});
}

# a well-formed chunked POST is a valid request: 200 and a job in Redis
{
    my $body = '{"query": "A well-formed chunked request", "preset": "hd"}';
    my @parts = unpack('(a7)*', $body);
    my $chunked = join('', map { sprintf("%X\r\n%s\r\n", length $_, $_) } @parts)
                . "0\r\n\r\n";
    my $before = job_count($redis);
    my $res = request(POST => '/api/generate', headers => "$GEN_HDRS$TE",
                      body => $chunked, length => 0);
    my $job = created_ok($res, 'generate, a well-formed chunked body in '
                               . scalar(@parts) . ' chunks');
    is(job_count($redis), $before + 1, 'the chunked request created one job');
    my $h = $redis->hash($JOB_PREFIX . ($job ? $job->{job_id} : 'none'));
    is_deeply([ @$h{qw(query preset)} ], [ 'A well-formed chunked request', 'hd' ],
              'redis: the job holds the chunked query and preset');
    $BASELINE = job_count($redis);
}

###########################################################################
# slow clients (client_body_timeout 1s, client_header_timeout 2s)

sub read_until_close {
    my ($s, $secs) = @_;
    my ($buf, $closed) = ('', 0);
    my $end = time + $secs;
    while (time < $end) {
        my $r = '';
        vec($r, fileno $s, 1) = 1;
        last if select($r, undef, undef, $end - time) <= 0;
        my $got = sysread($s, $buf, 1 << 16, length $buf);
        if (!$got) { $closed = 1; last }
    }
    return ($buf, $closed);
}

# true when the server has closed $s (EOF is waiting), without waiting
sub closed_now {
    my ($s) = @_;
    my $r = '';
    vec($r, fileno $s, 1) = 1;
    return 0 unless select($r, undef, undef, 0) > 0;
    my $got = sysread($s, my $buf, 1 << 16);
    return !$got;
}

sub slow_connect {
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                 Proto => 'tcp', Timeout => 5) || die "connect: $!";
}

{
    my $body = '{"query": "A body that never finishes"}';
    my $head = "POST /api/generate HTTP/1.1\r\nHost: localhost\r\n$GEN_HDRS"
             . 'Content-Length: ' . length($body) . "\r\n\r\n";

    # headers and half the body, then silence: nginx closes the connection
    # after client_body_timeout without an answer (it logs 408)
    my $name = 'slow client, half the body then silence';
    my ($buf, $closed, $took) = no_job_created($redis, $name, sub {
        my $s = slow_connect();
        syswrite($s, $head . substr($body, 0, 10));
        my $t0 = time;
        my @r = read_until_close($s, 5);
        my $took = time - $t0;
        # the rest, late: it must not make a job either
        syswrite($s, substr($body, 10));
        close $s;
        sleep 0.1;
        return (@r, $took);
    });
    ok($closed, "$name: the server closes the connection");
    # event: nginx closed it (before the client's own 5 s, five times
    # client_body_timeout) and logged the 408 of client_body_timeout
    ok($closed && wait_for(5, sub { $ng->access_log =~ m{"POST /api/generate HTTP/1\.1" 408 } }),
       "$name: within about client_body_timeout (took "
       . sprintf('%.1f', $took) . ' s, access.log 408)');
    is($buf, '', "$name: no answer (nginx logs 408 and closes)");

    # one byte every 1.5 s, more than client_body_timeout apart
    $name = 'slow client, one byte every 1.5 s';
    ($buf, $closed, my $sent) = no_job_created($redis, $name, sub {
        my $s = slow_connect();
        syswrite($s, $head);
        my ($b, $c, $i) = ('', 0, 0);
        while ($i < length $body) {
            syswrite($s, substr($body, $i++, 1)) or last;
            ($b, $c) = read_until_close($s, 1.5);
            last if $c || length $b;
        }
        close $s;
        return ($b, $c, $i);
    });
    ok($closed, "$name: the server closes the connection");
    cmp_ok($sent, '<', length $body, "$name: before the body was complete ($sent bytes)");
    is($buf, '', "$name: no answer (nginx logs 408 and closes)");
    my $n408 = () = $ng->access_log =~ m{"POST /api/generate HTTP/1\.1" 408 }g;
    cmp_ok($n408, '>=', 2, 'access.log: both slow bodies logged as 408');
}

# 200 connections that send half a request line and stop; a normal client
# is answered at once meanwhile, and the half lines are closed after
# client_header_timeout
{
    my @half = map { my $s = slow_connect(); syswrite($s, 'POST /api/gen'); $s } 1 .. 200;
    my $job = created_ok(generate($ng, { query => 'Answered while 200 clients stall' }),
                         'generate while 200 connections hold half a request line');
    my $res = get_job($ng, $job ? $job->{job_id} : $ID);
    is($res->{status}, 200, 'GET job while 200 connections hold half a request line');
    # event: the order.  Both were answered while all 200 half lines were
    # still open: before client_header_timeout closed any of them
    my $still = grep { !closed_now($_) } @half;
    is($still, 200, 'both answered within a second (before client_header_timeout closed a stalled one)');
    $BASELINE = job_count($redis);

    my $open = @half;
    wait_for(5, sub {
        for my $i (0 .. $#half) {
            next unless $half[$i];
            my ($b, $c) = read_until_close($half[$i], 0.001);
            if ($c) { close $half[$i]; $half[$i] = undef; $open-- }
        }
        return $open == 0;
    });
    is($open, 0, 'the 200 half request lines are closed by client_header_timeout');
    close $_ for grep { defined } @half;
}

###########################################################################
# X-User-Id, on an nginx of its own (a known module bug logs [alert] there)

my $ng2 = start_nginx(redis => $redis, conf => <<"EOF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location /api/moments/ { clockchain_moments; }
    }
EOF
my @WORKERS2 = $ng2->worker_pids;
{
    my $bulk = "{\"queries\": [{\"query\": $Q}]}";
    my %req = (
        'generate'       => [ POST => '/api/generate', $GEN_HDRS, $GOOD ],
        'bulk'           => [ POST => '/api/bulk-generate', $BULK_HDRS, $bulk ],
        'GET moment'     => [ GET  => "/api/moments/$CANON", $SK, undef ],
        'publish moment' => [ POST => "/api/moments/$CANON/publish", $GEN_HDRS, '{}' ],
        'PATCH visibility' => [ PATCH => "/api/moments/$CANON/visibility", $GEN_HDRS,
                                '{"visibility":"public"}' ],
    );
    for my $u ([ '256 characters', 'X-User-Id: ' . ('u' x 256) . "\r\n", qr/1 to 255/ ],
               [ 'empty',          "X-User-Id: \r\n",                    qr/1 to 255/ ],
               [ 'a space inside', "X-User-Id: al ice\r\n",              qr/printable/ ],
               [ 'UTF-8',          "X-User-Id: al\xc3\xa9ce\r\n",        qr/printable/ ],
               [ 'a control byte', "X-User-Id: al\x01ce\r\n",            qr/printable/ ],
               [ 'given twice',    "X-User-Id: alice\r\nX-User-Id: bob\r\n", qr/more than once/ ]) {
        my ($what, $line, $re) = @$u;
        for my $ep (sort keys %req) {
            my ($m, $path, $hdrs, $body) = @{ $req{$ep} };
            my $name = "$ep, X-User-Id $what";
            my $alerts = () = $ng2->error_log =~ /\[alert\]/g;
            my $res = no_job_created($redis, $name, sub {
                parse_response(exchange($ng2->port,
                    "$m $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n$hdrs$line"
                    . (defined $body ? 'Content-Length: ' . length($body) . "\r\n\r\n$body"
                                     : "\r\n"))) });
            is_error($res, 400, qr/^X-User-Id: .*$re/, "$name -> 400");
            my $now = () = $ng2->error_log =~ /\[alert\]/g;
            # one answer only: a second one was "header already sent"
            is($now - $alerts, 0, "$name: no [alert] in error.log");
        }
    }

    # the connection after such a 400: a pipelined good request behind it
    my $name = 'pipelined after an invalid X-User-Id';
    my ($raw) = exchange($ng2->port,
        "POST /api/generate HTTP/1.1\r\nHost: localhost\r\n${GEN_HDRS}X-User-Id: a b\r\n"
        . 'Content-Length: ' . length($GOOD) . "\r\n\r\n$GOOD"
        . "GET /api/jobs/$ID HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n$SK\r\n", 3);
    # the second status line follows the first body, not a line break
    my @status = $raw =~ m{HTTP/1\.1 (\d\d\d) }g;
    is($status[0] // 0, 400, "$name: the first request -> 400");
    is($status[1] // 0, 200, "$name: the second request is answered (200)") or diag($raw);
}

###########################################################################
# nothing was created but what the test made on purpose; no worker died

is(job_count($redis), $BASELINE, 'redis: no job beyond the ones made on purpose');
is_deeply([ $ng->worker_pids ], \@WORKERS, 'the same two workers are alive (none crashed)');
ok($ng->running, 'the master is alive');
{
    my $log = $ng->error_log;
    my @bad = grep { /\[(alert|emerg)\]|exited on signal/ } split /\n/, $log;
    ok(!@bad, 'error.log: no [alert], no [emerg], no worker exited on a signal')
        or diag(join "\n", @bad[0 .. ($#bad < 20 ? $#bad : 19)]);
}
is_deeply([ $ng2->worker_pids ], \@WORKERS2,
          'X-User-Id nginx: the same two workers are alive (none crashed)');
{
    my @lines = split /\n/, $ng2->error_log;
    my @bad = grep { /\[(emerg|crit)\]|exited on signal/ } @lines;
    ok(!@bad, 'X-User-Id nginx: no [emerg], [crit] or worker exited on a signal')
        or diag(join "\n", @bad[0 .. ($#bad < 20 ? $#bad : 19)]);
    my @other = grep { /\[alert\]/ && !/header already sent/ } @lines;
    ok(!@other, 'X-User-Id nginx: no [alert] but the known "header already sent"')
        or diag(join "\n", @other[0 .. ($#other < 20 ? $#other : 19)]);
}

done(skip_log => [$ng2]);
