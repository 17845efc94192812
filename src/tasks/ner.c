/* ner.c — the token-classification (NER) pipeline, as transformers 4.46's
 * TokenClassificationPipeline (pipeline("token-classification")) does it:
 *
 *   logits per token ──softmax──▶ scores ──gather_pre_entities──▶ one record per non-special
 *   token (word, offsets, is_subword) ──aggregate──▶ per token (none, simple) or per word
 *   (first, average, max) ──group_entities──▶ entity groups (all but none) ──▶ drop label "O".
 *
 * Long texts are truncated to the model's limit and only the first window is labelled.
 * transformers behaves the same unless it is given `stride` (then it labels overlapping windows
 * and merges the entities); that is not offered here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/utf8.h"
#include "../tokenizer/tokenizer_internal.h"
#include "tasks.h"

/* ---- numpy's float32 arithmetic, so that scores round as they do in the pipeline ---------- */

/* np.add.reduce over a contiguous float32 run: pairwise summation with 8 accumulators. */
static float np_sum(const float *a, int n) {
    if (n < 8) {
        float r = 0.0f;
        for (int i = 0; i < n; i++) r += a[i];
        return r;
    }
    if (n <= 128) {
        float r[8];
        int i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int n2 = n / 2;
    n2 -= n2 % 8;
    return np_sum(a, n2) + np_sum(a + n2, n - n2);
}

/* np.nanmean of float32 values (none are NaN here): the float32 sum divided by the integer
 * count, which numpy computes in double and rounds back to float32. */
static float np_mean(const float *a, int n) { return (float)((double)np_sum(a, n) / n); }

/* exp(x - max) / sum along the row, as postprocess() writes it with numpy. */
static void np_softmax(float *v, int n) {
    float mx = v[0];
    for (int i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    for (int i = 0; i < n; i++) v[i] = expf(v[i] - mx);
    float sum = np_sum(v, n);
    for (int i = 0; i < n; i++) v[i] /= sum;
}

/* np.argmax: the first index of the largest value. */
static int np_argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* ---- strings ------------------------------------------------------------------------------ */

/* The strings made while labelling one text, freed together. */
typedef struct {
    char **v;
    int n, cap;
} strpool;

static char *pool_keep(strpool *p, char *s) {
    if (!s) return NULL;
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        char **v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v) { free(s); return NULL; }
        p->v = v;
        p->cap = cap;
    }
    return p->v[p->n++] = s;
}

static void pool_clear(strpool *p) {
    for (int i = 0; i < p->n; i++) free(p->v[i]);
    p->n = 0;
}

/* tokenizer.convert_tokens_to_string(tokens): the WordPiece decoder on strings. dbt_decode does the
 * same from ids, but here the "tokens" may be text cut from the input ([UNK]) or words already
 * joined by an earlier pass (the word strategies join twice). */
static char *tokens_to_string(const dbt_tokenizer *tok, const char *const *tokens, int n) {
    return dbt_wordpiece_join(tok, tokens, n);
}

/* sentence[start:end] as UTF-8 (Python slicing: clamped). */
static char *slice_text(const int32_t *cps, int n_cps, int start, int end) {
    if (start < 0) start = 0;
    if (end > n_cps) end = n_cps;
    if (end < start) end = start;
    char *s = malloc((size_t)(end - start) * 4 + 1), *w = s;
    if (!s) return NULL;
    for (int i = start; i < end; i++) w += dbt_utf8_encode(cps[i], w);
    *w = '\0';
    return s;
}

/* ---- the pipeline's records ---------------------------------------------------------------- */

typedef struct {
    const float *scores; /* n_labels probabilities */
    int index;           /* position in the encoding ([CLS] is 0) */
    int start, end;      /* code points of the input */
    int is_subword;
    const char *word;    /* the token, or for [UNK] the text it covers */
} pre_entity;

typedef struct {
    int label;
    float score;
    int index; /* aggregation none and simple only */
    int start, end;
    const char *word;
} entity;

/* get_tag: "B-X" → (B, X), "I-X" → (I, X), anything else → (I, itself). */
static const char *get_tag(const char *name, char *bi) {
    if (!strncmp(name, "B-", 2) || !strncmp(name, "I-", 2)) {
        *bi = name[0];
        return name + 2;
    }
    *bi = 'I';
    return name;
}

/* Labels one encoded text into w. Returns 0, or -1 on allocation failure. */
static int label_one(const dbt_model *m, const dbt_encoding *e, const float *logits, const char *text,
                     dbt_aggregation agg, dbt_jw *w, strpool *pool) {
    const dbt_tokenizer *tok = m->tok;
    const dbt_model_info *info = &m->info;
    const int L = info->n_labels, T = e->n;
    const int32_t unk = dbt_tokenizer_special_ids(tok).unk;
    int rc = -1;

    /* the text as code points: offsets index it, as Python's str does */
    size_t bytes = strlen(text);
    int32_t *cps = malloc((bytes + 1) * sizeof *cps);
    float *scores = malloc(((size_t)T * L + 1) * sizeof *scores);
    pre_entity *pre = malloc(((size_t)T + 1) * sizeof *pre);
    entity *ents = malloc(((size_t)T + 1) * sizeof *ents);
    const char **words = malloc(((size_t)T + 1) * sizeof *words);
    float *acc = malloc(((size_t)L + T + 1) * sizeof *acc);
    if (!cps || !scores || !pre || !ents || !words || !acc) goto done;
    int n_cps = 0;
    for (size_t i = 0; i < bytes; n_cps++) i += dbt_utf8_decode((const unsigned char *)text + i, bytes - i, &cps[n_cps]);

    memcpy(scores, logits, (size_t)T * L * sizeof *scores);
    for (int t = 0; t < T; t++) np_softmax(scores + (size_t)t * L, L);

    /* gather_pre_entities */
    int np = 0;
    for (int t = 0; t < T; t++) {
        if (e->special_tokens_mask[t]) continue;
        pre_entity *p = &pre[np++];
        p->scores = scores + (size_t)t * L;
        p->index = t;
        p->start = e->offsets[2 * t];
        p->end = e->offsets[2 * t + 1];
        p->word = dbt_tokenizer_id_to_token(tok, e->ids[t]);
        int ref_len = (p->end < n_cps ? p->end : n_cps) - p->start;
        if (ref_len < 0) ref_len = 0;
        if (tok->prefix_len > 0) {
            /* a word-aware tokenizer: a continuation piece is longer than the text it covers
             * ("##ing" vs "ing"). transformers compares lengths, so normalization that changes
             * the length (e.g. decomposed accents stripped) counts as a subword too. */
            p->is_subword = (int)dbt_utf8_count(p->word, strlen(p->word)) != ref_len;
        } else {
            /* transformers' fallback heuristic: " " not in sentence[start - 1:start + 1] */
            int s = p->start;
            p->is_subword = s > 0 && !(s - 1 < n_cps && cps[s - 1] == ' ') && !(s < n_cps && cps[s] == ' ');
        }
        if (e->ids[t] == unk) {
            if (!(p->word = pool_keep(pool, slice_text(cps, n_cps, p->start, p->end)))) goto done;
            p->is_subword = 0;
        }
    }

    /* aggregate: per token, or per word for the word strategies */
    int ne = 0;
    if (agg == DBT_AGG_NONE || agg == DBT_AGG_SIMPLE) {
        for (int i = 0; i < np; i++) {
            int k = np_argmax(pre[i].scores, L);
            ents[ne++] = (entity){k, pre[i].scores[k], pre[i].index, pre[i].start, pre[i].end, pre[i].word};
        }
    } else {
        /* aggregate_words: a word is a token and the subword tokens that follow it */
        for (int i = 0; i < np;) {
            int j = i + 1;
            while (j < np && pre[j].is_subword) j++;
            const float *s;
            if (agg == DBT_AGG_FIRST) {
                s = pre[i].scores;
            } else if (agg == DBT_AGG_MAX) { /* the first token with the highest top score */
                int best = i;
                for (int q = i + 1; q < j; q++)
                    if (pre[q].scores[np_argmax(pre[q].scores, L)] > pre[best].scores[np_argmax(pre[best].scores, L)])
                        best = q;
                s = pre[best].scores;
            } else { /* average: np.nanmean over the tokens, label by label (a plain float sum) */
                for (int k = 0; k < L; k++) {
                    float sum = 0.0f;
                    for (int q = i; q < j; q++) sum += pre[q].scores[k];
                    acc[k] = (float)((double)sum / (j - i));
                }
                s = acc;
            }
            int k = np_argmax(s, L);
            for (int q = i; q < j; q++) words[q - i] = pre[q].word;
            const char *word = pool_keep(pool, tokens_to_string(tok, words, j - i));
            if (!word) goto done;
            ents[ne++] = (entity){k, s[k], -1, pre[i].start, pre[j - 1].end, word};
            i = j;
        }
    }

    dbt_jw_lit(w, "[");
    int first = 1;
    if (agg == DBT_AGG_NONE) {
        for (int i = 0; i < ne; i++) {
            const char *label = info->id2label[ents[i].label];
            if (!strcmp(label, "O")) continue; /* ignore_labels */
            dbt_jw_lit(w, first ? "{\"entity\":" : ",{\"entity\":");
            first = 0;
            dbt_jw_str(w, label, strlen(label));
            dbt_jw_lit(w, ",\"score\":");
            dbt_jw_float(w, ents[i].score);
            dbt_jw_lit(w, ",\"index\":");
            dbt_jw_int(w, ents[i].index);
            dbt_jw_lit(w, ",\"word\":");
            dbt_jw_str(w, ents[i].word, strlen(ents[i].word));
            dbt_jw_lit(w, ",\"start\":");
            dbt_jw_int(w, ents[i].start);
            dbt_jw_lit(w, ",\"end\":");
            dbt_jw_int(w, ents[i].end);
            dbt_jw_lit(w, "}");
        }
    } else {
        /* group_entities: an entity joins the group before it when it has the same tag and is
         * not a B- (compared with the group's last entity); "O" tokens group too, then go. */
        for (int g = 0; g < ne;) {
            int j = g + 1;
            for (; j < ne; j++) {
                char bi, last_bi;
                const char *tag = get_tag(info->id2label[ents[j].label], &bi);
                const char *last_tag = get_tag(info->id2label[ents[j - 1].label], &last_bi);
                if (strcmp(tag, last_tag) != 0 || bi == 'B') break;
            }
            /* group_sub_entities: the first entity's label after its first "-" */
            const char *label = info->id2label[ents[g].label], *dash = strchr(label, '-');
            const char *group = dash ? dash + 1 : label;
            if (strcmp(group, "O") != 0) {
                for (int q = g; q < j; q++) {
                    acc[q - g] = ents[q].score;
                    words[q - g] = ents[q].word;
                }
                char *word = tokens_to_string(tok, words, j - g);
                if (!word) goto done;
                dbt_jw_lit(w, first ? "{\"entity_group\":" : ",{\"entity_group\":");
                first = 0;
                dbt_jw_str(w, group, strlen(group));
                dbt_jw_lit(w, ",\"score\":");
                dbt_jw_float(w, np_mean(acc, j - g));
                dbt_jw_lit(w, ",\"word\":");
                dbt_jw_str(w, word, strlen(word));
                dbt_jw_lit(w, ",\"start\":");
                dbt_jw_int(w, ents[g].start);
                dbt_jw_lit(w, ",\"end\":");
                dbt_jw_int(w, ents[j - 1].end);
                dbt_jw_lit(w, "}");
                free(word);
            }
            g = j;
        }
    }
    dbt_jw_lit(w, "]");
    rc = 0;
done:
    free(cps);
    free(scores);
    free(pre);
    free(ents);
    free(words);
    free(acc);
    pool_clear(pool);
    return rc;
}

int dbt_task_ner(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out) {
    const dbt_model_info *info = dbt_model_get_info(m);
    for (int i = 0; i < n; i++)
        if (in[i].text_pair) return dbt_set_error("input %d: token classification takes a single text, not a pair", i);
    if (info->n_labels < 1) return dbt_set_error("the model has no labels");
    /* transformers truncates to tokenizer.model_max_length; the model's position limit caps it */
    int max_length = o->max_length;
    int tok_max = dbt_tokenizer_model_max_length(m->tok);
    if (max_length <= 0 && tok_max > 0 && tok_max < info->max_position_embeddings) max_length = tok_max;
    dbt_encoding *encs;
    if (dbt_task_encode(m, in, n, max_length, &encs)) return -1;
    dbt_output out;
    if (dbt_task_forward(m, encs, n, o->batch_size, NULL, &out)) {
        dbt_encodings_free(encs, n);
        return -1;
    }
    const int L = info->n_labels;
    int rc = 0;
    if (out.logits_cols != L) rc = dbt_set_error("the head gives %d logits per token for %d labels", out.logits_cols, L);
    strpool pool = {0};
    for (int i = 0; i < n && rc == 0; i++) {
        const float *logits = out.logits + (int64_t)out.row_start[i] * L;
        dbt_jw w = {0};
        if (o->raw) dbt_jw_lit(&w, "{\"result\":");
        if (label_one(m, &encs[i], logits, in[i].text, o->aggregation, &w, &pool)) {
            dbt_jw_free(&w);
            rc = dbt_set_error("out of memory");
            break;
        }
        if (o->raw) { /* every token's logits, [CLS] and [SEP] included, so "index" finds its row */
            dbt_jw_lit(&w, ",\"logits\":[");
            for (int t = 0; t < encs[i].n; t++) {
                if (t) dbt_jw_lit(&w, ",");
                dbt_task_json_floats(&w, logits + (int64_t)t * L, L);
            }
            dbt_jw_lit(&w, "]}");
        }
        if (!(json_out[i] = dbt_task_take(&w))) rc = dbt_set_error("out of memory");
    }
    if (rc)
        for (int i = 0; i < n; i++) { free(json_out[i]); json_out[i] = NULL; }
    free(pool.v);
    dbt_output_free(&out);
    dbt_encodings_free(encs, n);
    return rc;
}
