#!/usr/bin/env python3
"""Writes reproducible OCI image archives for scripts/k8s-images (standard library only).

Subcommands:
  tree ROOT OUT.tar                  a layer tar of the directory ROOT
  files OUT.tar SRC=DEST[:MODE]...   a layer tar holding the given files and their parent directories
  static FILE...                     fail unless every FILE is an ELF executable without a dynamic loader
  sources SUITE [FILE...]            print the Debian entries of apt source files for SUITE,
                                     SUITE-updates and SUITE-security, one "deb URI SUITE COMPONENTS" a line
  image --name NAME --out FILE.tar --blobs DIR --layer TAR... [--entrypoint JSON] [--cmd JSON]
        [--user USER] [--env K=V]... [--label K=V]...
                                     an OCI image-layout archive, as `ctr images import` reads it

Every tar written here is deterministic: entries sorted by name, every mtime set to
SOURCE_DATE_EPOCH (default 0), numeric owners only, gzip without name or time. Equal
inputs therefore give equal digests, and images that share a layer share its blob.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import struct
import sys
import tarfile
import tempfile
import time

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
# Version of what this file writes: part of every archive's up-to-date key.
FORMAT = "1"
CHUNK = 1 << 20
# The binaries packed here are the host's, so the images are for its architecture.
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
# Only the mount points are kept of these: the runtime provides their contents.
MOUNT_POINTS = {"dev", "proc", "sys"}


def fail(msg):
    print(f"oci-image: {msg}", file=sys.stderr)
    sys.exit(1)


def new_tar(path):
    """A tar writer on PATH whose headers depend only on what is added."""
    return tarfile.open(path, "w", format=tarfile.PAX_FORMAT)


def info(name, st=None, kind=tarfile.DIRTYPE, mode=0o755):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mtime = EPOCH
    ti.uname = ti.gname = ""
    if st is None:
        ti.mode, ti.uid, ti.gid = mode, 0, 0
    else:
        ti.mode, ti.uid, ti.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
    return ti


def cmd_tree(args):
    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        fail(f"{root}: not a directory")
    links = {}  # (dev, inode) -> first name, for hard links
    skipped = []
    tmp = args.out + ".tmp"
    with new_tar(tmp) as tar:

        def add(rel):
            path = os.path.join(root, rel)
            st = os.lstat(path)
            m = st.st_mode
            if stat.S_ISDIR(m):
                tar.addfile(info(rel, st))
                if rel in MOUNT_POINTS:
                    return
                for child in sorted(os.listdir(path)):
                    add(child if rel == "." else f"{rel}/{child}")
                return
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                ti = info(rel, st, tarfile.LNKTYPE)
                ti.linkname = links[key]
                tar.addfile(ti)
                return
            if stat.S_ISREG(m):
                links[key] = rel
                ti = info(rel, st, tarfile.REGTYPE)
                ti.size = st.st_size
                with open(path, "rb") as f:
                    tar.addfile(ti, f)
            elif stat.S_ISLNK(m):
                ti = info(rel, st, tarfile.SYMTYPE)
                ti.linkname = os.readlink(path)
                tar.addfile(ti)
            elif stat.S_ISFIFO(m):
                tar.addfile(info(rel, st, tarfile.FIFOTYPE))
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                ti = info(rel, st, tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE)
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tar.addfile(ti)
            else:
                skipped.append(rel)

        for child in sorted(os.listdir(root)):
            add(child)
    os.replace(tmp, args.out)
    for rel in skipped:
        print(f"oci-image: skipped /{rel} (socket)", file=sys.stderr)


def cmd_files(args):
    entries = {}
    for spec in args.specs:
        src, sep, dest = spec.partition("=")
        if not sep:
            fail(f"{spec}: expected SRC=DEST[:MODE]")
        dest, _, mode = dest.partition(":")
        dest = dest.strip("/")
        if not dest or ".." in dest.split("/"):
            fail(f"{spec}: bad destination")
        if not os.path.isfile(src):
            fail(f"{src}: no such file")
        entries[dest] = (src, int(mode, 8) if mode else 0o755)
    dirs = set()
    for dest in entries:
        parts = dest.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    tmp = args.out + ".tmp"
    with new_tar(tmp) as tar:
        for name in sorted(dirs | set(entries)):
            if name in dirs:
                tar.addfile(info(name))
                continue
            src, mode = entries[name]
            ti = info(name, kind=tarfile.REGTYPE, mode=mode)
            ti.size = os.path.getsize(src)
            with open(src, "rb") as f:
                tar.addfile(ti, f)
    os.replace(tmp, args.out)


def elf_interp(path):
    """Whether PATH is a 64-bit little-endian ELF file, and whether it names a dynamic loader."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if len(hdr) < 64 or hdr[:4] != b"\x7fELF" or hdr[4] != 2 or hdr[5] != 1:
            return False, False
        phoff, = struct.unpack_from("<Q", hdr, 32)
        phentsize, phnum = struct.unpack_from("<HH", hdr, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return True, True
    return True, False


def cmd_static(args):
    for path in args.files:
        elf, interp = elf_interp(path)
        if not elf:
            fail(f"{path}: not a 64-bit ELF executable")
        if interp:
            fail(f"{path}: dynamically linked; an image FROM scratch needs a static binary")


def cmd_sources(args):
    wanted = {args.suite, f"{args.suite}-updates", f"{args.suite}-security"}
    files = args.files or [
        "/etc/apt/sources.list",
        *sorted(
            os.path.join("/etc/apt/sources.list.d", n)
            for n in (os.listdir("/etc/apt/sources.list.d") if os.path.isdir("/etc/apt/sources.list.d") else [])
        ),
    ]
    out = []
    for path in files:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if path.endswith(".sources"):
            for para in text.split("\n\n"):
                fields, last = {}, None
                for line in para.splitlines():
                    if line.startswith("#") or not line.strip():
                        continue
                    if line[0].isspace() and last:
                        fields[last] += " " + line.strip()
                        continue
                    k, _, v = line.partition(":")
                    last = k.strip().lower()
                    fields[last] = v.strip()
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    for suite in fields.get("suites", "").split():
                        if suite in wanted:
                            out.append((uri, suite, fields.get("components", "main")))
        elif path.endswith(".list"):
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 3 and words[0] == "deb":
                    if words[1].startswith("["):  # options such as [signed-by=...]
                        while words and not words[0].endswith("]"):
                            words.pop(0)
                        words = ["deb", *words[1:]] if words else []
                    if len(words) >= 3 and words[2] in wanted:
                        out.append((words[1], words[2], " ".join(words[3:]) or "main"))
    seen = set()
    for uri, suite, comps in out:
        if (uri, suite) not in seen:
            seen.add((uri, suite))
            print(f"deb {uri} {suite} {comps}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def diff_id(path):
    """The sha256 of an uncompressed layer tar, remembered beside it by size and mtime."""
    st = os.stat(path)
    memo = path + ".sha256"
    stamp = f"{st.st_size} {st.st_mtime_ns}"
    try:
        with open(memo) as f:
            old_stamp, old_hash = f.read().rsplit(" ", 1)
        if old_stamp == stamp:
            return old_hash.strip()
    except (OSError, ValueError):
        pass
    digest = sha256_file(path)
    with open(memo, "w") as f:
        f.write(f"{stamp} {digest}\n")
    return digest


def compressed_blob(blobs, layer, did):
    """The gzip blob of LAYER in BLOBS (made once per diff_id): (digest, size, path)."""
    os.makedirs(os.path.join(blobs, "sha256"), exist_ok=True)
    os.makedirs(os.path.join(blobs, "diffid"), exist_ok=True)
    memo = os.path.join(blobs, "diffid", did)
    if os.path.exists(memo):
        with open(memo) as f:
            digest = f.read().strip()
        path = os.path.join(blobs, "sha256", digest)
        if os.path.exists(path):
            os.utime(path)  # marks it used: scripts/k8s-images drops blobs no run used
            return digest, os.path.getsize(path), path
    fd, tmp = tempfile.mkstemp(dir=os.path.join(blobs, "sha256"), prefix=".tmp")
    h = hashlib.sha256()

    class Hashing(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            h.update(b)
            return os.write(fd, b)

    with Hashing() as sink, gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=6) as gz:
        with open(layer, "rb") as src:
            shutil.copyfileobj(src, gz, CHUNK)
    os.fchmod(fd, 0o644)
    os.close(fd)
    digest = h.hexdigest()
    path = os.path.join(blobs, "sha256", digest)
    os.replace(tmp, path)
    with open(memo, "w") as f:
        f.write(digest + "\n")
    return digest, os.path.getsize(path), path


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def descriptor(media_type, data):
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


def pairs(items, what):
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            fail(f"{what} {item!r}: expected KEY=VALUE")
        out[k] = v
    return out


def cmd_image(args):
    name = args.name
    last = name.rsplit("/", 1)[-1]
    if ":" not in last or "@" in name:
        fail(f"{name}: the name needs a tag (REPOSITORY:TAG)")
    tag = last.split(":", 1)[1]
    layers = [(layer, diff_id(layer)) for layer in args.layer]
    config = {"Env": [f"{k}={v}" for k, v in pairs(args.env, "--env").items()]}
    for key, value in (("Entrypoint", args.entrypoint), ("Cmd", args.cmd)):
        if value is not None:
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if not (isinstance(parsed, list) and all(isinstance(s, str) for s in parsed)):
                fail(f"--{key.lower()} {value!r}: expected a JSON list of strings")
            config[key] = parsed
    if args.user:
        config["User"] = args.user
    labels = pairs(args.label, "--label")
    if labels:
        config["Labels"] = labels
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH))
    image_config = {
        "architecture": ARCH,
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for _, d in layers]},
    }
    config_bytes = canonical(image_config)
    key = hashlib.sha256(canonical({"format": FORMAT, "name": name, "config": image_config})).hexdigest()
    stamp = args.out + ".key"
    if os.path.exists(args.out) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().strip() == key:
                for path, did in layers:
                    compressed_blob(args.blobs, path, did)
                print(f"{name}: up to date")
                return
    blobs = [compressed_blob(args.blobs, path, did) for path, did in layers]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", config_bytes),
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + d, "size": s}
            for d, s, _ in blobs
        ],
    }
    manifest_bytes = canonical(manifest)
    mdesc = descriptor("application/vnd.oci.image.manifest.v1+json", manifest_bytes)
    # containerd reads the full name from io.containerd.image.name; the OCI key holds the tag,
    # as containerd's own export writes it.
    mdesc["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}
    mdesc["platform"] = {"architecture": ARCH, "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [mdesc]}

    members = {
        "oci-layout": ("bytes", canonical({"imageLayoutVersion": "1.0.0"})),
        "index.json": ("bytes", canonical(index)),
        "blobs/sha256/" + hashlib.sha256(config_bytes).hexdigest(): ("bytes", config_bytes),
        "blobs/sha256/" + mdesc["digest"].split(":", 1)[1]: ("bytes", manifest_bytes),
    }
    for d, _, path in blobs:
        members["blobs/sha256/" + d] = ("file", path)
    tmp = args.out + ".tmp"
    with new_tar(tmp) as tar:
        tar.addfile(info("blobs"))
        tar.addfile(info("blobs/sha256"))
        for member in sorted(members):
            kind, value = members[member]
            ti = info(member, kind=tarfile.REGTYPE, mode=0o644)
            if kind == "bytes":
                ti.size = len(value)
                tar.addfile(ti, io.BytesIO(value))
            else:
                ti.size = os.path.getsize(value)
                with open(value, "rb") as f:
                    tar.addfile(ti, f)
    os.replace(tmp, args.out)
    with open(stamp, "w") as f:
        f.write(key + "\n")
    print(f"{name}: wrote {args.out} ({os.path.getsize(args.out) // 1024} KiB)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("tree")
    s.add_argument("root")
    s.add_argument("out")
    s = sub.add_parser("files")
    s.add_argument("out")
    s.add_argument("specs", nargs="+")
    s = sub.add_parser("static")
    s.add_argument("files", nargs="+")
    s = sub.add_parser("sources")
    s.add_argument("suite")
    s.add_argument("files", nargs="*")
    s = sub.add_parser("image")
    s.add_argument("--name", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--blobs", required=True)
    s.add_argument("--layer", action="append", required=True)
    s.add_argument("--entrypoint")
    s.add_argument("--cmd")
    s.add_argument("--user")
    s.add_argument("--env", action="append", default=[])
    s.add_argument("--label", action="append", default=[])
    args = p.parse_args()
    {"tree": cmd_tree, "files": cmd_files, "static": cmd_static, "sources": cmd_sources, "image": cmd_image}[
        args.action
    ](args)


if __name__ == "__main__":
    main()
