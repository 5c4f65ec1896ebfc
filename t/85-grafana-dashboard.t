# examples/grafana-dashboard.json against the metrics the module really
# emits: nginx with a runner and clockchain_metrics runs jobs that
# complete, fail and are retried (so the histograms and the labelled
# series have values), then every PromQL expression of the dashboard (each
# panel's targets and the template variables' queries) is parsed, and each
# metric name in it must be a series of the Prometheus scrape (a
# _bucket/_sum/_count only of a histogram), each label it matches on or
# aggregates by must be on that series, and each label value it matches
# exactly must be one the module prints.  A metric renamed on either side
# fails here.  Also: the JSON parses, every panel has a title and the
# ${DS_PROMETHEUS} datasource that __inputs declares (docs/metrics.md,
# "Grafana dashboard").
use strict;
use warnings;
use Test::More;
use Clockchain::Test;
use File::Basename qw(dirname);
use JSON::PP;

my $FILE = $ENV{CLOCKCHAIN_DASHBOARD}
    // dirname(__FILE__) . '/../examples/grafana-dashboard.json';

# labels Prometheus adds to every series of a scrape (the target's)
my %TARGET_LABELS = map { $_ => 1 } qw(instance job);

# ---------------------------------------------------------------------------
# the module's series

my $redis = start_redis();
my $flash = start_flash(delay => 0.05, key => 'fk');
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_flash_attempts 2;
    clockchain_flash_retry_backoff 100ms 200ms;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /metrics {
            clockchain_metrics;
        }
    }
CONF

my %want = (
    'dashboard probe one'                    => 'completed',
    'dashboard probe two'                    => 'completed',
    'dashboard probe three'                  => 'completed',
    'dashboard refused [flash:422]'          => 'failed',
    'dashboard closed [flash:close]'         => 'failed',
);
for my $q (sort keys %want) {
    my $job = created_ok(generate($ng, { query => $q }), "job: $q");
    is($job && wait_job($ng, $job->{job_id}, 20)->{status}, $want{$q},
       "$q: $want{$q}");
}

my $res = http(GET => $ng->url('/metrics?format=prometheus'));
is($res->{status}, 200, 'the Prometheus scrape answers 200');
my $text = $res->{content} // '';

# { series name => { label => { value => 1 } } }, and { family => type }
my (%series, %type);
for my $l (split /\n/, $text) {
    if ($l =~ /^# TYPE (\S+) (\S+)$/) { $type{$1} = $2; next }
    next if $l =~ /^#/ || $l eq '';
    my ($name, $labels) = $l =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/
        or do { fail("a sample line that parses: $l"); next };
    $series{$name} //= {};
    while (($labels // '') =~ /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g) {
        $series{$name}{$1}{$2} = 1;
    }
}

# the family a sample belongs to: a histogram's _bucket/_sum/_count are
# its own, any other name must have a TYPE line of its own
sub family_of {
    my ($name) = @_;
    return $name if $type{$name} && $type{$name} ne 'histogram';
    if ($name =~ /^(.+)_(?:bucket|sum|count)$/ && ($type{$1} // '') eq 'histogram') {
        return $1;
    }
    return undef;
}

ok(scalar(keys %series) >= 20, 'the scrape has the module\'s series')
    or diag($text);
is(family_of('clockchain_flash_call_duration_seconds_bucket'),
   'clockchain_flash_call_duration_seconds', 'a bucket is its histogram\'s');
is(family_of('clockchain_jobs_created_total_count'), undef,
   'a counter has no _count series');
ok($series{clockchain_flash_call_duration_seconds_bucket}{le}{'+Inf'},
   'the Flash histogram has its buckets');
ok($series{clockchain_jobs_retried_total}{reason}{connection},
   'the retries have their reason label');

# ---------------------------------------------------------------------------
# PromQL, as far as a dashboard uses it: a tokenizer and a recursive
# descent that dies on anything it does not know, so that a construct it
# cannot check fails rather than passes

my %AGGR = map { $_ => 1 } qw(sum min max avg count group stddev stdvar topk
                              bottomk quantile count_values);
my %FUNC = map { $_ => 1 } qw(rate irate increase delta idelta deriv
    histogram_quantile abs ceil floor round clamp clamp_min clamp_max
    vector scalar time sort sort_desc absent absent_over_time changes
    resets avg_over_time min_over_time max_over_time sum_over_time
    count_over_time last_over_time quantile_over_time predict_linear
    timestamp label_replace label_join sqrt exp ln log2 log10);
my %KEYWORD = map { $_ => 1 } qw(by without on ignoring group_left
                                 group_right bool offset and or unless);

sub tokenize {
    my ($s) = @_;
    my @t;
    for ($s) {
        while (1) {
            /\G\s*/gc;
            last if (pos($_) // 0) >= length;
            if (/\G("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')/gc) {
                push @t, ['str', substr($1, 1, -1)];
            } elsif (/\G\[([^\]]*)\]/gc) {
                push @t, ['range', $1];
            } elsif (/\G([a-zA-Z_:][a-zA-Z0-9_:]*)/gc) {
                push @t, ['id', $1];
            } elsif (/\G((?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)/gci) {
                push @t, ['num', $1];
            } elsif (/\G(=~|!~|!=|==|>=|<=|[-+*\/%^=<>(){},])/gc) {
                push @t, ['op', $1];
            } else {
                die "cannot read at '" . substr($_, pos($_) // 0, 20) . "'\n";
            }
        }
    }
    return \@t;
}

# parse($expr) -> { selectors => [ { name, matchers => [[l, op, v]] } ],
#                   groupings => [ { labels => [...], selectors => [...] } ] }
sub parse {
    my ($expr) = @_;
    my $t = tokenize($expr);
    my $i = 0;
    my (@sel, @grp);
    my $peek = sub { $t->[$i] // ['eof', ''] };
    my $next = sub { $t->[$i++] // die "unexpected end\n" };
    my $want = sub {
        my ($v) = @_;
        my $x = $next->();
        die "expected '$v', got '$x->[1]'\n" unless $x->[0] eq 'op' && $x->[1] eq $v;
    };
    my $labels = sub {
        $want->('(');
        my @l;
        while ($peek->()[1] ne ')') {
            my $x = $next->();
            die "a label name expected, got '$x->[1]'\n" unless $x->[0] eq 'id';
            push @l, $x->[1];
            $want->(',') if $peek->()[1] ne ')';
        }
        $want->(')');
        return \@l;
    };
    my $matchers = sub {
        $want->('{');
        my @m;
        while ($peek->()[1] ne '}') {
            my $l = $next->();
            my $op = $next->();
            my $v = $next->();
            die "a matcher expected at '$l->[1]'\n"
                unless $l->[0] eq 'id' && $op->[1] =~ /^(?:=|!=|=~|!~)$/ && $v->[0] eq 'str';
            push @m, [$l->[1], $op->[1], $v->[1]];
            $want->(',') if $peek->()[1] ne '}';
        }
        $want->('}');
        return \@m;
    };
    my ($expr_, $unary);
    my $suffix = sub {
        if ($peek->()[0] eq 'range') { $next->() }
        if ($peek->()[1] eq 'offset') { $next->(); $next->() }
    };
    my $primary = sub {
        my $x = $peek->();
        if ($x->[0] eq 'num' || $x->[0] eq 'str') { $next->(); return }
        if ($x->[1] eq '(') { $next->(); $expr_->(); $want->(')'); $suffix->(); return }
        if ($x->[1] eq '{') {
            push @sel, { name => undef, matchers => $matchers->() };
            $suffix->();
            return;
        }
        die "unexpected '$x->[1]'\n" unless $x->[0] eq 'id';
        $next->();
        my $name = $x->[1];
        if ($AGGR{$name}) {
            my $by;
            if ($peek->()[1] =~ /^(?:by|without)$/) { $next->(); $by = $labels->() }
            my $from = @sel;
            $want->('(');
            $expr_->();
            while ($peek->()[1] eq ',') { $next->(); $expr_->() }
            $want->(')');
            if (!$by && $peek->()[1] =~ /^(?:by|without)$/) { $next->(); $by = $labels->() }
            push @grp, { labels => $by, selectors => [ @sel[$from .. $#sel] ],
                         what => $name } if $by;
            $suffix->();
            return;
        }
        if ($peek->()[1] eq '(') {
            die "unknown function '$name'\n" unless $FUNC{$name};
            $next->();
            if ($peek->()[1] ne ')') {
                $expr_->();
                while ($peek->()[1] eq ',') { $next->(); $expr_->() }
            }
            $want->(')');
            $suffix->();
            return;
        }
        die "a keyword where a metric was expected: '$name'\n" if $KEYWORD{$name};
        push @sel, { name => $name,
                     matchers => $peek->()[1] eq '{' ? $matchers->() : [] };
        $suffix->();
    };
    $unary = sub {
        $next->() while $peek->()[1] =~ /^[-+]$/;
        $primary->();
    };
    $expr_ = sub {
        $unary->();
        while (1) {
            my $x = $peek->();
            last unless ($x->[0] eq 'op' && $x->[1] =~ m{^(?:[-+*/%^<>]|==|!=|>=|<=)$})
                     || ($x->[0] eq 'id' && $x->[1] =~ /^(?:and|or|unless)$/);
            $next->();
            $next->() if $peek->()[1] eq 'bool';
            if ($peek->()[1] =~ /^(?:on|ignoring)$/) {
                $next->();
                push @grp, { labels => $labels->(), selectors => \@sel, what => 'on' };
            }
            if ($peek->()[1] =~ /^group_(?:left|right)$/) {
                $next->();
                $labels->() if $peek->()[1] eq '(';
            }
            $unary->();
        }
    };
    $expr_->();
    die "left over at '" . $peek->()[1] . "'\n" if $i < @$t;
    return { selectors => \@sel, groupings => \@grp };
}

# the parser itself: what it must see, and what it must refuse
{
    my $p = parse('histogram_quantile(0.95, sum by (le) (rate(x_bucket{instance=~"$instance"}[5m])))');
    is_deeply([ map { $_->{name} } @{ $p->{selectors} } ], ['x_bucket'], 'parse: the metric');
    is_deeply($p->{groupings}[0]{labels}, ['le'], 'parse: by (le)');
    $p = parse('sum(rate(a{r="x"}[5m])) by (r) / sum(b)');
    is_deeply([ map { $_->{name} } @{ $p->{selectors} } ], ['a', 'b'], 'parse: both sides');
    is_deeply($p->{groupings}[0]{labels}, ['r'], 'parse: a trailing by');
    is(scalar @{ $p->{groupings}[0]{selectors} }, 1, 'parse: by covers its own argument');
    ok(!eval { parse('sum(rate(x[5m])'); 1 }, 'parse: refuses an open parenthesis');
    ok(!eval { parse('frobnicate(x)'); 1 }, 'parse: refuses an unknown function');
}

# check_expr($where, $expr): every name, label and exact value against
# the scrape
sub check_expr {
    my ($where, $expr) = @_;
    my $p = eval { parse($expr) };
    ok($p, "$where: parses") or do { diag("$expr: $@"); return };
    ok(@{ $p->{selectors} }, "$where: reads at least one metric") or return;
    for my $s (@{ $p->{selectors} }) {
        my $name = $s->{name};
        ok(defined $name, "$where: a selector with a metric name") or next;
        my $labels = $series{$name};
        ok($labels && family_of($name), "$where: $name is a series the module emits")
            or next;
        for my $m (@{ $s->{matchers} }) {
            my ($l, $op, $v) = @$m;
            next if $TARGET_LABELS{$l};
            ok($labels->{$l}, "$where: $name has the label $l") or next;
            next unless $op eq '=' && $v !~ /\$/;
            ok($labels->{$l}{$v}, "$where: $name\{$l=\"$v\"} is a value the module prints")
                or diag("it prints: " . join(', ', sort keys %{ $labels->{$l} }));
        }
    }
    for my $g (@{ $p->{groupings} }) {
        for my $l (@{ $g->{labels} }) {
            next if $TARGET_LABELS{$l};
            for my $s (grep { defined $_->{name} && $series{ $_->{name} } } @{ $g->{selectors} }) {
                ok($series{ $s->{name} }{$l}, "$where: $g->{what} by ($l): $s->{name} has it");
            }
        }
    }
    return map { $_->{name} } @{ $p->{selectors} };
}

# ---------------------------------------------------------------------------
# the dashboard

my $raw = do { open my $fh, '<:raw', $FILE or die "$FILE: $!"; local $/; <$fh> };
my $dash = eval { JSON::PP->new->utf8->decode($raw) };
ok($dash && ref $dash eq 'HASH', 'the dashboard is valid JSON (an object)')
    or do { diag("$FILE: $@"); done(); exit 1 };

ok($dash->{title}, 'the dashboard has a title');
ok(($dash->{schemaVersion} // 0) >= 36, 'schemaVersion 36 or later');
my %inputs = map { $_->{name} => $_ } @{ $dash->{__inputs} // [] };
is($inputs{DS_PROMETHEUS}{type}, 'datasource', '__inputs declares DS_PROMETHEUS');
is($inputs{DS_PROMETHEUS}{pluginId}, 'prometheus', '... a Prometheus datasource');
my %refs = map { $_ => 1 } $raw =~ /\$\{(DS_[A-Z_]+)\}/g;
ok($inputs{$_}, "\${$_} is declared in __inputs") for sort keys %refs;

my $is_prom = sub {
    my ($ds) = @_;
    return ref $ds eq 'HASH' && ($ds->{type} // '') eq 'prometheus'
           && ($ds->{uid} // '') eq '${DS_PROMETHEUS}';
};

my (%used, %ids);
my @panels = @{ $dash->{panels} // [] };
push @panels, map { @{ $_->{panels} // [] } } @panels;     # collapsed rows
ok(scalar(grep { ($_->{type} // '') ne 'row' } @panels) >= 10, 'ten panels or more');

for my $p (@panels) {
    my $where = "panel " . ($p->{id} // '?') . ' "' . ($p->{title} // '') . '"';
    ok(defined $p->{title} && $p->{title} =~ /\S/, "$where: has a title");
    ok($is_prom->($p->{datasource}), "$where: datasource \${DS_PROMETHEUS}");
    ok(defined $p->{id} && !$ids{ $p->{id} }++, "$where: a unique id");
    my $g = $p->{gridPos} // {};
    ok(defined $g->{x} && $g->{w} && $g->{h} && $g->{x} + $g->{w} <= 24,
       "$where: inside the 24-column grid");
    next if ($p->{type} // '') eq 'row';

    my @t = @{ $p->{targets} // [] };
    ok(@t, "$where: has queries") or next;
    my %refid;
    for my $t (@t) {
        ok(!$refid{ $t->{refId} // '' }++, "$where: refId $t->{refId} unique");
        ok(!defined $t->{datasource} || $is_prom->($t->{datasource}),
           "$where $t->{refId}: the panel's datasource");
        ok(defined $t->{expr} && $t->{expr} =~ /\S/, "$where $t->{refId}: an expr")
            or next;
        $used{$_}++ for check_expr("$where $t->{refId}", $t->{expr});
    }
}

for my $v (@{ $dash->{templating}{list} // [] }) {
    next unless ($v->{type} // '') eq 'query';
    my $where = "variable $v->{name}";
    ok($is_prom->($v->{datasource}), "$where: datasource \${DS_PROMETHEUS}");
    my $q = ref $v->{query} ? $v->{query}{query} : $v->{query};
    if ($q =~ /^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_]\w*)\s*\)\s*$/) {
        my ($expr, $label) = ($1, $2);
        my @names = check_expr($where, $expr);
        ok($TARGET_LABELS{$label} || grep({ $series{$_}{$label} } @names),
           "$where: $label is a label of it");
    } else {
        fail("$where: a label_values(metric, label) query: $q");
    }
}

# and the other way round: every metric the module emits has a panel, so
# that a metric added without one fails here, not on an operator's screen
my %shown = map { (family_of($_) // $_) => 1 } keys %used;
my @unshown = grep { !$shown{$_} } sort keys %type;
is_deeply(\@unshown, [], 'every metric the module emits has a panel');

done();
