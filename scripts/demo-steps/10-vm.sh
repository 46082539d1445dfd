#!/usr/bin/env bash
# Demo step: boot the emulated-PMEM VM and show its NVDIMMs and regions as libndctl sees them.
set -euo pipefail
echo
echo "== 1. An emulated-PMEM machine: 2 NVDIMMs of 2 GiB under QEMU, one region each"
scripts/pmem-vm -- sh -c '
  ndctl list -D | sed -n "s/.*\"dev\":\"\(nmem[0-9]*\)\".*/  DIMM \1/p"
  ndctl list -R | python3 -c "
import json, sys
for r in json.load(sys.stdin):
    print(\"  {dev}: {type}, {mib} MiB, align {align} MiB, persistence domain {pd}\".format(
        dev=r[\"dev\"], type=r[\"type\"], mib=r[\"size\"] >> 20, align=r[\"align\"] >> 20,
        pd=r.get(\"persistence_domain\", \"?\")))
"
'
