/* Values and a Go text/template subset for --format.
 *
 * Values (`struct tval`) are what commands show: `kiln inspect` builds one
 * per image and prints it as JSON, `kiln images` one per row; --format
 * templates run over the same values.  Structs have a fixed set of fields
 * (an unknown field is an error that names it); maps have any keys (a
 * missing key gives ""), kept sorted as Go encodes them.
 *
 * Template syntax (a careful subset of Go's text/template):
 *   {{.Field.Sub}} {{.}} {{$}} {{$var.Field}}      fields, dot, variables
 *   {{"str"}} {{`raw`}} {{42}} {{true}} {{nil}}    literals
 *   {{func arg...}} {{arg | func arg}} {{(pipe).F}}  calls, pipes, groups
 *   {{if P}}..{{else if P}}..{{else}}..{{end}}      conditionals
 *   {{range P}}..{{else}}..{{end}}, {{range $i, $v := P}}, {{with P}}..{{end}}
 *   {{$x := P}} {{$x = P}}, comments (slash-star inside the braces), {{- trims -}}
 * Functions: json, join, split, lower, upper, title, pad, truncate, index,
 * len, printf (%s %v %d %q %x %%, flags - 0 and widths), print, println,
 * eq, ne, lt, le, gt, ge, and, or, not.
 * Not supported (errors): define, template, block, break, continue, floats. */
#ifndef KILN_TEMPLATE_H
#define KILN_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"
#include "lib/strbuf.h"

/* Largest template accepted, and deepest nesting of blocks and groups. */
#define TEMPLATE_MAX_LEN (64u * 1024)
#define TEMPLATE_MAX_DEPTH 64

enum tv_kind { TV_NULL = 0, TV_BOOL, TV_INT, TV_STR, TV_LIST, TV_MAP, TV_STRUCT };

struct tval {
    enum tv_kind kind;
    int refs;
    bool nil;       /* list/map: Go's nil slice or map (JSON null, printed [] / map[]) */
    bool omitempty; /* as a struct field: left out of JSON when empty (Go's omitempty) */
    bool b;
    int64_t i;
    char *s;
    const char *type_name; /* structs: named in error messages */
    size_t n, cap;
    char **keys;           /* map (sorted) and struct (in order) keys */
    struct tval **items;
};

struct tval *tv_null(void);
struct tval *tv_bool(bool b);
struct tval *tv_int(int64_t i);
struct tval *tv_str(const char *s); /* NULL gives "" */
struct tval *tv_str_take(char *s);
/* A list; nil lists print [] and encode as null. */
struct tval *tv_list(bool nil);
struct tval *tv_map(bool nil);
struct tval *tv_struct(const char *type_name);
struct tval *tv_strv(char *const *v); /* NULL gives a nil list */
/* Marks v omitempty and returns it. */
struct tval *tv_omitempty(struct tval *v);

/* Adds (takes v); returns the container for chaining. */
struct tval *tv_push(struct tval *list, struct tval *v);
/* Struct: appends the field (order kept); map: inserts or replaces. */
struct tval *tv_set(struct tval *obj, const char *key, struct tval *v);
/* Field or key; NULL when missing. */
struct tval *tv_get(const struct tval *obj, const char *key);

struct tval *tv_ref(struct tval *v);
void tv_unref(struct tval *v);

/* Go's %v: strings as they are, lists "[a b]", maps "map[k:v]", structs "{a b}",
 * null "<nil>". */
void tv_print(struct strbuf *sb, const struct tval *v);
/* JSON as Go's encoding/json writes it (<, >, & escaped); indent: 4 spaces,
 * like `docker inspect`. */
void tv_json(struct strbuf *sb, const struct tval *v, bool indent);
/* Go's truth: false, 0, "", nil, empty list/map are false. */
bool tv_truth(const struct tval *v);

struct template;

int template_parse(const char *text, size_t len, struct template **ret, struct kiln_error **err);
/* Appends the output for data to out. */
int template_exec(const struct template *t, struct tval *data, struct strbuf *out,
                  struct kiln_error **err);
void template_free(struct template *t);

#endif
