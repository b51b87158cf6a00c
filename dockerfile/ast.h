/* The Dockerfile parse tree: one node per instruction, in the shape of
 * BuildKit's parser.Node (keyword, flags, arguments, JSON marker, heredocs,
 * original text, start and end line), flattened into arrays.
 *
 * Nothing here is expanded: arguments keep their quotes and escapes, except
 * the elements of a JSON (exec form) array, which are decoded JSON strings.
 * Everything is owned by the struct df_ast and freed by dockerfile_free(). */
#ifndef KILN_DOCKERFILE_AST_H
#define KILN_DOCKERFILE_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Instruction kinds; DF_UNKNOWN for a keyword the parser does not know
 * (the parse tree keeps it, the typed conversion refuses it). */
enum df_kind {
    DF_UNKNOWN = 0,
    DF_ADD,
    DF_ARG,
    DF_CMD,
    DF_COPY,
    DF_ENTRYPOINT,
    DF_ENV,
    DF_EXPOSE,
    DF_FROM,
    DF_HEALTHCHECK,
    DF_LABEL,
    DF_MAINTAINER,
    DF_ONBUILD,
    DF_RUN,
    DF_SHELL,
    DF_STOPSIGNAL,
    DF_USER,
    DF_VOLUME,
    DF_WORKDIR,
    DF_KIND_COUNT,
};

/* "RUN", "COPY", ... (upper case); "" for DF_UNKNOWN. */
const char *df_kind_name(enum df_kind kind);

/* Offsets below are byte offsets into the instruction's logical line (the
 * physical lines joined, struct df_instr.original of the top-level
 * instruction); DF_NOPOS when the text does not come from there. */
#define DF_NOPOS UINT32_MAX

/* A heredoc attached to RUN/COPY/ADD (or to the instruction of an ONBUILD). */
struct df_heredoc {
    char *name;         /* the delimiter word, quotes removed */
    char *content;      /* the raw body, every line with its '\n', before chomping */
    size_t content_len;
    uint32_t fd;        /* 3 in `3<<EOF`; 0 when not given */
    bool expand;        /* false when any part of the delimiter was quoted */
    bool chomp;         /* `<<-`: leading tabs are stripped when used */
    int start_line;     /* first and last line of the body (the terminator line) */
    int end_line;
    uint32_t off;       /* where the `<<WORD` is in the instruction line */
    uint32_t len;
};

struct df_instr;

/* One argument of an instruction. */
struct df_node {
    char *value;        /* may contain NUL bytes when decoded from JSON */
    size_t value_len;
    uint32_t off;       /* where it is in the instruction line (DF_NOPOS: unknown) */
    uint32_t len;
    struct df_instr *sub; /* ONBUILD: the trigger instruction (value is "") */
};

/* A leading `--name[=value]` word: quotes and escapes already processed,
 * exactly as BuildKit stores them in Node.Flags. */
struct df_flag {
    char *text;         /* "--mount=type=cache,target=/x" */
    uint32_t off;       /* the raw word in the instruction line */
    uint32_t len;
};

/* Where a piece of the logical line came from. */
struct df_seg {
    uint32_t off;  /* offset in the logical line */
    uint32_t line; /* 1-based physical line */
    uint32_t col;  /* 0-based byte column of that piece in the physical line */
};

struct df_instr {
    char *keyword;             /* as written: "RUN", "run", "Run" ... */
    enum df_kind kind;
    struct df_flag *flags;
    size_t n_flags;
    struct df_node *args;
    size_t n_args;
    bool json;                 /* arguments were a JSON array (exec form) */
    struct df_heredoc *heredocs;
    size_t n_heredocs;
    char *original;            /* the logical line (BuildKit's Node.Original) */
    size_t original_len;
    char **comments;           /* comment lines right before it, '#' removed, NULL-terminated */
    int start_line;            /* 1-based, inclusive, counting continuation, comment */
    int end_line;              /*   and heredoc lines */
    uint32_t seg_first;        /* its pieces in struct df_ast.segs */
    uint32_t n_segs;
    uint32_t keyword_off;      /* always 0 for a top-level instruction */
};

/* A parser directive at the top of the file. */
struct df_directive {
    char *value;   /* NULL when absent */
    int line;      /* 1-based; 0 when absent */
};

/* A parser warning (BuildKit: empty continuation lines). */
struct df_warning {
    char *rule;    /* "NoEmptyContinuation" */
    char *msg;     /* "Empty continuation line found in: RUN ..." */
    int line;
};

struct df_pool;

struct df_ast {
    char *name;                /* file name used in messages */
    char *source;              /* a copy of the input */
    size_t source_len;
    uint32_t *line_off;        /* offset of each physical line (1-based index) */
    size_t n_lines;
    struct df_instr *instrs;
    size_t n_instrs;
    struct df_seg *segs;
    size_t n_segs;
    char escape;               /* '\\' or '`' */
    struct df_directive syntax;
    struct df_directive escape_directive;
    struct df_directive check;
    struct df_warning *warnings;
    size_t n_warnings;
    int start_line;            /* of the first and last instruction */
    int end_line;
    struct df_pool *pool;
};

#endif
