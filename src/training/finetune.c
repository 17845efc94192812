/* finetune.c — the fine-tuning loop: data → features → shuffled micro-batches → loss (plus the
 * soft-target loss of a teacher, when given) → backward → AdamW with warmup/decay and clipping
 * every grad_accum micro-batches → logs, evaluations, atomic checkpoints.
 *
 * Reproducibility: the example order of epoch e is a shuffle seeded by (seed, e); dropout draws
 * from one generator whose state is saved with every checkpoint, together with the optimizer
 * moments and the position in the epoch, so a resumed run continues exactly where it stopped.
 * SIGINT stops at the next update boundary, saves, and returns 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/error.h"
#include "../common/file.h"
#include "../model/config.h"
#include "../tasks/tasks.h"
#include "backprop.h"
#include "checkpoint.h"
#include "dist.h"
#include "evaluate.h"
#include "features.h"
#include "losses.h"
#include "optimizer.h"
#include "report.h"
#include "train_util.h"

dbt_finetune_opts dbt_finetune_opts_default(dbt_task task) {
    dbt_finetune_opts o;
    memset(&o, 0, sizeof o);
    o.task = task;
    o.epochs = 3;
    o.lr = 5e-5f;
    o.batch_size = 32;
    o.grad_accum = 1;
    o.max_length = task == DBT_TASK_QA ? 384 : 128;
    o.doc_stride = 128;
    o.max_grad_norm = 1.0f;
    o.seed = 42;
    o.log_every = 10;
    o.progress = -1;
    o.alpha_ce = 0.5f;
    o.alpha_task = 0.5f;
    o.temperature = 2.0f;
    return o;
}

/* The labels a run trains with: those of the starting folder when it already has this task's
 * head, else those found in the training data. */
typedef struct {
    int n;
    char **names;
    int regression;
} label_set;

static int peek_labels(const dbt_finetune_opts *o, const char *start_dir, dbt_head head, label_set *ls) {
    memset(ls, 0, sizeof *ls);
    dbt_config cfg;
    char path[4096];
    if (dbt_config_load(&cfg, dbt_path_join(path, sizeof path, start_dir, "config.json"))) return -1;
    int have_head = cfg.head == head;
    int rc = 0;
    if (o->task == DBT_TASK_CLASSIFY) {
        dbt_cls_format f = {o->text_column, o->pair_column, o->label_column, 0, o->regression};
        dbt_cls_data d;
        int use_model = have_head && !o->regression;
        rc = dbt_read_classification(o->train_path, &f, use_model ? (const char *const *)cfg.id2label : NULL,
                                     use_model ? cfg.n_labels : 0, &d);
        if (rc == 0) {
            ls->n = d.n_labels;
            ls->regression = d.regression;
            ls->names = d.label_names;
            d.label_names = NULL;
            d.n_labels = 0;
            dbt_cls_data_free(&d);
        }
    } else if (o->task == DBT_TASK_NER) {
        dbt_ner_data d;
        rc = dbt_read_conll(o->train_path, have_head ? (const char *const *)cfg.id2label : NULL,
                            have_head ? cfg.n_labels : 0, &d);
        if (rc == 0) {
            ls->n = d.n_labels;
            ls->names = d.label_names;
            d.label_names = NULL;
            d.n_labels = 0;
            dbt_ner_data_free(&d);
        }
    }
    dbt_config_free(&cfg);
    return rc;
}

static void free_labels(label_set *ls) {
    for (int i = 0; i < ls->n; i++) free(ls->names[i]);
    free(ls->names);
}

/* Soft-target loss of a teacher's logits for the task's outputs (its gradient times `scale` added
 * to d): classification one distribution per sequence, NER one per token (the mean over every
 * token of the batch, special tokens included), QA run_squad_w_distillation.py's (start + end) / 2
 * with one distribution per sequence each (losses.h). */
static double teacher_loss(dbt_task task, const dbt_train_out *s, const dbt_output *t, float T, float scale, float *d) {
    if (task == DBT_TASK_QA) return dbt_loss_qa_soft(s->logits, t->logits, s->n_seqs, s->row_start, T, scale, d);
    return dbt_loss_kl_soft(s->logits, t->logits, s->logits_rows, s->logits_cols, s->logits_cols, T, scale, d);
}

/* [dist] This rank's shares of the loss normalizers of the global batch [gb0, gb0 + n_glob) of
 * `order`, its slice being [b0, b0 + n): examples (classification, QA, and their soft targets),
 * or for NER labelled tokens (the task loss) and tokens (the soft targets). Weighting its losses
 * by them makes the sum over ranks the global batch's mean (QA's answer positions always fall in
 * their window, so its mean is over every example too). 1 on one rank; 0 for a rank whose slice
 * is empty (`empty`: it runs one example for nothing, to take part in the collectives). */
static void batch_shares(const dbt_features *fs, const int64_t *order, int64_t gb0, int64_t n_glob, int64_t b0,
                         int n, int empty, dbt_task task, float *w_task, float *w_kl) {
    *w_task = *w_kl = 1.0f;
    if (dbt_dist_size() == 1) return;
    if (empty) { *w_task = *w_kl = 0.0f; return; }
    if (task != DBT_TASK_NER) { *w_task = *w_kl = (float)((double)n / (double)n_glob); return; }
    int64_t lab[2] = {0, 0}, tok[2] = {0, 0}; /* [0] global, [1] this rank's */
    for (int64_t i = gb0; i < gb0 + n_glob; i++) {
        const dbt_feature *f = &fs->f[order[i]];
        int64_t l = 0;
        for (int t = 0; t < f->enc.n; t++) l += f->token_labels[t] != DBT_IGNORE_INDEX;
        const int mine = i >= b0 && i < b0 + n;
        lab[0] += l, tok[0] += f->enc.n;
        if (mine) lab[1] += l, tok[1] += f->enc.n;
    }
    *w_task = lab[0] ? (float)((double)lab[1] / (double)lab[0]) : 0.0f;
    *w_kl = (float)((double)tok[1] / (double)tok[0]);
}

int dbt_finetune(const dbt_finetune_opts *opts) {
    dbt_finetune_opts o = *opts;
    if (o.task != DBT_TASK_CLASSIFY && o.task != DBT_TASK_NER && o.task != DBT_TASK_QA)
        return dbt_set_error("finetune trains classify, ner or qa");
    if (!o.model_dir || !o.train_path || !o.out_dir) return dbt_set_error("finetune needs a model, training data and an output folder");
    if (o.epochs < 1 || o.batch_size < 1 || o.grad_accum < 1 || o.max_length < 8 || !(o.lr > 0) || o.temperature <= 0)
        return dbt_set_error("finetune: epochs, batch size, accumulation must be >= 1, max_length >= 8, lr and temperature > 0");
    const dbt_head head = dbt_task_head(o.task);
    char path[4096];
    int resume = o.resume && dbt_file_exists(dbt_path_join(path, sizeof path, o.out_dir, "trainer_state.json"));
    if (o.resume && !resume) return dbt_set_error("--resume: %s has no saved training state", o.out_dir);
    const char *start_dir = resume ? o.out_dir : o.model_dir;

    int rc = -1;
    label_set ls = {0};
    dbt_model *m = NULL, *teacher = NULL;
    dbt_params p = {0};
    dbt_adamw opt = {0};
    dbt_features fs = {0};
    dbt_eval_data dev;
    int have_dev = 0;
    dbt_report rep = {0};
    int64_t *order = NULL;
    dbt_encoding *encs = NULL;
    int32_t *labels = NULL, *sp = NULL, *ep = NULL;
    float *targets = NULL;
    dbt_train_cache *cache = NULL; /* the training pass's workspace, reused by every step */
    dbt_sigint_guard sig = {0};

    if (o.task != DBT_TASK_QA && peek_labels(&o, start_dir, head, &ls)) return -1;
    m = dbt_model_load_for_training(start_dir, head, ls.n, (const char *const *)ls.names, 1, o.seed);
    if (!m) goto done;
    if (ls.regression) m->cfg.problem_type = DBT_PROBLEM_REGRESSION;
    if (!m->tok) { dbt_set_error("%s has no tokenizer", start_dir); goto done; }
    if (dbt_dist_rank() == 0 && *dbt_model_warnings(m)) fprintf(stderr, "%s", dbt_model_warnings(m)); /* [dist] */
    if (o.max_length > m->cfg.max_position_embeddings) o.max_length = m->cfg.max_position_embeddings;
    if (o.teacher_dir) {
        teacher = dbt_model_load(o.teacher_dir, head);
        if (!teacher) { dbt_prefix_error("teacher"); goto done; }
        if (teacher->cfg.vocab_size != m->cfg.vocab_size ||
            (head != DBT_HEAD_QA && teacher->cfg.n_labels != m->cfg.n_labels)) {
            dbt_set_error("the teacher's vocabulary or labels differ from the student's");
            goto done;
        }
    }

    /* features */
    if (o.task == DBT_TASK_CLASSIFY) {
        dbt_cls_data d;
        dbt_cls_format f = {o.text_column, o.pair_column, o.label_column, 0, ls.regression};
        if (dbt_read_classification(o.train_path, &f, ls.regression ? NULL : (const char *const *)m->cfg.id2label,
                                    ls.regression ? 0 : m->cfg.n_labels, &d))
            goto done;
        int r = dbt_features_cls(m->tok, &d, o.max_length, &fs);
        dbt_cls_data_free(&d);
        if (r) goto done;
    } else if (o.task == DBT_TASK_NER) {
        dbt_ner_data d;
        if (dbt_read_conll(o.train_path, (const char *const *)m->cfg.id2label, m->cfg.n_labels, &d)) goto done;
        int r = dbt_features_ner(m->tok, &d, o.max_length, &fs);
        dbt_ner_data_free(&d);
        if (r) goto done;
    } else {
        dbt_qa_data d;
        if (dbt_read_squad(o.train_path, &d)) goto done;
        int r = dbt_features_qa(m->tok, &d, o.max_length, o.doc_stride, &fs);
        dbt_qa_data_free(&d);
        if (r) goto done;
    }
    if (fs.n == 0) { dbt_set_error("%s gave no training examples", o.train_path); goto done; }
    if (o.dev_path && dbt_dist_rank() == 0) { /* [dist] rank 0 evaluates */
        if (dbt_eval_data_read(o.task, o.dev_path, m, &o, &dev)) goto done;
        have_dev = 1;
    }

    /* optimizer and schedule */
    const int gbs = o.batch_size * dbt_dist_size(); /* [dist] the global batch: every rank's slices */
    const int64_t batches = (fs.n + gbs - 1) / gbs;
    const int64_t updates_per_epoch = (batches + o.grad_accum - 1) / o.grad_accum;
    int64_t total = o.max_steps > 0 ? o.max_steps : updates_per_epoch * o.epochs;
    if (dbt_params_init(&p, m)) goto done;
    dbt_adamw_cfg ac = dbt_adamw_defaults();
    ac.lr = o.lr;
    ac.weight_decay = o.weight_decay;
    ac.max_grad_norm = o.max_grad_norm;
    ac.total_steps = total;
    ac.warmup_steps = (int64_t)ceil(o.warmup_ratio * (double)total);
    if (dbt_adamw_init(&opt, &p, &ac)) goto done;
    dbt_train_state st = {0};
    st.seed = o.seed;
    st.best_metric = -1e300;
    dbt_rng_seed(&st.rng, o.seed);
    if (resume && dbt_load_train_state(o.out_dir, &p, &opt, &st)) goto done;
    if (dbt_dist_bcast_train(&p, &opt, &st)) goto done; /* [dist] every rank starts from rank 0's state */
    if (!resume && dbt_dist_rank() == 0) mkdir(o.out_dir, 0755); /* the checkpoint swap needs the parent to exist */

    const char *metric = o.task == DBT_TASK_CLASSIFY ? (ls.regression ? "pearson" : "accuracy") : "f1";
    if (dbt_report_open(&rep, dbt_dist_rank() ? NULL : dbt_path_join(path, sizeof path, o.out_dir, "train_log.jsonl"),
                        resume, o.progress, total, metric)) /* [dist] rank 0 logs */
        goto done;
    {
        char line[512];
        snprintf(line, sizeof line,
                 "{\"event\":\"%s\",\"examples\":%lld,\"steps\":%lld,\"warmup_steps\":%lld,\"batch_size\":%d,\"grad_accum\":%d,\"lr\":%g,\"seed\":%llu,\"params\":%lld}",
                 resume ? "resume" : "start", (long long)fs.n, (long long)total, (long long)ac.warmup_steps,
                 o.batch_size, o.grad_accum, o.lr, (unsigned long long)o.seed, (long long)m->info.n_params);
        dbt_report_line(&rep, line);
        if (dbt_dist_size() > 1) { /* [dist] */
            snprintf(line, sizeof line, "{\"event\":\"data_parallel\",\"ranks\":%d,\"global_batch\":%d}", dbt_dist_size(), gbs);
            dbt_report_line(&rep, line);
        }
    }

    order = malloc((size_t)fs.n * sizeof *order);
    encs = malloc((size_t)o.batch_size * sizeof *encs);
    labels = malloc((size_t)o.batch_size * (size_t)o.max_length * sizeof *labels);
    sp = malloc((size_t)o.batch_size * sizeof *sp);
    ep = malloc((size_t)o.batch_size * sizeof *ep);
    targets = malloc((size_t)o.batch_size * sizeof *targets);
    if (!order || !encs || !labels || !sp || !ep || !targets) { dbt_set_error("out of memory"); goto done; }

    dbt_sigint_begin(&sig);

    double loss_acc = 0, t_log = dbt_now();
    int64_t n_loss = 0, tokens = 0;
    int micro = 0;
    dbt_rng own_rng; /* [dist] this rank's dropout stream (dist.h) */
    dbt_params_zero_grad(&p);
    for (int64_t epoch = st.epoch; epoch < o.epochs && opt.step < total; epoch++) {
        dbt_epoch_shuffle(order, fs.n, o.seed, epoch);
        for (int64_t b = epoch == st.epoch ? st.cursor * o.grad_accum : 0; b < batches && opt.step < total; b++) {
            /* [dist] global batch b: gbs examples as one process takes them; this rank's slice of it.
             * A rank left without examples (the end of an epoch) runs the first one with weight 0. */
            const int64_t gb0 = b * gbs, n_glob = fs.n - gb0 < gbs ? fs.n - gb0 : gbs;
            int64_t lo;
            int n;
            dbt_dist_shard(n_glob, o.batch_size, &lo, &n);
            const int empty = n == 0;
            if (empty) lo = 0, n = 1;
            const int64_t b0 = gb0 + lo;
            int32_t rows = 0;
            for (int k = 0; k < n; k++) {
                const dbt_feature *f = &fs.f[order[b0 + k]];
                encs[k] = f->enc;
                labels[k] = f->label;
                targets[k] = f->target;
                sp[k] = f->start;
                ep[k] = f->end;
                rows += f->enc.n;
            }
            dbt_train_out out;
            if (dbt_train_forward(m, encs, n, NULL, 1, dbt_dist_rng(&st.rng, &own_rng, (uint64_t)(epoch * batches + b)),
                                  &cache, &out)) /* [dist] */
                goto done;
            float *d = malloc((size_t)out.logits_rows * out.logits_cols * sizeof *d);
            int32_t *row_labels = o.task == DBT_TASK_NER ? malloc((size_t)rows * sizeof *row_labels) : NULL;
            if (!d || (o.task == DBT_TASK_NER && !row_labels)) {
                free(d);
                free(row_labels);
                dbt_set_error("out of memory");
                goto done;
            }
            /* micro-batches of an accumulation group share its update: each loss is divided */
            int64_t group_end = ((b / o.grad_accum) + 1) * o.grad_accum;
            int group = (int)((group_end < batches ? group_end : batches) - (b / o.grad_accum) * o.grad_accum);
            float scale = 1.0f / (float)group;
            float task_w = teacher ? o.alpha_task : 1.0f;
            float w_task, w_kl; /* [dist] this rank's shares of the global batch's means */
            batch_shares(&fs, order, gb0, n_glob, b0, n, empty, o.task, &w_task, &w_kl);
            double loss;
            if (o.task == DBT_TASK_CLASSIFY) {
                if (ls.regression) loss = dbt_loss_mse(out.logits, targets, n, scale * w_task * task_w, d);
                else loss = dbt_loss_cross_entropy(out.logits, n, out.logits_cols, labels, scale * w_task * task_w, d, NULL);
            } else if (o.task == DBT_TASK_NER) {
                for (int k = 0, r = 0; k < n; k++)
                    for (int t = 0; t < encs[k].n; t++) row_labels[r++] = fs.f[order[b0 + k]].token_labels[t];
                loss = dbt_loss_cross_entropy(out.logits, rows, out.logits_cols, row_labels, scale * w_task * task_w, d, NULL);
            } else {
                loss = dbt_loss_qa(out.logits, n, out.row_start, sp, ep, scale * w_task * task_w, d);
            }
            loss *= task_w * w_task;
            if (teacher) { /* the teacher sees the same inputs, in inference mode */
                dbt_output tout;
                if (dbt_model_forward(teacher, encs, n, NULL, &tout)) {
                    free(d);
                    free(row_labels);
                    goto done;
                }
                loss += o.alpha_ce * w_kl * teacher_loss(o.task, &out, &tout, o.temperature, o.alpha_ce * scale * w_kl, d);
                dbt_output_free(&tout);
            }
            free(row_labels);
            if (dbt_dist_size() > 1) { /* [dist] the global batch's loss, and its tokens, on every rank */
                double g[2] = {loss, empty ? 0.0 : (double)rows};
                if (dbt_dist_allreduce_sum_f64(g, 2)) { free(d); goto done; }
                loss = g[0];
                rows = (int32_t)g[1];
            }
            if (!isfinite(loss)) {
                free(d);
                dbt_dist_fail_together(); /* [dist] every rank sees the same sum */
                dbt_set_error("the loss became %s at step %lld (epoch %lld): lower the learning rate or check the data",
                              isnan(loss) ? "NaN" : "infinite", (long long)opt.step + 1, (long long)epoch + 1);
                goto done;
            }
            rc = dbt_train_backward(m, &p, cache, d, NULL);
            free(d);
            if (rc) goto done;
            rc = -1;
            loss_acc += loss;
            n_loss++;
            tokens += rows;
            if (++micro < group) continue;
            micro = 0;

            /* [dist] the hook: the update's gradients are complete; sum them over the ranks */
            if (dbt_dist_sync_grads(&p)) goto done;
            float lr = dbt_lr_at(&opt.cfg, opt.step);
            double norm = dbt_adamw_step(&opt, &p);
            dbt_params_zero_grad(&p);
            st.step = opt.step;
            st.epoch = epoch;
            st.cursor = (b + 1) / o.grad_accum;
            if (opt.step % o.log_every == 0 || opt.step == total) {
                double now = dbt_now();
                dbt_report_step(&rep, opt.step, epoch + (double)(b + 1) / batches, loss_acc / n_loss, lr, norm,
                                tokens / fmax(now - t_log, 1e-9));
                loss_acc = 0;
                n_loss = 0;
                tokens = 0;
                t_log = now;
            }
            if (have_dev && o.eval_every > 0 && opt.step % o.eval_every == 0) {
                double main = 0;
                char *js = NULL;
                if (dbt_eval_loaded(m, o.task, &dev, &o, &main, &js)) goto done;
                dbt_report_eval(&rep, opt.step, epoch + (double)(b + 1) / batches, main, js);
                free(js);
                if (main > st.best_metric) st.best_metric = main;
            }
            if (dbt_dist_any(dbt_sigint_pending())) { /* [dist] a signal to any rank stops them all here */
                if (b + 1 == batches) { st.epoch = epoch + 1; st.cursor = 0; }
                if (dbt_save_checkpoint(m, &p, o.model_dir, o.out_dir, &opt, &st)) goto done;
                if (dbt_dist_rank() == 0) fprintf(stderr, "\ninterrupted: saved step %lld to %s (resume with --resume)\n", (long long)opt.step, o.out_dir);
                rc = 1;
                goto done;
            }
        }
        st.epoch = epoch + 1;
        st.cursor = 0;
        if (have_dev && o.eval_every == 0) {
            double main = 0;
            char *js = NULL;
            if (dbt_eval_loaded(m, o.task, &dev, &o, &main, &js)) goto done;
            dbt_report_eval(&rep, opt.step, (double)epoch + 1, main, js);
            free(js);
            if (main > st.best_metric) st.best_metric = main;
        }
        if (dbt_save_checkpoint(m, &p, o.model_dir, o.out_dir, &opt, &st)) goto done;
        dbt_report_svg(&rep, dbt_path_join(path, sizeof path, o.out_dir, "training.svg"), "fine-tuning");
    }
    if (dbt_save_checkpoint(m, &p, o.model_dir, o.out_dir, &opt, &st)) goto done;
    dbt_report_svg(&rep, dbt_path_join(path, sizeof path, o.out_dir, "training.svg"), "fine-tuning");
    rc = 0;
done:
    dbt_sigint_end(&sig);
    dbt_train_cache_free(cache);
    if (rep.log) dbt_report_close(&rep);
    free(order);
    free(encs);
    free(labels);
    free(sp);
    free(ep);
    free(targets);
    if (have_dev) dbt_eval_data_free(o.task, &dev);
    dbt_features_free(&fs);
    dbt_adamw_free(&opt);
    dbt_params_free(&p);
    dbt_model_free(m);
    dbt_model_free(teacher);
    free_labels(&ls);
    return rc;
}
