#!/bin/bash
# usage: ddiff.sh KERNEL MODEL TAG [diff args]: tracer diff with base and main; cmp rc, text, stderr, --json, --timeline.
K=$1; M=$2; T=$3; shift 3; O=/work/s17/rev25/dout/$T; B=/work/s17/rev25/bin
V=(${VERS:-base main4}); for v in ${V[@]}; do
  mkdir -p $O/$v && ( cd $O/$v && timeout 600 $B/tracer-$v diff $K $M --json r.json --timeline t.json "$@" > txt 2> err; echo $? > rc )
done
a=$O/${V[0]}; b=$O/${V[1]}; st=SAME
for f in rc txt err r.json t.json; do
  if [ -e $a/$f ] || [ -e $b/$f ]; then cmp -s $a/$f $b/$f || st="$st ${f}-DIFF"; fi
done
echo "$st $T rc=$(cat $b/rc) $(head -c 100 $b/err | tr '\n' ' ')"
[ "$st" = SAME ] && rm -rf $O
true
