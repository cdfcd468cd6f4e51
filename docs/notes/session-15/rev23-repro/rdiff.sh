#!/bin/bash
# usage: rdiff.sh KERNEL TAG [extra replay args]: replay with base and main (or $VERS), cmp model traces.
K=$1; T=$2; shift 2; O=/work/s15/rev23/out/$T
B=/work/s15/rev23/bin; V=(${VERS:-19ec6e0 main})
avail=$(df --output=avail -k /work | tail -1); [ $avail -lt 800000 ] && { echo "NOSPACE $T"; exit 1; }
for v in ${V[@]}; do
  mkdir -p $O/$v && ( cd $O/$v && timeout 300 $B/tracer-$v replay --against $K --out model.trace --json "$@" > out 2> err; echo $? > rc )
done
a=$O/${V[0]}; b=$O/${V[1]}; st=SAME
for f in rc model.trace out err; do
  if [ -e $a/$f ] || [ -e $b/$f ]; then cmp -s $a/$f $b/$f || st="$st ${f}-DIFF"; fi
done
echo "$st $T rc=$(cat $b/rc) $(head -c 150 $b/err | tr '\n' ' ')"
[ "$st" = SAME ] && [ -z "$KEEP" ] && rm -f $a/model.trace $b/model.trace
true
