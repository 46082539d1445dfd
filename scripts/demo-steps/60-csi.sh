#!/usr/bin/env bash
# Demo step: start the CSI driver (lvm mode) in the VM and walk one volume through its whole life over gRPC.
set -euo pipefail
echo
echo "== 6. The CSI driver: one volume from CreateVolume to DeleteVolume over the driver's socket (lvm mode)"
scripts/pmem-vm -- bash -c '
  set -e
  ndctl disable-region all >/dev/null 2>&1; ndctl init-labels -f all >/dev/null 2>&1; ndctl enable-region all >/dev/null 2>&1
  mkdir -p /run/csi
  target/debug/pmem-csi-driver --endpoint unix:///run/csi/csi.sock --node-id demo-node --device-manager lvm \
      --state-dir /run/csi/state --kubelet-dir /run/csi --log-format json 2>/run/csi/driver.log &
  target/debug/examples/csi_client --endpoint unix:///run/csi/csi.sock walk --size 256Mi --dir /run/csi/walk
  kill %1
' 2> >(grep -v "^pmem-vm: " >&2)
