#!/bin/bash
# rmass.sh SEEDS: hostile kernel traces (rev23gen, jmut24) through rdiff.sh; inputs kept only when outputs differ.
G23=/work/s15/rev23/bin/rev23gen; G24=/work/s17/rev25/bin/rev25gen; I=/work/s17/rev25/in
cd /work/s17/rev25
for d in /work/s10/real/*; do ./rdiff.sh $d/kernel.trace real-$(basename $d); done
PAIRS=(e2e_rename-stat e2e_rename-exchange e2e_negative e2e_rmdir e2e_unlink-stat e2e_prune-stat matrix-smoke_debian-trixie-backports_rmdir matrix-smoke_debian-bullseye_rename-exchange)
M23=("damage=30" "unknown=20" "burst=200" "opkind=80,damage=10" "churn=50,retid=30,opretid=20" "dup=30,drop=30,orphan=20" "cut=300" "raw=1,damage=10" "burst=1000,opkind=30")
M24=("late=10" "leap=5" "dur=20" "hold=50" "twin=20,hold=20,dur=5" "leap=3,dur=10,ino=10,cpu=10,late=5,future=3,twin=5,hold=20,misc=5" "arr=1,leap=2,dur=5,cpu=5" "maxts=2")
for s in $@; do
 for p in ${PAIRS[@]}; do
  d=/work/s10/real/$p
  for mi in ${!M23[@]}; do
   tag=$p-s$s-r23m$mi
   $G23 $d/kernel.trace $I/$tag.k.trace $s "${M23[$mi]}" 2>/dev/null || { echo GENFAIL $tag; continue; }
   a=$(./rdiff.sh $I/$tag.k.trace $tag); echo "$a"
   case "$a" in *DIFF*) ;; *) rm -f $I/$tag.k.trace;; esac
  done
  for mi in ${!M24[@]}; do
   tag=$p-s$s-r24m$mi
   $G24 $d/kernel.trace $I/$tag.k.trace $s "${M24[$mi]}" 2>/dev/null || { echo GENFAIL $tag; continue; }
   a=$(./rdiff.sh $I/$tag.k.trace $tag); echo "$a"
   case "$a" in *DIFF*) ;; *) rm -f $I/$tag.k.trace;; esac
  done
 done
done
