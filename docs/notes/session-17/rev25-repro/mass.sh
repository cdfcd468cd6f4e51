#!/bin/bash
# mass.sh SEEDS: mutated pairs (jmut24 = rev24's mutator, jmut15 = session 15's) through ddiff.sh; inputs kept only when outputs differ.
G=/work/s17/judge/bin/jmut24; G15=/work/s17/judge/bin/jmut15; I=/work/s17/rev25/in
cd /work/s17/rev25
MODES=("leap=5" "dur=20" "ino=20" "cpu=20" "late=10" "future=5" "maxts=2" "misc=20" "twin=10" "hold=50" "arr=1" "leap=3,dur=10,ino=10,cpu=10,late=5,future=3,twin=5,hold=20,misc=5" "tile=3,leap=2,dur=5,ino=5,cpu=5,late=3,hold=10" "burst=64,dur=10,ino=10,cpu=10" "arr=1,leap=2,dur=5,cpu=5")
PAIRS=(e2e_rename-stat e2e_rename-exchange e2e_negative e2e_rmdir e2e_unlink-stat e2e_prune-stat matrix-smoke_debian-trixie-backports_rmdir e2e_negative-minix)
for s in $@; do
 for p in ${PAIRS[@]}; do
  d=/work/s10/real/$p
  for mi in ${!MODES[@]}; do
   m=${MODES[$mi]}; tag=$p-s$s-m$mi
   $G $d/kernel.trace $I/$tag.k.trace $s "$m" || { echo GENFAIL $tag; continue; }
   if [ $((s % 2)) = 0 ]; then $G $d/model.trace $I/$tag.m.trace $((s+1000)) "$m"; M=$I/$tag.m.trace; else M=$d/model.trace; fi
   r=""
   for o in "a:" "b:--window-ms 0" "c:--window-ms 100 --max-anomalies 2 --context 0" "d:--context 3 --window-ms 2 --max-anomalies 4"; do
     out=$(./ddiff.sh $I/$tag.k.trace $M $tag-${o%%:*} ${o#*:}); echo "$out"; case "$out" in SAME*) ;; *) r=keep;; esac
   done
   [ -z "$r" ] && rm -f $I/$tag.k.trace $I/$tag.m.trace
  done
 done
 for d in /work/s10/real/*/; do n=$(basename $d)
  for r in "40 1" "400 20"; do set -- $r; o=$I/j15-$n-$s-$1; 
    $G15 $d $o $s $1 $2 > /dev/null 2>&1 || { echo GENFAIL15 $n; continue; }
    out=$(./ddiff.sh $o/kernel.trace $o/model.trace j15-$n-$s-$1); echo "$out"; case "$out" in SAME*) rm -rf $o;; esac
  done
 done
done
