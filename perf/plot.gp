# Bar chart of Troupe's speed relative to its peers, one group of bars per
# comparison row. Called by perf/compare.sh as
#
#   gnuplot -e "datafile='ratios.tsv'; outfile='compare.png'; ymin=0.1; ymax=10" perf/plot.gp
#
# datafile is tab-separated, one line per row:
#   index <TAB> label <TAB> troupe/caf <TAB> troupe/erlang
# with NaN where a ratio is missing; has_caf / has_erlang (0 or 1) say whether
# the column holds any value at all. Bars start at 1 (parity): a bar going up
# means the Troupe value is larger than the peer's.

if (!exists("datafile")) datafile = "perf/results/ratios.tsv"
if (!exists("outfile")) outfile = "perf/results/compare.png"
if (!exists("ymin")) ymin = 0.1
if (!exists("ymax")) ymax = 10
if (!exists("has_caf")) has_caf = 1
if (!exists("has_erlang")) has_erlang = 1
if (!exists("charttitle")) charttitle = "Troupe relative to CAF and Erlang (median of runs)"

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1200,700 enhanced font "DejaVu Sans,11"
} else {
    set terminal png size 1200,700 font "DejaVuSans,10"
}
set output outfile

set datafile separator "\t"
set datafile missing "NaN"

# Count the rows before any axis range is set (stats honours ranges).
stats datafile using 1 nooutput
nrows = STATS_records

set title charttitle font ",14" offset 0,1.5
set ylabel "Troupe ÷ peer (log scale)"
set logscale y 10
set yrange [ymin:ymax]
set format y "%g×"
set grid ytics mytics lc rgb "#dddddd"
set mytics 10

set xrange [-0.6:nrows - 0.4]
set xtics rotate by 30 right nomirror scale 0 font ",11"
set ytics nomirror
set border 3
set bmargin 9
set lmargin 14
set tmargin 6
set key at graph 0.5, graph 1.01 center bottom horizontal nobox

# Parity line at 1.
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "#333333" front

w = 0.36
off = (has_caf && has_erlang) ? 0.19 : 0
bar(v) = (v == v) ? v : NaN
lab(v) = (v == v) ? sprintf("%.2f", v) : ""
labely(v) = (v >= 1) ? v * 1.10 : v / 1.10

# Only series with at least one value are drawn (gnuplot warns about empty
# ones); the first drawn series carries the row labels.
caf_bars = "datafile using ($1 - off):(1):($1 - off - w/2):($1 - off + w/2):(1):(bar($3)):xtic(2) with boxxyerror fs solid 0.85 noborder lc rgb \"#4477aa\" title \"Troupe ÷ CAF\", datafile using ($1 - off):(labely($3)):(lab($3)) with labels font \",9\" notitle"
erl_bars = "datafile using ($1 + off):(1):($1 + off - w/2):($1 + off + w/2):(1):(bar($4))".(has_caf ? "" : ":xtic(2)")." with boxxyerror fs solid 0.85 noborder lc rgb \"#ee7733\" title \"Troupe ÷ Erlang\", datafile using ($1 + off):(labely($4)):(lab($4)) with labels font \",9\" notitle"

if (has_caf && has_erlang) {
    plot @caf_bars, @erl_bars
} else {
    if (has_caf) {
        plot @caf_bars
    } else {
        plot @erl_bars
    }
}
