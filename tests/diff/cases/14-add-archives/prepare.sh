# archives made at build time (git keeps no binaries, links or empty dirs)
mkdir -p src/d/empty
echo data >src/d/file
ln -s file src/d/link
ln src/d/file src/d/hard
tar -C src --owner=7 --group=8 --numeric-owner --mtime=2020-01-01 -cf plain.tar d
gzip -n -c plain.tar >a.tar.gz
bzip2 -c plain.tar >a.tar.bz2
xz -c plain.tar >a.tar.xz
rm -rf src
