#!/usr/bin/env bash
# Demo step: a persistent log written with CPU stores on a DAX-mounted fsdax namespace survives a power cut: after reboot every record reported persisted is there.
set -euo pipefail
log=${CARGO_TARGET_DIR:-target}/debug/examples/persistent_log
[ -x "$log" ] || { echo "50-dax: $log missing: run cargo build --workspace --examples first" >&2; exit 2; }
state=$(mktemp -d)
out=$(mktemp)
trap 'rm -rf "$state" "$out"' EXIT

# In the guest. $1: the example, $2: 1 on the first boot (make the namespace and filesystem, append for 3 s, cut the power), 0 to verify.
# Each of the two boots is bounded to 45 s, the step to 90 s.
guest='
set -eu
if [ "$2" = 1 ]; then ndctl create-namespace -f -e namespace0.0 -m fsdax >/dev/null; fi
dev=/dev/$(ndctl list -N | sed -n "s/.*\"blockdev\":\"\([^\"]*\)\".*/\1/p" | head -n 1)
if [ "$2" = 1 ]; then mkfs.ext4 -q -F -b 4096 "$dev"; fi
mkdir -p /mnt/plog && mount -o dax "$dev" /mnt/plog && echo "dev $dev"
if [ "$2" = 1 ]; then
  "$1" --path /mnt/plog/log --size 128M append 1000000 2>&1 &
  sleep 3; echo b > /proc/sysrq-trigger; sleep 60
else
  "$1" --path /mnt/plog/log verify 2>/dev/null
fi'
vm() { timeout 45 scripts/pmem-vm --dimms 1 --dimm-size 1G --timeout 42 --state "$state" -- bash -c "$guest" guest "$log" "$1" >"$out" 2>&1; }

echo
echo "== 5. DAX from Rust: a log in persistent memory survives a power cut"
rc=0; vm 1 || rc=$?
dev=$(sed -n 's/^dev //p' "$out")
pmem=$(sed -n 's/^persistent_log: .* pmem=\([a-z]*\) .*/\1/p' "$out")
features=$(sed -n 's/^persistent_log: .* pmem=[a-z]* (\(.*\))$/\1/p' "$out")
persisted=$(sed -n 's/^persisted //p' "$out" | tail -n 1)
if [ "$rc" != 125 ] || [ -z "$persisted" ]; then
  echo "50-dax: expected a power cut after some records (exit $rc):" >&2; cat "$out" >&2; exit 1
fi
echo "  fsdax namespace $dev, ext4 mounted -o dax; log file mapped with MAP_SYNC: $pmem"
echo "  pmem-dax chose: $features"
echo "  append: 128-byte records, each persisted (non-temporal stores + sfence) before the next"
echo "  power cut (echo b > /proc/sysrq-trigger) after 3 s; last report before it: persisted $persisted"
rc=0; vm 0 || rc=$?
verdict=$(grep '^{' "$out" || true)
records=$(sed -n 's/.*"records":\([0-9]*\).*/\1/p' <<<"$verdict")
echo "  reboot on the same NVDIMM files, verify: $verdict"
if [ "$rc" != 0 ] || [ -z "$records" ] || [ "$records" -lt "$persisted" ] || ! grep -q '"valid":true' <<<"$verdict"; then
  echo "50-dax: records were lost or the log is invalid (exit $rc):" >&2; cat "$out" >&2; exit 1
fi
echo "  ok: all $persisted reported records survived ($((records - persisted)) more were durable but not yet reported)"
