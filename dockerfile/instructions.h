/* Typed instructions, converted from the parse tree with BuildKit's rules
 * (frontend/dockerfile/instructions): flags checked and typed, argument
 * counts checked, stages formed.
 *
 * Words stay RAW (unexpanded): the engine expands them at build time with
 * the stage's environment.  What BuildKit expands, and how:
 *
 *   FROM        image, --platform: global ARGs only (plan.h does it)
 *   ARG         each default, one after the other (plan_arg_value())
 *   ENV, LABEL  keys and values (one word each, all with the environment
 *               as it was before the instruction)
 *   COPY, ADD   sources, destination, --chown, --chmod, --checksum,
 *               --exclude (one word each); heredoc sources whose delimiter
 *               was not quoted: the content, keeping quotes (RAW)
 *   RUN         every --mount field value except from= (never expanded);
 *               not the command (the shell does that)
 *   EXPOSE      each port, split into words (WORDS)
 *   USER, WORKDIR, STOPSIGNAL, VOLUME   one word each
 *   CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER, ONBUILD   nothing
 *
 * df_instruction_expand() applies exactly this with a caller's expander.
 * COPY --from and RUN --mount=from= are never expanded (BuildKit refuses a
 * variable there: a stage's dependencies must be known before the build). */
#ifndef KILN_DOCKERFILE_INSTRUCTIONS_H
#define KILN_DOCKERFILE_INSTRUCTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dockerfile/ast.h"
#include "lib/error.h"

/* A word of the Dockerfile and where it is (for messages). */
struct df_word {
    char *text;   /* NULL when absent (a flag not given) */
    uint32_t off; /* in the instruction line; DF_NOPOS when not from there */
    uint32_t len;
};

enum df_expand_how {
    DF_EXPAND_WORD,  /* one word: quotes removed, escapes processed */
    DF_EXPAND_WORDS, /* like WORD, then split on unquoted white space */
    DF_EXPAND_RAW,   /* heredoc content: variables only, quotes kept */
};

/* Expands `word`; *ret is a NULL-terminated vector: one element for WORD
 * and RAW, any number for WORDS.  Returns 0 or -1 with *err. */
typedef int (*df_expand_fn)(void *ctx, const char *word, enum df_expand_how how, char ***ret,
                            struct kiln_error **err);

/* A command line: exec form (JSON) or shell form (one element that the
 * SHELL runs, BuildKit's PrependShell). */
struct df_cmdline {
    char **argv;       /* NULL-terminated */
    size_t argc;
    bool shell_form;
};

/* A heredoc body used by the instruction. */
struct df_inline_file {
    char *name;        /* the delimiter; for COPY/ADD the file name */
    char *data;        /* RUN: raw; COPY/ADD: already chomped for `<<-` */
    size_t len;
    bool expand;       /* delimiter not quoted */
    bool chomp;        /* `<<-` */
    uint32_t fd;
};

struct df_kv {
    struct df_word key;
    struct df_word value;
    bool legacy;       /* `ENV KEY value` (no '='): BuildKit's NoDelim */
};

struct df_argdef {
    struct df_word name;
    struct df_word value; /* value.text NULL: no default */
};

enum df_mount_type { DF_MOUNT_BIND, DF_MOUNT_CACHE, DF_MOUNT_TMPFS, DF_MOUNT_SECRET, DF_MOUNT_SSH };
enum df_sharing { DF_SHARING_UNSET, DF_SHARING_SHARED, DF_SHARING_PRIVATE, DF_SHARING_LOCKED };

/* RUN --mount=... (BuildKit's instructions.Mount). */
struct df_mount {
    enum df_mount_type type;
    char *from;        /* stage or image; NULL: the build context */
    char *source;      /* source=, src= */
    char *target;      /* target=, dst=, destination= */
    char *id;          /* cache id / secret id / ssh id */
    char *env;         /* secret: env=NAME */
    enum df_sharing sharing;
    bool readonly;     /* explicit, or by type: bind/secret/ssh true, cache/tmpfs false */
    bool required;     /* secret, ssh */
    bool has_mode, has_uid, has_gid;
    uint32_t mode, uid, gid;
    int64_t size;      /* tmpfs size= in bytes; 0 when not given */
    bool expanded;     /* parsed with an expander: every field is final */
    char *spec;        /* the flag value as written */
};

/* Parses a --mount value (CSV of key=value).  With fn NULL (the parse-time
 * check) values containing '$' are left for later and from= may not hold
 * a variable; with fn, every value but from= goes through it first.
 * Caller clears *ret with df_mount_clear(). */
int df_mount_parse(const char *spec, df_expand_fn fn, void *ctx, struct df_mount *ret,
                   struct kiln_error **err);
void df_mount_clear(struct df_mount *m);
const char *df_mount_type_name(enum df_mount_type t);

enum df_network { DF_NETWORK_DEFAULT, DF_NETWORK_NONE, DF_NETWORK_HOST };
enum df_security { DF_SECURITY_SANDBOX, DF_SECURITY_INSECURE };

struct df_from {
    struct df_word image;      /* raw; plan.h expands it with the global ARGs */
    struct df_word platform;   /* --platform, raw */
    char *stage_name;          /* lower-cased AS name, or NULL */
    struct df_word as_keyword; /* the "AS" word as written (lint) */
    struct df_word name;       /* the name as written (lint) */
};

struct df_run {
    struct df_cmdline cmd;
    struct df_mount *mounts;
    size_t n_mounts;
    struct df_word *mount_words; /* the --mount flags, for messages */
    enum df_network network;
    bool network_set;
    enum df_security security;
    struct df_inline_file *files; /* heredocs */
    size_t n_files;
};

struct df_copy {                /* COPY and ADD */
    struct df_word *srcs;       /* file and URL sources (not heredocs) */
    size_t n_srcs;
    struct df_word dest;
    struct df_inline_file *contents; /* heredoc sources, in order */
    size_t n_contents;
    struct df_word from;        /* COPY --from (never expanded) */
    struct df_word chown;
    struct df_word chmod;
    struct df_word checksum;    /* ADD */
    struct df_word *excludes;
    size_t n_excludes;
    bool link;
    bool parents;               /* COPY */
    bool keep_git_dir;          /* ADD */
    int unpack;                 /* ADD --unpack: -1 not given, 0, 1 */
};

struct df_healthcheck {
    bool none;                  /* HEALTHCHECK NONE */
    struct df_cmdline cmd;      /* shell_form: CMD-SHELL */
    int64_t interval_ns;        /* 0: not given */
    int64_t timeout_ns;
    int64_t start_period_ns;
    int64_t start_interval_ns;
    int retries;                /* 0: not given */
};

struct df_instruction {
    enum df_kind kind;
    const struct df_instr *node; /* keyword, original text, lines, positions */
    union {
        struct df_from from;
        struct df_run run;
        struct df_cmdline cmd;     /* CMD, ENTRYPOINT (ENTRYPOINT []: argc 0) */
        struct df_copy copy;       /* COPY, ADD */
        struct {
            struct df_kv *v;
            size_t n;
        } kvs;                     /* ENV, LABEL */
        struct {
            struct df_argdef *v;
            size_t n;
        } args;                    /* ARG */
        struct {
            struct df_word *v;
            size_t n;
        } words;                   /* EXPOSE ports, VOLUME paths */
        struct df_word word;       /* USER, WORKDIR, STOPSIGNAL, MAINTAINER */
        struct df_cmdline shell;   /* SHELL (always exec form) */
        struct df_healthcheck healthcheck;
        struct {
            char *expression;      /* the trigger text, heredocs appended */
        } onbuild;
    } u;
    struct df_pool *own_pool;      /* set for copies from df_instruction_expand() */
};

struct df_stage {
    size_t index;
    struct df_instruction *from;
    struct df_instruction **cmds; /* the instructions after FROM */
    size_t n_cmds;
};

struct df_file {
    const struct df_ast *ast;
    struct df_instruction **meta_args; /* ARGs before the first FROM */
    size_t n_meta_args;
    struct df_stage *stages;
    size_t n_stages;
    struct df_instruction *all;        /* every instruction, in file order */
    size_t n_all;
    struct df_pool *pool;
};

/* Converts the parse tree; errors point at the offending text.  The file
 * refers to `ast`, which must outlive it. */
int df_file_from_ast(const struct df_ast *ast, struct df_file **ret, struct kiln_error **err);
void df_file_free(struct df_file *f);

/* A copy of `in` with the words BuildKit expands passed through fn (see
 * the top of this file; ARG defaults are left as they are).  Errors point
 * at the word.  Free with df_instruction_free(). */
int df_instruction_expand(const struct df_ast *ast, const struct df_instruction *in,
                          df_expand_fn fn, void *ctx, struct df_instruction **ret,
                          struct kiln_error **err);
void df_instruction_free(struct df_instruction *in);

/* How BuildKit runs a RUN with heredocs (dispatchRun):
 *  DF_RUN_SCRIPT_NONE    no heredoc: run cmd as usual;
 *  DF_RUN_SCRIPT_FILE    the command is a single heredoc whose body starts
 *                        with "#!": write it (chomped for <<-) to
 *                        /dev/pipes/NAME, mode 0755, run that path;
 *  DF_RUN_SCRIPT_SHELL   the command is a single heredoc: run its body
 *                        (chomped for <<-) as the shell's command string;
 *  DF_RUN_SCRIPT_FULL    otherwise: run "<command>\n<body>NAME..." (each
 *                        heredoc appended) as the shell's command string. */
enum df_run_script { DF_RUN_SCRIPT_NONE, DF_RUN_SCRIPT_FILE, DF_RUN_SCRIPT_SHELL, DF_RUN_SCRIPT_FULL };
/* *ret_text: the file body or the command string (caller frees); NULL for
 * NONE.  *ret_name: FILE's name (points into run). */
enum df_run_script df_run_script(const struct df_run *run, char **ret_text, const char **ret_name);

/* Go's time.ParseDuration (nanoseconds); -1 on error. */
int go_parse_duration(const char *s, int64_t *ret);

#endif
