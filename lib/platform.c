#include "lib/platform.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

static char arch[32], variant[8], full[80];

static void init(void)
{
    if (arch[0])
        return;
    struct utsname u;
    const char *m = uname(&u) == 0 ? u.machine : "x86_64";
    static const struct {
        const char *machine, *arch, *variant;
    } map[] = {
        {"x86_64", "amd64", ""},   {"aarch64", "arm64", ""},  {"armv7l", "arm", "v7"},
        {"armv6l", "arm", "v6"},   {"i686", "386", ""},       {"i386", "386", ""},
        {"ppc64le", "ppc64le", ""}, {"s390x", "s390x", ""},    {"riscv64", "riscv64", ""},
    };
    snprintf(arch, sizeof(arch), "%.31s", m);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(m, map[i].machine) == 0) {
            snprintf(arch, sizeof(arch), "%s", map[i].arch);
            snprintf(variant, sizeof(variant), "%s", map[i].variant);
        }
    }
    snprintf(full, sizeof(full), "linux/%s%s%s", arch, variant[0] ? "/" : "", variant);
}

const char *platform_os(void)
{
    return "linux";
}

const char *platform_arch(void)
{
    init();
    return arch;
}

const char *platform_variant(void)
{
    init();
    return variant;
}

const char *platform_string(void)
{
    init();
    return full;
}
