#!/usr/bin/env python3
"""compare.py -- compares two images in OCI image layouts, as a user of
the images would: the config fields a container runs with, and the file
tree the layers give once applied (names, types, modes, owners, contents,
symlink targets, hard-link groups).  Times and the history are not compared.

Usage: compare.py [--ignore-config FIELD,...] [--ignore-path REGEX]...
                  [--show] KILN_LAYOUT BUILDAH_LAYOUT

Each layout holds one image (the first manifest of index.json is used), or
is a containers/image "dir:" directory (manifest.json, blobs named by their
hex digest): buildah's docker-format config (Healthcheck, OnBuild, Shell)
survives only there.
Prints each difference, one per line, and exits 1 when there is any;
--show prints both sides' trees too.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile

# The config fields compared (docker format: buildah --format docker).
CONFIG_FIELDS = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
                 "Labels", "StopSignal", "Healthcheck", "OnBuild", "Shell"]
TOP_FIELDS = ["os", "architecture"]


def blob(layout, digest):
    algo, hexd = digest.split(":", 1)
    path = os.path.join(layout, "blobs", algo, hexd)
    if not os.path.exists(path):
        path = os.path.join(layout, hexd)  # a dir: directory
    with open(path, "rb") as f:
        return f.read()


def load(layout):
    if os.path.exists(os.path.join(layout, "manifest.json")):
        manifest = json.loads(open(os.path.join(layout, "manifest.json")).read())
        config = json.loads(blob(layout, manifest["config"]["digest"]))
        return manifest, config
    index = json.loads(open(os.path.join(layout, "index.json")).read())
    desc = index["manifests"][0]
    manifest = json.loads(blob(layout, desc["digest"]))
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    return manifest, config


def layer_tar(data):
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:4] == b"\x28\xb5\x2f\xfd":
        import subprocess
        data = subprocess.run(["zstd", "-d", "-c"], input=data, stdout=subprocess.PIPE,
                              check=True).stdout
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:")


def norm(name):
    name = name.lstrip("./") if name.startswith("./") else name.lstrip("/")
    return name.rstrip("/")


def apply_layers(layout, manifest):
    """path -> entry dict, layers applied with OCI whiteouts."""
    tree = {}
    for desc in manifest["layers"]:
        tf = layer_tar(blob(layout, desc["digest"]))
        members = tf.getmembers()
        # opaque directories first: they hide what the layers below put there
        for m in members:
            base = os.path.basename(norm(m.name))
            if base == ".wh..wh..opq":
                d = os.path.dirname(norm(m.name))
                for p in [p for p in tree if not d or p.startswith(d + "/")]:
                    del tree[p]
        for m in members:
            name = norm(m.name)
            if not name:
                continue
            base = os.path.basename(name)
            d = os.path.dirname(name)
            if base == ".wh..wh..opq":
                continue
            if base.startswith(".wh."):
                gone = os.path.join(d, base[4:]) if d else base[4:]
                for p in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                    del tree[p]
                continue
            e = {"mode": m.mode & 0o7777, "uid": m.uid, "gid": m.gid}
            if m.isdir():
                e["type"] = "dir"
            elif m.issym():
                e["type"] = "symlink"
                e["target"] = m.linkname
            elif m.islnk():
                src = tree.get(norm(m.linkname))
                if src is None:
                    e["type"] = "file"
                    e["sha"] = "?"
                else:
                    e["type"] = "file"
                    e["sha"] = src["sha"]
                    e["link"] = norm(m.linkname)
                    e["mode"] = src["mode"]
                    e["uid"], e["gid"] = src["uid"], src["gid"]
            elif m.isfile():
                e["type"] = "file"
                e["sha"] = hashlib.sha256(tf.extractfile(m).read()).hexdigest()
            elif m.ischr() or m.isblk():
                e["type"] = "chr" if m.ischr() else "blk"
                e["dev"] = (m.devmajor, m.devminor)
            elif m.isfifo():
                e["type"] = "fifo"
            else:
                e["type"] = "other"
            # a non-directory replaces what was there, a directory below too
            old = tree.get(name)
            if old is not None and (old["type"] != "dir" or e["type"] != "dir"):
                for p in [p for p in tree if p.startswith(name + "/")]:
                    del tree[p]
            tree[name] = e
    # hard links: compare the groups of names, not which one came first
    groups = {}
    for p, e in tree.items():
        if "link" in e:
            root = e.pop("link")
            while "link" in tree.get(root, {}):
                root = tree[root]["link"]
            groups.setdefault(root, {root}).add(p)
    for root, names in groups.items():
        for p in names:
            if p in tree:
                tree[p]["hardlinks"] = sorted(names)
    return tree


def describe(e):
    s = "%s %04o %d:%d" % (e["type"], e["mode"], e["uid"], e["gid"])
    if "sha" in e:
        s += " sha256:" + e["sha"][:16]
    if "target" in e:
        s += " -> " + e["target"]
    if "dev" in e:
        s += " %d,%d" % e["dev"]
    if "hardlinks" in e:
        s += " links=" + ",".join(e["hardlinks"])
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ignore-config", default="")
    ap.add_argument("--ignore-path", action="append", default=[])
    ap.add_argument("--show", action="store_true")
    ap.add_argument("kiln")
    ap.add_argument("buildah")
    a = ap.parse_args()
    ignored = {f for f in a.ignore_config.split(",") if f}
    pats = [re.compile(p) for p in a.ignore_path]

    km, kc = load(a.kiln)
    bm, bc = load(a.buildah)
    diffs = []
    for f in TOP_FIELDS:
        if f not in ignored and kc.get(f) != bc.get(f):
            diffs.append("config %s: kiln %r, buildah %r" % (f, kc.get(f), bc.get(f)))
    kcfg, bcfg = kc.get("config") or {}, bc.get("config") or {}
    for f in CONFIG_FIELDS:
        if f in ignored:
            continue
        kv, bv = kcfg.get(f), bcfg.get(f)
        # absent and empty mean the same to a runtime
        if kv in (None, [], {}, "") and bv in (None, [], {}, ""):
            continue
        if kv != bv:
            diffs.append("config %s: kiln %s, buildah %s" % (f, json.dumps(kv), json.dumps(bv)))

    kt, bt = apply_layers(a.kiln, km), apply_layers(a.buildah, bm)
    for p in sorted(set(kt) | set(bt)):
        if any(r.search(p) for r in pats):
            continue
        ke, be = kt.get(p), bt.get(p)
        if ke is None:
            diffs.append("tree /%s: only buildah has it (%s)" % (p, describe(be)))
        elif be is None:
            diffs.append("tree /%s: only kiln has it (%s)" % (p, describe(ke)))
        elif describe(ke) != describe(be):
            diffs.append("tree /%s: kiln %s, buildah %s" % (p, describe(ke), describe(be)))
    if a.show:
        for name, t in (("kiln", kt), ("buildah", bt)):
            print("== %s" % name)
            for p in sorted(t):
                print("  /%s %s" % (p, describe(t[p])))
    for d in diffs:
        print(d)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
