/* The --format template subset and the value model (cmd/template.h). */
#include <stdlib.h>
#include <string.h>

#include "cmd/template.h"
#include "harness.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static struct tval *sample(void)
{
    struct tval *cfg = tv_struct("Config");
    char *env[] = {"PATH=/usr/bin", "A=<b&c>", NULL};
    tv_set(cfg, "Env", tv_strv(env));
    tv_set(cfg, "Cmd", tv_strv(NULL));
    struct tval *labels = tv_map(false);
    tv_set(labels, "version", tv_str("1.0"));
    tv_set(labels, "maintainer", tv_str("me"));
    tv_set(cfg, "Labels", labels);
    tv_set(cfg, "Volumes", tv_map(true));
    struct tval *img = tv_struct("image");
    tv_set(img, "Id", tv_str("sha256:abc"));
    struct tval *tags = tv_list(false);
    tv_push(tags, tv_str("app:1"));
    tv_push(tags, tv_str("app:latest"));
    tv_set(img, "RepoTags", tags);
    tv_set(img, "Size", tv_int(1234));
    tv_set(img, "Empty", tv_str(""));
    tv_set(img, "Flag", tv_bool(true));
    tv_set(img, "Nothing", tv_null());
    tv_set(img, "Config", cfg);
    return img;
}

/* template, expected output (NULL: must fail), a fragment of the error */
static const struct {
    const char *tmpl;
    const char *want;
    const char *err;
} cases[] = {
    {"{{.Id}}", "sha256:abc", NULL},
    {"id={{ .Id }}!", "id=sha256:abc!", NULL},
    {"{{.Config.Env}}", "[PATH=/usr/bin A=<b&c>]", NULL},
    {"{{.Config.Cmd}}", "[]", NULL},
    {"{{json .Config.Cmd}}", "null", NULL},
    {"{{json .Config.Env}}", "[\"PATH=/usr/bin\",\"A=\\u003cb\\u0026c\\u003e\"]", NULL},
    {"{{json .Config.Labels}}", "{\"maintainer\":\"me\",\"version\":\"1.0\"}", NULL},
    {"{{.Config.Labels}}", "map[maintainer:me version:1.0]", NULL},
    {"{{.Config.Labels.version}}", "1.0", NULL},
    {"[{{.Config.Labels.missing}}]", "[]", NULL},
    {"{{index .Config.Labels \"maintainer\"}}", "me", NULL},
    {"{{index .RepoTags 0}}", "app:1", NULL},
    {"{{index .RepoTags 1}}", "app:latest", NULL},
    {"{{index .RepoTags 2}}", NULL, "out of range"},
    {"{{.Size}}", "1234", NULL},
    {"{{.Flag}} {{.Nothing}}", "true <nil>", NULL},
    {"{{.Nope}}", NULL, "field Nope"},
    {"{{.Config.Nope}}", NULL, "field Nope in type Config"},
    {"{{.Id.Sub}}", NULL, "field Sub"},
    {"{{.Nothing.X}}", NULL, "nil pointer"},
    {"{{range .RepoTags}}<{{.}}>{{end}}", "<app:1><app:latest>", NULL},
    {"{{range $i, $t := .RepoTags}}{{$i}}={{$t}};{{end}}", "0=app:1;1=app:latest;", NULL},
    {"{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}} {{end}}", "maintainer:me version:1.0 ",
     NULL},
    {"{{range .Config.Cmd}}x{{else}}none{{end}}", "none", NULL},
    {"{{range .Id}}{{end}}", NULL, "range can't iterate"},
    {"{{if .Empty}}a{{else if .Flag}}b{{else}}c{{end}}", "b", NULL},
    {"{{if .Empty}}a{{else}}c{{end}}", "c", NULL},
    {"{{if not .Empty}}yes{{end}}", "yes", NULL},
    {"{{with .Config}}{{len .Env}}{{end}}", "2", NULL},
    {"{{with .Empty}}x{{else}}y{{end}}", "y", NULL},
    {"{{join .RepoTags \", \"}}", "app:1, app:latest", NULL},
    {"{{join (split \"a:b:c\" \":\") \"-\"}}", "a-b-c", NULL},
    {"{{upper .Id}} {{lower \"ABC\"}} {{title \"hello world\"}}", "SHA256:ABC abc Hello World",
     NULL},
    {"{{.Id | upper}}", "SHA256:ABC", NULL},
    {"{{.Id | printf \"%s!\"}}", "sha256:abc!", NULL},
    {"{{printf \"%-6s|%5d|%q|%v|%%\" \"ab\" 42 \"q\\\"\" .Flag}}", "ab    |   42|\"q\\\"\"|true|%",
     NULL},
    {"{{printf \"%.3s\" \"abcdef\"}}", "abc", NULL},
    {"{{printf \"%s\"}}", "%!s(MISSING)", NULL},
    {"{{pad .Empty 2 1}}|", "   |", NULL},
    {"{{truncate .Id 6}}", "sha256", NULL},
    {"{{len .RepoTags}} {{len .Id}} {{len .Config.Labels}}", "2 10 2", NULL},
    {"{{eq .Size 1234}} {{eq .Id \"x\" \"sha256:abc\"}} {{ne .Size 1}}", "true true true", NULL},
    {"{{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1 2}}", "true true true false", NULL},
    {"{{eq .Size \"x\"}}", NULL, "incompatible types"},
    {"{{and .Flag .Id}} {{or .Empty \"dflt\"}}", "sha256:abc dflt", NULL},
    {"{{$x := .Id}}{{$x}}", "sha256:abc", NULL},
    {"{{$x := 1}}{{$x = 2}}{{$x}}", "2", NULL},
    {"{{$.Id}}{{with .Config}}{{$.Size}}{{end}}", "sha256:abc1234", NULL},
    {"{{$nope}}", NULL, "undefined variable"},
    {"a {{- /* comment */ -}} b", "ab", NULL},
    {"a  {{- .Size}}", "a1234", NULL},
    {"{{.Size -}}  \n b", "1234b", NULL},
    {"{{-3}}", "-3", NULL},
    {"{{print 1 2 \"a\" \"b\" 3}}", "1 2ab3", NULL},
    {"{{println \"a\" 1}}", "a 1\n", NULL},
    {"{{`raw \\n`}}", "raw \\n", NULL},
    {"{{json .}}", NULL, NULL}, /* checked separately */
    {"{{.Id", NULL, "unclosed action"},
    {"{{if .Flag}}x", NULL, "missing {{end}}"},
    {"{{end}}", NULL, "unexpected {{end}}"},
    {"{{else}}", NULL, "unexpected {{else}}"},
    {"{{}}", NULL, "missing value"},
    {"{{nosuch .Id}}", NULL, "not defined"},
    {"{{.Id 1}}", NULL, "non-function"},
    {"{{template \"x\"}}", NULL, "not supported"},
    {"{{1.5}}", NULL, "integers"},
    {"{{\"abc}}", NULL, "unterminated"},
    {"{{(.Id}}", NULL, "unclosed"},
    {"{{index .Id \"k\"}}", NULL, "can't index"},
    {"{{json}}", NULL, "wrong number of args"},
    {"{{range $a, $b := .RepoTags}}{{$b}}{{end}}{{$b}}", NULL, "undefined variable"},
};

static void run_case(size_t i)
{
    char name[64];
    snprintf(name, sizeof(name), "template case %zu", i);
    struct tval *data = sample();
    struct template *t = NULL;
    struct kiln_error *err = NULL;
    struct strbuf out = STRBUF_INIT;
    int r = template_parse(cases[i].tmpl, strlen(cases[i].tmpl), &t, &err);
    if (r == 0)
        r = template_exec(t, data, &out, &err);
    if (cases[i].want) {
        bool ok = r == 0 && strcmp(strbuf_str(&out), cases[i].want) == 0;
        if (!ok)
            fprintf(stderr, "  %s: got '%s' (%s)\n", cases[i].tmpl, strbuf_str(&out),
                    err ? err->msg : "no error");
        harness_case(name, ok, ok ? NULL : "output differs");
    } else if (cases[i].err) {
        bool ok = r < 0 && err && strstr(err->msg, cases[i].err);
        if (!ok)
            fprintf(stderr, "  %s: %s (wanted an error with '%s')\n", cases[i].tmpl,
                    err ? err->msg : "no error", cases[i].err);
        harness_case(name, ok, ok ? NULL : "wrong error");
    }
    kiln_error_free(&err);
    strbuf_release(&out);
    template_free(t);
    tv_unref(data);
}

TEST(json_whole)
{
    struct tval *data = sample();
    struct strbuf sb = STRBUF_INIT;
    tv_json(&sb, data, false);
    CHECK_STR_EQ(strbuf_str(&sb),
                 "{\"Id\":\"sha256:abc\",\"RepoTags\":[\"app:1\",\"app:latest\"],\"Size\":1234,"
                 "\"Empty\":\"\",\"Flag\":true,\"Nothing\":null,\"Config\":{\"Env\":[\"PATH=/usr/"
                 "bin\",\"A=\\u003cb\\u0026c\\u003e\"],\"Cmd\":null,\"Labels\":{\"maintainer\":"
                 "\"me\",\"version\":\"1.0\"},\"Volumes\":null}}");
    strbuf_reset(&sb);
    struct tval *small = tv_struct("x");
    tv_set(small, "A", tv_list(false));
    struct tval *inner = tv_struct("y");
    tv_set(inner, "B", tv_int(-1));
    tv_set(small, "C", inner);
    tv_set(small, "D", tv_map(false));
    tv_json(&sb, small, true);
    CHECK_STR_EQ(strbuf_str(&sb), "{\n    \"A\": [],\n    \"C\": {\n        \"B\": -1\n    },\n"
                                  "    \"D\": {}\n}");
    tv_unref(small);
    strbuf_release(&sb);
    tv_unref(data);
}

TEST(json_escapes)
{
    struct strbuf sb = STRBUF_INIT;
    struct tval *v = tv_str("q\"\\\n\t\x01 \xe2\x80\xa8 \xff é");
    tv_json(&sb, v, false);
    CHECK_STR_EQ(strbuf_str(&sb), "\"q\\\"\\\\\\n\\t\\u0001 \\u2028 \\ufffd é\"");
    tv_unref(v);
    strbuf_release(&sb);
}

TEST(map_sorted_replace)
{
    struct tval *m = tv_map(false);
    tv_set(m, "b", tv_int(2));
    tv_set(m, "a", tv_int(1));
    tv_set(m, "c", tv_int(3));
    tv_set(m, "b", tv_int(20));
    struct strbuf sb = STRBUF_INIT;
    tv_print(&sb, m);
    CHECK_STR_EQ(strbuf_str(&sb), "map[a:1 b:20 c:3]");
    strbuf_release(&sb);
    tv_unref(m);
}

TEST(limits)
{
    struct kiln_error *err = NULL;
    struct template *t = NULL;
    /* nesting beyond the cap is refused, not a stack overflow */
    struct strbuf sb = STRBUF_INIT;
    for (int i = 0; i < 200; i++)
        strbuf_adds(&sb, "{{if 1}}");
    CHECK(template_parse(sb.buf, sb.len, &t, &err) < 0);
    CHECK(err && strstr(err->msg, "nested too deeply"));
    kiln_error_free(&err);
    strbuf_reset(&sb);
    for (int i = 0; i < 200; i++)
        strbuf_adds(&sb, "(");
    char *s = xasprintf("{{%s}}", sb.buf);
    CHECK(template_parse(s, strlen(s), &t, &err) < 0);
    kiln_error_free(&err);
    free(s);
    char *big = xcalloc(TEMPLATE_MAX_LEN + 2, 1);
    memset(big, 'a', TEMPLATE_MAX_LEN + 1);
    CHECK(template_parse(big, strlen(big), &t, &err) < 0);
    kiln_error_free(&err);
    free(big);
    /* NUL bytes inside the text are refused */
    CHECK(template_parse("a\0b", 3, &t, &err) < 0);
    kiln_error_free(&err);
    strbuf_release(&sb);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(i);
    RUN(json_whole);
    RUN(json_escapes);
    RUN(map_sorted_replace);
    RUN(limits);
    return harness_done();
}
