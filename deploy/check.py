"""Checks deploy/: API schemas, references between manifests, driver flags.

Run through deploy/check, which provides kubernetes-validate, kustomize and the
driver binary. Each mode is checked as `kubectl apply -k` applies it: rendered
by the kustomize kubectl embeds. Prints one line per problem ("FILE: what is wrong") and exits 1 if
there is any; otherwise prints one summary line and exits 0.
"""

import argparse
import json
import os
import posixpath
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes_validate
import yaml

# Oldest and newest Kubernetes the manifests must be valid for.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
MODES = ("lvm", "direct")
MODE_LABEL = "pmem-csi.pmem-rs.io/mode"
# The kubelet directory the manifests name by default, and another one an
# overlay of deploy/kubelet-dir moves every kubelet path to.
KUBELET = "/var/lib/kubelet"
OTHER_KUBELET = "/var/lib/k0s/kubelet"
# What the driver's volume.rs accepts (Params::parse) and nodeops.rs (size).
PARAMS = {"eraseAfter", "mode", "dax"}
BOOLS = {"true", "yes", "1", "false", "no", "0"}
QUANTITY = re.compile(r"^[0-9]+(k|M|G|T|Ki|Mi|Gi|Ti)?$")
# What the check understands of a kustomization (anything else could change the
# objects in ways it does not look at).
KUSTOMIZATION_KEYS = {"Kustomization": {"apiVersion", "kind", "resources", "components", "configMapGenerator"},
                      "Component": {"apiVersion", "kind", "replacements"}}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CSIDriver", "StorageClass"}
# Values the kubelet puts in $(VAR) references, as far as the check cares.
FIELD_VALUES = {"spec.nodeName": "node-check", "metadata.namespace": "pmem-csi-check",
                "metadata.name": "pod-check"}


class Checker:
    def __init__(self, deploy, driver, kustomize):
        self.deploy = deploy
        self.driver = driver
        self.kustomize = kustomize
        self.errors = []
        self.docs = {}  # path -> [doc]
        self.objects = 0
        self.resizers = {}  # mode -> resizer containers in its DaemonSet
        self.rendered = {}  # directory -> what render() returned
        self.listed = {}  # directory -> what sources() returned

    def fail(self, path, msg):
        self.errors.append(f"{self.rel(path)}: {msg}")

    def rel(self, path):
        try:
            return str(Path(path).relative_to(self.deploy.parent))
        except ValueError:
            return str(path)

    # ---- loading and schemas ----

    def load(self):
        for path in sorted(self.deploy.rglob("*.yaml")):
            try:
                docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
            except yaml.YAMLError as e:
                self.fail(path, f"not YAML: {e}")
                continue
            bad = [d for d in docs if not isinstance(d, dict) or "kind" not in d]
            if bad or not docs:
                self.fail(path, "every document must be an object with a kind")
                continue
            self.docs[path] = docs

    def schemas(self):
        for path, docs in self.docs.items():
            if path.name == "kustomization.yaml":
                continue
            for d in docs:
                self.objects += 1
                for v in VERSIONS:
                    try:
                        kubernetes_validate.validate(d, v, strict=True)
                    except kubernetes_validate.ValidationError as e:
                        where = ".".join(str(p) for p in e.path) or "(top)"
                        self.fail(path, f"{name(d)}: {where}: {e.message} (Kubernetes {v})")
                    except (kubernetes_validate.SchemaNotFoundError,
                            kubernetes_validate.InvalidSchemaError) as e:
                        self.fail(path, f"{name(d)}: {e} (Kubernetes {v})")

    # ---- kustomizations and the two modes ----

    def sources(self, directory, seen=None, kind="Kustomization"):
        """The manifest files `kubectl apply -k directory` reads, components' included
        (read, and its problems reported, once per directory)."""
        if seen is None:
            if directory not in self.listed:
                self.listed[directory] = self.sources(directory, set(), kind)
            return self.listed[directory]
        k = directory / "kustomization.yaml"
        if k in seen:
            self.fail(k, "included twice")
            return []
        seen.add(k)
        if k not in self.docs:
            self.fail(directory, "has no kustomization.yaml")
            return []
        spec = self.docs[k][0]
        if spec.get("kind") != kind or set(spec) - KUSTOMIZATION_KEYS[kind]:
            self.fail(k, f"expected a {kind} with only {', '.join(sorted(KUSTOMIZATION_KEYS[kind]))}")
        out = []
        for r in spec.get("resources", []):
            p = (directory / r).resolve()
            if p.is_dir():
                out += self.sources(p, seen)
            elif p in self.docs:
                out.append(p)
            else:
                self.fail(k, f"resource {r} does not exist")
        for r in spec.get("components", []):
            out += self.sources((directory / r).resolve(), seen, "Component")
        return out

    def render(self, directory, base=None):
        """The objects `kubectl apply -k directory` applies, each with the file of deploy/ it
        comes from (directory is an overlay of base, when given). Built once per directory."""
        if directory not in self.rendered:
            self.rendered[directory] = self.build(directory, base)
        return self.rendered[directory]

    def build(self, directory, base):
        r = subprocess.run([self.kustomize, "build", str(directory)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            self.fail(directory, f"kustomize build fails: {r.stderr.strip()}")
            return [], ""
        files = {}
        for p in self.sources(base or directory):
            for d in self.docs.get(p, []):
                files[(d.get("kind"), meta(d, "name"))] = p
        objs = [d for d in yaml.safe_load_all(r.stdout) if d is not None]
        return [(files.get((d["kind"], meta(d, "name")), directory), d) for d in objs], r.stdout

    def kustomizations(self):
        listed = {}
        for m in MODES:
            for p in self.sources(self.deploy / m):
                listed.setdefault(p, set()).add(m)
        for p in self.docs:
            if p.name != "kustomization.yaml" and "examples" not in p.relative_to(self.deploy).parts:
                if p not in listed:
                    self.fail(p, "is in no kustomization: kubectl apply -k would skip it")

    def twins(self):
        """direct/ is lvm/ with the mode's name swapped, but for the StorageClass and the resizer."""
        for f in ("node.yaml", "csidriver.yaml", "kustomization.yaml", "namespace.yaml", "rbac.yaml"):
            a, b = self.deploy / "lvm" / f, self.deploy / "direct" / f
            if a in self.docs and b in self.docs:
                lvm = [without_resizer(d) for d in self.docs[a] if "resizer" not in d.get("metadata", {}).get("name", "")]
                want = json.dumps(lvm, sort_keys=True).replace("lvm", "direct")
                if json.dumps(self.docs[b], sort_keys=True) != want:
                    self.fail(b, f"differs from lvm/{f} by more than the mode's name and the resizer")

    # ---- references within one mode ----

    def mode(self, m, directory=None, kubelet=KUBELET):
        """Checks deploy/<m> (or an overlay of it in directory) as rendered, its kubelet
        directory expected at kubelet; returns the CSIDriver's name."""
        objs, _ = self.render(directory or self.deploy / m, self.deploy / m)
        by_kind = {}
        for p, d in objs:
            by_kind.setdefault(d["kind"], []).append((p, d))

        def find(kind, nm, ns=None):
            return any(d["metadata"]["name"] == nm and (ns is None or meta(d, "namespace") == ns)
                       for _, d in by_kind.get(kind, []))

        namespaces = {d["metadata"]["name"] for _, d in by_kind.get("Namespace", [])}
        for p, d in objs:
            ns = meta(d, "namespace")
            if d["kind"] in CLUSTER_SCOPED:
                if ns:
                    self.fail(p, f"{name(d)} is cluster-scoped but names namespace {ns}")
            elif ns not in namespaces:
                self.fail(p, f"{name(d)}: namespace {ns!r} is not created by deploy/{m}")
            if d["kind"] in ("RoleBinding", "ClusterRoleBinding"):
                ref = d["roleRef"]
                if not find(ref["kind"], ref["name"], ns if ref["kind"] == "Role" else None):
                    self.fail(p, f"{name(d)}: roleRef {ref['kind']} {ref['name']} does not exist")
                for s in d.get("subjects", []):
                    if s["kind"] == "ServiceAccount" and not find("ServiceAccount", s["name"], s.get("namespace")):
                        self.fail(p, f"{name(d)}: subject ServiceAccount {s['name']} does not exist")

        drivers = by_kind.get("CSIDriver", [])
        sets = by_kind.get("DaemonSet", [])
        if len(drivers) != 1 or len(sets) != 1:
            self.fail(self.deploy / m, "needs exactly one CSIDriver and one DaemonSet")
            return None
        p, csidriver = drivers[0]
        dname = csidriver["metadata"]["name"]
        spec = csidriver["spec"]
        if spec.get("attachRequired") is not False or spec.get("storageCapacity") is not True \
                or spec.get("podInfoOnMount") is not True \
                or set(spec.get("volumeLifecycleModes", [])) != {"Persistent", "Ephemeral"}:
            self.fail(p, f"{dname}: want attachRequired false, storageCapacity and podInfoOnMount "
                         "true, lifecycle modes Persistent and Ephemeral")
        classes = by_kind.get("StorageClass", [])
        if not classes:
            self.fail(self.deploy / m, "has no StorageClass")
        for p, sc in classes:
            self.storage_class(p, sc, {dname: m})
        self.daemonset(*sets[0], m, dname, find, kubelet)
        if any(sc.get("allowVolumeExpansion") for _, sc in classes) and not self.resizers.get(m):
            self.fail(self.deploy / m, "a StorageClass allows expansion but no csi-resizer runs")
        return dname

    def daemonset(self, path, ds, m, dname, find, kubelet):
        ns = meta(ds, "namespace")
        tmpl = ds["spec"]["template"]
        pod = tmpl["spec"]
        sel = ds["spec"]["selector"].get("matchLabels", {})
        labels = tmpl["metadata"].get("labels", {})
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            self.fail(path, "the selector does not match the pod template's labels")
        sa = pod.get("serviceAccountName")
        if not sa or not find("ServiceAccount", sa, ns):
            self.fail(path, f"serviceAccountName {sa!r} does not exist in namespace {ns}")
        if pod.get("nodeSelector", {}).get(MODE_LABEL) != m:
            self.fail(path, f"nodeSelector must have {MODE_LABEL}: {m}")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        used = set()
        containers = {c["name"]: c for c in pod["containers"]}
        for c in containers.values():
            self.pod_container(path, c, volumes, used)
        for v in set(volumes) - used:
            self.fail(path, f"volume {v} is mounted by no container")

        drv = [c for c in containers.values() if any(a.startswith("--device-manager") for a in c.get("args", []))]
        if len(drv) != 1:
            self.fail(path, "needs exactly one container running pmem-csi-driver (--device-manager)")
            return
        drv = drv[0]
        args = flags(expanded_args(drv))
        if args.get("--driver-name") != dname:
            self.fail(path, f"--driver-name {args.get('--driver-name')!r} is not the CSIDriver {dname}")
        if args.get("--device-manager") != m:
            self.fail(path, f"--device-manager must be {m} in deploy/{m}")
        image = drv.get("image", "")
        if not image.endswith(":" + workspace_version(self.deploy)):
            self.fail(path, f"driver image {image} is not tagged with the workspace version "
                            f"{workspace_version(self.deploy)}")
        if not drv.get("securityContext", {}).get("privileged"):
            self.fail(path, "the driver container must be privileged")
        self.dry_run(path, drv)

        # The kubelet's directory: mounted whole at its own path, shared both ways (the kubelet
        # hands over host paths beneath it and must see the mounts made there).
        if args.get("--kubelet-dir") != kubelet:
            self.fail(path, f"--kubelet-dir is {args.get('--kubelet-dir')!r}, not the kubelet's directory {kubelet}")
        mnt = [vm for vm in drv.get("volumeMounts", []) if vm["mountPath"] == kubelet]
        if not mnt or mnt[0].get("mountPropagation") != "Bidirectional" \
                or host_path(drv, volumes, kubelet) != kubelet:
            self.fail(path, f"the driver must mount the host's {kubelet} at the same path with Bidirectional propagation")
        # The kubelet finds the CSI socket by its host path; the sidecars by theirs.
        endpoint = args.get("--endpoint", "")
        sock = endpoint.removeprefix("unix://")
        want = f"{kubelet}/plugins/{dname}/csi.sock"
        if not endpoint.startswith("unix:///") or host_path(drv, volumes, sock) != want:
            self.fail(path, f"--endpoint {endpoint!r} is not the host's {want}")
        for c in containers.values():
            if c is drv:
                continue
            addr = flags(expanded_args(c)).get("--csi-address")
            if addr is None:
                self.fail(path, f"container {c['name']} has no --csi-address")
            elif host_path(c, volumes, addr) != want:
                self.fail(path, f"{c['name']}: --csi-address {addr} is not the driver's socket, the host's {want}")
        # The driver registers itself: its socket in the kubelet's registry, the CSI socket's host path.
        reg_sock = args.get("--registration-socket", "")
        if posixpath.dirname(host_path(drv, volumes, reg_sock) or "") != f"{kubelet}/plugins_registry":
            self.fail(path, f"--registration-socket {reg_sock!r} is not in the host's {kubelet}/plugins_registry")
        if args.get("--kubelet-registration-path") != want:
            self.fail(path, f"--kubelet-registration-path must be {want}")
        resizers = [c for c in containers.values() if "csi-resizer" in c.get("image", "")]
        if resizers and flags(resizers[0].get("args", [])).get("--leader-election") != "true":
            self.fail(path, "the resizer runs on every node: it needs --leader-election=true")
        self.resizers[m] = len(resizers)
        prov = [c for c in containers.values() if "--node-deployment" in flags(c.get("args", []))]
        if len(prov) != 1:
            self.fail(path, "needs one external-provisioner with --node-deployment")
        else:
            a = flags(prov[0].get("args", []))
            if a.get("--node-deployment") != "true" or a.get("--enable-capacity") != "true":
                self.fail(path, "the provisioner needs --node-deployment=true and --enable-capacity=true")
            env = env_fields(prov[0])
            for var, field in (("NODE_NAME", "spec.nodeName"), ("NAMESPACE", "metadata.namespace"),
                               ("POD_NAME", "metadata.name")):
                if env.get(var) != field:
                    self.fail(path, f"the provisioner needs env {var} from {field}")
        state = args.get("--state-dir", "/var/lib/pmem-csi")
        mnt = [vm for vm in drv.get("volumeMounts", []) if vm["mountPath"] == state]
        if not mnt or mnt[0].get("mountPropagation") != "Bidirectional":
            self.fail(path, f"the driver must mount {state} with Bidirectional propagation")
        for d in ("/dev", "/sys"):
            if host_path(drv, volumes, d) != d:
                self.fail(path, f"the driver must mount the host's {d}")
        # The driver answers its liveness probe on its metrics server.
        probe = drv.get("livenessProbe", {}).get("httpGet", {})
        ports = {pt.get("name"): pt["containerPort"] for pt in drv.get("ports", [])}
        metrics_port = args.get("--metrics-listen", "").rpartition(":")[2]
        if probe.get("path") != "/healthz" or str(ports.get(probe.get("port"), probe.get("port"))) != metrics_port:
            self.fail(path, f"the driver's liveness probe must ask /healthz on its --metrics-listen port {metrics_port}")

    def kubelet_dir(self, m):
        """An overlay that sets deploy/kubelet-dir's one value, as README tells, moves every
        kubelet path of deploy/<m> and leaves the mode correct."""
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump({
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(self.deploy / m, tmp)],
                "components": [os.path.relpath(self.deploy / "kubelet-dir", tmp)],
                "configMapGenerator": [{"name": "pmem-csi-kubelet-dir", "behavior": "merge",
                                        "literals": [f"path={OTHER_KUBELET}"]}],
            }))
            before = len(self.errors)
            _, text = self.render(Path(tmp), self.deploy / m)
            if len(self.errors) == before:
                if KUBELET in text:
                    self.fail(self.deploy / m, f"{KUBELET} is still named: make it follow deploy/kubelet-dir")
                self.mode(m, Path(tmp), OTHER_KUBELET)
            self.errors[before:] = [f"deploy/{m} with the kubelet directory moved to {OTHER_KUBELET}: {e}"
                                    for e in self.errors[before:]]

    def pod_container(self, path, c, volumes, used):
        defined = {e["name"] for e in c.get("env", [])}
        for a in c.get("command", []) + c.get("args", []):
            for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
                if var not in defined:
                    self.fail(path, f"{c['name']}: $({var}) in {a!r} is not in the container's env")
        for vm in c.get("volumeMounts", []) + c.get("volumeDevices", []):
            if vm["name"] not in volumes:
                self.fail(path, f"{c['name']}: volume {vm['name']} is not defined")
            used.add(vm["name"])

    def dry_run(self, path, c):
        """Runs the driver with the container's arguments, as the kubelet expands them."""
        args = expanded_args(c)
        cmd = [self.driver, *args, "--dry-run"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            self.fail(path, f"pmem-csi-driver rejects the DaemonSet's flags {args}: "
                            f"exit {r.returncode}: {r.stderr.strip()}")

    # ---- StorageClasses and the examples ----

    def params(self, path, what, params, manager):
        for k, v in params.items():
            v = str(v)
            if k.startswith("csi.storage.k8s.io/"):
                if k == "csi.storage.k8s.io/fstype" and v not in ("ext4", "xfs"):
                    self.fail(path, f"{what}: fstype {v!r}: the driver makes ext4 or xfs")
            elif k not in PARAMS:
                self.fail(path, f"{what}: unknown parameter {k!r} (known: {', '.join(sorted(PARAMS))})")
            elif k in ("eraseAfter", "dax") and v.lower() not in BOOLS:
                self.fail(path, f"{what}: {k}={v!r} is not a boolean")
            elif k == "mode" and (v not in ("fsdax", "devdax") or manager != "direct"):
                self.fail(path, f"{what}: mode={v!r}: fsdax or devdax, for direct mode only")

    def storage_class(self, path, sc, drivers):
        prov = sc.get("provisioner")
        if prov not in drivers:
            self.fail(path, f"{name(sc)}: provisioner {prov!r} is not a deployed CSIDriver ({', '.join(drivers)})")
            return
        if sc.get("volumeBindingMode") != "WaitForFirstConsumer":
            self.fail(path, f"{name(sc)}: PMEM is local: volumeBindingMode must be WaitForFirstConsumer")
        if sc.get("allowVolumeExpansion") and drivers[prov] == "direct":
            self.fail(path, f"{name(sc)}: direct volumes cannot grow: allowVolumeExpansion must be false")
        self.params(path, name(sc), sc.get("parameters", {}), drivers[prov])

    def examples(self, drivers):
        ex = {p: ds for p, ds in self.docs.items() if p.parent == self.deploy / "examples"}
        classes = {}
        for m in MODES:
            for p, d in self.render(self.deploy / m)[0]:
                if d["kind"] == "StorageClass":
                    classes[d["metadata"]["name"]] = drivers.get(d["provisioner"])
        for p, ds in ex.items():
            for d in ds:
                if d["kind"] == "StorageClass":
                    self.storage_class(p, d, drivers)
                    classes[d["metadata"]["name"]] = drivers.get(d["provisioner"])
        if not ex:
            self.fail(self.deploy / "examples", "has no examples")
        for p, ds in ex.items():
            claims = {d["metadata"]["name"]: d["spec"] for d in ds if d["kind"] == "PersistentVolumeClaim"}
            services = {d["metadata"]["name"]: d for d in ds if d["kind"] == "Service"}
            for d in ds:
                if d["kind"] == "PersistentVolumeClaim":
                    self.claim(p, name(d), d["spec"], classes)
                elif d["kind"] == "Pod":
                    self.pod(p, name(d), d["spec"], claims, classes, drivers)
                elif d["kind"] in ("StatefulSet", "Deployment"):
                    spec = d["spec"]
                    sel = spec["selector"].get("matchLabels", {})
                    labels = spec["template"]["metadata"].get("labels", {})
                    if any(labels.get(k) != v for k, v in sel.items()):
                        self.fail(p, f"{name(d)}: the selector does not match the pod template's labels")
                    tmpl_claims = dict(claims)
                    for t in spec.get("volumeClaimTemplates", []):
                        self.claim(p, f"{name(d)} claim template {t['metadata']['name']}", t["spec"], classes)
                        tmpl_claims[t["metadata"]["name"]] = t["spec"]
                    if d["kind"] == "StatefulSet" and spec.get("serviceName") not in services:
                        self.fail(p, f"{name(d)}: serviceName {spec.get('serviceName')!r} is not a Service here")
                    self.pod(p, name(d), spec["template"]["spec"], tmpl_claims, classes, drivers,
                             templates=[t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])])
                elif d["kind"] == "Service":
                    sel = d["spec"].get("selector", {})
                    pods = [x["spec"]["template"]["metadata"].get("labels", {}) for x in ds
                            if x["kind"] in ("StatefulSet", "Deployment")]
                    if sel and not any(all(lb.get(k) == v for k, v in sel.items()) for lb in pods):
                        self.fail(p, f"{name(d)}: the selector matches no pod in this file")

    def claim(self, path, what, spec, classes):
        sc = spec.get("storageClassName")
        if sc not in classes:
            self.fail(path, f"{what}: storageClassName {sc!r} is not a StorageClass of deploy/ ({', '.join(classes)})")

    def pod(self, path, what, spec, claims, classes, drivers, templates=()):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for t in templates:
            volumes.setdefault(t, {"name": t, "persistentVolumeClaim": {"claimName": t}})
        used = set()
        sel = spec.get("nodeSelector", {}).get(MODE_LABEL)
        if sel is not None and sel not in MODES:
            self.fail(path, f"{what}: nodeSelector {MODE_LABEL}={sel!r} is not a mode ({', '.join(MODES)})")
        for c in spec.get("initContainers", []) + spec["containers"]:
            self.pod_container(path, c, volumes, used)
            for kind, key in (("volumeMounts", "Filesystem"), ("volumeDevices", "Block")):
                for vm in c.get(kind, []):
                    v = volumes.get(vm["name"], {})
                    claim = None
                    if "persistentVolumeClaim" in v:
                        cn = v["persistentVolumeClaim"]["claimName"]
                        claim = claims.get(cn)
                        if claim is None:
                            self.fail(path, f"{what}: claim {cn} is not in this file")
                    elif "ephemeral" in v:
                        claim = v["ephemeral"]["volumeClaimTemplate"]["spec"]
                    if claim is not None and claim.get("volumeMode", "Filesystem") != key:
                        self.fail(path, f"{what}: {c['name']} uses {vm['name']} in {kind}, "
                                        f"but its claim's volumeMode is {claim.get('volumeMode', 'Filesystem')}")
        for v in volumes.values():
            if v["name"] not in used:
                self.fail(path, f"{what}: volume {v['name']} is used by no container")
            if "ephemeral" in v:
                self.claim(path, f"{what} volume {v['name']}", v["ephemeral"]["volumeClaimTemplate"]["spec"], classes)
            if "csi" in v:
                csi = v["csi"]
                if csi["driver"] not in drivers:
                    self.fail(path, f"{what}: inline volume driver {csi['driver']!r} is not deployed")
                    continue
                attrs = dict(csi.get("volumeAttributes", {}))
                size = str(attrs.pop("size", ""))
                if not QUANTITY.match(size):
                    self.fail(path, f"{what}: inline volume {v['name']} needs a size like 1Gi, not {size!r}")
                self.params(path, f"{what} inline volume {v['name']}", attrs, drivers[csi["driver"]])
                if csi.get("fsType", "ext4") not in ("ext4", "xfs"):
                    self.fail(path, f"{what}: fsType {csi['fsType']!r}: the driver makes ext4 or xfs")

    def run(self):
        self.load()
        self.schemas()
        self.kustomizations()
        self.twins()
        drivers = {}
        for m in MODES:
            d = self.mode(m)
            if d:
                drivers[d] = m
            self.kubelet_dir(m)
        if len(drivers) != len(MODES):
            self.fail(self.deploy, "each mode needs a CSIDriver of its own name")
        self.examples(drivers)
        return drivers


def without_resizer(d):
    """The document with the DaemonSet's csi-resizer container left out."""
    if d.get("kind") != "DaemonSet":
        return d
    d = json.loads(json.dumps(d))
    pod = d["spec"]["template"]["spec"]
    pod["containers"] = [c for c in pod["containers"] if "csi-resizer" not in c.get("image", "")]
    return d


def name(d):
    return f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"


def meta(d, key):
    return d.get("metadata", {}).get(key)


def flags(args):
    """--key=value and bare --key (as "true") of an argument list."""
    out = {}
    for a in args:
        k, eq, v = a.partition("=")
        out[k] = v if eq else "true"
    return out


def env_fields(c):
    return {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c.get("env", [])}


def expanded_args(c):
    """The container's arguments with $(VAR) expanded from its env, as the kubelet does."""
    env = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            env[e["name"]] = FIELD_VALUES.get(e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath"), "x")
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda mt: env.get(mt.group(1), mt.group(0)), a)
            for a in c.get("args", [])]


def host_path(c, volumes, path):
    """The host path a path in the container is, through its hostPath mounts; None if none."""
    best = None
    for vm in c.get("volumeMounts", []):
        mp = vm["mountPath"].rstrip("/") or "/"
        if path == mp or path.startswith(mp.rstrip("/") + "/"):
            if best is None or len(mp) > len(best[0]):
                best = (mp, vm)
    if best is None:
        return None
    mp, vm = best
    host = volumes.get(vm["name"], {}).get("hostPath", {}).get("path")
    if host is None:
        return None
    return posixpath.normpath(posixpath.join(host, vm.get("subPath", ""), posixpath.relpath(path, mp)))


def workspace_version(_deploy):
    text = (Path(__file__).resolve().parent.parent / "Cargo.toml").read_text()
    m = re.search(r'^\[workspace\.package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    return m.group(1) if m else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--driver", required=True, help="the pmem-csi-driver binary")
    ap.add_argument("--kustomize", required=True, help="the kustomize binary kubectl embeds")
    ap.add_argument("deploy", nargs="?", default=str(Path(__file__).resolve().parent))
    a = ap.parse_args()
    deploy = Path(a.deploy).resolve()
    c = Checker(deploy, a.driver, a.kustomize)
    drivers = c.run()
    for e in c.errors:
        print(f"deploy/check: {e}", file=sys.stderr)
    if c.errors:
        print(f"deploy/check: FAILED: {len(c.errors)} problem(s) in {deploy}", file=sys.stderr)
        return 1
    print(f"deploy/check: ok: {len(c.docs)} files, {c.objects} objects valid for Kubernetes "
          f"{' and '.join(VERSIONS)}; references resolve; drivers {', '.join(sorted(drivers))} "
          "accept their DaemonSet flags")
    return 0


if __name__ == "__main__":
    sys.exit(main())
