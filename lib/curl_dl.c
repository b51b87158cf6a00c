/* libcurl, loaded the first time kiln needs it.
 *
 * kiln links every other library at build time, but libcurl and the ~25
 * libraries it brings (TLS, Kerberos, LDAP, IDN, HTTP/2, ...) take half of
 * kiln's start-up, and only registry commands, ADD of a URL and URL
 * contexts use it.  So the curl_* functions kiln calls are defined here:
 * the first call opens libcurl.so.4 with dlopen, and each forwards to the
 * library's own function.  Callers use curl.h as usual. */
/* the definitions below would otherwise be taken for curl.h's type-checking macros */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define CURL_LIBRARY "libcurl.so.4"

static struct {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    char *(*easy_escape)(CURL *, const char *, int);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    void (*free)(void *);
    CURLcode (*global_init)(long);
} api;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *must(void *lib, const char *name)
{
    void *f = dlsym(lib, name);
    if (!f) {
        fprintf(stderr, "kiln: error: %s lacks %s: %s\n", CURL_LIBRARY, name, dlerror());
        abort();
    }
    return f;
}

static void load(void)
{
    void *lib = dlopen(CURL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        /* the package is a dependency of kiln: this is a broken install */
        fprintf(stderr, "kiln: error: cannot load %s (package libcurl4): %s\n", CURL_LIBRARY,
                dlerror());
        abort();
    }
    *(void **)&api.easy_init = must(lib, "curl_easy_init");
    *(void **)&api.easy_setopt = must(lib, "curl_easy_setopt");
    *(void **)&api.easy_perform = must(lib, "curl_easy_perform");
    *(void **)&api.easy_getinfo = must(lib, "curl_easy_getinfo");
    *(void **)&api.easy_cleanup = must(lib, "curl_easy_cleanup");
    *(void **)&api.easy_reset = must(lib, "curl_easy_reset");
    *(void **)&api.easy_strerror = must(lib, "curl_easy_strerror");
    *(void **)&api.easy_escape = must(lib, "curl_easy_escape");
    *(void **)&api.slist_append = must(lib, "curl_slist_append");
    *(void **)&api.slist_free_all = must(lib, "curl_slist_free_all");
    *(void **)&api.free = must(lib, "curl_free");
    *(void **)&api.global_init = must(lib, "curl_global_init");
}

static void ensure(void)
{
    pthread_once(&once, load);
}

CURLcode curl_global_init(long flags)
{
    ensure();
    return api.global_init(flags);
}

CURL *curl_easy_init(void)
{
    ensure();
    return api.easy_init();
}

/* The value's type follows from the option's number range, as in curl. */
CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
    ensure();
    va_list ap;
    va_start(ap, option);
    CURLcode r;
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);
        r = api.easy_setopt(curl, option, v);
    } else if (option < CURLOPTTYPE_OFF_T) {
        /* object and function pointers are passed the same way here */
        void *v = va_arg(ap, void *);
        r = api.easy_setopt(curl, option, v);
    } else if (option < CURLOPTTYPE_BLOB) {
        curl_off_t v = va_arg(ap, curl_off_t);
        r = api.easy_setopt(curl, option, v);
    } else {
        void *v = va_arg(ap, void *);
        r = api.easy_setopt(curl, option, v);
    }
    va_end(ap);
    return r;
}

CURLcode curl_easy_perform(CURL *curl)
{
    ensure();
    return api.easy_perform(curl);
}

CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
    ensure();
    va_list ap;
    va_start(ap, info);
    void *out = va_arg(ap, void *); /* always a pointer to the result */
    va_end(ap);
    return api.easy_getinfo(curl, info, out);
}

void curl_easy_cleanup(CURL *curl)
{
    ensure();
    api.easy_cleanup(curl);
}

void curl_easy_reset(CURL *curl)
{
    ensure();
    api.easy_reset(curl);
}

const char *curl_easy_strerror(CURLcode code)
{
    ensure();
    return api.easy_strerror(code);
}

char *curl_easy_escape(CURL *curl, const char *s, int len)
{
    ensure();
    return api.easy_escape(curl, s, len);
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
    ensure();
    return api.slist_append(list, s);
}

void curl_slist_free_all(struct curl_slist *list)
{
    ensure();
    api.slist_free_all(list);
}

void curl_free(void *p)
{
    ensure();
    api.free(p);
}
