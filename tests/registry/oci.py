#!/usr/bin/env python3
"""Writes small test images into an OCI image layout (a kiln store is one).

  oci.py image LAYOUT NAME [--arch A] [--os O] [--variant V] [--docker]
               [--file PATH=CONTENT]... [--random-layer BYTES]
               [--extra-layers N] [--busybox PATH] [--seed S]
      an image of one layer for the --file entries, N small random layers
      and one random layer of BYTES;
      prints the manifest digest
      --hostile KIND adds a last layer that extraction must refuse:
      dotdot (a file at ../escape), hardlink (a hard link to nothing),
      symlink (a write through a symlink to /tmp), diffid (an honest layer
      whose diff_id in the config is wrong)
  oci.py index LAYOUT NAME IMAGE...
      an OCI image index of the named images (platforms from their
      configs), named NAME in index.json; prints its digest
  oci.py digest LAYOUT NAME       the manifest digest NAME points at
  oci.py layers LAYOUT NAME       the layer digests of image NAME, one a line
  oci.py count LAYOUT             how many blobs the layout holds

Names are index.json's org.opencontainers.image.ref.name values.  Output is
deterministic for the same arguments (fixed times, seeded random data).
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

REF = "org.opencontainers.image.ref.name"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
D_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D_CONFIG = "application/vnd.docker.container.image.v1+json"
D_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def put_blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", d)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)
    return "sha256:" + d, len(data)


def read_index(layout):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    lp = os.path.join(layout, "oci-layout")
    if not os.path.exists(lp):
        with open(lp, "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
    ip = os.path.join(layout, "index.json")
    if os.path.exists(ip):
        with open(ip) as f:
            return json.load(f)
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def write_index(layout, idx):
    ip = os.path.join(layout, "index.json")
    with open(ip + ".tmp", "w") as f:
        json.dump(idx, f)
    os.rename(ip + ".tmp", ip)


def name_entry(layout, name, desc):
    idx = read_index(layout)
    idx["manifests"] = [m for m in idx["manifests"]
                        if m.get("annotations", {}).get(REF) != name]
    desc = dict(desc)
    desc["annotations"] = {REF: name}
    idx["manifests"].append(desc)
    write_index(layout, idx)


def find(layout, name):
    for m in read_index(layout)["manifests"]:
        if m.get("annotations", {}).get(REF) == name:
            return m
    sys.exit(f"oci.py: no image named {name!r} in {layout}")


def blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def make_layer(files):
    """files: (path, bytes) regular files; (path, bytes, mode); (path/, None) a
    directory; (path, "->target") a symlink; (path, "=>target") a hard link."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for f in files:
            path, content = f[0], f[1]
            ti = tarfile.TarInfo(path.rstrip("/"))
            ti.mtime = 0
            if content is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            elif isinstance(content, str) and content.startswith("=>"):
                ti.type = tarfile.LNKTYPE
                ti.linkname = content[2:]
                ti.mode = 0o644
                t.addfile(ti)
            elif isinstance(content, str):
                ti.type = tarfile.SYMTYPE
                ti.linkname = content[2:]
                ti.mode = 0o777
                t.addfile(ti)
            else:
                ti.size = len(content)
                ti.mode = f[2] if len(f) > 2 else 0o644
                t.addfile(ti, io.BytesIO(content))
    tar = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=1) as g:
        g.write(tar)
    return tar, gz.getvalue()


def cmd_image(a):
    layers = []
    if a.busybox:
        with open(a.busybox, "rb") as f:
            bb = f.read()
        entries = [("bin/", None), ("bin/busybox", bb, 0o755), ("tmp/", None)]
        entries += [(f"bin/{n}", "->busybox") for n in ("sh", "cat", "date", "echo", "ls")]
        layers.append(make_layer(entries))
    files = [(f.split("=", 1)[0], f.split("=", 1)[1].encode()) for f in a.file]
    if files:
        layers.append(make_layer(files))
    for i in range(a.extra_layers):
        rnd = random.Random(f"{a.seed}-{i}")
        layers.append(make_layer([(f"extra/{i}", bytes(rnd.getrandbits(8) for _ in range(20000)))]))
    if a.random_layer:
        rnd = random.Random(a.seed)
        data = bytes(rnd.getrandbits(8) for _ in range(a.random_layer))
        layers.append(make_layer([("random.bin", data)]))
    if not layers or a.hostile:
        layers.append(make_layer([("hello", b"hello\n")]))
    hostile = {"dotdot": [("../escape", b"escaped\n")],
               "hardlink": [("link", "=>nothing/here")],
               "symlink": [("tmpdir", "->/tmp"), ("tmpdir/escape", b"escaped\n")]}
    if a.hostile in hostile:
        layers.append(make_layer(hostile[a.hostile]))
    ltype = D_LAYER if a.docker else OCI_LAYER
    ldescs, diff_ids = [], []
    for tar, gz in layers:
        dg, size = put_blob(a.layout, gz)
        ldescs.append({"mediaType": ltype, "digest": dg, "size": size})
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    if a.hostile == "diffid":
        diff_ids[-1] = "sha256:" + hashlib.sha256(b"not this layer").hexdigest()
    cfg = {"created": "2024-01-01T00:00:00Z", "architecture": a.arch, "os": a.os,
           "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"kiln.test": a.layout and a.seed}},
           "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "oci.py"}] * len(layers)}
    if a.variant:
        cfg["variant"] = a.variant
    cdata = json.dumps(cfg, separators=(",", ":")).encode()
    cdg, csize = put_blob(a.layout, cdata)
    man = {"schemaVersion": 2, "mediaType": D_MANIFEST if a.docker else OCI_MANIFEST,
           "config": {"mediaType": D_CONFIG if a.docker else OCI_CONFIG, "digest": cdg,
                      "size": csize},
           "layers": ldescs}
    mdata = json.dumps(man, separators=(",", ":")).encode()
    mdg, msize = put_blob(a.layout, mdata)
    name_entry(a.layout, a.name, {"mediaType": man["mediaType"], "digest": mdg, "size": msize})
    print(mdg)


def cmd_index(a):
    entries = []
    for img in a.images:
        d = find(a.layout, img)
        man = json.loads(blob(a.layout, d["digest"]))
        cfg = json.loads(blob(a.layout, man["config"]["digest"]))
        plat = {"architecture": cfg["architecture"], "os": cfg["os"]}
        if cfg.get("variant"):
            plat["variant"] = cfg["variant"]
        entries.append({"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
                        "platform": plat})
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    data = json.dumps(idx, separators=(",", ":")).encode()
    dg, size = put_blob(a.layout, data)
    name_entry(a.layout, a.name, {"mediaType": OCI_INDEX, "digest": dg, "size": size})
    print(dg)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("image")
    p.add_argument("layout")
    p.add_argument("name")
    p.add_argument("--arch", default="amd64")
    p.add_argument("--os", default="linux")
    p.add_argument("--variant")
    p.add_argument("--docker", action="store_true")
    p.add_argument("--file", action="append", default=[])
    p.add_argument("--random-layer", type=int, default=0)
    p.add_argument("--extra-layers", type=int, default=0)
    p.add_argument("--busybox", metavar="PATH", help="a first layer with this static busybox "
                   "as /bin/busybox and /bin/sh, cat, date, echo, ls")
    p.add_argument("--seed", default="kiln")
    p.add_argument("--hostile", choices=["dotdot", "hardlink", "symlink", "diffid"])
    p = sub.add_parser("index")
    p.add_argument("layout")
    p.add_argument("name")
    p.add_argument("images", nargs="+")
    for c in ("digest", "layers"):
        p = sub.add_parser(c)
        p.add_argument("layout")
        p.add_argument("name")
    p = sub.add_parser("count")
    p.add_argument("layout")
    a = ap.parse_args()
    if a.cmd == "image":
        cmd_image(a)
    elif a.cmd == "index":
        cmd_index(a)
    elif a.cmd == "digest":
        print(find(a.layout, a.name)["digest"])
    elif a.cmd == "layers":
        man = json.loads(blob(a.layout, find(a.layout, a.name)["digest"]))
        for l in man["layers"]:
            print(l["digest"])
    elif a.cmd == "count":
        print(len(os.listdir(os.path.join(a.layout, "blobs", "sha256"))))


if __name__ == "__main__":
    main()
