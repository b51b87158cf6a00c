#!/bin/sh
# seed_tar_read.sh DIR — a small seed corpus for fuzz_tar_read: tars in the
# formats layers come in (GNU, pax, ustar; plain, gzip, zstd) holding every
# entry type the extractor handles.
set -eu
out=$1
mkdir -p "$out"
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
cd "$w"
mkdir -p r/d/sub r/e
echo hello > r/d/f
ln r/d/f r/d/hard
ln -s ../d/f r/e/link
ln -s /etc r/abs
mkfifo r/fifo
touch r/.wh.gone r/d/.wh..wh..opq
truncate -s 70000 r/sparse
printf x >> r/sparse
long=$(printf '%0150d' 0)
mkdir -p "r/$long" && echo l > "r/$long/$long"
setfattr -n user.a -v b r/d/f 2>/dev/null || true
for fmt in gnu pax ustar; do
    tar --format=$fmt -cf "$out/$fmt.tar" -C r . 2>/dev/null || true
done
tar --format=pax --sparse -cf "$out/sparse.tar" -C r sparse
gzip -c "$out/pax.tar" > "$out/pax.tar.gz"
zstd -q -c "$out/gnu.tar" > "$out/gnu.tar.zst"
# hostile shapes
tar -P --format=pax -cf "$out/abs.tar" "$w/r/d/f"
ln -s / r2 && tar -cf "$out/through-link.tar" r2 r/d/f
printf '' > "$out/empty"
