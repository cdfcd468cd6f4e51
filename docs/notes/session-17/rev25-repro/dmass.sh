#!/bin/bash
# dmass.sh SEED: byte-damaged kernel and model traces through tracer diff (base vs $NEW) and replay.
cd /work/s17/rev25; I=/work/s17/rev25/dmg; s=$1
for p in e2e_rename-stat e2e_rmdir matrix-smoke_debian-trixie-backports_prune-stat e2e_negative-minix; do
  d=/work/s10/real/$p
  ./damage.py $d/kernel.trace $I k-$p-$s $s; ./damage.py $d/model.trace $I m-$p-$s $((s+7))
  for f in $I/k-$p-$s-*.trace; do t=$(basename $f .trace)
    a=$(VERS="base $NEW" ./ddiff.sh $f $d/model.trace d-$t); echo "$a"
    b=$(VERS="base $NEW" ./ddiff.sh $f $d/model.trace d0-$t --window-ms 0); echo "$b"
    c=$(VERS="base $NEW" ./rdiff.sh $f r-$t); echo "$c"
    case "$a$b$c" in *DIFF*) ;; *) rm -f $f;; esac
  done
  for f in $I/m-$p-$s-*.trace; do t=$(basename $f .trace)
    a=$(VERS="base $NEW" ./ddiff.sh $d/kernel.trace $f d-$t); echo "$a"
    case "$a" in *DIFF*) ;; *) rm -f $f;; esac
  done
done
