#include "cmd/format.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "layers/image.h"
#include "lib/xalloc.h"

char *format_size(uint64_t bytes)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000.0;
        u++;
    }
    return xasprintf("%.4g%s", v, units[u]);
}

char *format_duration(int64_t s)
{
    if (s < 1)
        return xstrdup("Less than a second");
    if (s == 1)
        return xstrdup("1 second");
    if (s < 60)
        return xasprintf("%lld seconds", (long long)s);
    int64_t m = s / 60, h = s / 3600;
    if (m == 1)
        return xstrdup("About a minute");
    if (m < 60)
        return xasprintf("%lld minutes", (long long)m);
    if (h == 1)
        return xstrdup("About an hour");
    if (h < 48)
        return xasprintf("%lld hours", (long long)h);
    if (h < 24 * 7 * 2)
        return xasprintf("%lld days", (long long)(h / 24));
    if (h < 24 * 30 * 2)
        return xasprintf("%lld weeks", (long long)(h / 24 / 7));
    if (h < 24 * 365 * 2)
        return xasprintf("%lld months", (long long)(h / 24 / 30));
    return xasprintf("%lld years", (long long)(h / 24 / 365));
}

char *format_ago(const char *rfc3339)
{
    int64_t t = rfc3339_parse(rfc3339);
    if (t < 0)
        return xstrdup("N/A");
    int64_t now = (int64_t)time(NULL);
    char *d = format_duration(now - t);
    char *r = xasprintf("%s ago", d);
    free(d);
    return r;
}
