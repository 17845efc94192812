/* error.c — one message per thread, so that the library never prints. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "distilbert.h"

static _Thread_local char g_error[1024];

int dbt_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    return -1;
}

int dbt_prefix_error(const char *fmt, ...) {
    char prefix[512], old[sizeof g_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_error, sizeof old);
    /* Truncation is acceptable here: the message is for people, and stays NUL-terminated. */
    size_t n = strlen(prefix);
    if (n > sizeof g_error - 3) n = sizeof g_error - 3;
    memcpy(g_error, prefix, n);
    memcpy(g_error + n, ": ", 2);
    size_t rest = sizeof g_error - n - 3;
    size_t m = strnlen(old, rest);
    memcpy(g_error + n + 2, old, m);
    g_error[n + 2 + m] = '\0';
    return -1;
}

void dbt_clear_error(void) { g_error[0] = '\0'; }

const char *dbt_last_error(void) { return g_error; }
