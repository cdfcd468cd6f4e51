#!/bin/bash
# usage: ddiff.sh KERNEL MODEL TAG [diff args]: diff with base and main, cmp text, json, timeline, rc.
K=$1; M=$2; T=$3; shift 3; O=/work/s15/rev23/dout/$T
B=/work/s15/rev23/bin; V=(${VERS:-19ec6e0 main})
avail=$(df --output=avail -k /work | tail -1); [ $avail -lt 800000 ] && { echo "NOSPACE $T"; exit 1; }
TL=${TL:-1}
for v in ${V[@]}; do
  mkdir -p $O/$v && ( cd $O/$v && if [ $TL = 1 ]; then timeout 600 $B/tracer-$v diff $K $M --json r.json --timeline t.json "$@" > txt 2> err; else timeout 600 $B/tracer-$v diff $K $M --json r.json "$@" > txt 2> err; fi; echo $? > rc )
done
a=$O/${V[0]}; b=$O/${V[1]}; st=SAME
for f in rc txt err r.json t.json; do
  if [ -e $a/$f ] || [ -e $b/$f ]; then cmp -s $a/$f $b/$f || st="$st ${f}-DIFF"; fi
done
echo "$st $T rc=$(cat $b/rc)"
[ "$st" = SAME ] && rm -f $a/t.json $b/t.json
true
