/* strmap.c — FNV-1a hashing and linear probing: the vocabulary is built once and then only read,
 * so the simplest table with a low load factor is also the fastest. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

uint32_t dbt_strmap_hash(const char *key, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) { h ^= (unsigned char)key[i]; h *= 16777619u; }
    return h;
}

int dbt_strmap_init(dbt_strmap *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 1) cap <<= 1;
    m->slots = calloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->count = 0;
    return m->slots ? 0 : -1;
}

void dbt_strmap_free(dbt_strmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

static dbt_strmap_slot *find_slot(dbt_strmap_slot *slots, size_t cap, const char *key, size_t len,
                                  uint32_t h) {
    size_t i = h & (cap - 1);
    for (;;) {
        dbt_strmap_slot *s = &slots[i];
        if (!s->key) return s;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) return s;
        i = (i + 1) & (cap - 1);
    }
}

static int grow(dbt_strmap *m) {
    size_t cap = m->cap * 2;
    dbt_strmap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        dbt_strmap_slot *s = &m->slots[i];
        if (s->key) *find_slot(slots, cap, s->key, s->len, s->hash) = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int dbt_strmap_put(dbt_strmap *m, const char *key, size_t len, int32_t value) {
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0) return -1;
    uint32_t h = dbt_strmap_hash(key, len);
    dbt_strmap_slot *s = find_slot(m->slots, m->cap, key, len, h);
    if (!s->key) {
        s->key = key;
        s->len = (uint32_t)len;
        s->hash = h;
        m->count++;
    }
    s->value = value;
    return 0;
}

int32_t dbt_strmap_get_hashed(const dbt_strmap *m, const char *key, size_t len, uint32_t h) {
    if (!m->cap) return -1;
    const dbt_strmap_slot *s = find_slot(m->slots, m->cap, key, len, h);
    return s->key ? s->value : -1;
}

int32_t dbt_strmap_get(const dbt_strmap *m, const char *key, size_t len) {
    return dbt_strmap_get_hashed(m, key, len, dbt_strmap_hash(key, len));
}
