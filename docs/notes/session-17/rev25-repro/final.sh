#!/bin/bash
# final.sh: main 8dda0f2 (tracer-analysis = 8c1153c) against base: real pairs × 4 option sets,
# the tiled pair the killed run left, byte damage seed 5, rev24 mutator seed 9 on 4 pairs.
cd /work/s17/rev25; G=/work/s17/rev25/bin/rev25gen; I=/work/s17/rev25/in
i=0; for opts in "" "--context 3 --window-ms 2 --max-anomalies 4" "--context 300 --window-ms 50 --max-anomalies 1000" "--window-ms 0"; do i=$((i+1))
  for d in /work/s10/real/*; do ./ddiff.sh $d/kernel.trace $d/model.trace f$i-$(basename $d) $opts; done; done
d=/work/s10/real/e2e_rename-exchange; t=e2e_rename-exchange-s8-m12
$G $d/kernel.trace $I/$t.k.trace 8 "tile=3,leap=2,dur=5,ino=5,cpu=5,late=3,hold=10"; $G $d/model.trace $I/$t.m.trace 1008 "tile=3,leap=2,dur=5,ino=5,cpu=5,late=3,hold=10"
for o in "a:" "b:--window-ms 0"; do ./ddiff.sh $I/$t.k.trace $I/$t.m.trace $t-${o%%:*} ${o#*:}; done
rm -f $I/$t.*
NEW=main4 ./dmass.sh 5
for p in e2e_rmdir e2e_rename-stat e2e_unlink-stat matrix-smoke_debian-bookworm_prune-stat; do d=/work/s10/real/$p
 for m in "twin=50,late=10" "leap=3,dur=10,ino=10,cpu=10,late=5,future=3,twin=5,hold=20,misc=5" "arr=1,leap=2,dur=5,cpu=5" "maxts=2" "burst=64,dur=10,ino=10,cpu=10"; do t=$p-s9-$(echo $m | md5sum | cut -c1-6)
  $G $d/kernel.trace $I/$t.k.trace 9 "$m"; $G $d/model.trace $I/$t.m.trace 1009 "$m"
  k=""; for o in "a:" "b:--window-ms 0" "c:--context 3 --window-ms 2 --max-anomalies 4"; do out=$(./ddiff.sh $I/$t.k.trace $I/$t.m.trace $t-${o%%:*} ${o#*:}); echo "$out"; case "$out" in SAME*) ;; *) k=1;; esac; done
  [ -z "$k" ] && rm -f $I/$t.*
 done; done
