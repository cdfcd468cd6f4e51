#!/bin/bash
# amass.sh SEEDS: session 15's arena-mutate on all 31 pairs (rate 40 and 400 per mille, slow tid), base vs judge.
export VERS="base judge"; G=/work/s17/rev25/bin/rev25arena; I=/work/s17/rev25/in
cd /work/s17/rev25
for s in $@; do for d in /work/s10/real/*/; do n=$(basename $d)
  for r in "40 1" "400 20"; do set -- $r; o=$I/A-$n-$s-$1; mkdir -p $o
    $G $d $o $s $1 $2 > /dev/null 2>&1 || { echo GENFAIL $n; continue; }
    k=""
    for opt in "a:" "d:--window-ms 0" "b:--context 3 --window-ms 2 --max-anomalies 4"; do
      out=$(./ddiff.sh $o/kernel.trace $o/model.trace A-$n-$s-$1-${opt%%:*} ${opt#*:}); echo "$out"; case "$out" in SAME*) ;; *) k=1;; esac
    done
    [ -z "$k" ] && rm -rf $o
  done; done; done
