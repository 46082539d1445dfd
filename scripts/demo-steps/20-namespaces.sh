#!/usr/bin/env bash
# Demo step: label the DIMMs, create one namespace of each mode with pmem-ndctl's ndctl work-alike, list, destroy.
set -euo pipefail
echo
echo "== 2. Namespaces through pmem-ndctl (examples/ndctl, a drop-in for the ndctl CLI)"
scripts/pmem-vm -- bash -c '
  set -e
  n=target/debug/examples/ndctl
  summary() { python3 -c "
import json, sys
for ns in json.load(sys.stdin):
    dev = ns.get(\"blockdev\") or ns.get(\"chardev\") or \"\"
    print(\"  {:<14} {:<7} {:>4} MiB usable  /dev/{:<9} {}\".format(ns[\"dev\"], ns[\"mode\"], ns[\"size\"] >> 20, dev, ns.get(\"name\", \"\")))
"; }
  echo "- label the DIMMs: disable-region all, init-labels all, enable-region all"
  $n disable-region all 2>/dev/null; $n init-labels all 2>/dev/null; $n enable-region all 2>/dev/null
  echo "- create one namespace of each mode on region0 (256 MiB each):"
  for m in fsdax devdax sector raw; do $n create-namespace -r region0 -m $m -s 256M -n demo-$m >/dev/null; done
  $n list -N | summary
  echo "- the real ndctl lists the same JSON: $(cmp -s <($n list -RND) <(ndctl list -RND) && echo yes || echo NO)"
  echo "- a misaligned request is refused before anything is written:"
  $n create-namespace -r region0 -m fsdax -s 100M 2>&1 | sed "s/^/    /" || true
  echo "- destroy them all:"
  $n destroy-namespace -f all 2>&1 | sed "s/^/    /"
  echo "  region0 free again: $($n list -R -r region0 | python3 -c "import json,sys; r=json.load(sys.stdin)[0]; print(r[\"available_size\"] >> 20, \"of\", r[\"size\"] >> 20, \"MiB\")")"
' 2> >(grep -v '^pmem-vm: ' >&2)
