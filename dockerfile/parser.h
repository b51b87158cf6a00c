/* Between the line reader (lexer.c) and the instruction parser (parser.c);
 * internal to dockerfile/. */
#ifndef KILN_DOCKERFILE_PARSER_H
#define KILN_DOCKERFILE_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "dockerfile/ast.h"
#include "lib/error.h"

struct parse_ctx {
    struct df_ast *ast;
    struct df_pool *pool;
    char escape;
    int depth; /* ONBUILD nesting */
};

/* Parses one logical line (BuildKit's newNodeFromLine) into *ins.  `line`
 * is at offset `base` of the top-level instruction's line; ins->seg_first
 * and ins->n_segs must already be set (for error locations). */
int parser_build_instr(struct parse_ctx *pc, struct df_instr *ins, const char *line, size_t len,
                       uint32_t base, struct kiln_error **err);

#endif
