#!/usr/bin/env bash
# Demo step: a real Kubernetes cluster whose node is the emulated-PMEM VM; a pod gets a DAX volume through deploy/lvm.
set -euo pipefail
echo
echo "== 8. Kubernetes: deploy/lvm applied to a real cluster (node = the emulated-PMEM VM), a claim and a pod"
echo "  (the first run builds Kubernetes, etcd and the sidecars from the Go module proxy: about 20 minutes on 2 cores)"
scripts/k8s-vm --mode lvm --dimm-size 4G -- bash -c '
set -euo pipefail
kubectl get nodes -o wide
kubectl -n pmem-csi-lvm get pods
kubectl get csistoragecapacities -A -o custom-columns=NAMESPACE:.metadata.namespace,CLASS:.storageClassName,CAPACITY:.capacity
cat <<YAML | kubectl apply -f -
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: demo}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: pmem-csi-lvm
  resources: {requests: {storage: 512Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: demo}
spec:
  containers:
    - name: app
      image: pmem-rs-test:latest
      imagePullPolicy: Never
      command: [sh, -c, "exec sleep 100000"]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: demo}}]
YAML
kubectl wait --for=condition=Ready pod/demo --timeout=300s
kubectl get pvc demo
echo "  inside the pod: /data as /proc/mounts shows it (dax=always: mmap maps the NVDIMM)"
kubectl exec demo -- grep " /data " /proc/mounts
kubectl exec demo -- df -h /data
'
