# links, an empty directory and odd names (git keeps none of them as such)
mkdir -p tree/dir tree/empty
echo data >tree/dir/file
ln tree/dir/file tree/dir/hard
ln -s dir/file tree/symlink
ln -s /etc/passwd tree/absolute
echo s >"tree/with space"
echo u >"tree/ünïcødé"
truncate -s 1M tree/sparse
echo end >>tree/sparse
