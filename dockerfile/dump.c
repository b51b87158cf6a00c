/* The parse tree in the text form of BuildKit's parser tests ("result"
 * files): "(keyword [\"--flag\"] \"arg\" (nested ...))", Go-quoted. */
#include <string.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/internal.h"
#include "lib/strbuf.h"

static const char lowerhex[] = "0123456789abcdef";

void dockerfile_go_quote(struct strbuf *out, const char *s, size_t len)
{
    strbuf_addc(out, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t r = c;
        size_t w = 1;
        if (c >= 0x80)
            r = utf8_decode(s + i, len - i, &w);
        if (w == 1 && r == RUNE_ERROR) {
            strbuf_adds(out, "\\x");
            strbuf_addc(out, lowerhex[c >> 4]);
            strbuf_addc(out, lowerhex[c & 0xF]);
            i++;
            continue;
        }
        i += w;
        if (r == '"' || r == '\\') {
            strbuf_addc(out, '\\');
            strbuf_addc(out, (char)r);
            continue;
        }
        if (rune_is_print(r)) {
            utf8_encode(out, r);
            continue;
        }
        switch (r) {
        case '\a': strbuf_adds(out, "\\a"); continue;
        case '\b': strbuf_adds(out, "\\b"); continue;
        case '\f': strbuf_adds(out, "\\f"); continue;
        case '\n': strbuf_adds(out, "\\n"); continue;
        case '\r': strbuf_adds(out, "\\r"); continue;
        case '\t': strbuf_adds(out, "\\t"); continue;
        case '\v': strbuf_adds(out, "\\v"); continue;
        }
        if (r < ' ' || r == 0x7F) {
            strbuf_adds(out, "\\x");
            strbuf_addc(out, lowerhex[r >> 4]);
            strbuf_addc(out, lowerhex[r & 0xF]);
        } else if (r < 0x10000) {
            strbuf_adds(out, "\\u");
            for (int sh = 12; sh >= 0; sh -= 4)
                strbuf_addc(out, lowerhex[(r >> sh) & 0xF]);
        } else {
            strbuf_adds(out, "\\U");
            for (int sh = 28; sh >= 0; sh -= 4)
                strbuf_addc(out, lowerhex[(r >> sh) & 0xF]);
        }
    }
    strbuf_addc(out, '"');
}

static void dump_node(const struct df_instr *ins, struct strbuf *out)
{
    struct strbuf tmp = STRBUF_INIT;
    go_to_lower(&tmp, ins->keyword, strlen(ins->keyword));
    if (ins->n_flags > 0) {
        strbuf_adds(&tmp, " [");
        for (size_t i = 0; i < ins->n_flags; i++) {
            if (i)
                strbuf_addc(&tmp, ' ');
            dockerfile_go_quote(&tmp, ins->flags[i].text, strlen(ins->flags[i].text));
        }
        strbuf_addc(&tmp, ']');
    }
    for (size_t i = 0; i < ins->n_args; i++) {
        strbuf_addc(&tmp, ' ');
        if (ins->args[i].sub) {
            strbuf_addc(&tmp, '(');
            dump_node(ins->args[i].sub, &tmp);
            strbuf_addc(&tmp, ')');
        } else {
            dockerfile_go_quote(&tmp, ins->args[i].value, ins->args[i].value_len);
        }
    }
    size_t lead = utf8_space_prefix(tmp.buf ? tmp.buf : "", tmp.len);
    size_t n = utf8_trim_right_len(tmp.buf ? tmp.buf + lead : "", tmp.len - lead);
    if (n)
        strbuf_add(out, tmp.buf + lead, n);
    strbuf_release(&tmp);
}

void dockerfile_dump_instr(const struct df_instr *ins, struct strbuf *out)
{
    strbuf_addc(out, '(');
    dump_node(ins, out);
    strbuf_adds(out, ")\n");
}

void dockerfile_dump(const struct df_ast *ast, struct strbuf *out)
{
    for (size_t i = 0; i < ast->n_instrs; i++)
        dockerfile_dump_instr(&ast->instrs[i], out);
}
