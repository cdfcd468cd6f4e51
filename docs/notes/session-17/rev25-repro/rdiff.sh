#!/bin/bash
# usage: rdiff.sh KERNEL TAG [replay args]: tracer replay with base and main2; cmp model traces, rc, stdout, stderr.
K=$1; T=$2; shift 2; O=/work/s17/rev25/rout/$T; B=/work/s17/rev25/bin
V=(${VERS:-base main3}); for v in ${V[@]}; do
  mkdir -p $O/$v && ( cd $O/$v && timeout 300 $B/tracer-$v replay --against $K --out model.trace --json "$@" > out 2> err; echo $? > rc )
done
a=$O/${V[0]}; b=$O/${V[1]}; st=SAME
for f in rc model.trace out err; do
  if [ -e $a/$f ] || [ -e $b/$f ]; then cmp -s $a/$f $b/$f || st="$st ${f}-DIFF"; fi
done
echo "$st $T rc=$(cat $b/rc) $(head -c 120 $b/err | tr '\n' ' ')"
[ "$st" = SAME ] && rm -rf $O
true
