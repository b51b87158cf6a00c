/* Content digests of build-context files, remembered per store by
 * (device, inode, size, mtime, ctime) so that a rebuild costs a stat walk,
 * not a read of every source.  The digest is always of the content: the
 * stat fields only decide whether it must be computed again. */
#ifndef KILN_FILEHASH_H
#define KILN_FILEHASH_H

#include <stdint.h>
#include <sys/stat.h>

#include "layers/store.h"

struct filehash;

struct filehash *filehash_open(struct store *s);
/* SHA-256 of the regular file open as fd (read from offset 0 when it must be
 * computed); -errno on a read error. */
int filehash_get(struct filehash *fh, int fd, const struct stat *st, uint8_t out[32]);
/* Writes the table back when it changed; frees fh (accepts NULL). */
void filehash_close(struct filehash *fh);

#endif
