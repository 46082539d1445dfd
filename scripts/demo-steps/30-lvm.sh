#!/usr/bin/env bash
# Demo step: fragment a region with ndctl, let pmem-lvm turn its holes into one VG, create and delete a volume larger than any hole.
set -euo pipefail
echo
echo "== 3. LVM on PMEM through pmem-lvm (examples/lvm): a fragmented region's holes become one volume group"
scripts/pmem-vm -- bash -c '
  set -e
  l=target/debug/examples/lvm
  mib() { python3 -c "import json,sys; r=json.load(sys.stdin)[0]; print(r[\"available_size\"] >> 20, r[\"max_available_extent\"] >> 20)"; }
  ndctl disable-region all >/dev/null 2>&1; ndctl init-labels -f all >/dev/null 2>&1; ndctl enable-region all >/dev/null 2>&1
  echo "- fragment region0 with the real ndctl: three 256 MiB namespaces, destroy the 1st and 3rd, keep \"foreign\" in the middle"
  for n in x foreign y; do ndctl create-namespace -r region0 -m fsdax -s 256M -n $n >/dev/null; done
  ndctl destroy-namespace -f namespace0.0 >/dev/null 2>&1; ndctl destroy-namespace -f namespace0.2 >/dev/null 2>&1
  read free hole < <(ndctl list -R -r region0 | mib)
  echo "  region0: $free MiB free, but the largest namespace that fits is $hole MiB"
  echo "- lvm setup: one fsdax namespace per hole, all PVs of one VG per region"
  first=$($l setup)
  python3 -c "
import json, sys
for vg in json.load(sys.stdin):
    if vg[\"name\"] == \"pmem-rs-region0\":
        print(\"  {}: {} MiB over {} PVs ({}) = {:.1f}% of the free space\".format(vg[\"name\"], vg[\"size\"] >> 20, len(vg[\"pvs\"]), \" \".join(vg[\"pvs\"]), vg[\"size\"] * 100 / ($free << 20)))
" <<<"$first"
  echo "- lvm setup again changes nothing: $([ "$($l setup)" = "$first" ] && echo "same VGs, same PVs" || echo CHANGED)"
  echo "- lvm create db 1500M (more than the largest hole):"
  $l create db 1500M | python3 -c "import json,sys; v=json.load(sys.stdin); print(\"  {} -> {} ({} MiB in {})\".format(v[\"name\"], v[\"device\"], v[\"size\"] >> 20, v[\"vg\"]))"
  echo "- a request larger than any VG is refused, nothing created:"
  $l create huge 8G 2>&1 | sed "s/^/  /" || true
  echo "- lvm delete db (zeroed, then removed); lvm teardown; the foreign namespace is still there:"
  $l delete db; $l teardown >/dev/null
  ndctl list -N | python3 -c "import json,sys; print(\"  \" + \", \".join(\"{} ({})\".format(n[\"dev\"], n.get(\"name\")) for n in json.load(sys.stdin)))"
' 2> >(grep -v '^pmem-vm: ' >&2)
