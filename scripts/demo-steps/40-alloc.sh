#!/usr/bin/env bash
# Demo step: fragment a region in the allocator's simulator, show free space against the largest namespace that fits, where each policy puts the next request, and the same trace on the VM's real regions.
set -euo pipefail
sim=$(realpath -m "${CARGO_TARGET_DIR:-target}/debug/examples/alloc_sim")
[ -x "$sim" ] || { echo "40-alloc: $sim missing: run cargo build --workspace --examples first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo
echo "== 4. Fragmentation-aware placement (simulator of the VM's two 1920 MiB regions)"
cat > "$work/trace" <<'TRACE'
create a 384M
create b 512M
create e 256M
create f 768M
create c 1664M
create d 256M
delete a
delete e
delete d
TRACE
echo "  trace: create a 384M, b 512M, e 256M, f 768M (region0), c 1664M, d 256M (region1); delete a, e, d"

report() { # $1: size of the next request
  "$sim" --trace "$work/trace" --regions 1920M,1920M --next "$1"
}
report 256M | python3 -c '
import json, sys
d = json.load(sys.stdin)
mib = lambda b: "%d MiB" % (b >> 20)
for r in d["capacity"]["regions"]:
    print("  %s: free %8s, largest extent %8s (fsdax usable %s), %d hole(s)" % (
        r["region"], mib(r["free"]), mib(r["max_extent"]), mib(r["largest"]["fsdax"]), r["holes"]))
t = d["capacity"]["total"]
print("  total:   free %8s, but the largest namespace that can be made is %s raw" % (mib(t["free"]), mib(t["max_extent"])))
n = d["next"]
for p in ("first-fit", "best-fit"):
    print("  next 256M, %-9s -> %s at offset %s" % (p, n[p]["region"], mib(n[p]["offset"])))
print("  (in region0 the kernel takes the lowest hole, the 384 MiB one; best-fit fills region1 exactly and keeps 384 MiB for later)")
'
report 512M | python3 -c '
import json, sys
print("  next 512M, both     -> " + json.load(sys.stdin)["next"]["best-fit"]["error"])
'
"$sim" --compare 1,2,3 --regions 4x64G | python3 -c '
import json, sys
d = json.load(sys.stdin)
rows = ", ".join("seed %d: %d vs %d" % (s["seed"], s["best-fit"], s["first-fit"]) for s in d["seeds"])
print("  rejections over 2000 requests at 90%% load on 4 x 64 GiB, best-fit vs first-fit: %s" % rows)
'

echo "- the same trace on the VM's two real regions (alloc_sim --backend real, through libndctl):"
sim_report=$(report 256M)
scripts/pmem-vm -- bash -c '
  set -e
  ndctl destroy-namespace all -f >/dev/null 2>&1 || true
  ndctl disable-region all >/dev/null 2>&1; ndctl init-labels -f all >/dev/null 2>&1; ndctl enable-region all >/dev/null 2>&1
  printf "%s\n" "$2" > /tmp/alloc-trace
  "$1" --trace /tmp/alloc-trace --backend real --regions 1920M,1920M --next 256M 2>/dev/null
  ndctl list -N | grep -c "\"dev\"" || true
' _ "$sim" "$(cat "$work/trace")" 2> >(grep -v '^pmem-vm: ' >&2) | SIM="$sim_report" python3 -c '
import json, os, sys
out = sys.stdin.read().splitlines()
real, sim, left = json.loads(out[0]), json.loads(os.environ["SIM"]), int(out[1])
for d in (real, sim):
    d.pop("decisions_per_sec")
r0 = real["capacity"]["regions"][0]
print("  real region0: free %d MiB, largest extent %d MiB, %d hole(s)" % (r0["free"] >> 20, r0["max_extent"] >> 20, r0["holes"]))
print("  the whole report equals the simulator'"'"'s: %s; namespaces left after the run: %d" % ("yes" if real == sim else "NO", left))
'
