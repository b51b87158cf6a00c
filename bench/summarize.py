#!/usr/bin/python3
"""Summarise a bench/run.sh raw.txt as Markdown.

    summarize.py RAW.txt                      the tables (stdout)
    summarize.py --layer-bytes STORE TAG BASE compressed bytes of the layers
                                              image TAG adds to image BASE in
                                              a kiln store (an OCI layout)

raw.txt lines: "meta KEY=VALUE", "run=N builder=B scenario=S status=ok|fail
seconds=X rss_kb=K push_s=P layer_bytes=L run_output_s=R [err=...]" and
"floor data=D op=... seconds=X in_bytes=I out_bytes=O".
"""
import json
import os
import shlex
import statistics
import sys

BUILDERS = ["kiln", "kiln-single", "buildah-overlay", "buildah-fuse", "ch-image"]
OTHERS = ["buildah-overlay", "buildah-fuse", "ch-image"]
PIGZ_PIPE = "tar -> sha256 -> pigz -6 -> sha256"


def layer_bytes(store, tag, base):
    def blob(digest):
        algo, hexd = digest.split(":", 1)
        with open(os.path.join(store, "blobs", algo, hexd), "rb") as f:
            return f.read()

    def manifest(ref):
        with open(os.path.join(store, "index.json")) as f:
            idx = json.load(f)
        want = {ref, ref + ":latest"} if ":" not in ref.rsplit("/", 1)[-1] else {ref}
        for m in idx.get("manifests", []):
            name = (m.get("annotations") or {}).get("org.opencontainers.image.ref.name", "")
            if name in want:
                return json.loads(blob(m["digest"]))
        raise SystemExit("no image %s" % ref)

    base_layers = {l["digest"] for l in manifest(base).get("layers", [])}
    print(sum(l["size"] for l in manifest(tag).get("layers", []) if l["digest"] not in base_layers))


def parse(path):
    meta, runs, floors = {}, [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            kind, _, rest = line.partition(" ")
            if kind == "meta":
                for w in shlex.split(rest):
                    k, _, v = w.partition("=")
                    meta[k] = v
                continue
            fields = dict(w.partition("=")[::2] for w in shlex.split(line if kind != "floor" else rest))
            (floors if kind == "floor" else runs).append(fields)
    return meta, runs, floors


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt_s(v):
    if v is None:
        return "—"
    if v < 1:
        return "%.3f" % v
    if v < 10:
        return "%.2f" % v
    return "%.1f" % v


def fmt_x(r):
    if r is None:
        return ""
    return " (%.0f×)" % r if r >= 10 else " (%.1f×)" % r


def main(path):
    meta, runs, floors = parse(path)
    scens = []
    for r in runs:
        if r["scenario"] not in scens:
            scens.append(r["scenario"])
    present = [b for b in BUILDERS if any(r["builder"] == b for r in runs)]
    cell = {}  # (scen, builder) -> dict
    for s in scens:
        for b in present:
            rs = [r for r in runs if r["scenario"] == s and r["builder"] == b]
            if not rs:
                continue
            ok = [r for r in rs if r.get("status") == "ok"]
            secs = [num(r["seconds"]) for r in ok if num(r["seconds"]) is not None]
            cell[(s, b)] = {
                "n": len(rs),
                "ok": len(ok),
                "all": [r.get("seconds") if r.get("status") == "ok" else r.get("status", "fail")
                        for r in rs],
                "median": statistics.median(secs) if secs else None,
                "rss": max((num(r.get("rss_kb")) or 0) for r in ok) / 1024 if ok else None,
                "push": statistics.median([num(r["push_s"]) for r in ok if num(r.get("push_s")) is not None])
                if any(num(r.get("push_s")) is not None for r in ok) else None,
                "bytes": statistics.median([num(r["layer_bytes"]) for r in ok if num(r.get("layer_bytes")) is not None])
                if any(num(r.get("layer_bytes")) is not None for r in ok) else None,
                "runout": statistics.median([num(r["run_output_s"]) for r in ok if num(r.get("run_output_s")) is not None])
                if any(num(r.get("run_output_s")) is not None for r in ok) else None,
                "err": next((r.get("err") for r in rs if r.get("err")), None),
            }

    def med(s, b):
        c = cell.get((s, b))
        return c["median"] if c else None

    def floor(data, op_prefix):
        for f in floors:
            if f["data"] == data and f["op"].startswith(op_prefix):
                return f
        return None

    out = []
    w = out.append
    w("## kiln beside buildah and ch-image")
    w("")
    w("%s; %s." % (meta.get("machine", "?"), meta.get("fs", "?")))
    w("%s; %s; %s." % (meta.get("kiln", "kiln ?"), meta.get("buildah", "no buildah"), meta.get("ch-image", "no ch-image")))
    w("%s run(s) per cell, builders alternating; load average %s at the start, %s at the end; %s."
      % (meta.get("runs", "?"), meta.get("load_start", "?"), meta.get("load_end", "?"), meta.get("date", "?")))
    w("")
    w("### Median seconds of the build command (kiln's speed-up over each builder)")
    w("")
    w("kiln's figures include compression (its store holds gzip blobs); "
      "buildah and ch-image compress nothing during a build: buildah's push to an "
      "OCI layout is in its own column below.")
    w("")
    w("| scenario | " + " | ".join(present) + " | floor on the same data |")
    w("|---|" + "---|" * (len(present) + 1))
    for s in scens:
        k = med(s, "kiln")
        row = []
        for b in present:
            c = cell.get((s, b))
            if not c:
                row.append("")
                continue
            m = c["median"]
            if m is None:
                unsup = all(r == "unsupported" for r in c["all"])
                row.append("n/a" if unsup else "fail")
                continue
            t = fmt_s(m)
            if b in OTHERS and k:
                t += fmt_x(m / k)
            if c["ok"] < c["n"]:
                t += " (%d/%d ok)" % (c["ok"], c["n"])
            row.append(t)
        fl = ""
        if s == "steps-cached" and floor("steps", "stat walk"):
            fl = "stat walk: %s" % fmt_s(num(floor("steps", "stat walk")["seconds"]))
        for data in ("bigcontext", "bigrun"):
            if s == data and floor(data, PIGZ_PIPE):
                fl = "tar→sha256→pigz→sha256: %s" % fmt_s(num(floor(data, PIGZ_PIPE)["seconds"]))
                z = floor(data, "tar -> sha256 -> zstd")
                if z:
                    fl += "; with zstd: %s" % fmt_s(num(z["seconds"]))
        w("| %s | %s | %s |" % (s, " | ".join(row), fl))
    w("")

    # memory and push
    w("### Peak RSS of the build command (MiB, largest of the runs)")
    w("")
    w("| scenario | " + " | ".join(present) + " |")
    w("|---|" + "---|" * len(present))
    for s in scens:
        row = []
        for b in present:
            c = cell.get((s, b))
            row.append("%.0f" % c["rss"] if c and c["rss"] else "")
        w("| %s | %s |" % (s, " | ".join(row)))
    w("")
    pushers = [b for b in present if any(cell.get((s, b)) and cell[(s, b)]["push"] is not None for s in scens)]
    if pushers:
        w("### buildah: build + push to an OCI layout (gzip), median seconds")
        w("")
        w("| scenario | kiln build | " + " | ".join("%s push | %s total" % (b, b) for b in pushers) + " |")
        w("|---|---|" + "---|---|" * len(pushers))
        for s in scens:
            k = med(s, "kiln")
            row = [fmt_s(k) if k else ""]
            for b in pushers:
                c = cell.get((s, b))
                if c and c["push"] is not None and c["median"] is not None:
                    tot = c["median"] + c["push"]
                    row += [fmt_s(c["push"]), fmt_s(tot) + (fmt_x(tot / k) if k else "")]
                else:
                    row += ["", ""]
            w("| %s | %s |" % (s, " | ".join(row)))
        w("")

    if floors:
        w("### Floors on this machine (median seconds; inputs in the page cache)")
        w("")
        w("| data | operation | seconds | MB/s of input | output bytes |")
        w("|---|---|---|---|---|")
        for f in floors:
            sec, inb = num(f["seconds"]), num(f["in_bytes"])
            rate = "%.0f" % (inb / sec / 1e6) if sec and inb else ""
            w("| %s | %s | %s | %s | %s |" % (f["data"], f["op"], fmt_s(sec), rate,
                                             f.get("out_bytes") if f.get("out_bytes") != "NA" else ""))
        w("")

    # targets
    w("### Targets")
    w("")

    def ratio(s, other, mine="kiln"):
        a, b = med(s, other), med(s, mine)
        return a / b if a and b else None

    def check(label, value, ok, shown):
        if value is None:
            w("- %s: not measured" % label)
        else:
            w("- %s: %s — %s" % (label, shown, "met" if ok else "**missed**"))

    for s, need_b, need_c in (("steps", 8, 4), ("edit-rebuild", 10, 3)):
        r = ratio(s, "buildah-overlay")
        check("%s ≥ %d× buildah (overlay)" % (s, need_b), r, r and r >= need_b, "%.1f×" % r if r else "")
        r = ratio(s, "ch-image")
        check("%s ≥ %d× ch-image" % (s, need_c), r, r and r >= need_c, "%.1f×" % r if r else "")
    k = med("steps-cached", "kiln")
    check("steps-cached < 100 ms", k, k is not None and k < 0.1, "%.0f ms" % (k * 1000) if k else "")
    for other, need in (("buildah-overlay", 25), ("ch-image", 7)):
        r = ratio("steps-cached", other)
        check("steps-cached ≥ %d× %s" % (need, other), r, r and r >= need, "%.1f×" % r if r else "")
    k = med("thirty-cached", "kiln")
    check("thirty-cached (issue 5: a cached rebuild of 30 instructions) < 100 ms", k,
          k is not None and k < 0.1, "%.0f ms" % (k * 1000) if k else "")
    r = ratio("thirty-cached", "buildah-overlay")
    if r:
        w("  (buildah-overlay: %.0f ms, %.0f×)" % (med("thirty-cached", "buildah-overlay") * 1000, r))
    for mine in ("kiln", "kiln-single"):
        r = ratio("debian-dpkg-only", "buildah-overlay", mine)
        check("debian-dpkg-only ≥ 2× buildah (overlay), %s" % mine, r, r and r >= 2, "%.1f×" % r if r else "")
    k = med("bigcontext", "kiln")
    fl = floor("bigcontext", PIGZ_PIPE)
    if k and fl:
        lim = 1.2 * num(fl["seconds"])
        check("bigcontext ≤ 1.2 × the pigz floor (%.2f s)" % lim, k, k <= lim, "%.2f s" % k)
    r = ratio("bigcontext", "buildah-overlay")
    check("bigcontext ≥ 5× buildah (overlay)", r, r and r >= 5, "%.1f×" % r if r else "")
    k = med("bigrun", "kiln")
    fl = floor("bigrun", PIGZ_PIPE)
    host = floor("bigrun", "RUN payload")
    c = cell.get(("bigrun", "kiln"))
    if k and fl:
        lim = num(fl["seconds"]) / 2
        if host:
            ov = k - num(host["seconds"])
            check("bigrun overhead (total − payload on the host, %.1f s) ≤ half the pigz floor (%.1f s)"
                  % (num(host["seconds"]), lim), ov, ov <= lim, "%.1f s" % ov)
        if c and c["runout"]:
            ov = k - c["runout"]
            check("bigrun overhead (total − payload inside kiln's RUN, %.1f s) ≤ half the pigz floor (%.1f s)"
                  % (c["runout"], lim), ov, ov <= lim, "%.1f s" % ov)
    gz = floor("bigrun", "gzip -6")
    if c and c["bytes"] and gz and num(gz.get("out_bytes")):
        rel = c["bytes"] / num(gz["out_bytes"]) - 1
        check("bigrun layer within 15 %% of gzip -6 (%d bytes)" % num(gz["out_bytes"]), rel, abs(rel) <= 0.15,
              "%d bytes, %+.1f %%" % (c["bytes"], rel * 100))
    a, b = med("touch-busybox", "kiln"), med("touch-debian", "kiln")
    if a and b:
        check("a one-file RUN on Debian costs what it costs on busybox", b, b <= max(a * 1.5, a + 0.05),
              "%s s vs %s s" % (fmt_s(b), fmt_s(a)))
    for mine in ("kiln", "kiln-single"):
        rss = [cell[(s, mine)]["rss"] for s in scens if cell.get((s, mine)) and cell[(s, mine)]["rss"]]
        if rss:
            check("%s peak RSS < 64 MiB on every scenario" % mine, max(rss), max(rss) < 64, "largest %.0f MiB" % max(rss))
    w("")

    w("### Every run (seconds)")
    w("")
    for s in scens:
        for b in present:
            c = cell.get((s, b))
            if c:
                line = "- %s / %s: %s" % (s, b, ", ".join(c["all"]))
                if c["err"]:
                    line += " — %s" % c["err"]
                w(line)
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--layer-bytes":
        layer_bytes(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        sys.exit(__doc__)
