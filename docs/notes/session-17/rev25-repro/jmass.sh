#!/bin/bash
# jmass.sh SEEDS: the judge change (deferred judgements): real pairs under 4 option sets, then
# mutated pairs with differing twins, late and held ops, damaged durations; base vs judge.
export VERS="base judge"
G=/work/s17/rev25/bin/rev25gen; I=/work/s17/rev25/in
cd /work/s17/rev25
OPTS=("a:" "b:--context 3 --window-ms 2 --max-anomalies 4" "c:--context 300 --window-ms 50 --max-anomalies 1000" "d:--window-ms 0")
if [ "$REAL" = 1 ]; then
for o in "${OPTS[@]}"; do for d in /work/s10/real/*; do ./ddiff.sh $d/kernel.trace $d/model.trace j${o%%:*}-$(basename $d) ${o#*:}; done; done
fi
MODES=("twin=50" "twin=100,late=20" "twin=30,hold=50" "twin=30,dur=20" "late=30,hold=30" "twin=20,leap=3,late=10" "arr=1,twin=30" "twin=200")
PAIRS=(e2e_rename-stat e2e_rename-exchange e2e_negative e2e_rmdir e2e_unlink-stat e2e_prune-stat matrix-smoke_debian-trixie-backports_rmdir matrix-smoke_debian-bullseye_rename-stat)
for s in $@; do for p in ${PAIRS[@]}; do d=/work/s10/real/$p
  for mi in ${!MODES[@]}; do m=${MODES[$mi]}; tag=J-$p-s$s-m$mi
   $G $d/kernel.trace $I/$tag.k.trace $s "$m" || { echo GENFAIL $tag; continue; }
   $G $d/model.trace $I/$tag.m.trace $((s+1000)) "$m"
   r=""
   for o in "${OPTS[@]}"; do
     out=$(./ddiff.sh $I/$tag.k.trace $I/$tag.m.trace $tag-${o%%:*} ${o#*:}); echo "$out"; case "$out" in SAME*) ;; *) r=keep;; esac
   done
   [ -z "$r" ] && rm -f $I/$tag.k.trace $I/$tag.m.trace
  done; done; done
