/* Compiling filters to BPF in the parent: libseccomp builds the program and
 * exports it to a memfd; a short hand-written prefix handles what libseccomp
 * cannot express (several comparisons on one argument).  The child then
 * only has to pass the bytes to seccomp(2). */
#include "seccomp/filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

size_t filter_arches(uint32_t ret[4])
{
    size_t n = 0;
    uint32_t native = seccomp_arch_native();
    ret[n++] = native;
    switch (native) {
    case SCMP_ARCH_X86_64:
        ret[n++] = SCMP_ARCH_X86;
        ret[n++] = SCMP_ARCH_X32;
        break;
    case SCMP_ARCH_AARCH64:
        ret[n++] = SCMP_ARCH_ARM;
        break;
    case SCMP_ARCH_S390X:
        ret[n++] = SCMP_ARCH_S390;
        break;
    default:
        break;
    }
    return n;
}

int filter_ctx_add_arches(scmp_filter_ctx ctx, struct kiln_error **err)
{
    uint32_t arches[4];
    size_t n = filter_arches(arches);
    for (size_t i = 0; i < n; i++) {
        int r = seccomp_arch_add(ctx, arches[i]);
        if (r < 0 && r != -EEXIST)
            return kiln_error_set(err, -r, "seccomp: adding architecture 0x%x", arches[i]);
    }
    return 0;
}

void filter_prog_free(struct filter_prog *p)
{
    if (!p)
        return;
    free(p->insns);
    free(p);
}

int filter_export(scmp_filter_ctx ctx, const struct sock_filter *prefix, size_t n_prefix,
                  struct filter_prog **ret, struct kiln_error **err)
{
    _cleanup_close_ int fd = memfd_create("kiln-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "seccomp: memfd_create");
    int r = seccomp_export_bpf(ctx, fd);
    if (r < 0)
        return kiln_error_set(err, -r, "seccomp: exporting the filter");
    if (lseek(fd, 0, SEEK_SET) < 0)
        return kiln_error_set(err, errno, "seccomp: lseek");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    r = fs_read_fd(fd, BPF_MAXINSNS * sizeof(struct sock_filter), &buf, &len);
    if (r < 0)
        return kiln_error_set(err, -r, "seccomp: reading the exported filter");
    if (len % sizeof(struct sock_filter) != 0)
        return kiln_error_set(err, 0, "seccomp: exported filter has an odd size (%zu bytes)", len);
    size_t n = len / sizeof(struct sock_filter) + n_prefix;
    if (n > BPF_MAXINSNS || n == n_prefix)
        return kiln_error_set(err, 0, "seccomp: filter has %zu instructions (limit %d)", n,
                              BPF_MAXINSNS);

    struct filter_prog *p = xcalloc(1, sizeof(*p));
    p->insns = xreallocarray(NULL, n, sizeof(struct sock_filter));
    if (n_prefix)
        memcpy(p->insns, prefix, n_prefix * sizeof(struct sock_filter));
    memcpy(p->insns + n_prefix, buf, len);
    p->len = (unsigned short)n;
    for (size_t i = 0; i < n; i++) {
        const struct sock_filter *f = &p->insns[i];
        if (f->code == (BPF_RET | BPF_K) &&
            (f->k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
            p->notify = true;
    }
    *ret = p;
    return 0;
}

/* ---- the personality(2) prefix ----------------------------------------------- */

#define ARG0_LO offsetof(struct seccomp_data, args[0])
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LO_OFF 0
#define HI_OFF 4
#else
#define LO_OFF 4
#define HI_OFF 0
#endif

struct bpf_builder {
    struct sock_filter *v;
    size_t n, cap;
};

static size_t bb_emit(struct bpf_builder *b, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
    XGROW(b->v, b->cap, b->n + 1);
    b->v[b->n] = (struct sock_filter){code, jt, jf, k};
    return b->n++;
}

/* Docker allows personality() only with these values (a query, Linux, and
 * the two UNAME26 variants); everything else (e.g. ADDR_NO_RANDOMIZE) gets
 * EPERM. */
static const uint32_t personality_allowed[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

int filter_personality_prefix(struct sock_filter **ret, size_t *ret_len, struct kiln_error **err)
{
    uint32_t arches[4];
    size_t n_arches = filter_arches(arches);
    struct {
        uint32_t arch;
        int nrs[2];
        size_t n;
    } tab[4];
    size_t n_tab = 0;
    for (size_t i = 0; i < n_arches; i++) {
        int nr = seccomp_syscall_resolve_name_arch(arches[i], "personality");
        if (nr < 0)
            continue;
        /* x32 shares AUDIT_ARCH_X86_64 and sets a bit in the number. */
        uint32_t audit = arches[i] == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : arches[i];
        size_t j;
        for (j = 0; j < n_tab && tab[j].arch != audit; j++)
            ;
        if (j == n_tab) {
            tab[n_tab].arch = audit;
            tab[n_tab].n = 0;
            n_tab++;
        }
        if (tab[j].n < 2)
            tab[j].nrs[tab[j].n++] = nr;
    }
    if (n_tab == 0)
        return kiln_error_set(err, 0, "seccomp: personality() unknown on this architecture");

    /* Layout: per architecture, "arch == A ? check its numbers : next arch";
     * a matching number jumps to CHECK; everything else falls off the end
     * into the libseccomp program.  Jumps are filled in once the offsets
     * are known. */
    struct bpf_builder b = {0};
    size_t fix_check[8], n_fix_check = 0; /* jt of number tests -> CHECK */
    size_t fix_end[8], n_fix_end = 0;     /* unconditional jumps -> END */
    bb_emit(&b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
    for (size_t i = 0; i < n_tab; i++) {
        size_t jeq_arch = bb_emit(&b, BPF_JMP | BPF_JEQ | BPF_K, tab[i].arch, 0, 0);
        bb_emit(&b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
        for (size_t j = 0; j < tab[i].n; j++)
            fix_check[n_fix_check++] =
                bb_emit(&b, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)tab[i].nrs[j], 0, 0);
        fix_end[n_fix_end++] = bb_emit(&b, BPF_JMP | BPF_JA, 0, 0, 0);
        /* arch mismatch: skip this block; the accumulator still holds the
         * arch for the next block's jeq. */
        b.v[jeq_arch].jf = (uint8_t)(b.n - jeq_arch - 1);
    }
    size_t ja_end_all = bb_emit(&b, BPF_JMP | BPF_JA, 0, 0, 0);
    fix_end[n_fix_end++] = ja_end_all;

    size_t check = b.n;
    bb_emit(&b, BPF_LD | BPF_W | BPF_ABS, (uint32_t)(ARG0_LO + HI_OFF), 0, 0);
    size_t jne_hi = bb_emit(&b, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0); /* jf -> DENY */
    bb_emit(&b, BPF_LD | BPF_W | BPF_ABS, (uint32_t)(ARG0_LO + LO_OFF), 0, 0);
    size_t tests[ARRAY_SIZE(personality_allowed)];
    for (size_t i = 0; i < ARRAY_SIZE(personality_allowed); i++)
        tests[i] = bb_emit(&b, BPF_JMP | BPF_JEQ | BPF_K, personality_allowed[i], 0, 0);
    size_t deny =
        bb_emit(&b, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA), 0, 0);
    size_t allow = bb_emit(&b, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
    size_t end = b.n;

    for (size_t i = 0; i < n_fix_check; i++)
        b.v[fix_check[i]].jt = (uint8_t)(check - fix_check[i] - 1);
    for (size_t i = 0; i < n_fix_end; i++)
        b.v[fix_end[i]].k = (uint32_t)(end - fix_end[i] - 1);
    b.v[jne_hi].jf = (uint8_t)(deny - jne_hi - 1);
    for (size_t i = 0; i < ARRAY_SIZE(tests); i++)
        b.v[tests[i]].jt = (uint8_t)(allow - tests[i] - 1);
    /* the last test falls through to DENY: jf = 0 already */
    *ret = b.v;
    *ret_len = b.n;
    return 0;
}

/* ---- putting it together --------------------------------------------------- */

static int read_profile(const char *path, char **ret, size_t *ret_len, struct kiln_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return kiln_error_set(err, errno, "seccomp profile '%s'", path);
    int r = fs_read_fd(fd, FILTER_PROFILE_MAX, ret, ret_len);
    if (r == -EFBIG)
        return kiln_error_set(err, 0, "seccomp profile '%s': larger than %u bytes", path,
                              FILTER_PROFILE_MAX);
    if (r < 0)
        return kiln_error_set(err, -r, "seccomp profile '%s'", path);
    return 0;
}

int filter_build(const struct filter_opts *o, struct filter_prog **ret, struct kiln_error **err)
{
    *ret = NULL;
    scmp_filter_ctx ctx = NULL;
    _cleanup_free_ struct sock_filter *prefix = NULL;
    size_t n_prefix = 0;
    int r = -1;

    switch (o->mode) {
    case SECCOMP_UNCONFINED:
        if (!o->rootemu)
            return 0;
        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
            return kiln_error_set(err, ENOMEM, "seccomp_init");
        if (filter_ctx_add_arches(ctx, err) < 0 || filter_add_rootemu(ctx, err) < 0)
            goto out;
        break;
    case SECCOMP_DEFAULT:
        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
            return kiln_error_set(err, ENOMEM, "seccomp_init");
        if (filter_ctx_add_arches(ctx, err) < 0)
            goto out;
        if (o->rootemu && filter_add_rootemu(ctx, err) < 0)
            goto out;
        if (filter_add_default(ctx, err) < 0)
            goto out;
        if (filter_personality_prefix(&prefix, &n_prefix, err) < 0)
            goto out;
        break;
    case SECCOMP_PROFILE: {
        if (!o->profile_path)
            return kiln_error_set(err, 0, "seccomp: no profile file given");
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        if (read_profile(o->profile_path, &buf, &len, err) < 0)
            return -1;
        if (filter_from_docker_json(buf, len, o->caps, o->rootemu, &ctx, err) < 0)
            return kiln_error_wrap(err, "seccomp profile '%s'", o->profile_path);
        if (o->rootemu && filter_add_rootemu(ctx, err) < 0)
            goto out;
        break;
    }
    default:
        return kiln_error_set(err, EINVAL, "seccomp: unknown mode %d", (int)o->mode);
    }
    r = filter_export(ctx, prefix, n_prefix, ret, err);
out:
    seccomp_release(ctx);
    return r;
}
