#!/bin/bash
# rmass.sh SEEDS: hostile kernel traces through rdiff.sh (base vs main2); inputs kept only when outputs differ.
P=/work/s16/rev-clone/target/release/pathgen; G23=/work/s15/rev23/bin/rev23gen; I=/work/s16/rev24/in
PAIRS=(e2e_rename-stat e2e_rename-exchange e2e_negative e2e_rmdir e2e_unlink-stat e2e_prune-stat matrix-smoke_debian-bookworm_negative e2e_negative-minix)
M23=("damage=30" "unknown=20" "burst=200" "opkind=80,damage=10" "churn=50,retid=30,opretid=20" "dup=30,drop=30,orphan=20" "cut=300" "raw=1,damage=10" "burst=1000,opkind=30")
for s in $@; do
 for p in ${PAIRS[@]}; do
  d=/work/s10/real/$p
  for pm in 30 300; do
   tag=$p-s$s-path$pm
   $P $d/kernel.trace $I/$tag.k.trace $s $pm 5000 || { echo GENFAIL $tag; continue; }
   a=$(./rdiff.sh $I/$tag.k.trace $tag); echo "$a"
   b=$(./rdiff.sh $I/$tag.k.trace.cut $tag-cut); echo "$b"
   case "$a$b" in *DIFF*) ;; *) rm -f $I/$tag.k.trace $I/$tag.k.trace.cut;; esac
  done
  for mi in ${!M23[@]}; do
   tag=$p-s$s-r23m$mi
   $G23 $d/kernel.trace $I/$tag.k.trace $s "${M23[$mi]}" 2>/dev/null || { echo GENFAIL $tag; continue; }
   a=$(./rdiff.sh $I/$tag.k.trace $tag); echo "$a"
   case "$a" in *DIFF*) ;; *) rm -f $I/$tag.k.trace;; esac
  done
 done
done
