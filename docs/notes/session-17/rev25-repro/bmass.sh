#!/bin/bash
# bmass.sh: the replay bench's inputs (six workloads, 300 k, --probes 6 and --burst 1000) replayed by base and main3's CLI; model traces compared.
cd /work/s17/rev25; B=/work/s17/rev-clone/target/release/deps/replay-0c101e44c4e41471
for P in linux-6.1 linux-6.8 linux-6.15 linux-6.19 linux-7.2; do
 for W in negative prune-stat rename-exchange rename-stat rmdir unlink-stat; do
  for X in "--probes 6" "--probes 2 --burst 1000"; do
   D=bdir/$W-$P; rm -rf $D; $B 300000 --workload $W --profile $P $X --dir $D --json $D.json 2>&1 | grep -A1 crc32 | tail -1 | awk '{print "bench crc", $10}'
   f=$(ls /work/s17/rev25/$D/input-*.trace); ./rdiff.sh $f b-$W-$P-$(echo $X | tr -d ' -')
   rm -rf $D
  done
 done
done
