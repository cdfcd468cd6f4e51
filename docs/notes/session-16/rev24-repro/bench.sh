#!/bin/bash
# bench.sh N HOT WINDOW: base and main2 diff benches on the same generated pair; cmp reports.
N=$1; H=$2; W=$3; D=/work/s16/rev24/bpair; O=/work/s16/rev24/brep/$N-$H-$W
mkdir -p $O/base $O/main2
args=($N --dir $D --window-ms $W); [ "$H" != 0 ] && args+=(--hot-names $H)
/work/s16/diff-base "${args[@]}" --report $O/base --json $O/base.json > $O/base.out 2>&1
/work/s16/rev24/bin/diff-main2 "${args[@]}" --report $O/main2 --json $O/main2.json > $O/main2.out 2>&1
st=SAME; for f in $(ls $O/base); do cmp -s $O/base/$f $O/main2/$f || st="$st $f-DIFF"; done
echo "$st bench $N hot=$H window=$W files=$(ls $O/base | wc -l)"
