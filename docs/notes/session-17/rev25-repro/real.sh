#!/bin/bash
cd /work/s17/rev25
i=0
for opts in "" "--context 3 --window-ms 2 --max-anomalies 4" "--context 300 --window-ms 50 --max-anomalies 1000" "--window-ms 0"; do
  i=$((i+1))
  for d in /work/s10/real/*; do
    ./ddiff.sh $d/kernel.trace $d/model.trace o$i-$(basename $d) $opts
  done
done
