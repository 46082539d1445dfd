#!/usr/bin/env bash
# Demo step: the devices carry the volumes' records: the driver's state directory is deleted, every volume comes back.
set -euo pipefail
echo
echo "== 7. Nothing acknowledged is lost: the driver's state directory is deleted, the volumes come back from their devices (sim mode)"
dir=$(mktemp -d)
trap 'kill %1 2>/dev/null; rm -rf "$dir"' EXIT
driver() {
  target/debug/pmem-csi-driver --endpoint "unix://$dir/csi.sock" --node-id demo-node --device-manager sim \
    --sim-regions 2x4G --state-dir "$dir" --kubelet-dir "$dir" 2>>"$dir/driver.log" &
}
client() { target/debug/examples/csi_client --endpoint "unix://$dir/csi.sock" "$@"; }
driver
client probe
for v in pvc-a pvc-b pvc-c; do client create "$v" --size 512Mi; done
kill -9 %1; wait %1 2>/dev/null || true
echo "  (driver killed; rm -r $dir/volumes: the cached records are gone)"
rm -r "$dir/volumes"
driver
client probe
echo "  ListVolumes after the restart, rebuilt from the devices' records:"
client list
