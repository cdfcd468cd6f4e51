#!/bin/bash
# mass2.sh SEEDS: hostile kernel traces (paths, then the park escapes), replayed by the base tracer, and diffed base vs main2.
P=/work/s16/rev-clone/target/release/pathgen; G=/work/s16/rev-clone/target/release/rev24gen; I=/work/s16/rev24/in
PAIRS=(e2e_rename-stat e2e_rename-exchange e2e_rmdir e2e_unlink-stat e2e_prune-stat matrix-smoke_debian-bookworm_negative)
MODES=("dur=10,ino=10,cpu=10,twin=10" "leap=3,late=5,future=3,hold=30" "arr=1,misc=10,dur=5" "burst=128,twin=20,ino=5")
for s in $@; do
 for p in ${PAIRS[@]}; do
  d=/work/s10/real/$p
  for mi in ${!MODES[@]}; do
   tag=$p-s$s-x$mi
   $P $d/kernel.trace $I/$tag.p.trace $s 100 && $G $I/$tag.p.trace $I/$tag.k.trace $s "${MODES[$mi]}" || { echo GENFAIL $tag; continue; }
   rm -f $I/$tag.p.trace
   ( cd /tmp && /work/s16/rev24/bin/tracer-base replay --against $I/$tag.k.trace --out $I/$tag.m.trace > /dev/null 2>&1 )
   r=""
   for o in "a:" "b:--window-ms 1" "c:--window-ms 100 --max-anomalies 2 --context 0" "d:--context 20 --max-anomalies 30"; do
     out=$(./ddiff.sh $I/$tag.k.trace $I/$tag.m.trace $tag-${o%%:*} ${o#*:}); echo "$out"; case "$out" in SAME*) ;; *) r=keep;; esac
   done
   [ -z "$r" ] && rm -f $I/$tag.k.trace $I/$tag.m.trace
  done
 done
done
