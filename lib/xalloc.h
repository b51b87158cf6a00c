/* Allocation helpers that abort with a message when memory runs out. */
#ifndef KILN_XALLOC_H
#define KILN_XALLOC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Grows *arr (of *cap elements of size `size`) so that it holds at least
 * `need` elements. */
void xgrow(void **arr, size_t *cap, size_t need, size_t size);
#define XGROW(arr, cap, need) xgrow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

/* NULL-terminated string vectors. */
char **strv_new(void);
size_t strv_len(char *const *v);
void strv_push(char ***v, const char *s);   /* copies s */
void strv_push_take(char ***v, char *s);    /* takes s */
char **strv_copy(char *const *v);
void strv_free(char **v);
int strv_contains(char *const *v, const char *s);
/* Binary search of n sorted strings (strcmp order): the index of key
 * (*found = true), or where it would be inserted. */
size_t strv_sorted_find(char *const *keys, size_t n, const char *key, bool *found);

#endif
