/* Messages located in a Dockerfile: "FILE:LINE:COL: message", then the
 * source line and a caret line under the offending text. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/internal.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* Lines longer than this are not quoted in messages. */
#define QUOTE_MAX_LINE 1024

void dockerfile_locate(const struct df_ast *ast, const struct df_instr *ins, uint32_t off,
                       int *ret_line, int *ret_col)
{
    *ret_line = ins ? ins->start_line : 1;
    *ret_col = 1;
    if (!ins || off == DF_NOPOS || ins->n_segs == 0 || ins->seg_first >= ast->n_segs)
        return;
    const struct df_seg *seg = &ast->segs[ins->seg_first];
    for (uint32_t k = 1; k < ins->n_segs && ins->seg_first + k < ast->n_segs; k++) {
        if (ast->segs[ins->seg_first + k].off > off)
            break;
        seg = &ast->segs[ins->seg_first + k];
    }
    *ret_line = (int)seg->line;
    *ret_col = (int)(seg->col + (off - seg->off)) + 1;
}

/* The text of physical line `line` (1-based) without its line end. */
static bool source_line(const struct df_ast *ast, int line, const char **ret, size_t *ret_len)
{
    if (!ast || line < 1 || (size_t)line > ast->n_lines)
        return false;
    const char *s = ast->source + ast->line_off[line];
    size_t avail = ast->source_len - ast->line_off[line];
    const char *nl = memchr(s, '\n', avail);
    size_t n = nl ? (size_t)(nl - s) : avail;
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    *ret = s;
    *ret_len = n;
    return true;
}

static void append_caret(struct strbuf *msg, const struct df_ast *ast, int line, int col, int len)
{
    const char *s;
    size_t n;
    if (col < 1 || !source_line(ast, line, &s, &n) || n > QUOTE_MAX_LINE)
        return;
    size_t c = (size_t)col - 1;
    if (line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
        c = c >= 3 ? c - 3 : 0;
    }
    if (c > n)
        c = n;
    strbuf_addc(msg, '\n');
    strbuf_add(msg, s, n);
    strbuf_addc(msg, '\n');
    for (size_t i = 0; i < c; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '\t')
            strbuf_addc(msg, '\t');
        else if ((b & 0xC0) != 0x80)
            strbuf_addc(msg, ' ');
    }
    strbuf_addc(msg, '^');
    size_t end = c + (len > 0 ? (size_t)len : 1);
    if (end > n)
        end = n;
    for (size_t i = c + 1; i < end; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            strbuf_addc(msg, '~');
}

static int error_v(const struct df_ast *ast, int line, int col, int len, struct kiln_error **err,
                   const char *fmt, va_list ap)
{
    struct strbuf msg = STRBUF_INIT;
    strbuf_addf(&msg, "%s:%d:%d: ", ast && ast->name ? ast->name : "Dockerfile", line,
                col > 0 ? col : 1);
    strbuf_vaddf(&msg, fmt, ap);
    append_caret(&msg, ast, line, col, len);
    kiln_error_set(err, 0, "%s", msg.buf);
    strbuf_release(&msg);
    return -1;
}

int dockerfile_error_line(const struct df_ast *ast, int line, int col, int len,
                          struct kiln_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_v(ast, line, col, len, err, fmt, ap);
    va_end(ap);
    return -1;
}

int dockerfile_error_at(const struct df_ast *ast, const struct df_instr *ins, uint32_t off,
                        uint32_t len, struct kiln_error **err, const char *fmt, ...)
{
    int line, col;
    dockerfile_locate(ast, ins, off, &line, &col);
    if (off == DF_NOPOS && ins) {
        /* Point at the keyword. */
        dockerfile_locate(ast, ins, ins->keyword_off, &line, &col);
        len = (uint32_t)strlen(ins->keyword);
    }
    va_list ap;
    va_start(ap, fmt);
    error_v(ast, line, col, (int)len, err, fmt, ap);
    va_end(ap);
    return -1;
}
