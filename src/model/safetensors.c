/* safetensors.c — the format is an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the bytes.
 * Everything in the header is checked before use: the header fits the file, each tensor's byte
 * range fits the data section, matches dtype × shape, and no two tensors overlap. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/file.h"

#define MAX_HEADER (100u << 20) /* the reference implementation's limit */

size_t dbt_dtype_size(dbt_dtype t) {
    switch (t) {
    case DBT_DT_F32: case DBT_DT_I32: return 4;
    case DBT_DT_F16: case DBT_DT_BF16: return 2;
    case DBT_DT_I8: return 1;
    case DBT_DT_I64: return 8;
    default: return 0;
    }
}

static int parse_dtype(const char *s, dbt_dtype *t, size_t *size) {
    static const struct { const char *name; dbt_dtype t; size_t size; } table[] = {
        {"F32", DBT_DT_F32, 4}, {"F16", DBT_DT_F16, 2}, {"BF16", DBT_DT_BF16, 2},
        {"I8", DBT_DT_I8, 1},   {"I32", DBT_DT_I32, 4}, {"I64", DBT_DT_I64, 8},
        {"F64", DBT_DT_OTHER, 8}, {"U8", DBT_DT_OTHER, 1}, {"I16", DBT_DT_OTHER, 2},
        {"U16", DBT_DT_OTHER, 2}, {"U32", DBT_DT_OTHER, 4}, {"U64", DBT_DT_OTHER, 8},
        {"BOOL", DBT_DT_OTHER, 1}, {"F8_E4M3", DBT_DT_OTHER, 1}, {"F8_E5M2", DBT_DT_OTHER, 1},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(s, table[i].name)) { *t = table[i].t; *size = table[i].size; return 0; }
    return -1;
}

typedef struct { uint64_t begin, end; int idx; } range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

int dbt_st_open_file(dbt_safetensors *st, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dbt_set_error("cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { close(fd); return dbt_set_error("%s is not a regular file", path); }
    size_t size = (size_t)sb.st_size;
    if (size < 8) { close(fd); return dbt_set_error("%s: truncated safetensors file (%zu bytes)", path, size); }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return dbt_set_error("cannot map %s: %s", path, strerror(errno));
    const unsigned char *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    cJSON *h = NULL;
    range *ranges = NULL;
    int first = st->n_tensors;
    if (hlen > MAX_HEADER || hlen > size - 8) {
        dbt_set_error("%s: header length %llu does not fit a %zu-byte file", path, (unsigned long long)hlen, size);
        goto fail;
    }
    h = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
    if (!cJSON_IsObject(h)) { dbt_set_error("%s: the header is not a JSON object", path); goto fail; }
    const unsigned char *data = p + 8 + hlen;
    uint64_t data_len = size - 8 - hlen;
    int n = cJSON_GetArraySize(h);
    dbt_st_tensor *t = realloc(st->tensors, ((size_t)st->n_tensors + (size_t)n) * sizeof *t);
    if (!t) { dbt_set_error("out of memory"); goto fail; }
    st->tensors = t;
    ranges = malloc(((size_t)n + 1) * sizeof *ranges);
    if (!ranges) { dbt_set_error("out of memory"); goto fail; }
    int nr = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, h) {
        if (!strcmp(e->string, "__metadata__")) continue;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        dbt_st_tensor *x = &st->tensors[st->n_tensors];
        memset(x, 0, sizeof *x);
        size_t esize;
        if (!cJSON_IsString(dt) || parse_dtype(dt->valuestring, &x->dtype, &esize)) {
            dbt_set_error("%s: tensor \"%s\" has an unknown dtype", path, e->string);
            goto fail;
        }
        snprintf(x->dtype_name, sizeof x->dtype_name, "%s", dt->valuestring);
        if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > DBT_MAX_DIMS || !cJSON_IsArray(offs) ||
            cJSON_GetArraySize(offs) != 2) {
            dbt_set_error("%s: tensor \"%s\" lacks a valid shape or data_offsets", path, e->string);
            goto fail;
        }
        x->ndim = cJSON_GetArraySize(shape);
        uint64_t numel = 1;
        for (int d = 0; d < x->ndim; d++) {
            const cJSON *v = cJSON_GetArrayItem(shape, d);
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4e12 ||
                v->valuedouble != (double)(int64_t)v->valuedouble) {
                dbt_set_error("%s: tensor \"%s\" has a bad dimension", path, e->string);
                goto fail;
            }
            x->shape[d] = (int64_t)v->valuedouble;
            if (x->shape[d] && numel > UINT64_MAX / (uint64_t)x->shape[d] / 8) {
                dbt_set_error("%s: tensor \"%s\" is impossibly large", path, e->string);
                goto fail;
            }
            numel *= (uint64_t)x->shape[d];
        }
        const cJSON *b = cJSON_GetArrayItem(offs, 0), *en = cJSON_GetArrayItem(offs, 1);
        if (!cJSON_IsNumber(b) || !cJSON_IsNumber(en) || b->valuedouble < 0 || en->valuedouble < b->valuedouble ||
            en->valuedouble > (double)data_len) {
            dbt_set_error("%s: tensor \"%s\" has data_offsets outside the file's %llu data bytes", path,
                          e->string, (unsigned long long)data_len);
            goto fail;
        }
        uint64_t begin = (uint64_t)b->valuedouble, end = (uint64_t)en->valuedouble;
        if (end - begin != numel * esize) {
            dbt_set_error("%s: tensor \"%s\" has %llu bytes but %s%s needs %llu", path, e->string,
                          (unsigned long long)(end - begin), dt->valuestring, " of its shape",
                          (unsigned long long)(numel * esize));
            goto fail;
        }
        x->name = strdup(e->string);
        if (!x->name) { dbt_set_error("out of memory"); goto fail; }
        x->numel = (int64_t)numel;
        x->data = data + begin;
        x->nbytes = (size_t)(end - begin);
        ranges[nr++] = (range){begin, end, st->n_tensors};
        st->n_tensors++;
    }
    qsort(ranges, (size_t)nr, sizeof *ranges, cmp_range);
    for (int i = 1; i < nr; i++)
        if (ranges[i].begin < ranges[i - 1].end) {
            dbt_set_error("%s: tensors \"%s\" and \"%s\" overlap", path, st->tensors[ranges[i - 1].idx].name,
                          st->tensors[ranges[i].idx].name);
            goto fail;
        }
    for (int i = first; i < st->n_tensors; i++) /* names must be unique across shards too */
        for (int k = 0; k < first; k++)
            if (!strcmp(st->tensors[i].name, st->tensors[k].name)) {
                dbt_set_error("%s: tensor \"%s\" is also in another shard", path, st->tensors[i].name);
                goto fail;
            }
    free(ranges);
    cJSON_Delete(h);
    dbt_st_file *f = realloc(st->files, ((size_t)st->n_files + 1) * sizeof *f);
    if (!f) { dbt_set_error("out of memory"); munmap(map, size); return -1; }
    st->files = f;
    st->files[st->n_files++] = (dbt_st_file){map, size};
    return 0;
fail:
    for (int i = first; i < st->n_tensors; i++) free(st->tensors[i].name);
    st->n_tensors = first;
    free(ranges);
    cJSON_Delete(h);
    munmap(map, size);
    return -1;
}

int dbt_st_open_dir(dbt_safetensors *st, const char *dir) {
    char path[4096];
    if (dbt_file_exists(dbt_path_join(path, sizeof path, dir, "model.safetensors")))
        return dbt_st_open_file(st, path);
    if (!dbt_file_exists(dbt_path_join(path, sizeof path, dir, "model.safetensors.index.json"))) {
        if (dbt_file_exists(dbt_path_join(path, sizeof path, dir, "pytorch_model.bin")))
            return dbt_set_error("%s has only pytorch_model.bin (a pickle, which this program does not "
                                 "execute); convert it once with: python3 -c \"from transformers import "
                                 "AutoModel as M; M.from_pretrained('%s').save_pretrained('%s', "
                                 "safe_serialization=True)\"", dir, dir, dir);
        return dbt_set_error("%s has no model.safetensors or model.safetensors.index.json", dir);
    }
    size_t len;
    char *text = dbt_read_file(path, 64u << 20, &len);
    if (!text) return -1;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(j);
        return dbt_set_error("%s: no \"weight_map\" object", path);
    }
    /* Open each shard named in the map once, in order of first appearance. */
    const cJSON *e;
    int rc = 0;
    char **seen = NULL;
    int n_seen = 0;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || e->valuestring[0] == '.') {
            rc = dbt_set_error("%s: bad shard name for \"%s\"", path, e->string);
            break;
        }
        int known = 0;
        for (int i = 0; i < n_seen && !known; i++) known = !strcmp(seen[i], e->valuestring);
        if (known) continue;
        char **s = realloc(seen, ((size_t)n_seen + 1) * sizeof *s);
        if (!s) { rc = dbt_set_error("out of memory"); break; }
        seen = s;
        seen[n_seen++] = e->valuestring;
        char shard[4096];
        if ((rc = dbt_st_open_file(st, dbt_path_join(shard, sizeof shard, dir, e->valuestring))) != 0) break;
    }
    if (rc == 0) /* every mapped name must exist in its shard */
        cJSON_ArrayForEach(e, wm) {
            if (!dbt_st_find(st, e->string)) {
                rc = dbt_set_error("%s: \"%s\" is in the weight map but in no shard", path, e->string);
                break;
            }
        }
    free(seen);
    cJSON_Delete(j);
    return rc;
}

void dbt_st_close(dbt_safetensors *st) {
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_files; i++) munmap(st->files[i].map, st->files[i].map_len);
    free(st->files);
    memset(st, 0, sizeof *st);
}

dbt_st_tensor *dbt_st_find(dbt_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

static const char *dtype_str(dbt_dtype t) {
    switch (t) {
    case DBT_DT_F32: return "F32";
    case DBT_DT_F16: return "F16";
    case DBT_DT_BF16: return "BF16";
    case DBT_DT_I8: return "I8";
    case DBT_DT_I32: return "I32";
    case DBT_DT_I64: return "I64";
    default: return NULL;
    }
}

int dbt_st_write(const char *path, const dbt_st_write_tensor *t, int n, const char *metadata_json) {
    cJSON *h = cJSON_CreateObject();
    if (!h) return dbt_set_error("out of memory");
    if (metadata_json) {
        cJSON *m = cJSON_Parse(metadata_json);
        if (m) cJSON_AddItemToObject(h, "__metadata__", m);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const char *ds = dtype_str(t[i].dtype);
        if (!ds) { cJSON_Delete(h); return dbt_set_error("cannot write dtype of \"%s\"", t[i].name); }
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", ds);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
            numel *= (uint64_t)t[i].shape[d];
        }
        uint64_t bytes = numel * dbt_dtype_size(t[i].dtype);
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    char *hs = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!hs) return dbt_set_error("out of memory");
    size_t hl = strlen(hs), padded = (hl + 7) / 8 * 8; /* data starts 8-byte aligned */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) { free(hs); return dbt_set_error("cannot create %s: %s", tmp, strerror(errno)); }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hs, 1, hl, f) == hl;
    for (size_t i = hl; i < padded && ok; i++) ok = fputc(' ', f) != EOF;
    free(hs);
    for (int i = 0; i < n && ok; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (uint64_t)t[i].shape[d];
        size_t bytes = (size_t)(numel * dbt_dtype_size(t[i].dtype));
        ok = bytes == 0 || fwrite(t[i].data, 1, bytes, f) == bytes;
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return dbt_set_error("cannot write %s: %s", path, strerror(err));
    }
    return 0;
}
