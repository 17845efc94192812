/* json_writer.h — appending JSON to a growable buffer (CLI output, HTTP responses). */
#ifndef DBT_JSON_WRITER_H
#define DBT_JSON_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *s;
    size_t n, cap;
    int oom; /* sticky: set when an append failed */
} dbt_jw;

void dbt_jw_raw(dbt_jw *w, const char *s, size_t n);
void dbt_jw_lit(dbt_jw *w, const char *s); /* a literal such as "{\"ids\":" */
void dbt_jw_str(dbt_jw *w, const char *s, size_t n); /* a quoted, escaped JSON string */
void dbt_jw_int(dbt_jw *w, long long v);
void dbt_jw_float(dbt_jw *w, double v); /* 9 digits: reads back to the same float */
void dbt_jw_double(dbt_jw *w, double v); /* 17 digits: reads back to the same double */
void dbt_jw_ints(dbt_jw *w, const int32_t *v, int n); /* [1,2,3] */
void dbt_jw_reset(dbt_jw *w);
void dbt_jw_free(dbt_jw *w);

#endif
