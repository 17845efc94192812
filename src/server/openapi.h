/* openapi.h — the OpenAPI 3 document of the server's routes (those the model serves). */
#ifndef DBT_SRV_OPENAPI_H
#define DBT_SRV_OPENAPI_H

#include <stddef.h>

/* enabled: a path → served? predicate; NULL: every path. Returns malloc'd JSON, or NULL. */
char *srv_openapi_json(int (*enabled)(const char *path, void *ud), void *ud, const char *version, size_t *len);

#endif
