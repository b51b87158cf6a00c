/* Docker's seccomp profile format (--security-opt seccomp=FILE), read with
 * yajl and turned into a libseccomp context.
 *
 *   { "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
 *     "architectures": [...] | "archMap": [{"architecture", "subArchitectures"}],
 *     "syscalls": [{ "names": [...], "action": "...", "errnoRet": N,
 *                    "args": [{"index", "value", "valueTwo", "op"}],
 *                    "includes": {"caps", "arches", "minKernel"},
 *                    "excludes": {"caps", "arches", "minKernel"} }] }
 *
 * Semantics follow Docker: calls unknown to libseccomp are skipped; a rule
 * is used when the container has all its included capabilities and none of
 * the excluded ones, and the architecture (Go's name: amd64, arm64, ...) and
 * kernel match; several conditions on the same argument become separate
 * rules (OR), as runc does. */
#include "seccomp/filter.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/utsname.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/xalloc.h"

#define MAX_RULES 4096
#define MAX_NAMES 4096
#define MAX_ARGS 6

#if defined(__x86_64__)
#define GO_ARCH "amd64"
#elif defined(__i386__)
#define GO_ARCH "386"
#elif defined(__aarch64__)
#define GO_ARCH "arm64"
#elif defined(__arm__)
#define GO_ARCH "arm"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define GO_ARCH "ppc64le"
#elif defined(__s390x__)
#define GO_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define GO_ARCH "riscv64"
#else
#define GO_ARCH "unknown"
#endif

static int parse_action(const char *s, yajl_val errno_ret, bool have_default_errno,
                        int default_errno, uint32_t *ret, const char *where,
                        struct kiln_error **err)
{
    int64_t n = -1;
    if (errno_ret) {
        if (!YAJL_IS_INTEGER(errno_ret) || YAJL_GET_INTEGER(errno_ret) < 0 ||
            YAJL_GET_INTEGER(errno_ret) > 4095)
            return kiln_error_set(err, 0, "%s: errnoRet must be an integer from 0 to 4095", where);
        n = YAJL_GET_INTEGER(errno_ret);
    }
    if (!s)
        return kiln_error_set(err, 0, "%s: missing action", where);
    if (strcmp(s, "SCMP_ACT_ALLOW") == 0)
        *ret = SCMP_ACT_ALLOW;
    else if (strcmp(s, "SCMP_ACT_ERRNO") == 0)
        *ret = SCMP_ACT_ERRNO((uint32_t)(n >= 0 ? n : have_default_errno ? default_errno : EPERM));
    else if (strcmp(s, "SCMP_ACT_KILL") == 0 || strcmp(s, "SCMP_ACT_KILL_THREAD") == 0)
        *ret = SCMP_ACT_KILL;
    else if (strcmp(s, "SCMP_ACT_KILL_PROCESS") == 0)
        *ret = SCMP_ACT_KILL_PROCESS;
    else if (strcmp(s, "SCMP_ACT_TRAP") == 0)
        *ret = SCMP_ACT_TRAP;
    else if (strcmp(s, "SCMP_ACT_TRACE") == 0)
        *ret = SCMP_ACT_TRACE((uint32_t)(n >= 0 ? n : EPERM));
    else if (strcmp(s, "SCMP_ACT_LOG") == 0)
        *ret = SCMP_ACT_LOG;
    else if (strcmp(s, "SCMP_ACT_NOTIFY") == 0)
        return kiln_error_set(err, 0, "%s: SCMP_ACT_NOTIFY is not supported", where);
    else
        return kiln_error_set(err, 0, "%s: unknown action '%s'", where, s);
    return 0;
}

static int parse_op(const char *s, enum scmp_compare *ret)
{
    static const struct {
        const char *name;
        enum scmp_compare op;
    } ops[] = {
        {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT},
        {"SCMP_CMP_LE", SCMP_CMP_LE}, {"SCMP_CMP_EQ", SCMP_CMP_EQ},
        {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
    };
    for (size_t i = 0; s && i < ARRAY_SIZE(ops); i++)
        if (strcmp(s, ops[i].name) == 0) {
            *ret = ops[i].op;
            return 0;
        }
    return -1;
}

/* A JSON number as uint64 (yajl keeps numbers above INT64_MAX as text). */
static bool get_u64(yajl_val v, uint64_t *ret)
{
    if (!v) {
        *ret = 0;
        return true;
    }
    if (!YAJL_IS_NUMBER(v))
        return false;
    if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0) {
        *ret = (uint64_t)YAJL_GET_INTEGER(v);
        return true;
    }
    const char *s = v->u.number.r;
    if (!s || !isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *ret = x;
    return true;
}

/* "SCMP_ARCH_X86_64" -> libseccomp's token. */
static uint32_t arch_token(const char *s)
{
    if (!s || strncmp(s, "SCMP_ARCH_", 10) != 0)
        return 0;
    char name[32];
    size_t n = strlen(s + 10);
    if (n == 0 || n >= sizeof(name))
        return 0;
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)tolower((unsigned char)s[10 + i]);
    return seccomp_arch_resolve_name(name);
}

static bool str_in_arr(yajl_val arr, const char *s)
{
    if (!arr || !YAJL_IS_ARRAY(arr))
        return false;
    for (size_t i = 0; i < arr->u.array.len; i++) {
        const char *x = YAJL_GET_STRING(arr->u.array.values[i]);
        if (x && strcmp(x, s) == 0)
            return true;
    }
    return false;
}

static bool has_cap(uint64_t caps, const char *name)
{
    char low[64];
    size_t n = strlen(name);
    if (n >= sizeof(low))
        return false;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    cap_value_t c;
    if (cap_from_name(low, &c) < 0 || c < 0 || c >= 64)
        return false;
    return (caps >> c) & 1;
}

/* Kernel release >= "X.Y[.Z]"? */
static bool kernel_at_least(const char *want)
{
    struct utsname u;
    if (uname(&u) < 0)
        return false;
    unsigned a[3] = {0}, b[3] = {0};
    sscanf(u.release, "%u.%u.%u", &a[0], &a[1], &a[2]);
    if (sscanf(want, "%u.%u.%u", &b[0], &b[1], &b[2]) < 1)
        return false;
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] > b[i];
    return true;
}

/* Whether a rule applies here, from its includes/excludes. */
static int rule_applies(yajl_val rule, uint64_t caps, const char *where, bool *ret,
                        struct kiln_error **err)
{
    *ret = false;
    yajl_val inc = json_get(rule, "includes"), exc = json_get(rule, "excludes");
    if ((inc && !YAJL_IS_OBJECT(inc) && !YAJL_IS_NULL(inc)) ||
        (exc && !YAJL_IS_OBJECT(exc) && !YAJL_IS_NULL(exc)))
        return kiln_error_set(err, 0, "%s: includes/excludes must be objects", where);
    yajl_val v;
    if ((v = json_get_arr(inc, "caps")))
        for (size_t i = 0; i < v->u.array.len; i++) {
            const char *c = YAJL_GET_STRING(v->u.array.values[i]);
            if (!c || !has_cap(caps, c))
                return 0;
        }
    if ((v = json_get_arr(exc, "caps")))
        for (size_t i = 0; i < v->u.array.len; i++) {
            const char *c = YAJL_GET_STRING(v->u.array.values[i]);
            if (c && has_cap(caps, c))
                return 0;
        }
    if ((v = json_get_arr(inc, "arches")) && v->u.array.len && !str_in_arr(v, GO_ARCH))
        return 0;
    if ((v = json_get_arr(exc, "arches")) && str_in_arr(v, GO_ARCH))
        return 0;
    const char *k;
    if ((k = json_get_str(inc, "minKernel")) && *k && !kernel_at_least(k))
        return 0;
    if ((k = json_get_str(exc, "minKernel")) && *k && kernel_at_least(k))
        return 0;
    *ret = true;
    return 0;
}

static int add_arches(scmp_filter_ctx ctx, yajl_val root, struct kiln_error **err)
{
    yajl_val list = json_get(root, "architectures");
    yajl_val map = json_get(root, "archMap");
    bool has_list = list && YAJL_IS_ARRAY(list) && list->u.array.len;
    bool has_map = map && YAJL_IS_ARRAY(map) && map->u.array.len;
    if (has_list && has_map)
        return kiln_error_set(err, 0, "'architectures' and 'archMap' both given; use one");
    uint32_t native = seccomp_arch_native();
    if (has_map) {
        for (size_t i = 0; i < map->u.array.len; i++) {
            yajl_val m = map->u.array.values[i];
            if (arch_token(json_get_str(m, "architecture")) != native)
                continue;
            yajl_val subs = json_get_arr(m, "subArchitectures");
            for (size_t j = 0; subs && j < subs->u.array.len; j++) {
                uint32_t a = arch_token(YAJL_GET_STRING(subs->u.array.values[j]));
                if (a && seccomp_arch_add(ctx, a) < 0 && seccomp_arch_exist(ctx, a) != 0)
                    return kiln_error_set(err, 0, "cannot add architecture '%s'",
                                          YAJL_GET_STRING(subs->u.array.values[j]));
            }
        }
    } else if (has_list) {
        for (size_t i = 0; i < list->u.array.len; i++) {
            const char *name = YAJL_GET_STRING(list->u.array.values[i]);
            uint32_t a = arch_token(name);
            if (!a)
                continue; /* not one libseccomp knows: Docker skips it too */
            int r = seccomp_arch_add(ctx, a);
            if (r < 0 && r != -EEXIST)
                return kiln_error_set(err, -r, "cannot add architecture '%s'", name);
        }
    }
    return 0;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t def_action, uint32_t action, const char *name,
                    const struct scmp_arg_cmp *conds, size_t n_conds, bool same_arg_twice,
                    const char *where, struct kiln_error **err)
{
    if (action == def_action)
        return 0; /* libseccomp refuses rules that repeat the default */
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* unknown here: skipped, as Docker does */
    int r = 0;
    if (same_arg_twice) {
        for (size_t i = 0; i < n_conds && r >= 0; i++)
            r = seccomp_rule_add_array(ctx, action, nr, 1, &conds[i]);
    } else {
        r = seccomp_rule_add_array(ctx, action, nr, (unsigned)n_conds, conds);
    }
    if (r < 0 && r != -EDOM)
        return kiln_error_set(err, -r, "%s: rule for '%s'", where, name);
    return 0;
}

static int add_syscalls(scmp_filter_ctx ctx, yajl_val root, uint32_t def_action,
                        bool have_default_errno, int default_errno, uint64_t caps,
                        bool skip_rootemu, struct kiln_error **err)
{
    yajl_val rules = json_get(root, "syscalls");
    if (!rules || YAJL_IS_NULL(rules))
        return 0;
    if (!YAJL_IS_ARRAY(rules))
        return kiln_error_set(err, 0, "'syscalls' must be an array");
    if (rules->u.array.len > MAX_RULES)
        return kiln_error_set(err, 0, "more than %d syscall rules", MAX_RULES);
    for (size_t i = 0; i < rules->u.array.len; i++) {
        yajl_val rule = rules->u.array.values[i];
        char where[48];
        snprintf(where, sizeof(where), "syscalls[%zu]", i);
        if (!YAJL_IS_OBJECT(rule))
            return kiln_error_set(err, 0, "%s: not an object", where);
        bool applies;
        if (rule_applies(rule, caps, where, &applies, err) < 0)
            return -1;
        if (!applies)
            continue;
        uint32_t action;
        if (parse_action(json_get_str(rule, "action"), json_get(rule, "errnoRet"),
                         have_default_errno, default_errno, &action, where, err) < 0)
            return -1;

        struct scmp_arg_cmp conds[MAX_ARGS];
        size_t n_conds = 0;
        bool same_arg_twice = false;
        unsigned seen = 0;
        yajl_val args = json_get(rule, "args");
        if (args && !YAJL_IS_NULL(args)) {
            if (!YAJL_IS_ARRAY(args))
                return kiln_error_set(err, 0, "%s: 'args' must be an array", where);
            if (args->u.array.len > MAX_ARGS)
                return kiln_error_set(err, 0, "%s: more than %d argument conditions", where,
                                      MAX_ARGS);
            for (size_t j = 0; j < args->u.array.len; j++) {
                yajl_val a = args->u.array.values[j];
                int64_t index;
                uint64_t value, value2;
                enum scmp_compare op;
                if (!json_get_int(a, "index", &index) || index < 0 || index >= MAX_ARGS)
                    return kiln_error_set(err, 0, "%s: args[%zu]: index must be 0 to 5", where, j);
                if (!get_u64(json_get(a, "value"), &value) ||
                    !get_u64(json_get(a, "valueTwo"), &value2))
                    return kiln_error_set(err, 0, "%s: args[%zu]: bad value", where, j);
                if (parse_op(json_get_str(a, "op"), &op) < 0)
                    return kiln_error_set(err, 0, "%s: args[%zu]: unknown op '%s'", where, j,
                                          json_get_str(a, "op") ? json_get_str(a, "op") : "");
                if (seen & (1u << index))
                    same_arg_twice = true;
                seen |= 1u << index;
                conds[n_conds++] = (struct scmp_arg_cmp){(unsigned)index, op, value, value2};
            }
        }

        yajl_val names = json_get(rule, "names");
        const char *one = json_get_str(rule, "name");
        if (names && !YAJL_IS_NULL(names)) {
            if (!YAJL_IS_ARRAY(names))
                return kiln_error_set(err, 0, "%s: 'names' must be an array", where);
            if (names->u.array.len > MAX_NAMES)
                return kiln_error_set(err, 0, "%s: more than %d names", where, MAX_NAMES);
            for (size_t j = 0; j < names->u.array.len; j++) {
                const char *name = YAJL_GET_STRING(names->u.array.values[j]);
                if (!name)
                    return kiln_error_set(err, 0, "%s: names[%zu] is not a string", where, j);
                if (skip_rootemu && filter_is_rootemu_syscall(name))
                    continue;
                if (add_rule(ctx, def_action, action, name, conds, n_conds, same_arg_twice, where,
                             err) < 0)
                    return -1;
            }
        } else if (one) {
            if (!(skip_rootemu && filter_is_rootemu_syscall(one)) &&
                add_rule(ctx, def_action, action, one, conds, n_conds, same_arg_twice, where,
                         err) < 0)
                return -1;
        } else {
            return kiln_error_set(err, 0, "%s: no 'names'", where);
        }
    }
    return 0;
}

int filter_from_docker_json(const char *buf, size_t len, uint64_t caps, bool skip_rootemu,
                            scmp_filter_ctx *ret, struct kiln_error **err)
{
    /* shallower than json_parse's cap: yajl builds the tree recursively */
    if (json_depth(buf, len) > FILTER_PROFILE_MAX_DEPTH)
        return kiln_error_set(err, 0, "JSON nested deeper than %d levels",
                              FILTER_PROFILE_MAX_DEPTH);
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return -1;
    int r = -1;
    scmp_filter_ctx ctx = NULL;
    if (!YAJL_IS_OBJECT(root)) {
        kiln_error_set(err, 0, "not a JSON object");
        goto out;
    }
    const char *listener = json_get_str(root, "listenerPath");
    if (listener && *listener) {
        kiln_error_set(err, 0, "'listenerPath' (seccomp notify agents) is not supported");
        goto out;
    }
    int64_t def_errno = EPERM;
    yajl_val de = json_get(root, "defaultErrnoRet");
    bool have_def_errno = de && !YAJL_IS_NULL(de);
    if (have_def_errno && (!json_get_int(root, "defaultErrnoRet", &def_errno) || def_errno < 0 ||
                           def_errno > 4095)) {
        kiln_error_set(err, 0, "defaultErrnoRet must be an integer from 0 to 4095");
        goto out;
    }
    uint32_t def_action;
    if (parse_action(json_get_str(root, "defaultAction"), NULL, true, (int)def_errno, &def_action,
                     "defaultAction", err) < 0)
        goto out;
    ctx = seccomp_init(def_action);
    if (!ctx) {
        kiln_error_set(err, EINVAL, "seccomp_init");
        goto out;
    }
    if (add_arches(ctx, root, err) < 0)
        goto out;
    if (add_syscalls(ctx, root, def_action, have_def_errno, (int)def_errno, caps, skip_rootemu,
                     err) < 0)
        goto out;
    *ret = ctx;
    ctx = NULL;
    r = 0;
out:
    seccomp_release(ctx);
    yajl_tree_free(root);
    return r;
}
