package ChaosCheck;

# The chaos campaign's checker (t/chaos/chaos.pl): reads the recorded
# history of every request and answer, Redis after the jobs settled, the
# Flash stand-in's count of calls per job and what each nginx answered
# after the faults stopped, and lists every breach of the invariants
# (docs/hardening.md, "Chaos"):
#
#   lost        a job acknowledged with a 200 is not completed or failed
#   twice       a job's outcome was written more than once (its hash's
#               "finishes", counted by the scripts that write one)
#   regressed   one nginx answered a job finished, then (in a request begun
#               after that answer) not finished
#   changed     two answers for one job disagree on its outcome (status,
#               path), or an answer disagrees with Redis' final state
#   idempotency one Idempotency-Key answered with two different jobs
#   node        a completed job's node is missing, lacks an index of its
#               reads, or an auto-edge lacks its other half
#   flash       a job had more Flash calls than its hash accounts for
#               (attempts + stalls + handbacks), or a cause past its bound
#   zone        after the faults, an nginx answered a job differently from
#               Redis
#
# Each breach carries the history records that show it.

use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP;
use List::Util qw(max min sum);

my $FINAL = qr/^(completed|failed)$/;

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($f, $text) = @_;
    open my $fh, '>', $f or die "$f: $!\n";
    print {$fh} $text;
    close $fh;
}

sub load_history {
    my ($dir) = @_;
    my @h;
    for my $f (sort glob("$dir/*.jsonl")) {
        open my $fh, '<', $f or next;
        while (my $l = <$fh>) {
            my $r = eval { decode_json($l) } or next;
            push @h, $r;
        }
    }
    return [ sort { $a->{t0} <=> $b->{t0} } @h ];
}

# the job objects of an answer (one, or a bulk's array)
sub _jobs_of {
    my ($r) = @_;
    my $b = $r->{body};
    return () unless $r->{st} == 200 && ref $b;
    return grep { ref $_ eq 'HASH' && $_->{job_id} } ref $b eq 'ARRAY' ? @$b : ($b);
}

sub acknowledged {
    my ($h) = @_;
    my %seen;
    return grep { !$seen{$_}++ }
        map { $_->{job_id} }
        map { _jobs_of($_) } grep { $_->{op} =~ /^(generate|bulk)$/ } @$h;
}

# GET every acknowledged job on every nginx once the faults stopped
sub probe_fleet {
    my ($nginx, $ids, $key) = @_;
    my $ua = HTTP::Tiny->new(timeout => 5);
    my @out;
    for my $n (0 .. $#$nginx) {
        for my $id (@$ids) {
            my $res = $ua->get($nginx->[$n]->url("/api/jobs/$id"),
                               { headers => { 'X-Service-Key' => $key } });
            my $b = eval { decode_json($res->{content}) };
            push @out, { n => $n, id => $id, st => $res->{status},
                         status => ref $b ? $b->{status} : undef,
                         path => ref $b ? $b->{path} : undef };
        }
    }
    return \@out;
}

sub _brief {
    my ($r) = @_;
    my %b = map { $_ => $r->{$_} } grep { defined $r->{$_} } qw(c i op n t0 t1 st key);
    if (ref $r->{body} eq 'HASH') {
        $b{status} = $r->{body}{status};
        $b{path} = $r->{body}{path} if $r->{body}{path};
        $b{detail} = $r->{body}{detail} if $r->{body}{detail};
    }
    return \%b;
}

sub check {
    my (%o) = @_;
    my $h = $o{history};
    my $redis = $o{redis};
    my $p = $o{prefix};
    my (@breach, %by_job, %count);

    my $breach = sub {
        my ($kind, $what, @recs) = @_;
        push @breach, { kind => $kind, what => $what,
                        history => [ map { _brief($_) } @recs[0 .. min(5, $#recs)] ] };
    };

    for my $r (@$h) {
        $count{ops}{ $r->{op} }++;
        $count{status}{ $r->{st} }++;
        for my $j (_jobs_of($r)) {
            push @{ $by_job{ $j->{job_id} } }, [ $r, $j ];
        }
    }

    my @acked = acknowledged($h);
    my %final;
    for my $id (@acked) {
        my %job = @{ $redis->cmd('HGETALL', $p . "job:$id") // [] };
        $final{$id} = \%job;
        $count{outcome}{ $job{status} // 'missing' }++;
        my @recs = map { $_->[0] } @{ $by_job{$id} };
        if (($job{finishes} // 1) > 1) {
            $breach->('twice', "job $id: its outcome was written $job{finishes} times",
                      @recs);
        }
        if (($job{status} // '') !~ $FINAL) {
            $breach->('lost', "job $id acknowledged, " . ($job{status} // 'not in Redis')
                      . ' after the faults stopped', @recs);
        }
    }

    for my $id (sort keys %by_job) {
        my @a = @{ $by_job{$id} };
        # regressed: per nginx, a finished answer, then an unfinished one
        # to a request begun after it
        my %n;
        push @{ $n{ $_->[0]{n} } }, $_ for @a;
        for my $list (values %n) {
            my $fin;
            for my $x (sort { $a->[0]{t0} <=> $b->[0]{t0} } @$list) {
                my ($r, $j) = @$x;
                if ($fin && $r->{t0} > $fin->[0]{t1} && ($j->{status} // '') !~ $FINAL) {
                    $breach->('regressed', "job $id: nginx $r->{n} answered "
                              . "$fin->[1]{status}, then $j->{status}", $fin->[0], $r);
                    last;
                }
                $fin //= $x if ($j->{status} // '') =~ $FINAL;
            }
        }
        # changed: every finished answer and Redis agree
        my %outcome;
        for my $x (@a) {
            my $j = $x->[1];
            next unless ($j->{status} // '') =~ $FINAL;
            push @{ $outcome{ $j->{status} . ' ' . ($j->{path} // '') } }, $x->[0];
        }
        my $f = $final{$id};
        if ($f && ($f->{status} // '') =~ $FINAL) {
            $outcome{ $f->{status} . ' ' . ($f->{status} eq 'completed' ? $f->{path} // '' : '') } //= [];
        }
        if (keys %outcome > 1) {
            $breach->('changed', "job $id has " . scalar(keys %outcome) . ' outcomes: '
                      . join(' | ', sort keys %outcome), map { @$_ } values %outcome);
        }
    }

    # idempotency: one key, one set of jobs
    my %key;
    for my $r (grep { $_->{key} && $_->{st} == 200 } @$h) {
        my $ids = join ',', map { $_->{job_id} } _jobs_of($r);
        push @{ $key{ $r->{key} }{$ids} }, $r;
    }
    for my $k (sort keys %key) {
        next if keys %{ $key{$k} } < 2;
        $breach->('idempotency', "Idempotency-Key $k answered with "
                  . scalar(keys %{ $key{$k} }) . ' different jobs',
                  map { @$_ } values %{ $key{$k} });
    }

    # the graph: each completed job's node, its indexes, its auto-edges
    my %pair = (contemporaneous => 'contemporaneous', same_era => 'same_era',
                same_location => 'same_location', same_figure => 'same_figure',
                thematic => 'thematic', precedes => 'follows', follows => 'precedes');
    for my $id (@acked) {
        my $f = $final{$id};
        next unless ($f->{status} // '') eq 'completed';
        my $path = $f->{path} // '';
        my $recs = [ map { $_->[0] } @{ $by_job{$id} } ];
        if (!$redis->cmd('EXISTS', $p . "node:$path")) {
            $breach->('node', "job $id completed with $path, which has no node", @$recs);
            next;
        }
        $count{nodes}++;
        if (!defined $redis->cmd('ZSCORE', $p . 'idx:time', $path)) {
            $breach->('node', "node $path is not in idx:time (lists, walks)", @$recs);
        }
        my %e = @{ $redis->cmd('HGETALL', $p . "edges:$path") // [] };
        for my $f (sort keys %e) {
            my ($type, $other) = split /\|/, $f, 2;
            my $e = eval { decode_json($e{$f}) } // {};
            next unless ($e->{created_by} // '') eq 'auto' && $pair{$type};
            $count{edges}++;
            if (!defined $redis->cmd('HGET', $p . "edges:$other", "$pair{$type}|$path")) {
                $breach->('node', "edge $type $path -> $other has no $pair{$type} back", @$recs);
            }
        }
    }

    # Flash calls: each accounted for by its cause, each cause in bounds
    my $calls = $o{flash}{by_job} // {};
    for my $id (@acked) {
        my $f = $final{$id} // {};
        my $n = $calls->{$id} // 0;
        my ($att, $st, $hb) = map { $f->{$_} // 0 } qw(attempts stalls handbacks);
        $count{flash_calls} += $n;
        if ($n > $att + $st + $hb) {
            $breach->('flash', "job $id: $n Flash calls, its hash accounts for "
                      . ($att + $st + $hb) . " (attempts $att, stalls $st, handbacks $hb)",
                      map { $_->[0] } @{ $by_job{$id} });
        }
        if ($att > 5 || $st > 3) {
            $breach->('flash', "job $id: attempts $att (bound 5), stalls $st (bound 3)",
                      map { $_->[0] } @{ $by_job{$id} });
        }
    }

    # every nginx agrees with Redis once the faults stopped
    for my $q (@{ $o{probes} // [] }) {
        my $f = $final{ $q->{id} } // {};
        my $want = ($f->{status} // '') . ' ' . (($f->{status} // '') eq 'completed' ? $f->{path} // '' : '');
        my $got = ($q->{status} // "HTTP $q->{st}") . ' ' . ($q->{path} // '');
        next if $got eq $want;
        $breach->('zone', "job $q->{id}: nginx $q->{n} answers '$got', Redis holds '$want'");
    }

    # recovery: from each fault's end to the first 200 create after it
    # (on its nginx when it had one)
    my @creates = grep { $_->{op} =~ /^(generate|bulk)$/ && $_->{st} == 200 } @$h;
    my $t0 = $o{start} // (@$h ? min(map { $_->{t0} } @$h) : 0);
    my %rec;
    for my $f (@{ $o{faults} // [] }) {
        # an instant fault (a kill, a reload) is over when it is made: the
        # fleet recovers by itself; one that lasts, when it is undone
        my $instant = $f->{kind} =~ /^(worker_kill|runner_kill|reload|redis_restart|failover)$/;
        my $end = $t0 + ($instant ? $f->{began} : $f->{undone} // $f->{began});
        my $on_n = $f->{kind} =~ /^(nginx_stop|partition|sigstop)$/;
        my ($first) = grep { $_->{t1} >= $end && (!$on_n || $_->{n} == $f->{target}) } @creates;
        push @{ $rec{ $f->{kind} } }, $first ? $first->{t1} - $end : undef;
    }
    my %recovery;
    for my $k (sort keys %rec) {
        my @v = sort { $a <=> $b } grep { defined } @{ $rec{$k} };
        $recovery{$k} = { faults => scalar @{ $rec{$k} }, recovered => scalar @v,
                          p50 => @v ? sprintf('%.2f', $v[ int($#v * 0.5) ]) : undef,
                          p99 => @v ? sprintf('%.2f', $v[ int($#v * 0.99 + 0.5) ]) : undef };
    }

    return { breaches => \@breach, counts => \%count, acknowledged => scalar @acked,
             requests => scalar @$h, recovery => \%recovery,
             faults => $o{faults} // [] };
}

sub report_text {
    my ($r) = @_;
    my $c = $r->{counts};
    my $s = sprintf "chaos: seed %s, %s min, %d requests, %d jobs acknowledged\n",
        $r->{seed}, $r->{minutes}, $r->{requests}, $r->{acknowledged};
    $s .= "redis: $r->{redis}\n" if $r->{redis};
    $s .= "settled: " . ($r->{settled} ? 'every acknowledged job finished'
                                        : 'NOT every acknowledged job finished') . "\n";
    $s .= "outcomes: " . join(', ', map { "$_ $c->{outcome}{$_}" } sort keys %{ $c->{outcome} // {} }) . "\n";
    $s .= "answers: " . join(', ', map { "$_ $c->{status}{$_}" } sort keys %{ $c->{status} // {} }) . "\n";
    $s .= sprintf "graph: %d nodes checked, %d auto-edges checked; %d Flash calls\n",
        $c->{nodes} // 0, $c->{edges} // 0, $c->{flash_calls} // 0;
    $s .= "faults (kind: injected, recovered, p50/p99 s to the next 200 create):\n";
    for my $k (sort keys %{ $r->{recovery} }) {
        my $x = $r->{recovery}{$k};
        $s .= sprintf "  %-14s %3d %3d  %s / %s\n", $k, $x->{faults}, $x->{recovered},
            $x->{p50} // '-', $x->{p99} // '-';
    }
    my @b = @{ $r->{breaches} };
    $s .= sprintf "breaches: %d\n", scalar @b;
    for my $b (@b[0 .. min(19, $#b)]) {
        $s .= "  [$b->{kind}] $b->{what}\n";
        $s .= "      " . JSON::PP->new->canonical->encode($_) . "\n" for @{ $b->{history} };
    }
    $s .= @b ? "FAIL\n" : "PASS\n";
    return $s;
}


# A Redis handle that reconnects and retries: a failover's sentinels close
# every client connection, and a restarted server has new ones.
package ChaosCheck::Redis;

use Time::HiRes qw(sleep);

sub new { my ($c, $r) = @_; bless { r => $r }, $c }

sub cmd {
    my ($s, @c) = @_;
    for my $try (1 .. 5) {
        my $v = eval { $s->{r}->cmd(@c) };
        return $v unless $@;
        delete $s->{r}{sock};
        die $@ if $try == 5;
        sleep(0.2);
    }
}

1;
