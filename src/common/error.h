/* error.h — the thread-local "last error" behind dbt_last_error(). */
#ifndef DBT_ERROR_H
#define DBT_ERROR_H

/* Formats a message into this thread's error slot. Always returns -1 so that callers can
 * `return dbt_set_error(...)`. */
int dbt_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefixes the current message ("context: message"). Returns -1. */
int dbt_prefix_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dbt_clear_error(void);

#endif
