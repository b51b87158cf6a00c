/* Reading Dockerfiles the way Docker with BuildKit reads them.
 *
 *   dockerfile_parse()        bytes -> parse tree (dockerfile/ast.h)
 *   df_file_from_ast()        parse tree -> typed instructions (instructions.h)
 *   plan_create()             stages, ARG scoping, --target pruning (plan.h)
 *   lint_run()                BuildKit's build checks (lint.h)
 *
 * No file-system access: callers pass the bytes.  Errors are struct
 * kiln_error whose message is "FILE:LINE:COL: message", followed, where
 * there is something to point at, by the source line and a caret line. */
#ifndef KILN_DOCKERFILE_H
#define KILN_DOCKERFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dockerfile/ast.h"
#include "lib/error.h"
#include "lib/strbuf.h"

/* Limits on what users control. */
#define DOCKERFILE_MAX_SIZE (16u << 20)      /* bytes in a Dockerfile */
#define DOCKERFILE_MAX_LINE 65535            /* bytes in one physical line (BuildKit's) */
#define DOCKERFILE_MAX_INSTRUCTIONS 100000
#define DOCKERFILE_MAX_JSON_DEPTH 10000      /* nesting in an exec-form array (Go's) */

/* Parses a Dockerfile.  `name` is used in messages ("Dockerfile",
 * "ctx/Dockerfile", "-").  Parser warnings are in (*ret)->warnings. */
int dockerfile_parse(const char *name, const char *buf, size_t len, struct df_ast **ret,
                     struct kiln_error **err);
void dockerfile_free(struct df_ast *ast);

/* The parse tree in the format of BuildKit's testfiles "result" files:
 * one "(instruction ...)\n" line per instruction. */
void dockerfile_dump(const struct df_ast *ast, struct strbuf *out);
void dockerfile_dump_instr(const struct df_instr *ins, struct strbuf *out);
/* Go's strconv.Quote of (s, len), appended to out. */
void dockerfile_go_quote(struct strbuf *out, const char *s, size_t len);

/* ---- locations and errors ---------------------------------------------- */

/* The physical line and 1-based byte column of offset `off` of the
 * instruction line of `ins` (an instruction of `ast`). */
void dockerfile_locate(const struct df_ast *ast, const struct df_instr *ins, uint32_t off,
                       int *ret_line, int *ret_col);

/* Sets *err to "NAME:LINE:COL: message", the source line and a caret line
 * under `len` bytes at `off` of the instruction's line (off DF_NOPOS: the
 * instruction's first line, column 1).  Returns -1. */
int dockerfile_error_at(const struct df_ast *ast, const struct df_instr *ins, uint32_t off,
                        uint32_t len, struct kiln_error **err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The same for a physical line and 1-based column (col 0: no caret). */
int dockerfile_error_line(const struct df_ast *ast, int line, int col, int len,
                          struct kiln_error **err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* ---- helpers with BuildKit's names and semantics --------------------- */

/* A heredoc word (`<<EOF`, `3<<-'EOF'`, `<< EOF`): BuildKit's ParseHeredoc.
 * Returns 1 and fills ret_name/ret_fd/ret_expand/ret_chomp for a heredoc,
 * 0 when the word is not one, -1 with *err when it is malformed. */
int dockerfile_parse_heredoc(const char *word, char **ret_name, uint32_t *ret_fd,
                             bool *ret_expand, bool *ret_chomp, struct kiln_error **err);

/* The heredoc delimiters of an instruction line, in order (BuildKit's
 * heredocsFromLine).  NULL-terminated; an empty vector when none. */
int dockerfile_heredocs_from_line(const char *line, char ***ret_names, struct kiln_error **err);

/* Strips the leading tabs of every line (for `<<-`).  Caller frees. */
char *dockerfile_chomp_heredoc(const char *content, size_t len, size_t *ret_len);

/* Splits on whitespace, keeping quotes and escapes (BuildKit's parseWords,
 * used for ENV/LABEL/ARG).  NULL-terminated. */
char **dockerfile_parse_words(const char *s, size_t len, char escape);

/* Parses `s` as a JSON array of strings the way BuildKit does (the text may
 * continue after the array).  Returns 0 with the strings (NULL-terminated;
 * lengths in *ret_lens, which may be NULL), 1 when `s` is not a JSON array
 * (shell form applies), 2 when it is a JSON array holding something other
 * than strings. */
int dockerfile_parse_json_array(const char *s, size_t len, char ***ret, size_t **ret_lens);

/* A parser directive in the header of a Dockerfile, the way BuildKit's
 * ParseDirective/DetectSyntax find it: a UTF-8 BOM and a "#!" line are
 * skipped; with any_format, "//key=value" lines and a JSON object are
 * accepted too.  Returns true when found; ret_ref is the value without a
 * trailing "// comment", ret_cmdline the whole value, ret_line its line. */
bool dockerfile_find_directive(const char *key, const char *buf, size_t len, bool any_format,
                               char **ret_ref, char **ret_cmdline, int *ret_line);

/* The directives BuildKit's ParseAll returns for `buf` ("escape", "syntax",
 * "check" at the top, before anything else): NULL-terminated pairs
 * name, value, name, value ...; -1 with *err on a repeated directive. */
int dockerfile_parse_directives(const char *buf, size_t len, char ***ret_pairs,
                                struct kiln_error **err);

#endif
