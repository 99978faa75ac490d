#!/usr/bin/env bash
# On the GPU machine: runs compute-sanitizer racecheck on the stream-kernel
# test and prints the SASS instruction at every write PC it reports (the
# question: are the hazards the TMA's bulk-copy writes, which racecheck
# does not order by mbarrier?). Needs the binaries of bench/cuda/build.sh
# unpacked in build-cuda-lead/bin (tools/device_cuda.sh does that).
B=build-cuda-lead/bin/zt-cuda-tests
timeout 150 compute-sanitizer --tool racecheck $B test_cuda_stream_and_staged_kernels_match_phase_kernels > /tmp/rc.txt 2>&1
grep -c "Race reported" /tmp/rc.txt
offs=$(grep -o "Write access at void cu_stream_kernel<(int)1>(const cu_model \*, int)+0x[0-9a-f]*" /tmp/rc.txt | sed 's/.*+0x//' | sort -u)
echo "write offsets: $offs"
cuobjdump -sass $B > /tmp/all.sass 2>&1
awk '/Function : _Z16cu_stream_kernelILi1EEvPK8cu_modeli/{f=1;next} /Function : /{f=0} f' /tmp/all.sass > /tmp/s1.sass
wc -l /tmp/s1.sass
for o in $offs; do echo "== $o"; grep -E "/\*0*$o\*/" /tmp/s1.sass | head -2; done
grep -m3 "UBLKCP\|SYNCS" /tmp/s1.sass
