#!/bin/bash
# mass.sh SEEDS: mutated pairs through ddiff.sh; inputs kept only when outputs differ.
G=/work/s16/rev-clone/target/release/rev24gen; I=/work/s16/rev24/in
MODES=("leap=5" "dur=20" "ino=20" "cpu=20" "late=10" "future=5" "maxts=2" "misc=20" "twin=10" "hold=50" "arr=1" "leap=3,dur=10,ino=10,cpu=10,late=5,future=3,twin=5,hold=20,misc=5" "tile=3,leap=2,dur=5,ino=5,cpu=5,late=3,hold=10" "burst=64,dur=10,ino=10,cpu=10" "arr=1,leap=2,dur=5,cpu=5")
PAIRS=(e2e_rename-stat e2e_rename-exchange e2e_negative e2e_rmdir e2e_unlink-stat e2e_prune-stat matrix-smoke_debian-bookworm_negative e2e_negative-minix)
for s in $@; do
 for p in ${PAIRS[@]}; do
  d=/work/s10/real/$p
  for mi in ${!MODES[@]}; do
   m=${MODES[$mi]}; tag=$p-s$s-m$mi
   $G $d/kernel.trace $I/$tag.k.trace $s "$m" || { echo GENFAIL $tag; continue; }
   if [ $((s % 2)) = 0 ]; then $G $d/model.trace $I/$tag.m.trace $((s+1000)) "$m"; M=$I/$tag.m.trace; else M=$d/model.trace; fi
   r=""
   for o in "a:" "b:--window-ms 0" "c:--window-ms 100 --max-anomalies 2 --context 0"; do
     out=$(./ddiff.sh $I/$tag.k.trace $M $tag-${o%%:*} ${o#*:}); echo "$out"; case "$out" in SAME*) ;; *) r=keep;; esac
   done
   [ -z "$r" ] && rm -f $I/$tag.k.trace $I/$tag.m.trace
  done
 done
done
