# The soak over its time (t/soak/soak.pl writes the data, then runs this):
#
#   gnuplot -e 'procs="build/soak/soak-procs.dat";
#               series="build/soak/soak-series.dat"; loadend="600";
#               outfile="build/soak/soak.svg"; subtitle="..."; subtitle2="..."'
#           t/soak/soak.gp
#
# procs: one block a process (two blank lines between), its name on the
#   block's first line, then: t (s)  VmRSS (MiB)  private (MiB)  fds
# series: a header line, then: t (s)  GET p50 (ms)  GET max (ms)
#   Flash mean call (s)  queued  claimed  calls in flight  ("-": none)
# loadend: when wrk stopped (s); after it the runner drains the queue.

set terminal svg size 1000,1200 dynamic enhanced font "sans,12" background rgb "white"
set output outfile
set encoding utf8
set datafile missing "-"

stats procs using 1 nooutput
nprocs = STATS_blocks
tmax = STATS_max

if (!exists("subtitle2")) subtitle2 = ""
set multiplot layout 4,1 title "Clockchain soak: nginx with the module under mixed load, then the drain\n{/*0.8 ".subtitle."}\n{/*0.8 ".subtitle2."}"
set xrange [0:tmax]
set grid lc rgb "#dddddd"
set key outside right top vertical width 2 noenhanced
set lmargin 12
set rmargin 34
set arrow 1 from first loadend, graph 0 to first loadend, graph 1 nohead dt 2 lc rgb "#888888"
set label 1 "load ends" at first loadend, graph 0.95 offset 0.5,0 font "sans,10" tc rgb "#666666"
set style data linespoints
set pointsize 0.4

set title "Memory of each nginx process (private: VmRSS - RssShmem, without the zone)"
set ylabel "MiB"
set yrange [0:*]
plot for [i=0:nprocs-1] procs index i using 1:2 lw 1.5 lc i+1 title columnheader(1)." VmRSS", \
     for [i=0:nprocs-1] procs index i using 1:3 dt 2 lw 1.5 lc i+1 title columnheader(1)." private"

set title "File descriptors of each nginx process"
set ylabel "open fds"
plot for [i=0:nprocs-1] procs index i using 1:4 lw 1.5 lc i+1 title columnheader(1)

set title "Latency: 5 GETs of a finished job each sample (one connection), and Flash calls"
set ylabel "GET (ms)"
set logscale y
set yrange [*:*]
set y2tics
set format y2 "%.1f s"
set y2range [0:*]
set ytics nomirror
plot series using 1:2 skip 1 lw 1.5 title "GET p50", \
     series using 1:3 skip 1 lw 1.5 title "GET max", \
     series using 1:4 skip 1 axes x1y2 dt 2 lw 1.5 title "Flash mean (s, right)"
unset logscale y
unset y2tics
set ytics mirror

set title "Jobs in Redis and calls to Flash"
set xlabel "time since the load started (s)"
set ylabel "jobs"
set yrange [0:*]
plot series using 1:5 skip 1 lw 1.5 title "queued", \
     series using 1:6 skip 1 lw 1.5 title "claimed", \
     series using 1:7 skip 1 lw 1.5 title "calls in flight"

unset multiplot
