/* Streaming compression and decompression of layer blobs.
 *
 * Compressor: bytes written with compressor_write are cut into blocks and
 * compressed in other threads; the compressed stream is handed, in order, to
 * a sink callback that runs in the compressor's output thread.  So the
 * caller (tar generation, diff_id hashing), the compression and the sink
 * (blob hashing and writing) overlap.
 *
 *   gzip  ISA-L deflate (igzip) on every core: independent 256 KiB blocks,
 *         each primed with the previous 32 KiB as its dictionary, joined with
 *         sync flushes into ONE gzip member (one header, CRC-32 combined with
 *         zlib's crc32_combine, ISIZE).  Any gzip reader accepts it.
 *   zstd  libzstd with ZSTD_c_nbWorkers = cores (one frame).
 *   none  the bytes as they are.
 *
 * Decompressor: a pull reader over an fd that detects the format by magic
 * (gzip, zstd, else plain) and hashes the raw bytes it reads (the blob
 * digest). */
#ifndef KILN_COMPRESS_H
#define KILN_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "layers/descriptor.h"
#include "lib/error.h"
#include "lib/sha256.h"

/* Receives the compressed stream in order, from the output thread.  A
 * failure stops the compressor; its error is returned by the next
 * compressor_write or compressor_finish. */
typedef int (*compress_sink_fn)(void *opaque, const void *data, size_t len,
                                struct kiln_error **err);

struct compressor;

/* level: 0 = the codec's default; gzip 1..9 (as gzip's scale, mapped onto
 * ISA-L's levels 0..3), zstd 1..19.  threads: 0 = online cores. */
int compressor_new(enum compression c, int level, int threads, compress_sink_fn sink,
                   void *opaque, struct compressor **ret, struct kiln_error **err);
int compressor_write(struct compressor *c, const void *data, size_t len, struct kiln_error **err);
/* Compresses what is left, ends the stream, waits for the sink to have
 * received everything and stops the threads. */
int compressor_finish(struct compressor *c, struct kiln_error **err);
/* Stops the threads (discarding pending output) and frees; accepts NULL. */
void compressor_free(struct compressor *c);
/* Uncompressed bytes written so far. */
uint64_t compressor_bytes_in(const struct compressor *c);

/* The ISA-L level a gzip level maps to (exposed for tests and reports). */
int compress_gzip_isal_level(int level);

/* ---- decompression ---------------------------------------------------- */

/* gzip (1f 8b), zstd (28 b5 2f fd), else none. */
enum compression compression_detect(const void *buf, size_t len);

struct decompressor;

/* Reads the compressed stream from fd (not closed by the reader). */
int decompressor_open(int fd, struct decompressor **ret, struct kiln_error **err);
/* Up to len uncompressed bytes into buf; *ret_n = 0 at the end of the
 * stream (after which the whole input has been read and verified: gzip
 * CRC-32 and ISIZE of every member, zstd checksums when present, no trailing
 * garbage). */
int decompressor_read(struct decompressor *d, void *buf, size_t len, size_t *ret_n,
                      struct kiln_error **err);
enum compression decompressor_format(const struct decompressor *d);
/* SHA-256 of every raw byte read from fd, valid after the end of stream. */
void decompressor_raw_digest(struct decompressor *d, char out[DIGEST_STR_LEN]);
uint64_t decompressor_raw_bytes(const struct decompressor *d);
void decompressor_free(struct decompressor *d);

#endif
