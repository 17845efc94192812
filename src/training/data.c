/* data.c — the data readers. Every reader reports the file and line of what it cannot read
 * instead of skipping it silently. */
#include "data.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../common/error.h"
#include "../common/utf8.h"

#define MAX_DATA_BYTES (2ull << 30)

int dbt_read_lines(const char *path, dbt_lines *out) {
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb"); /* reads plain files as they are */
    if (!f) return dbt_set_error("cannot open %s", path);
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    int r;
    while (buf && (r = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)r;
        if (n == cap) {
            if (cap >= MAX_DATA_BYTES) { free(buf); buf = NULL; break; }
            char *b = realloc(buf, cap * 2 + 1);
            if (!b) { free(buf); buf = NULL; break; }
            buf = b;
            cap *= 2;
        }
    }
    int err;
    const char *msg = gzerror(f, &err);
    gzclose(f);
    if (!buf) return dbt_set_error("%s: too large or out of memory", path);
    if (err != Z_OK && err != Z_STREAM_END) { free(buf); return dbt_set_error("%s: %s", path, msg); }
    buf[n] = '\0';
    int64_t count = 0;
    for (size_t i = 0; i < n; i++) count += buf[i] == '\n';
    if (n && buf[n - 1] != '\n') count++;
    out->lines = malloc((size_t)(count ? count : 1) * sizeof *out->lines);
    if (!out->lines) { free(buf); return dbt_set_error("out of memory"); }
    char *line = buf;
    for (size_t i = 0; i <= n && out->n < count; i++)
        if (i == n || buf[i] == '\n') {
            buf[i] = '\0';
            if (i > 0 && buf + i > line && buf[i - 1] == '\r') buf[i - 1] = '\0';
            out->lines[out->n++] = line;
            line = buf + i + 1;
        }
    out->storage = buf;
    return 0;
}

void dbt_lines_free(dbt_lines *l) {
    free(l->lines);
    free(l->storage);
    memset(l, 0, sizeof *l);
}

/* ---- fields of one record ------------------------------------------------------------- */

typedef struct {
    char **f;
    int n, cap;
} fields;

static void fields_push(fields *fl, char *s) {
    if (fl->n == fl->cap) {
        fl->cap = fl->cap ? fl->cap * 2 : 16;
        fl->f = realloc(fl->f, (size_t)fl->cap * sizeof *fl->f);
    }
    fl->f[fl->n++] = s;
}

/* Splits a TSV line in place. */
static void split_tsv(char *line, fields *fl) {
    fl->n = 0;
    fields_push(fl, line);
    for (char *p = line; *p; p++)
        if (*p == '\t') { *p = '\0'; fields_push(fl, p + 1); }
}

/* Splits a CSV line in place (RFC 4180 quotes; a quoted field may not span lines here). */
static void split_csv(char *line, fields *fl) {
    fl->n = 0;
    char *r = line, *w = line;
    fields_push(fl, w);
    int quoted = 0;
    while (*r) {
        if (quoted) {
            if (*r == '"' && r[1] == '"') { *w++ = '"'; r += 2; }
            else if (*r == '"') { quoted = 0; r++; }
            else *w++ = *r++;
        } else if (*r == '"') { quoted = 1; r++; }
        else if (*r == ',') { *w++ = '\0'; r++; fields_push(fl, w); }
        else *w++ = *r++;
    }
    *w = '\0';
}

static int find_column(const fields *header, const char *want, const char *const *guesses) {
    if (want) {
        char *end;
        long idx = strtol(want, &end, 10);
        if (!*end && idx >= 0) return (int)idx;
        for (int i = 0; i < header->n; i++)
            if (!strcmp(header->f[i], want)) return i;
        return -2; /* asked for and not there */
    }
    for (int g = 0; guesses && guesses[g]; g++)
        for (int i = 0; i < header->n; i++)
            if (!strcasecmp(header->f[i], guesses[g])) return i;
    return -1;
}

/* Whether `want` is a column name (not an index) that the header line holds. */
static int names_column(const fields *header, const char *want) {
    if (!want) return 0;
    char *end;
    (void)strtol(want, &end, 10);
    if (*want && !*end) return 0; /* an index */
    for (int i = 0; i < header->n; i++)
        if (!strcmp(header->f[i], want)) return 1;
    return 0;
}

static const char *const TEXT_NAMES[] = {"sentence", "text", "sentence1", "#1 String", "question", "question1",
                                         "premise", "review", "content", NULL};
static const char *const PAIR_NAMES[] = {"sentence2", "#2 String", "question2", "text_pair", "hypothesis", NULL};
static const char *const LABEL_NAMES[] = {"label", "Quality", "score", "gold_label", "labels", NULL};

static int is_int(const char *s, long *v) {
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || *end) return 0;
    *v = x;
    return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int dbt_read_classification(const char *path, const dbt_cls_format *fmt, const char *const *names, int n_names,
                            dbt_cls_data *out) {
    memset(out, 0, sizeof *out);
    dbt_cls_format f = {0};
    if (fmt) f = *fmt;
    dbt_lines L;
    if (dbt_read_lines(path, &L)) return -1;
    size_t plen = strlen(path);
    const char *ext = plen > 3 && !strcmp(path + plen - 3, ".gz") ? path + (plen > 7 ? plen - 7 : 0) : path + (plen > 4 ? plen - 4 : 0);
    const int jsonl = strstr(ext, "json") != NULL, csv = !jsonl && strstr(ext, "csv") != NULL;
    fields fl = {0}, header = {0};
    char *header_line = NULL;
    char **raw_labels = calloc((size_t)(L.n ? L.n : 1), sizeof *raw_labels);
    out->ex = calloc((size_t)(L.n ? L.n : 1), sizeof *out->ex);
    int rc = -1, ti = -1, pi = -1, li = -1, last_tab = 0;
    int64_t first = 0;
    if (!raw_labels || !out->ex) { dbt_set_error("out of memory"); goto done; }
    if (!jsonl) {
        while (first < L.n && !*L.lines[first]) first++;
        if (first >= L.n) { dbt_set_error("%s has no data", path); goto done; }
        header_line = strdup(L.lines[first]);
        if (!header_line) { dbt_set_error("out of memory"); goto done; }
        char *h = header_line;
        if (!strncmp(h, "\xEF\xBB\xBF", 3)) h += 3; /* a UTF-8 byte order mark (GLUE's MRPC) */
        if (csv) split_csv(h, &header); else split_tsv(h, &header);
        /* A header is a first line that names a known column or a column asked for by name; a column
         * asked for by index names nothing (a headerless file would otherwise lose its first example). */
        int has_header = !f.no_header && (find_column(&header, NULL, TEXT_NAMES) >= 0 ||
                                          find_column(&header, NULL, LABEL_NAMES) >= 0 ||
                                          names_column(&header, f.text_column) ||
                                          names_column(&header, f.label_column));
        if (has_header) {
            ti = find_column(&header, f.text_column, TEXT_NAMES);
            pi = find_column(&header, f.pair_column, PAIR_NAMES);
            li = find_column(&header, f.label_column, LABEL_NAMES);
            first++;
        } else if (f.text_column || f.label_column) {
            ti = f.text_column ? atoi(f.text_column) : 0;
            li = f.label_column ? atoi(f.label_column) : header.n - 1;
            pi = f.pair_column ? atoi(f.pair_column) : -1;
        } else if (header.n == 4 && (!strcmp(header.f[1], "0") || !strcmp(header.f[1], "1"))) {
            ti = 3; /* GLUE CoLA: source, label, original mark, sentence */
            li = 1;
        } else {
            last_tab = 1; /* "text<TAB>label": the text may hold TABs, the label follows the last */
            ti = 0;
            li = 1;
        }
        if (ti < 0 || li < 0 || ti == li || pi == -2) {
            dbt_set_error("%s: cannot find the text and label columns (use --text-column and --label-column)", path);
            goto done;
        }
    }
    for (int64_t i = first; i < L.n; i++) {
        char *line = L.lines[i];
        if (!*line) continue;
        dbt_cls_example *e = &out->ex[out->n];
        const char *text = NULL, *pair = NULL, *label = NULL;
        char numbuf[64];
        cJSON *j = NULL;
        if (jsonl) {
            j = cJSON_Parse(line);
            if (!cJSON_IsObject(j)) { cJSON_Delete(j); dbt_set_error("%s:%lld: not a JSON object", path, (long long)i + 1); goto done; }
            const cJSON *v = NULL;
            for (int g = 0; TEXT_NAMES[g] && !cJSON_IsString(v); g++)
                v = cJSON_GetObjectItemCaseSensitive(j, f.text_column ? f.text_column : TEXT_NAMES[g]);
            text = cJSON_IsString(v) ? v->valuestring : NULL;
            v = NULL;
            for (int g = 0; PAIR_NAMES[g] && !cJSON_IsString(v); g++)
                v = cJSON_GetObjectItemCaseSensitive(j, f.pair_column ? f.pair_column : PAIR_NAMES[g]);
            pair = cJSON_IsString(v) ? v->valuestring : NULL;
            v = NULL;
            for (int g = 0; LABEL_NAMES[g] && !v; g++)
                v = cJSON_GetObjectItemCaseSensitive(j, f.label_column ? f.label_column : LABEL_NAMES[g]);
            if (cJSON_IsString(v)) label = v->valuestring;
            else if (cJSON_IsNumber(v)) { snprintf(numbuf, sizeof numbuf, "%.17g", v->valuedouble); label = numbuf; }
        } else if (last_tab) {
            char *tab = strrchr(line, '\t');
            if (tab) { *tab = '\0'; text = line; label = tab + 1; }
        } else {
            if (csv) split_csv(line, &fl); else split_tsv(line, &fl);
            if (ti < fl.n) text = fl.f[ti];
            if (pi >= 0 && pi < fl.n) pair = fl.f[pi];
            if (li < fl.n) label = fl.f[li];
        }
        if (!text || !label) {
            cJSON_Delete(j);
            dbt_set_error("%s:%lld: missing text or label", path, (long long)i + 1);
            goto done;
        }
        e->text = strdup(text);
        e->pair = pair ? strdup(pair) : NULL;
        raw_labels[out->n] = strdup(label);
        cJSON_Delete(j);
        out->n++;
        if (!e->text || !raw_labels[out->n - 1]) { dbt_set_error("out of memory"); goto done; }
    }
    if (out->n == 0) { dbt_set_error("%s has no examples", path); goto done; }

    /* Labels → ids */
    if (f.regression) {
        out->regression = 1;
        out->n_labels = 1;
        out->label_names = calloc(1, sizeof *out->label_names);
        out->label_names[0] = strdup("LABEL_0");
        for (int64_t i = 0; i < out->n; i++) {
            char *end;
            out->ex[i].target = strtof(raw_labels[i], &end);
            if (end == raw_labels[i] || *end) { dbt_set_error("%s: label \"%s\" is not a number", path, raw_labels[i]); goto done; }
        }
        rc = 0;
        goto done;
    }
    int all_int = 1;
    long maxv = -1, v;
    for (int64_t i = 0; i < out->n && all_int; i++) {
        if (!is_int(raw_labels[i], &v) || v < 0) all_int = 0;
        else if (v > maxv) maxv = v;
    }
    if (names && n_names > 0) { /* the model's labels decide */
        for (int64_t i = 0; i < out->n; i++) {
            int id = -1;
            for (int k = 0; k < n_names && id < 0; k++)
                if (!strcmp(names[k], raw_labels[i])) id = k;
            if (id < 0 && all_int && maxv < n_names) id = (int)strtol(raw_labels[i], NULL, 10);
            if (id < 0) { dbt_set_error("%s: label \"%s\" is not one of the model's %d labels", path, raw_labels[i], n_names); goto done; }
            out->ex[i].label = id;
        }
        out->n_labels = n_names;
        out->label_names = calloc((size_t)n_names, sizeof *out->label_names);
        for (int k = 0; k < n_names; k++) out->label_names[k] = strdup(names[k]);
    } else if (all_int && maxv < 1000) {
        out->n_labels = (int)maxv + 1 < 2 ? 2 : (int)maxv + 1;
        out->label_names = calloc((size_t)out->n_labels, sizeof *out->label_names);
        for (int k = 0; k < out->n_labels; k++) {
            char b[32];
            snprintf(b, sizeof b, "LABEL_%d", k);
            out->label_names[k] = strdup(b);
        }
        for (int64_t i = 0; i < out->n; i++) out->ex[i].label = (int32_t)strtol(raw_labels[i], NULL, 10);
    } else {
        char **sorted = malloc((size_t)out->n * sizeof *sorted);
        memcpy(sorted, raw_labels, (size_t)out->n * sizeof *sorted);
        qsort(sorted, (size_t)out->n, sizeof *sorted, cmp_str);
        out->label_names = calloc((size_t)out->n, sizeof *out->label_names);
        for (int64_t i = 0; i < out->n; i++)
            if (i == 0 || strcmp(sorted[i], sorted[i - 1])) out->label_names[out->n_labels++] = strdup(sorted[i]);
        free(sorted);
        for (int64_t i = 0; i < out->n; i++) {
            char **hit = bsearch(&raw_labels[i], out->label_names, (size_t)out->n_labels, sizeof *hit, cmp_str);
            out->ex[i].label = (int32_t)(hit - out->label_names);
        }
    }
    rc = 0;
done:
    if (raw_labels)
        for (int64_t i = 0; i < out->n; i++) free(raw_labels[i]);
    free(raw_labels);
    free(header_line);
    free(header.f);
    free(fl.f);
    dbt_lines_free(&L);
    if (rc) dbt_cls_data_free(out);
    return rc;
}

void dbt_cls_data_free(dbt_cls_data *d) {
    if (d->ex)
        for (int64_t i = 0; i < d->n; i++) { free(d->ex[i].text); free(d->ex[i].pair); }
    free(d->ex);
    if (d->label_names)
        for (int k = 0; k < d->n_labels; k++) free(d->label_names[k]);
    free(d->label_names);
    memset(d, 0, sizeof *d);
}

/* ---- CoNLL ------------------------------------------------------------------------------ */

int dbt_read_conll(const char *path, const char *const *names, int n_names, dbt_ner_data *out) {
    memset(out, 0, sizeof *out);
    dbt_lines L;
    if (dbt_read_lines(path, &L)) return -1;
    int rc = -1;
    char **tags = NULL; /* one per token, in order */
    int64_t n_tok = 0, cap_tok = 0, cap_s = 0;
    dbt_ner_sentence cur = {0};
    int cur_cap = 0;
    char **all_tag_names = NULL;
    for (int64_t i = 0; i <= L.n; i++) {
        char *line = i < L.n ? L.lines[i] : "";
        while (*line == ' ' || *line == '\t') line++;
        if (!*line || !strncmp(line, "-DOCSTART-", 10)) {
            if (cur.n > 0) {
                if (out->n == cap_s) {
                    cap_s = cap_s ? cap_s * 2 : 1024;
                    out->s = realloc(out->s, (size_t)cap_s * sizeof *out->s);
                }
                out->s[out->n++] = cur;
                memset(&cur, 0, sizeof cur);
                cur_cap = 0;
            }
            continue;
        }
        char *word = line, *last = NULL;
        char *sp = strpbrk(line, " \t");
        if (!sp) { dbt_set_error("%s:%lld: a token line needs a word and a tag", path, (long long)i + 1); goto done; }
        *sp = '\0';
        for (char *p = sp + 1; *p; p++)
            if ((p[-1] == '\0' || p[-1] == ' ' || p[-1] == '\t') && *p != ' ' && *p != '\t') last = p;
        if (!last) { dbt_set_error("%s:%lld: no tag", path, (long long)i + 1); goto done; }
        char *e = last + strcspn(last, " \t");
        *e = '\0';
        if (cur.n == cur_cap) {
            cur_cap = cur_cap ? cur_cap * 2 : 32;
            cur.words = realloc(cur.words, (size_t)cur_cap * sizeof *cur.words);
            cur.tags = realloc(cur.tags, (size_t)cur_cap * sizeof *cur.tags);
        }
        cur.words[cur.n] = strdup(word);
        cur.tags[cur.n] = (int32_t)n_tok;
        cur.n++;
        if (n_tok == cap_tok) {
            cap_tok = cap_tok ? cap_tok * 2 : 4096;
            tags = realloc(tags, (size_t)cap_tok * sizeof *tags);
        }
        tags[n_tok++] = strdup(last);
    }
    if (out->n == 0) { dbt_set_error("%s has no sentences", path); goto done; }
    if (names && n_names > 0) {
        out->n_labels = n_names;
        out->label_names = calloc((size_t)n_names, sizeof *out->label_names);
        for (int k = 0; k < n_names; k++) out->label_names[k] = strdup(names[k]);
    } else {
        all_tag_names = malloc((size_t)n_tok * sizeof *all_tag_names);
        memcpy(all_tag_names, tags, (size_t)n_tok * sizeof *all_tag_names);
        qsort(all_tag_names, (size_t)n_tok, sizeof *all_tag_names, cmp_str);
        out->label_names = calloc((size_t)n_tok, sizeof *out->label_names);
        for (int64_t i = 0; i < n_tok; i++)
            if (i == 0 || strcmp(all_tag_names[i], all_tag_names[i - 1]))
                out->label_names[out->n_labels++] = strdup(all_tag_names[i]);
    }
    for (int64_t s = 0; s < out->n; s++)
        for (int t = 0; t < out->s[s].n; t++) {
            const char *tag = tags[out->s[s].tags[t]];
            int id = -1;
            for (int k = 0; k < out->n_labels && id < 0; k++)
                if (!strcmp(out->label_names[k], tag)) id = k;
            if (id < 0) { dbt_set_error("%s: tag \"%s\" is not one of the model's labels", path, tag); goto done; }
            out->s[s].tags[t] = id;
        }
    rc = 0;
done:
    for (int64_t i = 0; i < n_tok; i++) free(tags[i]);
    free(tags);
    free(all_tag_names);
    for (int t = 0; t < cur.n; t++) free(cur.words[t]);
    free(cur.words);
    free(cur.tags);
    dbt_lines_free(&L);
    if (rc) dbt_ner_data_free(out);
    return rc;
}

void dbt_ner_data_free(dbt_ner_data *d) {
    for (int64_t s = 0; s < d->n; s++) {
        for (int t = 0; t < d->s[s].n; t++) free(d->s[s].words[t]);
        free(d->s[s].words);
        free(d->s[s].tags);
    }
    free(d->s);
    if (d->label_names)
        for (int k = 0; k < d->n_labels; k++) free(d->label_names[k]);
    free(d->label_names);
    memset(d, 0, sizeof *d);
}

/* ---- SQuAD -------------------------------------------------------------------------------- */

int dbt_read_squad(const char *path, dbt_qa_data *out) {
    memset(out, 0, sizeof *out);
    dbt_lines L;
    if (dbt_read_lines(path, &L)) return -1;
    /* the lines were split in place: join them back into one text */
    size_t total = 0;
    for (int64_t i = 0; i < L.n; i++) total += strlen(L.lines[i]) + 1;
    char *text = malloc(total + 1), *w = text;
    for (int64_t i = 0; text && i < L.n; i++) {
        size_t n = strlen(L.lines[i]);
        memcpy(w, L.lines[i], n);
        w += n;
        *w++ = '\n';
    }
    dbt_lines_free(&L);
    if (!text) return dbt_set_error("out of memory");
    *w = '\0';
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    if (!cJSON_IsArray(data)) { cJSON_Delete(j); return dbt_set_error("%s: not SQuAD JSON (no \"data\" list)", path); }
    int64_t cap = 0;
    const cJSON *article, *para, *qa, *ans;
    cJSON_ArrayForEach(article, data) {
        cJSON_ArrayForEach(para, cJSON_GetObjectItemCaseSensitive(article, "paragraphs")) {
            const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(para, "context");
            if (!cJSON_IsString(ctx)) continue;
            cJSON_ArrayForEach(qa, cJSON_GetObjectItemCaseSensitive(para, "qas")) {
                const cJSON *q = cJSON_GetObjectItemCaseSensitive(qa, "question"), *id = cJSON_GetObjectItemCaseSensitive(qa, "id");
                if (!cJSON_IsString(q)) continue;
                if (out->n == cap) {
                    cap = cap ? cap * 2 : 1024;
                    out->ex = realloc(out->ex, (size_t)cap * sizeof *out->ex);
                }
                dbt_qa_example *e = &out->ex[out->n++];
                memset(e, 0, sizeof *e);
                e->id = strdup(cJSON_IsString(id) ? id->valuestring : "");
                e->question = strdup(q->valuestring);
                e->context = strdup(ctx->valuestring);
                const cJSON *answers = cJSON_GetObjectItemCaseSensitive(qa, "answers");
                int na = cJSON_GetArraySize(answers);
                e->answers = calloc((size_t)(na ? na : 1), sizeof *e->answers);
                e->starts = calloc((size_t)(na ? na : 1), sizeof *e->starts);
                cJSON_ArrayForEach(ans, answers) {
                    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ans, "text");
                    const cJSON *s = cJSON_GetObjectItemCaseSensitive(ans, "answer_start");
                    if (!cJSON_IsString(t) || !cJSON_IsNumber(s)) continue;
                    e->answers[e->n_answers] = strdup(t->valuestring);
                    e->starts[e->n_answers++] = (int32_t)s->valuedouble;
                }
            }
        }
    }
    cJSON_Delete(j);
    if (out->n == 0) return dbt_set_error("%s has no questions", path);
    return 0;
}

void dbt_qa_data_free(dbt_qa_data *d) {
    for (int64_t i = 0; i < d->n; i++) {
        dbt_qa_example *e = &d->ex[i];
        free(e->id);
        free(e->question);
        free(e->context);
        for (int k = 0; k < e->n_answers; k++) free(e->answers[k]);
        free(e->answers);
        free(e->starts);
    }
    free(d->ex);
    memset(d, 0, sizeof *d);
}
