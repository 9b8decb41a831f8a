# The cost curve of bench/run.sh (docs/performance.md, "6. Cost curve"):
#   gnuplot -e "actors='A.tsv'; conns='C.tsv'; out='cost-curve.png'" bench/cost-curve.gp
# A.tsv: actors, our round trips/s, our bytes/actor, CAF round trips/s, CAF bytes/actor.
# C.tsv: connections, spawn-proxy req/s, its p99 (us), nginx req/s, its p99 (us).
set terminal pngcairo size 1500,460 font ",10"
set output out
set datafile separator "\t"
set key top left box opaque
set grid
set format x "%.0e"
set multiplot layout 1,3

set title "Embedded round trips/s (64 callers, 2 threads)"
set logscale x
set xrange [500:2000000]
set logscale y
set xlabel "actors"
set ylabel "round trips/s"
plot actors using 1:2 with linespoints title "spawn", \
     actors using 1:4 with linespoints title "CAF 0.17"

set title "Memory per activated idle actor"
unset logscale y
set yrange [0:*]
set ylabel "bytes per actor (RSS growth)"
plot actors using 1:3 with linespoints title "spawn", \
     actors using 1:5 with linespoints title "CAF 0.17"

set title "Sidecar inc: req/s and p99 by connections"
set key bottom right box opaque
set format x "%g"
set xrange [0.7:400]
set xlabel "wrk connections"
set ylabel "requests/s"
set y2label "p99 ms"
set y2tics
set ytics nomirror
set yrange [0:*]
set y2range [0:*]
plot conns using 1:2 with linespoints title "spawn-proxy req/s", \
     conns using 1:4 with linespoints title "nginx req/s", \
     conns using 1:($3/1000) axes x1y2 with linespoints dashtype 2 title "spawn-proxy p99", \
     conns using 1:($5/1000) axes x1y2 with linespoints dashtype 2 title "nginx p99"
unset multiplot
