/* A growable, always NUL-terminated byte buffer. */
#ifndef KILN_STRBUF_H
#define KILN_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
    char *buf; /* never NULL after strbuf_init */
    size_t len;
    size_t cap;
};

#define STRBUF_INIT {NULL, 0, 0}

void strbuf_init(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_adds(struct strbuf *sb, const char *s);
void strbuf_addc(struct strbuf *sb, char c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void strbuf_reset(struct strbuf *sb);
void strbuf_truncate(struct strbuf *sb, size_t len);
/* Returns the buffer (caller frees) and resets sb. */
char *strbuf_detach(struct strbuf *sb, size_t *ret_len);
void strbuf_release(struct strbuf *sb);
/* A pointer valid until the next change ("" for an empty buffer). */
const char *strbuf_str(const struct strbuf *sb);

static inline void cleanup_strbufp(struct strbuf *sb)
{
    strbuf_release(sb);
}
#define _cleanup_strbuf_ __attribute__((cleanup(cleanup_strbufp)))

#endif
