/* Growable text buffer with HTML and markdown escaping (see internal.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "report/internal.h"

void cn_report_buf_free(cn_report_buf *b)
{
    cn_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Room for `extra` more bytes plus the terminating NUL. */
static int reserve(cn_report_buf *b, size_t extra)
{
    if (b->oom) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = cn_realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

static void putn(cn_report_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void cn_report_puts(cn_report_buf *b, const char *s) { putn(b, s, strlen(s)); }

void cn_report_printf(cn_report_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        putn(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cn_report_html(cn_report_buf *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': cn_report_puts(b, "&amp;"); break;
        case '<': cn_report_puts(b, "&lt;"); break;
        case '>': cn_report_puts(b, "&gt;"); break;
        case '"': cn_report_puts(b, "&quot;"); break;
        case '\'': cn_report_puts(b, "&#39;"); break;
        default: {
            char ch = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
            putn(b, &ch, 1);
        }
        }
    }
}

void cn_report_md(cn_report_buf *b, const char *s)
{
    for (; s && *s; s++) {
        char c = *s;
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        if (strchr("|\\`*_[]<>&", c)) putn(b, "\\", 1);
        putn(b, &c, 1);
    }
}
