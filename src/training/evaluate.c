/* evaluate.c — the metrics of transformers' example scripts on a dev set:
 *   classification: accuracy, F1 (binary with 2 labels, else macro), Matthews correlation;
 *   regression:     Pearson and Spearman correlation, MSE;
 *   NER:            seqeval entity-level precision/recall/F1 (micro) and token accuracy, on the
 *                   first sub-token of each word, words lost to truncation left out (run_ner);
 *   QA:             official SQuAD v1.1 exact match and F1 of the question-answering pipeline;
 *   masked LM:      cross-entropy, perplexity and accuracy on held-out text, masked as BERT
 *                   pre-training does (15% of the tokens, uniformly, 80/10/10; a fixed seed).
 * The main metric (for "best" and the plot) is accuracy, Pearson, entity F1, SQuAD F1 or the
 * masked-LM accuracy. */
#include "evaluate.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/json_writer.h"
#include "../tasks/tasks.h"
#include "features.h"
#include "metrics.h"
#include "../common/rng.h"
#include "distill.h"
#include "losses.h"
#include "mlm_loop.h"

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static int eval_cls(dbt_model *m, const dbt_cls_data *d, const dbt_finetune_opts *o, double *main, char **json) {
    dbt_features fs;
    if (dbt_features_cls(m->tok, d, o->max_length, &fs)) return -1;
    dbt_encoding *encs = malloc((size_t)fs.n * sizeof *encs);
    if (!encs) { dbt_features_free(&fs); return dbt_set_error("out of memory"); }
    for (int64_t i = 0; i < fs.n; i++) encs[i] = fs.f[i].enc;
    dbt_output out;
    int rc = dbt_task_forward(m, encs, (int)fs.n, o->batch_size, NULL, &out);
    free(encs);
    if (rc) { dbt_features_free(&fs); return -1; }
    dbt_jw w = {0};
    const int L = out.logits_cols;
    if (d->regression) {
        double *x = malloc((size_t)fs.n * sizeof *x), *y = malloc((size_t)fs.n * sizeof *y), mse = 0;
        for (int64_t i = 0; i < fs.n; i++) {
            x[i] = out.logits[i * L];
            y[i] = fs.f[i].target;
            mse += (x[i] - y[i]) * (x[i] - y[i]);
        }
        double pr = dbt_metric_pearson(x, y, (size_t)fs.n), sr = dbt_metric_spearman(x, y, (size_t)fs.n);
        *main = pr;
        dbt_jw_lit(&w, "{\"pearson\":");
        dbt_jw_double(&w, pr);
        dbt_jw_lit(&w, ",\"spearmanr\":");
        dbt_jw_double(&w, sr);
        dbt_jw_lit(&w, ",\"mse\":");
        dbt_jw_double(&w, mse / (double)fs.n);
        free(x);
        free(y);
    } else {
        int *pred = malloc((size_t)fs.n * sizeof *pred), *gold = malloc((size_t)fs.n * sizeof *gold);
        for (int64_t i = 0; i < fs.n; i++) {
            pred[i] = argmax(out.logits + i * L, L);
            gold[i] = fs.f[i].label;
        }
        double acc = dbt_metric_accuracy(pred, gold, (size_t)fs.n);
        dbt_prf prf = {0, 0, 0};
        if (L == 2) dbt_metric_prf_binary(pred, gold, (size_t)fs.n, 1, &prf);
        else dbt_metric_prf_macro(pred, gold, (size_t)fs.n, &prf);
        double mcc = dbt_metric_mcc(pred, gold, (size_t)fs.n);
        *main = acc;
        dbt_jw_lit(&w, "{\"accuracy\":");
        dbt_jw_double(&w, acc);
        dbt_jw_lit(&w, L == 2 ? ",\"f1\":" : ",\"macro_f1\":");
        dbt_jw_double(&w, prf.f1);
        dbt_jw_lit(&w, ",\"mcc\":");
        dbt_jw_double(&w, mcc);
        free(pred);
        free(gold);
    }
    dbt_jw_lit(&w, ",\"n\":");
    dbt_jw_int(&w, fs.n);
    dbt_jw_lit(&w, "}");
    dbt_output_free(&out);
    dbt_features_free(&fs);
    if (!(*json = dbt_task_take(&w))) return dbt_set_error("out of memory");
    return 0;
}

static int eval_ner(dbt_model *m, const dbt_ner_data *d, const dbt_finetune_opts *o, double *main, char **json) {
    dbt_features fs;
    if (dbt_features_ner(m->tok, d, o->max_length, &fs)) return -1;
    dbt_encoding *encs = malloc((size_t)fs.n * sizeof *encs);
    if (!encs) { dbt_features_free(&fs); return dbt_set_error("out of memory"); }
    for (int64_t i = 0; i < fs.n; i++) encs[i] = fs.f[i].enc;
    dbt_output out;
    int rc = dbt_task_forward(m, encs, (int)fs.n, o->batch_size, NULL, &out);
    free(encs);
    if (rc) { dbt_features_free(&fs); return -1; }
    const int L = out.logits_cols;
    int64_t total = 0;
    for (int64_t i = 0; i < fs.n; i++) total += fs.f[i].enc.n;
    const size_t n_tok = total > 0 ? (size_t)total : 1;
    const char **pred = malloc(n_tok * sizeof *pred), **gold = malloc(n_tok * sizeof *gold);
    size_t *lens = calloc(fs.n > 0 ? (size_t)fs.n : 1, sizeof *lens);
    int64_t k = 0, correct = 0;
    for (int64_t i = 0; i < fs.n; i++) {
        const dbt_feature *f = &fs.f[i];
        for (int t = 0; t < f->enc.n; t++) {
            if (f->token_labels[t] == -100) continue;
            int p = argmax(out.logits + (int64_t)(out.row_start[i] + t) * L, L);
            pred[k] = m->info.id2label[p];
            gold[k] = m->info.id2label[f->token_labels[t]];
            correct += p == f->token_labels[t];
            k++;
            lens[i]++;
        }
    }
    dbt_seqeval_report r;
    rc = dbt_seqeval_evaluate(pred, gold, lens, (size_t)fs.n, &r);
    if (rc == 0) {
        dbt_jw w = {0};
        dbt_jw_lit(&w, "{\"precision\":");
        dbt_jw_double(&w, r.micro.precision);
        dbt_jw_lit(&w, ",\"recall\":");
        dbt_jw_double(&w, r.micro.recall);
        dbt_jw_lit(&w, ",\"f1\":");
        dbt_jw_double(&w, r.micro.f1);
        dbt_jw_lit(&w, ",\"accuracy\":");
        dbt_jw_double(&w, k ? (double)correct / (double)k : 0.0);
        dbt_jw_lit(&w, ",\"per_type\":{");
        for (int t = 0; t < r.n_types; t++) {
            if (t) dbt_jw_lit(&w, ",");
            dbt_jw_str(&w, r.types[t].name, strlen(r.types[t].name));
            dbt_jw_lit(&w, ":{\"precision\":");
            dbt_jw_double(&w, r.types[t].row.precision);
            dbt_jw_lit(&w, ",\"recall\":");
            dbt_jw_double(&w, r.types[t].row.recall);
            dbt_jw_lit(&w, ",\"f1\":");
            dbt_jw_double(&w, r.types[t].row.f1);
            dbt_jw_lit(&w, ",\"support\":");
            dbt_jw_int(&w, r.types[t].row.support);
            dbt_jw_lit(&w, "}");
        }
        dbt_jw_lit(&w, "},\"n\":");
        dbt_jw_int(&w, fs.n);
        dbt_jw_lit(&w, "}");
        *main = r.micro.f1;
        dbt_seqeval_report_free(&r);
        if (!(*json = dbt_task_take(&w))) rc = dbt_set_error("out of memory");
    }
    free(pred);
    free(gold);
    free(lens);
    dbt_output_free(&out);
    dbt_features_free(&fs);
    return rc;
}

static int eval_qa(dbt_model *m, const dbt_qa_data *d, const dbt_finetune_opts *o, double *main, char **json) {
    dbt_pipeline_opts po = dbt_pipeline_opts_default(DBT_TASK_QA);
    po.max_length = o->max_length;
    po.doc_stride = o->doc_stride;
    po.batch_size = o->batch_size;
    const int chunk = 64;
    char **answers = calloc((size_t)d->n, sizeof *answers), *out[64];
    dbt_input in[64];
    int rc = answers ? 0 : dbt_set_error("out of memory");
    for (int64_t i = 0; i < d->n && rc == 0; i += chunk) {
        int n = d->n - i < chunk ? (int)(d->n - i) : chunk;
        for (int k = 0; k < n; k++) in[k] = (dbt_input){d->ex[i + k].question, d->ex[i + k].context};
        if ((rc = dbt_pipeline_run(m, DBT_TASK_QA, in, n, &po, out)) != 0) break;
        for (int k = 0; k < n; k++) {
            cJSON *j = cJSON_Parse(out[k]);
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
            answers[i + k] = strdup(cJSON_IsString(a) ? a->valuestring : "");
            cJSON_Delete(j);
            free(out[k]);
        }
    }
    if (rc == 0) {
        size_t total = 0;
        for (int64_t i = 0; i < d->n; i++) total += (size_t)d->ex[i].n_answers;
        const char **gold = malloc((total ? total : 1) * sizeof *gold);
        size_t *ng = malloc((size_t)d->n * sizeof *ng);
        for (int64_t i = 0, g = 0; i < d->n; i++) {
            ng[i] = (size_t)d->ex[i].n_answers;
            for (int k = 0; k < d->ex[i].n_answers; k++) gold[g++] = d->ex[i].answers[k];
        }
        double em = 0, f1 = 0;
        rc = dbt_squad_evaluate((const char *const *)answers, gold, ng, (size_t)d->n, &em, &f1);
        if (rc == 0) {
            dbt_jw w = {0};
            dbt_jw_lit(&w, "{\"exact_match\":");
            dbt_jw_double(&w, em);
            dbt_jw_lit(&w, ",\"f1\":");
            dbt_jw_double(&w, f1);
            dbt_jw_lit(&w, ",\"n\":");
            dbt_jw_int(&w, d->n);
            dbt_jw_lit(&w, "}");
            *main = f1;
            if (!(*json = dbt_task_take(&w))) rc = dbt_set_error("out of memory");
        }
        free(gold);
        free(ng);
    }
    for (int64_t i = 0; answers && i < d->n; i++) free(answers[i]);
    free(answers);
    return rc;
}

/* Masked-LM evaluation: the text in batches of o->batch_size sequences (corpus order), each batch
 * masked by dbt_mlm_mask with uniform weights (every non-special token alike, as BERT's
 * pre-training draws them; not the distiller's count^-0.7 smoothing) from a generator seeded
 * with o->seed, so every model sees the same masks. Loss and accuracy are means over the
 * masked tokens; perplexity = exp(loss), as run_mlm.py reports it. dump (may be NULL) receives
 * each sequence's corrupted ids and labels, one JSON line each, for checking elsewhere. */
static int eval_mlm(dbt_model *m, const dbt_lm_corpus *c, const dbt_finetune_opts *o, dbt_jw *dump, char **json) {
    if (m->cfg.head != DBT_HEAD_MLM) return dbt_set_error("masked-LM evaluation needs a model with its MLM head");
    const int V = m->cfg.vocab_size, bs = o->batch_size > 0 ? o->batch_size : 32;
    const dbt_special_ids sp = dbt_tokenizer_special_ids(m->tok);
    if (sp.mask < 0) return dbt_set_error("the tokenizer has no [MASK] token");
    if (c->n == 0) return dbt_set_error("the text has no line of 12 tokens or more (shorter ones are left out, as pretrain does)");
    int64_t max_rows = 0; /* the largest batch, in tokens */
    for (int64_t b0 = 0; b0 < c->n; b0 += bs) {
        const int64_t b1 = b0 + bs < c->n ? b0 + bs : c->n;
        if (c->start[b1] - c->start[b0] > max_rows) max_rows = c->start[b1] - c->start[b0];
    }
    const dbt_mask_cfg mc = {0.15, 0.8, 0.1, 0.1, 0.0};
    double *probs = malloc((size_t)V * sizeof *probs);
    int32_t *ids = malloc((size_t)max_rows * sizeof *ids), *labels = malloc((size_t)max_rows * sizeof *labels);
    uint8_t *sel = malloc((size_t)max_rows);
    dbt_encoding *encs = calloc((size_t)bs, sizeof *encs);
    int rc = -1;
    if (!probs || !ids || !labels || !sel || !encs) { dbt_set_error("out of memory"); goto done; }
    dbt_mlm_token_probs(NULL, V, 0.0, &sp, probs);
    dbt_rng rng;
    dbt_rng_seed(&rng, o->seed);
    double nll = 0;
    int64_t masked = 0, correct = 0;
    for (int64_t b0 = 0; b0 < c->n; b0 += bs) {
        const int n = (int)(c->n - b0 < bs ? c->n - b0 : bs);
        const int32_t R = (int32_t)(c->start[b0 + n] - c->start[b0]);
        if (dbt_mlm_mask(&mc, probs, V, sp.mask, c->ids + c->start[b0], R, &rng, ids, labels) < 0) goto done;
        for (int k = 0; k < n; k++) {
            memset(&encs[k], 0, sizeof encs[k]);
            encs[k].ids = ids + (c->start[b0 + k] - c->start[b0]);
            encs[k].n = (int)(c->start[b0 + k + 1] - c->start[b0 + k]);
        }
        for (int32_t r = 0; r < R; r++) sel[r] = labels[r] != DBT_IGNORE_INDEX;
        dbt_forward_opts fo = {1, sel};
        dbt_output out;
        if (dbt_model_forward(m, encs, n, &fo, &out)) goto done;
        int64_t cnt;
        nll += dbt_loss_cross_entropy(out.logits, R, V, labels, 1.0f, NULL, &cnt) * (double)cnt;
        masked += cnt;
        for (int32_t r = 0; r < R; r++)
            correct += sel[r] && argmax(out.logits + (int64_t)r * V, V) == labels[r];
        dbt_output_free(&out);
        for (int k = 0; dump && k < n; k++) {
            dbt_jw_lit(dump, "{\"input_ids\":");
            dbt_jw_ints(dump, encs[k].ids, encs[k].n);
            dbt_jw_lit(dump, ",\"labels\":");
            dbt_jw_ints(dump, labels + (encs[k].ids - ids), encs[k].n);
            dbt_jw_lit(dump, "}\n");
        }
    }
    const double loss = nll / (double)masked;
    dbt_jw w = {0};
    dbt_jw_lit(&w, "{\"loss\":");
    dbt_jw_double(&w, loss);
    dbt_jw_lit(&w, ",\"perplexity\":");
    dbt_jw_double(&w, exp(loss));
    dbt_jw_lit(&w, ",\"accuracy\":");
    dbt_jw_double(&w, (double)correct / (double)masked);
    dbt_jw_lit(&w, ",\"masked\":");
    dbt_jw_int(&w, masked);
    dbt_jw_lit(&w, ",\"n\":");
    dbt_jw_int(&w, c->n);
    dbt_jw_lit(&w, "}");
    if (!(*json = dbt_task_take(&w))) { dbt_set_error("out of memory"); goto done; }
    rc = 0;
done:
    free(probs);
    free(ids);
    free(labels);
    free(sel);
    free(encs);
    return rc;
}

int dbt_eval_loaded(dbt_model *m, dbt_task task, const dbt_eval_data *data, const dbt_finetune_opts *o, double *main,
                    char **json) {
    switch (task) {
    case DBT_TASK_CLASSIFY: return eval_cls(m, &data->cls, o, main, json);
    case DBT_TASK_NER: return eval_ner(m, &data->ner, o, main, json);
    case DBT_TASK_QA: return eval_qa(m, &data->qa, o, main, json);
    default: return dbt_set_error("evaluation covers classify, ner and qa");
    }
}

int dbt_eval_data_read(dbt_task task, const char *path, const dbt_model *m, const dbt_finetune_opts *o,
                       dbt_eval_data *d) {
    memset(d, 0, sizeof *d);
    const char *const *names = (const char *const *)m->cfg.id2label;
    switch (task) {
    case DBT_TASK_CLASSIFY: {
        dbt_cls_format f = {o->text_column, o->pair_column, o->label_column, 0, o->regression || m->cfg.n_labels == 1};
        return dbt_read_classification(path, &f, f.regression ? NULL : names, f.regression ? 0 : m->cfg.n_labels, &d->cls);
    }
    case DBT_TASK_NER: return dbt_read_conll(path, names, m->cfg.n_labels, &d->ner);
    case DBT_TASK_QA: return dbt_read_squad(path, &d->qa);
    default: return dbt_set_error("evaluation covers classify, ner and qa");
    }
}

void dbt_eval_data_free(dbt_task task, dbt_eval_data *d) {
    if (task == DBT_TASK_CLASSIFY) dbt_cls_data_free(&d->cls);
    else if (task == DBT_TASK_NER) dbt_ner_data_free(&d->ner);
    else if (task == DBT_TASK_QA) dbt_qa_data_free(&d->qa);
}

int dbt_evaluate_model(dbt_model *m, dbt_task task, const char *data_path, const dbt_finetune_opts *opts, char **json) {
    if (task == DBT_TASK_FILL_MASK) return dbt_evaluate_mlm(m, data_path, opts, NULL, json);
    dbt_finetune_opts o = opts ? *opts : dbt_finetune_opts_default(task);
    *json = NULL;
    if (!m->tok) return dbt_set_error("the model has no tokenizer");
    dbt_eval_data d;
    int rc = dbt_eval_data_read(task, data_path, m, &o, &d);
    double main = 0;
    if (rc == 0) rc = dbt_eval_loaded(m, task, &d, &o, &main, json);
    dbt_eval_data_free(task, &d);
    return rc;
}

int dbt_evaluate(dbt_task task, const char *model_dir, const char *data_path, const dbt_finetune_opts *opts, char **json) {
    *json = NULL;
    dbt_model *m = dbt_model_load(model_dir, dbt_task_head(task));
    if (!m) return -1;
    if (!m->tok) { dbt_model_free(m); return dbt_set_error("%s has no tokenizer", model_dir); }
    int rc = dbt_evaluate_model(m, task, data_path, opts, json);
    dbt_model_free(m);
    return rc;
}

int dbt_evaluate_mlm(dbt_model *m, const char *text_path, const dbt_finetune_opts *opts, const char *masks_path,
                     char **json) {
    dbt_finetune_opts o = opts ? *opts : dbt_finetune_opts_default(DBT_TASK_FILL_MASK);
    *json = NULL;
    if (!m->tok) return dbt_set_error("the model has no tokenizer");
    dbt_lm_corpus c;
    if (dbt_lm_corpus_read(m->tok, m->cfg.vocab_size, &text_path, 1, o.max_length, &c)) return -1;
    dbt_jw dump = {0};
    int rc = eval_mlm(m, &c, &o, masks_path ? &dump : NULL, json);
    if (rc == 0 && masks_path) { /* written whole or not at all */
        if (dump.oom) rc = dbt_set_error("out of memory");
        else rc = dbt_write_file_atomic(masks_path, dump.s, dump.n);
        if (rc) free(*json), *json = NULL;
    }
    dbt_jw_free(&dump);
    dbt_lm_corpus_free(&c);
    return rc;
}
