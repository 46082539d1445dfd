#!/usr/bin/env bash
# Demo step: DIMMs without label storage on two NUMA nodes: pmem-lvm converts each raw namespace once and pools the regions per node.
set -euo pipefail
echo
echo "== 3b. Label-less DIMMs on two NUMA nodes (as many VMs have): converted in place, pooled per node"
scripts/pmem-vm --label-size 0 --numa 2 --dimms 4 --dimm-size 512M -- bash -c '
  set -e
  l=target/debug/examples/lvm
  show() { ndctl list -RNv | python3 -c "
import json, sys
d = json.load(sys.stdin)
for r in sorted(d[\"regions\"] if isinstance(d, dict) else d, key=lambda r: r[\"dev\"]):
    ns = r.get(\"namespaces\", [{}])[0]
    print(\"  {} (NUMA node {}): {} namespace {} of {} MiB\".format(r[\"dev\"], r.get(\"numa_node\"), ns.get(\"mode\"), ns.get(\"dev\"), ns.get(\"size\", 0) >> 20))
"; }
  echo "- a fresh boot: no labels, so each region is one raw namespace that cannot be subdivided"
  show
  echo "- someone else formatted region3 (ext4): it must be left alone"
  dev=/dev/$(ndctl list -N -r region3 | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"blockdev\"])")
  mkfs.ext4 -q -F -b 4096 "$dev"
  echo "- lvm setup --join: raw namespaces converted to fsdax, one VG per NUMA node"
  $l setup --join 2>/tmp/setup.err | python3 -c "
import json, sys
for vg in json.load(sys.stdin):
    print(\"  {}: {} MiB over {}\".format(vg[\"name\"], vg[\"size\"] >> 20, \" \".join(vg[\"pvs\"])))
"
  sed "s/^/  /" /tmp/setup.err
  show
  echo "- lvm setup --join again converts nothing: $($l setup --join 2>/dev/null | md5sum | cut -c1-8) = $($l setup --join 2>/dev/null | md5sum | cut -c1-8)"
  echo "- a 768 MiB volume, larger than any one region, in the pool of node 0:"
  $l create big 768M | python3 -c "import json,sys; v=json.load(sys.stdin); print(\"  {} -> {} ({} MiB in {})\".format(v[\"name\"], v[\"device\"], v[\"size\"] >> 20, v[\"vg\"]))"
  lvs --noheadings -o lv_name,devices 2>/dev/null | sed "s/^ */  /"
  echo "- lvm delete big; lvm teardown: the namespaces are raw again, region3 still ext4 ($(blkid -p -o value -s TYPE "$dev"))"
  $l delete big; $l teardown >/dev/null
  show
' 2> >(grep -v '^pmem-vm: ' >&2)
