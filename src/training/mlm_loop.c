/* mlm_loop.c — corpus → length-grouped batches → dynamic masking → student (and frozen teacher)
 * forward → distillation loss → backward → AdamW every grad_accum micro-batches → logs and
 * atomic checkpoints. The structure is finetune.c's, with the distiller's data and loss.
 *
 * Reproducibility: the batch order of epoch e depends on (seed, e) only; masking and dropout
 * draw from one generator saved with every checkpoint (with the optimizer moments and the
 * position in the epoch), so a resumed run draws exactly what the uninterrupted one would. */
#include "mlm_loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/file.h"
#include "checkpoint.h"
#include "data.h"
#include "dist.h"
#include "losses.h"
#include "optimizer.h"
#include "report.h"
#include "train_util.h"

/* ---- the corpus --------------------------------------------------------------------------- */

typedef struct {
    int32_t *v;
    int64_t n, cap;
} ids_vec;

typedef struct {
    int64_t *v;
    int64_t n, cap;
} off_vec;

static int grow(void **p, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return dbt_set_error("out of memory");
    *p = q;
    *cap = c;
    return 0;
}

typedef struct {
    dbt_lm_corpus *c;
    ids_vec ids;
    off_vec start;
    dbt_special_ids sp;
    int vocab;
    /* [dist] the lines are shared out: line g (counting over all the files) is tokenized by rank
     * g mod ranks, and each sequence kept remembers its line, so that gather_corpus can put every
     * rank's sequences back in the corpus's order */
    int rank, ranks;
    int64_t line_no, cur_line;
    off_vec seq_line;
} corpus_builder;

/* Keeps one sequence unless it is too short (< 12 tokens) or at least half [UNK]. */
static int keep(corpus_builder *b, const int32_t *seq, int64_t n) {
    if (n < 12) { b->c->n_short++; return 0; }
    int64_t unk = 0;
    for (int64_t i = 0; i < n; i++) unk += seq[i] == b->sp.unk;
    if (b->sp.unk >= 0 && 2 * unk >= n) { b->c->n_unknown++; return 0; }
    if (grow((void **)&b->ids.v, &b->ids.cap, b->ids.n + n, sizeof *b->ids.v) ||
        grow((void **)&b->start.v, &b->start.cap, b->start.n + 2, sizeof *b->start.v))
        return -1;
    for (int64_t i = 0; i < n; i++) {
        if (seq[i] < 0 || seq[i] >= b->vocab) return dbt_set_error("token id %d is outside the model's vocabulary", seq[i]);
        b->c->counts[seq[i]]++;
    }
    memcpy(b->ids.v + b->ids.n, seq, (size_t)n * sizeof *seq);
    b->ids.n += n;
    b->start.v[++b->start.n] = b->ids.n;
    if (b->ranks > 1) { /* [dist] */
        if (grow((void **)&b->seq_line.v, &b->seq_line.cap, b->seq_line.n + 1, sizeof *b->seq_line.v)) return -1;
        b->seq_line.v[b->seq_line.n++] = b->cur_line;
    }
    return 0;
}

/* A sequence longer than max_length: pieces of max_length − 2 tokens (counted on the sequence
 * with its [CLS] and [SEP]), each given the [CLS] / [SEP] it lacks, as the reference splits. */
static int add_sequence(corpus_builder *b, const int32_t *seq, int64_t n, int max_length) {
    if (n <= max_length) return keep(b, seq, n);
    b->c->n_split++;
    int32_t *piece = malloc((size_t)max_length * sizeof *piece);
    if (!piece) return dbt_set_error("out of memory");
    const int64_t step = max_length - 2;
    int rc = 0;
    for (int64_t off = 0; off < n && rc == 0; off += step) {
        int64_t len = n - off < step ? n - off : step, k = 0;
        if (seq[off] != b->sp.cls) piece[k++] = b->sp.cls;
        memcpy(piece + k, seq + off, (size_t)len * sizeof *seq);
        k += len;
        if (seq[off + len - 1] != b->sp.sep) piece[k++] = b->sp.sep;
        rc = keep(b, piece, k);
    }
    free(piece);
    return rc;
}

static int is_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r') return 0;
    return 1;
}

static int read_file_lines(corpus_builder *b, const dbt_tokenizer *tok, const char *path, int max_length) {
    dbt_lines lines;
    if (dbt_read_lines(path, &lines)) return -1;
    const dbt_encode_opts eo = {1, 0, 0, DBT_TRUNCATE_NONE, 0}; /* whole lines: we split them */
    int rc = 0;
    for (int64_t i = 0; i < lines.n && rc == 0; i++) {
        const int64_t g = b->line_no++;
        if (b->ranks > 1 && g % b->ranks != b->rank) continue; /* [dist] another rank's line */
        b->cur_line = g;
        b->c->n_lines++;
        if (is_blank(lines.lines[i])) { b->c->n_short++; continue; } /* [CLS] [SEP]: too short anyway */
        dbt_encoding *e;
        int k = dbt_encode(tok, lines.lines[i], strlen(lines.lines[i]), NULL, 0, &eo, &e);
        if (k < 1) { rc = dbt_prefix_error("%s line %lld", path, (long long)i + 1); break; }
        rc = add_sequence(b, e[0].ids, e[0].n, max_length);
        dbt_encodings_free(e, k);
    }
    dbt_lines_free(&lines);
    return rc;
}

/* [dist] Every rank's sequences, merged in the order of their lines: the corpus one process reads.
 * The token counts and the statistics are summed. Collective. */
static int gather_corpus(corpus_builder *b) {
    dbt_lm_corpus *c = b->c;
    const int N = b->ranks;
    int64_t stats[4] = {c->n_lines, c->n_split, c->n_short, c->n_unknown};
    if (dbt_dist_allreduce_sum_i64(c->counts, b->vocab) || dbt_dist_allreduce_sum_i64(stats, 4)) return -1;
    c->n_lines = stats[0], c->n_split = stats[1], c->n_short = stats[2], c->n_unknown = stats[3];
    typedef struct {
        int64_t n_tok, n_seq;
        int32_t *ids;
        int64_t *start, *line;
    } part;
    part *parts = calloc((size_t)N, sizeof *parts);
    int64_t *pos = calloc((size_t)N, sizeof *pos);
    int32_t *ids = NULL;
    int64_t *start = NULL, total_tok = 0, total_seq = 0;
    int rc = -1;
    if (!parts || !pos) { dbt_set_error("out of memory"); goto done; }
    for (int q = 0; q < N; q++) {
        part *p = &parts[q];
        int64_t hdr[2] = {b->ids.n, b->start.n};
        if (dbt_dist_bcast(hdr, sizeof hdr, q)) goto done;
        p->n_tok = hdr[0], p->n_seq = hdr[1];
        if (q == b->rank) {
            p->ids = b->ids.v, p->start = b->start.v, p->line = b->seq_line.v;
        } else {
            p->ids = malloc((size_t)(p->n_tok ? p->n_tok : 1) * sizeof *p->ids);
            p->start = malloc((size_t)(p->n_seq + 1) * sizeof *p->start);
            p->line = malloc((size_t)(p->n_seq ? p->n_seq : 1) * sizeof *p->line);
            if (!p->ids || !p->start || !p->line) { dbt_set_error("out of memory"); goto done; }
        }
        if (dbt_dist_bcast(p->ids, (size_t)p->n_tok * sizeof *p->ids, q) ||
            dbt_dist_bcast(p->start, (size_t)(p->n_seq + 1) * sizeof *p->start, q) ||
            dbt_dist_bcast(p->line, (size_t)p->n_seq * sizeof *p->line, q))
            goto done;
        total_tok += p->n_tok, total_seq += p->n_seq;
    }
    ids = malloc((size_t)(total_tok ? total_tok : 1) * sizeof *ids);
    start = malloc((size_t)(total_seq + 1) * sizeof *start);
    if (!ids || !start) { dbt_set_error("out of memory"); goto done; }
    start[0] = 0;
    for (int64_t s = 0; s < total_seq; s++) { /* the rank whose next sequence comes from the earliest line */
        int q = -1;
        for (int r = 0; r < N; r++)
            if (pos[r] < parts[r].n_seq && (q < 0 || parts[r].line[pos[r]] < parts[q].line[pos[q]])) q = r;
        const part *p = &parts[q];
        const int64_t a = p->start[pos[q]], len = p->start[pos[q] + 1] - a;
        memcpy(ids + start[s], p->ids + a, (size_t)len * sizeof *ids);
        start[s + 1] = start[s] + len;
        pos[q]++;
    }
    free(b->ids.v), free(b->start.v), free(b->seq_line.v);
    b->ids.v = ids, b->ids.n = b->ids.cap = total_tok;
    b->start.v = start, b->start.n = total_seq, b->start.cap = total_seq + 1;
    b->seq_line.v = NULL, b->seq_line.n = b->seq_line.cap = 0;
    ids = NULL, start = NULL;
    rc = 0;
done:
    for (int q = 0; parts && q < N; q++)
        if (q != b->rank) free(parts[q].ids), free(parts[q].start), free(parts[q].line);
    free(parts);
    free(pos);
    free(ids);
    free(start);
    return rc;
}

int dbt_lm_corpus_read(const dbt_tokenizer *tok, int vocab, const char *const *paths, int n_paths, int max_length,
                       dbt_lm_corpus *c) {
    memset(c, 0, sizeof *c);
    corpus_builder b = {c, {0}, {0}, dbt_tokenizer_special_ids(tok), vocab, dbt_dist_rank(), dbt_dist_size(), 0, 0, {0}};
    if (b.sp.cls < 0 || b.sp.sep < 0) return dbt_set_error("the tokenizer has no [CLS] or [SEP] token");
    if (max_length < 12) return dbt_set_error("max_length must be at least 12 (shorter sequences are dropped)");
    c->counts = calloc((size_t)vocab, sizeof *c->counts);
    if (!c->counts || grow((void **)&b.start.v, &b.start.cap, 1, sizeof *b.start.v)) {
        free(c->counts);
        c->counts = NULL;
        return dbt_set_error("out of memory");
    }
    b.start.v[0] = 0;
    int rc = 0;
    for (int i = 0; i < n_paths && rc == 0; i++) rc = read_file_lines(&b, tok, paths[i], max_length);
    if (rc == 0 && b.ranks > 1) rc = gather_corpus(&b); /* [dist] */
    free(b.seq_line.v);
    c->ids = b.ids.v;
    c->start = b.start.v;
    c->n = b.start.n;
    if (rc) dbt_lm_corpus_free(c);
    return rc;
}

void dbt_lm_corpus_free(dbt_lm_corpus *c) {
    free(c->ids);
    free(c->start);
    free(c->counts);
    memset(c, 0, sizeof *c);
}

/* ---- batches ------------------------------------------------------------------------------ */

int dbt_lm_epoch_order(const dbt_lm_corpus *c, int batch_size, int max_length, uint64_t seed, int64_t epoch,
                       int64_t *order) {
    int n_bins = 0; /* create_lengths_groups: bins 3, 7, 11, … < max_length */
    for (int x = 3; x < max_length; x += 4) n_bins++;
    const int groups = n_bins + 1;
    int64_t *perm = malloc((size_t)(c->n ? c->n : 1) * sizeof *perm);
    int64_t *buf = malloc((size_t)groups * batch_size * sizeof *buf);
    int *fill = calloc((size_t)groups, sizeof *fill);
    if (!perm || !buf || !fill) {
        free(perm);
        free(buf);
        free(fill);
        return dbt_set_error("out of memory");
    }
    dbt_epoch_shuffle(perm, c->n, seed, epoch);
    int64_t out = 0;
    for (int64_t i = 0; i < c->n; i++) {
        int64_t len = c->start[perm[i] + 1] - c->start[perm[i]];
        int g = len < 3 ? 0 : (int)((len - 3) / 4 + 1); /* bisect_right(bins, len) */
        if (g > n_bins) g = n_bins;
        buf[(int64_t)g * batch_size + fill[g]++] = perm[i];
        if (fill[g] == batch_size) {
            memcpy(order + out, buf + (int64_t)g * batch_size, (size_t)batch_size * sizeof *order);
            out += batch_size;
            fill[g] = 0;
        }
    }
    for (int g = 0; g < groups; g++) /* the leftovers, bucket after bucket */
        for (int k = 0; k < fill[g]; k++) order[out++] = buf[(int64_t)g * batch_size + k];
    free(perm);
    free(buf);
    free(fill);
    return 0;
}

/* ---- options ------------------------------------------------------------------------------ */

dbt_mlm_train_opts dbt_mlm_train_opts_default(void) {
    dbt_mlm_train_opts o;
    memset(&o, 0, sizeof o);
    o.max_length = 128;
    o.mask_prop = 0.15;
    o.word_mask = 0.8;
    o.word_keep = 0.1;
    o.word_rand = 0.1;
    o.smoothing = 0.7;
    o.epochs = 3;
    o.lr = 5e-4f;
    o.batch_size = 16;
    o.grad_accum = 1;
    o.warmup_ratio = 0.05f;
    o.max_grad_norm = 5.0f;
    o.seed = 42;
    o.log_every = 10;
    o.progress = -1;
    return o;
}

static dbt_mask_cfg mask_cfg(const dbt_mlm_train_opts *o) {
    dbt_mask_cfg m = {o->mask_prop, o->word_mask, o->word_keep, o->word_rand, o->smoothing};
    return m;
}

int dbt_mlm_train_opts_check(const dbt_mlm_train_opts *o) {
    if (!o->out_dir) return dbt_set_error("an output folder is required");
    if (o->epochs < 1 || o->batch_size < 1 || o->grad_accum < 1 || o->log_every < 1 || o->max_steps < 0 ||
        o->save_every < 0)
        return dbt_set_error("epochs, batch size, accumulation steps and log interval must be >= 1");
    if (o->max_length < 12) return dbt_set_error("max_length must be at least 12");
    if (!(o->lr > 0) || o->warmup_ratio < 0 || o->warmup_ratio > 1 || o->weight_decay < 0 || o->max_grad_norm < 0)
        return dbt_set_error("lr must be > 0, warmup_ratio in [0, 1], weight decay and clipping >= 0");
    dbt_mask_cfg m = mask_cfg(o);
    return dbt_mask_cfg_check(&m);
}

int dbt_mlm_resume_state(const dbt_mlm_train_opts *o) {
    char path[4096];
    int have = dbt_file_exists(dbt_path_join(path, sizeof path, o->out_dir, "trainer_state.json"));
    if (o->resume && !have) return dbt_set_error("--resume: %s has no saved training state", o->out_dir);
    return o->resume ? 1 : 0;
}

int dbt_mlm_prepare_out(const char *out_dir) {
    static const char *const stale[] = {"trainer_state.json", "optimizer.exp_avg.safetensors",
                                        "optimizer.exp_avg_sq.safetensors"};
    char path[4096];
    if (mkdir(out_dir, 0755) != 0 && !dbt_is_dir(out_dir)) return dbt_set_error("cannot create %s", out_dir);
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) unlink(dbt_path_join(path, sizeof path, out_dir, stale[i]));
    return 0;
}

/* ---- the loop ----------------------------------------------------------------------------- */

typedef struct {
    const dbt_mlm_run *r;
    const dbt_mlm_train_opts *o;
    int max_length;
    dbt_lm_corpus corpus;
    dbt_mask_cfg mask;
    double *probs;               /* masking weight of each token id */
    int32_t mask_id;
    int teacher_logits;          /* the teacher computes logits: it has a head and ce/mse use them */
    int64_t *order;
    dbt_encoding *encs;          /* views into `masked` */
    int32_t *ids, *masked, *labels;
    uint8_t *sel;
    dbt_params p;
    dbt_adamw opt;
    dbt_train_cache *cache;      /* the student's training-pass workspace, reused by every step */
    dbt_train_state st;
    dbt_report rep;
    int64_t batches, total, saved_step;
    dbt_distill_terms acc;       /* sums since the last log line */
    int64_t n_acc, tokens;
    double t_log;
    /* [dist] the global batch is gbs = ranks × batch_size sequences; each rank gathers and masks
     * all of it (the masks one process would draw, from the generator every rank shares) and
     * trains on its slice: rows [row0, row0 + rows) of ids/masked/labels */
    int gbs;
    int32_t row0;
    int empty;                   /* this rank's slice is empty: it runs one sequence with weight 0 */
    dbt_distill_norm norm;       /* the global batch's rows and masked tokens */
    int64_t epoch;
    dbt_rng own_rng;             /* this rank's dropout stream (dist.h) */
} loop_ctx;

static void log_start(loop_ctx *L) {
    const dbt_mlm_train_opts *o = L->o;
    const dbt_distill_cfg *c = &L->r->loss;
    char line[1024];
    snprintf(line, sizeof line,
             "{\"event\":\"%s\",\"run\":\"%s\",\"lines\":%lld,\"sequences\":%lld,\"tokens\":%lld,\"split\":%lld,"
             "\"dropped_short\":%lld,\"dropped_unknown\":%lld,\"steps\":%lld,\"warmup_steps\":%lld,\"batch_size\":%d,"
             "\"grad_accum\":%d,\"lr\":%g,\"seed\":%llu,\"params\":%lld,\"temperature\":%g,\"alpha_ce\":%g,"
             "\"alpha_mlm\":%g,\"alpha_mse\":%g,\"alpha_cos\":%g}",
             L->r->resume ? "resume" : "start", L->r->title, (long long)L->corpus.n_lines, (long long)L->corpus.n,
             (long long)L->corpus.start[L->corpus.n], (long long)L->corpus.n_split, (long long)L->corpus.n_short,
             (long long)L->corpus.n_unknown, (long long)L->total, (long long)L->opt.cfg.warmup_steps, o->batch_size,
             o->grad_accum, o->lr, (unsigned long long)o->seed, (long long)L->r->student->info.n_params,
             c->temperature, c->alpha_ce, c->alpha_mlm, c->alpha_mse, c->alpha_cos);
    dbt_report_line(&L->rep, line);
}

/* Parameters, the distiller's AdamW (betas 0.9/0.98, eps 1e-6) with linear warmup and decay
 * over the run's updates, and the saved state when resuming. */
static int setup_optimizer(loop_ctx *L) {
    const dbt_mlm_train_opts *o = L->o;
    L->batches = (L->corpus.n + L->gbs - 1) / L->gbs; /* [dist] global batches */
    L->total = o->max_steps > 0 ? o->max_steps : (L->batches + o->grad_accum - 1) / o->grad_accum * o->epochs;
    if (dbt_params_init(&L->p, L->r->student)) return -1;
    dbt_adamw_cfg ac = dbt_adamw_defaults();
    ac.lr = o->lr;
    ac.beta2 = 0.98f;
    ac.eps = 1e-6f;
    ac.weight_decay = o->weight_decay;
    ac.max_grad_norm = o->max_grad_norm;
    ac.total_steps = L->total;
    ac.warmup_steps = (int64_t)ceil(o->warmup_ratio * (double)L->total);
    if (dbt_adamw_init(&L->opt, &L->p, &ac)) return -1;
    L->st.seed = o->seed;
    L->st.best_metric = -1e300;
    dbt_rng_seed(&L->st.rng, o->seed);
    if (L->r->resume && dbt_load_train_state(o->out_dir, &L->p, &L->opt, &L->st)) return -1;
    if (dbt_dist_bcast_train(&L->p, &L->opt, &L->st)) return -1; /* [dist] every rank starts from rank 0's state */
    L->saved_step = L->r->resume ? L->opt.step : -1;
    return 0;
}

/* Data, buffers, optimizer, and the log. */
static int setup(const dbt_mlm_run *r, loop_ctx *L) {
    const dbt_mlm_train_opts *o = r->o;
    dbt_model *m = r->student;
    const int V = m->cfg.vocab_size;
    L->r = r;
    L->o = o;
    L->gbs = o->batch_size * dbt_dist_size(); /* [dist] */
    L->mask = mask_cfg(o);
    L->max_length = o->max_length < m->cfg.max_position_embeddings ? o->max_length : m->cfg.max_position_embeddings;
    if (r->teacher && r->teacher->cfg.max_position_embeddings < L->max_length)
        L->max_length = r->teacher->cfg.max_position_embeddings;
    if (o->n_corpus < 1 || !o->corpus) return dbt_set_error("a training corpus is required");
    dbt_special_ids sp = dbt_tokenizer_special_ids(r->tok);
    if (sp.mask < 0) return dbt_set_error("the tokenizer has no [MASK] token");
    L->mask_id = sp.mask;
    if (dbt_lm_corpus_read(r->tok, V, o->corpus, o->n_corpus, L->max_length, &L->corpus)) return -1;
    if (L->corpus.n == 0) return dbt_set_error("the corpus has no sequence of 12 tokens or more");
    L->teacher_logits = r->teacher && r->teacher->info.head == DBT_HEAD_MLM && (r->loss.alpha_ce > 0 || r->loss.alpha_mse > 0);
    const size_t cap = (size_t)L->gbs * L->max_length; /* [dist] the global batch is masked whole */
    L->probs = malloc((size_t)V * sizeof *L->probs);
    L->order = malloc((size_t)L->corpus.n * sizeof *L->order);
    L->encs = calloc((size_t)L->gbs, sizeof *L->encs);
    L->ids = malloc(cap * sizeof *L->ids);
    L->masked = malloc(cap * sizeof *L->masked);
    L->labels = malloc(cap * sizeof *L->labels);
    L->sel = malloc(cap);
    if (!L->probs || !L->order || !L->encs || !L->ids || !L->masked || !L->labels || !L->sel)
        return dbt_set_error("out of memory");
    dbt_mlm_token_probs(L->corpus.counts, V, o->smoothing, &sp, L->probs);
    if (setup_optimizer(L)) return -1;
    char path[4096];
    if (dbt_report_open(&L->rep, dbt_dist_rank() ? NULL : dbt_path_join(path, sizeof path, o->out_dir, "train_log.jsonl"),
                        r->resume, o->progress, L->total, "mlm_acc")) /* [dist] rank 0 logs */
        return -1;
    log_start(L);
    if (dbt_dist_size() > 1) {
        char line[160];
        snprintf(line, sizeof line, "{\"event\":\"data_parallel\",\"ranks\":%d,\"global_batch\":%d}", dbt_dist_size(), L->gbs);
        dbt_report_line(&L->rep, line);
    }
    return 0;
}

static void teardown(loop_ctx *L) {
    if (L->rep.log) dbt_report_close(&L->rep);
    dbt_lm_corpus_free(&L->corpus);
    free(L->probs);
    free(L->order);
    free(L->encs);
    free(L->ids);
    free(L->masked);
    free(L->labels);
    free(L->sel);
    dbt_train_cache_free(L->cache);
    dbt_adamw_free(&L->opt);
    dbt_params_free(&L->p);
}

/* Gathers batch b's sequences, packed, and masks them. Returns the sequence count; *rows the
 * token count. */
static int gather_batch(loop_ctx *L, int64_t b, int32_t *rows) {
    const int bs = L->gbs; /* [dist] the global batch, as one process with batch gbs gathers it */
    const int64_t b0 = b * bs;
    const int n = (int)(L->corpus.n - b0 < bs ? L->corpus.n - b0 : bs);
    int32_t R = 0;
    for (int k = 0; k < n; k++) {
        const int64_t idx = L->order[b0 + k], s0 = L->corpus.start[idx];
        const int32_t len = (int32_t)(L->corpus.start[idx + 1] - s0);
        memcpy(L->ids + R, L->corpus.ids + s0, (size_t)len * sizeof *L->ids);
        memset(&L->encs[k], 0, sizeof L->encs[k]);
        L->encs[k].n = len;
        L->encs[k].ids = L->masked + R;
        R += len;
    }
    *rows = R;
    if (dbt_mlm_mask(&L->mask, L->probs, L->r->student->cfg.vocab_size, L->mask_id, L->ids, R, &L->st.rng, L->masked,
                     L->labels) < 0)
        return -1;
    if (dbt_dist_size() == 1) return n;
    /* [dist] this rank's slice of the sequences, its rows, and the global batch's counts */
    int64_t lo;
    int k;
    dbt_dist_shard(n, L->o->batch_size, &lo, &k);
    L->empty = k == 0;
    if (L->empty) lo = 0, k = 1;
    L->norm.rows = R;
    L->norm.masked = 0;
    for (int32_t i = 0; i < R; i++) L->norm.masked += L->labels[i] != DBT_IGNORE_INDEX;
    L->norm.soft = L->r->loss.restrict_ce_to_mask ? L->norm.masked : R; /* as dbt_distill_logit_rows selects */
    L->row0 = (int32_t)(L->encs[lo].ids - L->masked);
    *rows = 0;
    for (int i = 0; i < k; i++) {
        L->encs[i] = L->encs[lo + i];
        *rows += L->encs[i].n;
    }
    return k;
}

/* Forward (student in training mode, teacher frozen), loss, backward for batch b; the gradient
 * is scaled by `scale` (the share of this micro-batch in its update). */
static int micro_step(loop_ctx *L, int64_t b, float scale, dbt_distill_terms *terms) {
    const dbt_mlm_run *r = L->r;
    int32_t R;
    const int n = gather_batch(L, b, &R);
    if (n < 0) return -1;
    const int32_t *labels = L->labels + L->row0; /* [dist] this rank's rows (all of them on one rank) */
    const int64_t R_glob = dbt_dist_size() > 1 ? L->norm.rows : R;
    if (L->empty) scale = 0.0f; /* [dist] a stand-in sequence: no gradient */
    dbt_distill_logit_rows(&r->loss, L->teacher_logits, labels, R, L->sel);
    dbt_train_out out;
    dbt_output tout;
    memset(&tout, 0, sizeof tout);
    float *d_logits = NULL, *d_hidden = NULL;
    int rc = -1;
    if (dbt_train_forward(r->student, L->encs, n, L->sel, 1,
                          dbt_dist_rng(&L->st.rng, &L->own_rng, (uint64_t)(L->epoch * L->batches + b)), &L->cache, &out))
        goto done; /* [dist] */
    if (r->teacher) {
        dbt_forward_opts fo = {L->teacher_logits, L->sel};
        if (dbt_model_forward(r->teacher, L->encs, n, &fo, &tout)) { dbt_prefix_error("teacher"); goto done; }
    }
    /* a gradient on the hidden states only for the terms that compare them */
    const int hidden_terms = r->teacher && (r->loss.alpha_cos > 0 || (r->loss.alpha_mse > 0 && !L->teacher_logits));
    d_logits = malloc((size_t)(out.logits_rows ? out.logits_rows : 1) * out.logits_cols * sizeof *d_logits);
    if (hidden_terms) d_hidden = malloc((size_t)R * out.dim * sizeof *d_hidden);
    if (!d_logits || (hidden_terms && !d_hidden)) { dbt_set_error("out of memory"); goto done; }
    if (dbt_distill_loss_part(&r->loss, &out, r->teacher ? &tout : NULL, labels, scale,
                              dbt_dist_size() > 1 ? &L->norm : NULL, d_logits, d_hidden, terms))
        goto done;
    if (dbt_dist_size() > 1) { /* [dist] the global batch's terms on every rank (each rank's are its shares) */
        if (L->empty) memset(terms, 0, sizeof *terms);
        double g[6] = {terms->loss, terms->ce, terms->mlm, terms->mse, terms->cos, terms->mlm_acc};
        if (dbt_dist_allreduce_sum_f64(g, 6)) goto done;
        terms->loss = g[0], terms->ce = g[1], terms->mlm = g[2], terms->mse = g[3], terms->cos = g[4], terms->mlm_acc = g[5];
    }
    if (!isfinite(terms->loss)) {
        dbt_dist_fail_together(); /* [dist] every rank sees the same sum */
        dbt_set_error("the loss became %s at step %lld: lower the learning rate or check the data",
                      isnan(terms->loss) ? "NaN" : "infinite", (long long)L->opt.step + 1);
        goto done;
    }
    rc = dbt_train_backward(r->student, &L->p, L->cache, out.logits_rows ? d_logits : NULL, d_hidden);
    L->tokens += R_glob; /* [dist] the global batch's */
done:
    free(d_logits);
    free(d_hidden);
    dbt_output_free(&tout);
    return rc;
}

static void accumulate(dbt_distill_terms *acc, const dbt_distill_terms *t) {
    acc->loss += t->loss;
    acc->ce += t->ce;
    acc->mlm += t->mlm;
    acc->mse += t->mse;
    acc->cos += t->cos;
    acc->mlm_acc += t->mlm_acc;
}

/* One JSONL record: the loss, each active term and the masked-token accuracy, averaged over
 * the micro-batches since the last record. */
static void log_step(loop_ctx *L, int64_t epoch, int64_t b, double lr, double norm) {
    const dbt_distill_cfg *c = &L->r->loss;
    const double n = L->n_acc > 0 ? (double)L->n_acc : 1.0, now = dbt_now();
    char extra[512];
    int k = 0;
    if (c->alpha_ce > 0) k += snprintf(extra + k, sizeof extra - k, ",\"loss_ce\":%.6g", L->acc.ce / n);
    if (c->alpha_mlm > 0)
        k += snprintf(extra + k, sizeof extra - k, ",\"loss_mlm\":%.6g,\"mlm_acc\":%.4f", L->acc.mlm / n, L->acc.mlm_acc / n);
    if (c->alpha_mse > 0) k += snprintf(extra + k, sizeof extra - k, ",\"loss_mse\":%.6g", L->acc.mse / n);
    if (c->alpha_cos > 0) k += snprintf(extra + k, sizeof extra - k, ",\"loss_cos\":%.6g", L->acc.cos / n);
    dbt_report_step_extra(&L->rep, L->opt.step, epoch + (double)(b + 1) / L->batches, L->acc.loss / n, lr, norm,
                          L->tokens / fmax(now - L->t_log, 1e-9), extra);
    if (c->alpha_mlm > 0) dbt_report_series(&L->rep, L->opt.step, L->acc.mlm_acc / n, "masked-token accuracy (train)");
    memset(&L->acc, 0, sizeof L->acc);
    L->n_acc = 0;
    L->tokens = 0;
    L->t_log = now;
}

/* Where a resumed run starts after batch b of `epoch`: the next update, or the next epoch. */
static void set_position(loop_ctx *L, int64_t epoch, int64_t b) {
    L->st.step = L->opt.step;
    if (b + 1 >= L->batches) {
        L->st.epoch = epoch + 1;
        L->st.cursor = 0;
    } else {
        L->st.epoch = epoch;
        L->st.cursor = (b + 1) / L->o->grad_accum;
    }
}

static int save(loop_ctx *L) {
    const char *out = L->o->out_dir;
    char path[4096];
    if (dbt_save_checkpoint(L->r->student, &L->p, out, out, &L->opt, &L->st)) return -1;
    L->saved_step = L->opt.step;
    dbt_report_svg(&L->rep, dbt_path_join(path, sizeof path, out, "training.svg"), L->r->title);
    return 0;
}

/* The epochs. Returns 0, 1 when interrupted (saved), -1. */
static int run_epochs(loop_ctx *L) {
    const dbt_mlm_train_opts *o = L->o;
    const int ga = o->grad_accum;
    int micro = 0;
    L->t_log = dbt_now();
    dbt_params_zero_grad(&L->p);
    for (int64_t epoch = L->st.epoch; epoch < o->epochs && L->opt.step < L->total; epoch++) {
        if (dbt_lm_epoch_order(&L->corpus, L->gbs, L->max_length, o->seed, epoch, L->order)) return -1; /* [dist] gbs */
        L->epoch = epoch;
        for (int64_t b = epoch == L->st.epoch ? L->st.cursor * ga : 0; b < L->batches && L->opt.step < L->total; b++) {
            /* the micro-batches of an update share it: each loss is divided by their number */
            const int64_t g0 = b / ga * ga, g1 = g0 + ga < L->batches ? g0 + ga : L->batches;
            dbt_distill_terms t;
            if (micro_step(L, b, 1.0f / (float)(g1 - g0), &t)) return -1;
            accumulate(&L->acc, &t);
            L->n_acc++;
            if (++micro < g1 - g0) continue;
            micro = 0;
            /* [dist] the hook: the update's gradients are complete; sum them over the ranks */
            if (dbt_dist_sync_grads(&L->p)) return -1;
            const float lr = dbt_lr_at(&L->opt.cfg, L->opt.step);
            const double norm = dbt_adamw_step(&L->opt, &L->p);
            dbt_params_zero_grad(&L->p);
            set_position(L, epoch, b);
            if (L->opt.step % o->log_every == 0 || L->opt.step == L->total) log_step(L, epoch, b, lr, norm);
            if (o->save_every > 0 && L->opt.step % o->save_every == 0 && save(L)) return -1;
            if (dbt_dist_any(dbt_sigint_pending())) { /* [dist] a signal to any rank stops them all here */
                if (L->saved_step != L->opt.step && save(L)) return -1;
                if (dbt_dist_rank() == 0) fprintf(stderr, "\ninterrupted: saved step %lld to %s (resume with --resume)\n",
                        (long long)L->opt.step, o->out_dir);
                return 1;
            }
        }
        L->st.epoch = epoch + 1;
        L->st.cursor = 0;
        if (L->saved_step != L->opt.step && save(L)) return -1;
    }
    if (L->saved_step != L->opt.step && save(L)) return -1;
    return 0;
}

int dbt_mlm_train(const dbt_mlm_run *r) {
    loop_ctx L;
    memset(&L, 0, sizeof L);
    dbt_sigint_guard sig = {0};
    int rc = setup(r, &L);
    if (rc == 0) {
        dbt_sigint_begin(&sig);
        rc = run_epochs(&L);
        dbt_sigint_end(&sig);
    }
    teardown(&L);
    return rc;
}
