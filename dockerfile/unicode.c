#include "unicode.h"

#include <string.h>

enum uc_cat {
    UC_Lu, UC_Ll, UC_Lt, UC_Lm, UC_Lo,
    UC_Mn, UC_Mc, UC_Me,
    UC_Nd, UC_Nl, UC_No,
    UC_Pc, UC_Pd, UC_Ps, UC_Pe, UC_Pi, UC_Pf, UC_Po,
    UC_Sm, UC_Sc, UC_Sk, UC_So,
    UC_Zs, UC_Zl, UC_Zp,
    UC_Cc, UC_Cf, UC_Cs, UC_Co,
    UC_Cn, /* unassigned: not in the table */
};

static const char uc_names[][3] = {
    "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
    "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co",
};

struct uc_range {
    uint32_t lo, hi;
    uint8_t cat;
};

#include "unicode_table.h"

#define UC_LEN(a) (sizeof(a) / sizeof((a)[0]))

uint32_t uni_decode(const char *s, size_t len, size_t *ret_width)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[0];
    *ret_width = 1;
    if (c < 0x80)
        return c;
    size_t need;
    uint32_t r;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        r = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        r = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        r = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return UNI_ERROR;
    }
    if (len < need + 1)
        return UNI_ERROR;
    for (size_t i = 1; i <= need; i++) {
        unsigned char b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return UNI_ERROR;
        r = (r << 6) | (b & 0x3F);
    }
    *ret_width = need + 1;
    return r;
}

uint32_t uni_decode_last(const char *s, size_t len, size_t *ret_width)
{
    const unsigned char *p = (const unsigned char *)s;
    *ret_width = 1;
    if (p[len - 1] < 0x80)
        return p[len - 1];
    /* Back up over at most 3 continuation bytes to a possible start byte. */
    size_t lim = len > 4 ? len - 4 : 0;
    size_t start = len - 1;
    while (start > lim && (p[start] & 0xC0) == 0x80)
        start--;
    size_t w;
    uint32_t r = uni_decode(s + start, len - start, &w);
    if (start + w != len)
        return UNI_ERROR;
    *ret_width = w;
    return r;
}

size_t uni_encode(uint32_t r, char out[4])
{
    unsigned char *o = (unsigned char *)out;
    if (r > UNI_MAX || (r >= 0xD800 && r <= 0xDFFF))
        r = UNI_ERROR;
    if (r < 0x80) {
        o[0] = (unsigned char)r;
        return 1;
    }
    if (r < 0x800) {
        o[0] = (unsigned char)(0xC0 | (r >> 6));
        o[1] = (unsigned char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (r >> 12));
        o[1] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (r & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (r >> 18));
    o[1] = (unsigned char)(0x80 | ((r >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (r & 0x3F));
    return 4;
}

static enum uc_cat uc_category(uint32_t r)
{
    size_t lo = 0, hi = UC_LEN(uc_ranges);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r < uc_ranges[mid].lo)
            hi = mid;
        else if (r > uc_ranges[mid].hi)
            lo = mid + 1;
        else
            return (enum uc_cat)uc_ranges[mid].cat;
    }
    return UC_Cn;
}

bool uni_is_space(uint32_t r)
{
    /* The White_Space property (PropList.txt). */
    switch (r) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return r >= 0x2000 && r <= 0x200A;
    }
}

bool uni_is_letter(uint32_t r)
{
    if (r < 0x80)
        return (r | 0x20) >= 'a' && (r | 0x20) <= 'z';
    return uc_category(r) <= UC_Lo;
}

bool uni_is_digit(uint32_t r)
{
    if (r < 0x80)
        return r >= '0' && r <= '9';
    return uc_category(r) == UC_Nd;
}

bool uni_category_known(const char *name, size_t len)
{
    if (len == 1)
        return memchr("CLMNPSZ", name[0], 7) != NULL;
    if (len != 2)
        return false;
    for (size_t i = 0; i < UC_LEN(uc_names); i++)
        if (uc_names[i][0] == name[0] && uc_names[i][1] == name[1])
            return true;
    return false;
}

bool uni_in_category(uint32_t r, const char *name, size_t len)
{
    if (r > UNI_MAX)
        return false;
    enum uc_cat c = uc_category(r);
    if (c == UC_Cn)
        return false; /* Go's tables do not list unassigned code points */
    if (len == 1)
        return uc_names[c][0] == name[0];
    return len == 2 && uc_names[c][0] == name[0] && uc_names[c][1] == name[1];
}
