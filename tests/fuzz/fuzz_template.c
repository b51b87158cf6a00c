/* libFuzzer: --format templates (parse, then run over an inspect-like value). */
#include <stddef.h>
#include <stdint.h>

#include "cmd/template.h"
#include "lib/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct template *t = NULL;
    struct kiln_error *err = NULL;
    if (template_parse((const char *)data, size, &t, &err) < 0) {
        kiln_error_free(&err);
        return 0;
    }
    struct tval *v = tv_struct("image");
    char *env[] = {"A=1", "B=<2>", NULL};
    struct tval *cfg = tv_struct("Config");
    tv_set(cfg, "Env", tv_strv(env));
    tv_set(cfg, "Cmd", tv_strv(NULL));
    struct tval *labels = tv_map(false);
    tv_set(labels, "k", tv_str("v"));
    tv_set(cfg, "Labels", labels);
    tv_set(v, "Config", cfg);
    tv_set(v, "Id", tv_str("sha256:abc"));
    tv_set(v, "Size", tv_int(42));
    tv_set(v, "Flag", tv_bool(true));
    tv_set(v, "Nil", tv_null());
    struct strbuf out = STRBUF_INIT;
    if (template_exec(t, v, &out, &err) < 0)
        kiln_error_free(&err);
    strbuf_release(&out);
    tv_unref(v);
    template_free(t);
    return 0;
}
