#!/usr/bin/env python3
"""Reads kiln's store (an OCI image layout) for the integration tests.

Independent of kiln's C code on purpose: the tests check what kiln wrote with
a second reader.

  ocistore.py digest   STORE IMAGE          manifest digest
  ocistore.py manifest STORE IMAGE          manifest JSON
  ocistore.py config   STORE IMAGE          image config JSON
  ocistore.py layers   STORE IMAGE [INDEX]  one line per entry of every layer
                                            (or of layer INDEX; -1 = last):
                                            MODE UID:GID PATH [-> TARGET |
                                            link to TARGET | MAJOR,MINOR]
  ocistore.py unpack   STORE IMAGE DIR      apply the layers (with whiteouts)
                                            into DIR; owners are not kept
  ocistore.py seed     SRC DST IMAGE...     copy images (index entries and
                                            blobs) from store SRC into DST
  ocistore.py check    STORE                every blob matches its digest and
                                            every referenced blob exists

IMAGE is matched against the org.opencontainers.image.ref.name annotation of
index.json's manifests: as given, then with ":latest" added when it has no
tag; "sha256:<hex>" names a manifest by digest.
"""

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile

REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MAX_JSON = 16 << 20


class Error(Exception):
    pass


def blob_path(store, digest):
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise Error(f"bad digest '{digest}'")
    return os.path.join(store, "blobs", "sha256", hexpart)


def read_json_blob(store, digest):
    path = blob_path(store, digest)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_JSON + 1)
    except FileNotFoundError:
        raise Error(f"{store}: blob {digest} is missing") from None
    if len(data) > MAX_JSON:
        raise Error(f"{store}: blob {digest} is too large for JSON")
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise Error(f"{store}: blob {digest} does not match its digest")
    return data, json.loads(data)


def load_index(store):
    path = os.path.join(store, "index.json")
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise Error(f"{store}: no index.json (not an OCI layout)") from None


def has_tag(name):
    return ":" in name.rsplit("/", 1)[-1]


def index_entry(store, image):
    """IMAGE's descriptor in index.json (a manifest or an image index)."""
    manifests = load_index(store).get("manifests") or []
    if image.startswith("sha256:"):
        found = [m for m in manifests if m.get("digest") == image]
    else:
        found = []
        for name in [image] if has_tag(image) else [image, image + ":latest"]:
            found = [m for m in manifests if (m.get("annotations") or {}).get(REF_NAME) == name]
            if found:
                break
    if not found:
        names = sorted((m.get("annotations") or {}).get(REF_NAME, "?") for m in manifests)
        raise Error(f"{store}: no image '{image}' in index.json (it has: {', '.join(names) or 'nothing'})")
    return found[-1]


def resolve(store, image):
    """The descriptor of IMAGE's manifest (for an image index, its amd64 one)."""
    desc = index_entry(store, image)
    if desc.get("mediaType") in INDEX_TYPES:
        _, idx = read_json_blob(store, desc["digest"])
        subs = idx.get("manifests") or []
        amd64 = [m for m in subs if (m.get("platform") or {}).get("architecture") == "amd64"]
        if not (amd64 or subs):
            raise Error(f"{store}: image index {desc['digest']} lists no manifests")
        desc = (amd64 or subs)[0]
    return desc


def manifest_of(store, image):
    desc = resolve(store, image)
    _, manifest = read_json_blob(store, desc["digest"])
    return desc, manifest


def open_layer(store, digest):
    """A tarfile over a layer blob: plain, gzip, bzip2, xz, or zstd."""
    path = blob_path(store, digest)
    if not os.path.exists(path):
        raise Error(f"{store}: layer blob {digest} is missing")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"\x28\xb5\x2f\xfd":
        data = subprocess.run(["zstd", "-dc", path], check=True, stdout=subprocess.PIPE).stdout
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    return tarfile.open(path, mode="r:*")


def clean_name(name):
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise Error(f"layer entry '{name}' leaves the tree")
    return "/".join(parts) or "."


def type_bits(m):
    if m.isdir():
        return stat.S_IFDIR
    if m.issym():
        return stat.S_IFLNK
    if m.ischr():
        return stat.S_IFCHR
    if m.isblk():
        return stat.S_IFBLK
    if m.isfifo():
        return stat.S_IFIFO
    return stat.S_IFREG


def entry_line(m):
    mode = stat.filemode(type_bits(m) | (m.mode & 0o7777))
    if m.islnk():
        mode = "h" + mode[1:]
    line = f"{mode} {m.uid}:{m.gid} {clean_name(m.name)}"
    if m.issym():
        line += f" -> {m.linkname}"
    elif m.islnk():
        line += f" link to {clean_name(m.linkname)}"
    elif m.ischr() or m.isblk():
        line += f" {m.devmajor},{m.devminor}"
    return line


def layer_digests(store, image):
    _, manifest = manifest_of(store, image)
    return [layer["digest"] for layer in manifest.get("layers") or []]


def cmd_layers(store, image, which=None):
    digests = layer_digests(store, image)
    if which is not None:
        try:
            digests = [digests[int(which)]]
        except (IndexError, ValueError):
            raise Error(f"image '{image}' has {len(digests)} layers: no layer '{which}'") from None
    out = sys.stdout
    for d in digests:
        with open_layer(store, d) as tf:
            for m in tf:
                out.write(entry_line(m) + "\n")


def inside(root, path):
    """PATH (below ROOT) with every parent resolved, refusing symlinks out."""
    parent = os.path.realpath(os.path.dirname(path))
    if parent != root and not parent.startswith(root + os.sep):
        raise Error(f"'{path}' resolves outside '{root}'")
    return os.path.join(parent, os.path.basename(path))


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def cmd_unpack(store, image, dest):
    os.makedirs(dest, exist_ok=True)
    root = os.path.realpath(dest)
    finish = {}  # path -> (mode, mtime), applied last so read-only dirs stay writable meanwhile
    for d in layer_digests(store, image):
        with open_layer(store, d) as tf:
            members = tf.getmembers()
            # Whiteouts hide what lower layers had, never what this layer adds.
            for m in members:
                name = clean_name(m.name)
                base = os.path.basename(name)
                if not base.startswith(".wh."):
                    continue
                target = inside(root, os.path.join(root, name))
                parent = os.path.dirname(target)
                if base == ".wh..wh..opq":
                    if os.path.isdir(parent):
                        for child in os.listdir(parent):
                            remove(os.path.join(parent, child))
                else:
                    remove(os.path.join(parent, base[4:]))
            for m in members:
                name = clean_name(m.name)
                if os.path.basename(name).startswith(".wh."):
                    continue
                path = root if name == "." else inside(root, os.path.join(root, name))
                if m.isdir():
                    if os.path.lexists(path) and not os.path.isdir(path):
                        os.unlink(path)
                    os.makedirs(path, mode=0o700, exist_ok=True)
                    os.chmod(path, 0o700)
                    finish[path] = (m.mode & 0o7777, m.mtime)
                    continue
                os.makedirs(os.path.dirname(path), exist_ok=True)
                remove(path)
                finish.pop(path, None)
                if m.issym():
                    os.symlink(m.linkname, path)
                    os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
                elif m.islnk():
                    os.link(inside(root, os.path.join(root, clean_name(m.linkname))), path,
                            follow_symlinks=False)
                elif m.isfifo():
                    os.mkfifo(path, 0o600)
                    finish[path] = (m.mode & 0o7777, m.mtime)
                elif m.ischr() or m.isblk():
                    continue  # no mknod for an unprivileged user; see `layers` for them
                else:
                    with tf.extractfile(m) as src, open(path, "xb") as dst:
                        shutil.copyfileobj(src, dst)
                    finish[path] = (m.mode & 0o7777, m.mtime)
    # Deepest first, so that a parent's mode is set after its children.
    for path in sorted(finish, key=lambda p: p.count(os.sep), reverse=True):
        if not os.path.lexists(path):
            continue
        mode, mtime = finish[path]
        os.chmod(path, mode)
        os.utime(path, (mtime, mtime))


def copy_blob(src, dst, digest):
    target = blob_path(dst, digest)
    if os.path.exists(target):
        return
    tmp = target + ".seed-tmp"
    shutil.copyfile(blob_path(src, digest), tmp)
    os.chmod(tmp, 0o644)
    os.rename(tmp, target)


def cmd_seed(src, dst, images):
    os.makedirs(os.path.join(dst, "blobs", "sha256"), exist_ok=True)
    os.chmod(dst, 0o700)
    layout = os.path.join(dst, "oci-layout")
    if not os.path.exists(layout):
        with open(layout, "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
    index_path = os.path.join(dst, "index.json")
    if os.path.exists(index_path):
        index = load_index(dst)
    else:
        index = {"schemaVersion": 2, "mediaType": INDEX_TYPES[0], "manifests": []}
    manifests = index.setdefault("manifests", [])
    for image in images:
        entry = index_entry(src, image)
        pending = [entry["digest"]]
        while pending:
            digest = pending.pop()
            copy_blob(src, dst, digest)
            _, doc = read_json_blob(src, digest)
            for sub in doc.get("manifests") or []:
                pending.append(sub["digest"])
            for blob in ([doc["config"]] if "config" in doc else []) + (doc.get("layers") or []):
                copy_blob(src, dst, blob["digest"])
        name = (entry.get("annotations") or {}).get(REF_NAME)
        manifests[:] = [m for m in manifests
                        if name is None or (m.get("annotations") or {}).get(REF_NAME) != name]
        manifests.append(entry)
    tmp = index_path + ".seed-tmp"
    with open(tmp, "w") as f:
        json.dump(index, f)
    os.rename(tmp, index_path)


def cmd_check(store):
    problems = []
    blobs = os.path.join(store, "blobs", "sha256")
    for name in sorted(os.listdir(blobs)):
        h = hashlib.sha256()
        with open(os.path.join(blobs, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != name:
            problems.append(f"blob {name} does not match its digest")
    pending = [m["digest"] for m in load_index(store).get("manifests") or []]
    seen = set()
    while pending:
        digest = pending.pop()
        if digest in seen:
            continue
        seen.add(digest)
        try:
            _, doc = read_json_blob(store, digest)
        except Error as e:
            problems.append(str(e))
            continue
        pending += [m["digest"] for m in doc.get("manifests") or []]
        for blob in ([doc["config"]] if "config" in doc else []) + (doc.get("layers") or []):
            if not os.path.exists(blob_path(store, blob["digest"])):
                problems.append(f"{digest} references missing blob {blob['digest']}")
    if problems:
        raise Error(f"{store}: " + "; ".join(problems))


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    cmd, store, args = argv[1], argv[2], argv[3:]
    try:
        if cmd == "digest" and len(args) == 1:
            print(resolve(store, args[0])["digest"])
        elif cmd == "manifest" and len(args) == 1:
            sys.stdout.buffer.write(read_json_blob(store, resolve(store, args[0])["digest"])[0] + b"\n")
        elif cmd == "config" and len(args) == 1:
            _, manifest = manifest_of(store, args[0])
            sys.stdout.buffer.write(read_json_blob(store, manifest["config"]["digest"])[0] + b"\n")
        elif cmd == "layers" and len(args) in (1, 2):
            cmd_layers(store, *args)
        elif cmd == "unpack" and len(args) == 2:
            cmd_unpack(store, *args)
        elif cmd == "seed" and len(args) >= 2:
            cmd_seed(store, args[0], args[1:])
        elif cmd == "check" and not args:
            cmd_check(store)
        else:
            sys.stderr.write(__doc__)
            return 2
    except Error as e:
        print(f"ocistore: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
