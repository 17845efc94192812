/* strmap.h — an open-addressing hash map from byte strings to int32 (the vocabulary index). */
#ifndef DBT_STRMAP_H
#define DBT_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *key; /* not owned: points into storage that outlives the map */
    uint32_t len;
    uint32_t hash;
    int32_t value;
} dbt_strmap_slot;

typedef struct {
    dbt_strmap_slot *slots; /* capacity is a power of two, load factor <= 1/2 */
    size_t cap, count;
} dbt_strmap;

int dbt_strmap_init(dbt_strmap *m, size_t expected);
void dbt_strmap_free(dbt_strmap *m);
/* Inserts or overwrites. Returns 0, or -1 when out of memory. */
int dbt_strmap_put(dbt_strmap *m, const char *key, size_t len, int32_t value);
/* Returns the value, or -1 if the key is absent. */
int32_t dbt_strmap_get(const dbt_strmap *m, const char *key, size_t len);
uint32_t dbt_strmap_hash(const char *key, size_t len);
/* Lookup with a precomputed hash (lets WordPiece hash "##"+piece incrementally). */
int32_t dbt_strmap_get_hashed(const dbt_strmap *m, const char *key, size_t len, uint32_t h);

#endif
