# The ratios of ./build.sh bench as bars, each with its targets
# (t/bench/bench.pl writes the data, then runs this):
#
#   gnuplot -e 'datafile="build/bench/bench-ratios.dat";
#               outfile="build/bench/bench-ratios.svg"; subtitle="..."'
#           t/bench/bench.gp
#
# datafile: tab-separated, a header line, then one measure a line:
#   label  ratio  kind (1: throughput, higher is better; 2: p99, lower
#   is better)  target of bench.pl  target of issue 19 ("-": none)

set terminal svg size 1000,620 dynamic enhanced font "sans,12" background rgb "white"
set output outfile
set encoding utf8
set datafile separator "\t"
set datafile missing "-"

set title "Clockchain module ÷ nginx's own limit (a return 200 of the same body, same nginx, same run)\n{/*0.8 ".subtitle."}"
set ylabel "ratio, median of 3 interleaved rounds (1 = nginx's limit)"
set xlabel "measure (t/bench/bench.pl)"
set yrange [0:*]
set offsets 0.5, 0.5, 0.15, 0
set xtics rotate by 30 right nomirror noenhanced
set ytics nomirror
set grid ytics lc rgb "#dddddd"
set bmargin 10
set lmargin 18
set key above horizontal maxrows 2 width 2
set style fill solid 0.85 border -1
set boxwidth 0.6

plot datafile using 0:($3 == 1 ? $2 : 1/0):xtic(1) skip 1 with boxes lc rgb "#4c72b0" \
        title "throughput ratio (higher is better)", \
     '' using 0:($3 == 2 ? $2 : 1/0) skip 1 with boxes lc rgb "#dd8452" \
        title "p99 ratio (lower is better)", \
     '' using ($0 - 0.4):4:(0.8):(0) skip 1 with vectors nohead lw 2.5 lc rgb "black" \
        title "target of bench.pl", \
     '' using ($0 - 0.4):5:(0.8):(0) skip 1 with vectors nohead lw 2.5 dt 2 lc rgb "#c44e52" \
        title "target of issue 19", \
     '' using 0:2:(sprintf("%.2f", $2)) skip 1 with labels offset 0,0.8 font "sans,10" notitle, \
     1 with lines lc rgb "#888888" dt 3 title "nginx's limit (1)"
