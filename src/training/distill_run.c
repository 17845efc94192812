/* distill_run.c — `distilbert distill`: check the options, load the frozen teacher, build the
 * student folder (the teacher's embeddings and every other layer, or random weights), then
 * train it with the shared masked-LM loop on the distiller's triple loss. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../model/config.h"
#include "dist.h"
#include "distill.h"
#include "mlm_loop.h"

dbt_distill_opts dbt_distill_opts_default(void) {
    dbt_distill_opts o;
    memset(&o, 0, sizeof o);
    o.train = dbt_mlm_train_opts_default();
    /* the weights of the published DistilBERT run (training_configs/distilbert-base-uncased) */
    o.temperature = 2.0f;
    o.alpha_ce = 5.0f;
    o.alpha_mlm = 2.0f;
    o.alpha_mse = 0.0f;
    o.alpha_cos = 1.0f;
    return o;
}

static int check_opts(const dbt_distill_opts *o) {
    if (!o->teacher_dir) return dbt_set_error("a teacher folder is required");
    if (dbt_mlm_train_opts_check(&o->train)) return -1;
    if (!(o->temperature > 0)) return dbt_set_error("the temperature must be > 0");
    if (o->alpha_ce < 0 || o->alpha_mlm < 0 || o->alpha_mse < 0 || o->alpha_cos < 0 ||
        !(o->alpha_ce + o->alpha_mlm + o->alpha_mse + o->alpha_cos > 0))
        return dbt_set_error("the alphas must be >= 0, and one of them > 0");
    if (o->student_layers < 0) return dbt_set_error("student layers must be >= 1");
    if (o->student_layers > 0 && o->student_config) return dbt_set_error("give the student's layers or its config, not both");
    return 0;
}

/* The student's config: the teacher's sizes (vocabulary, width, heads, FFN, activation,
 * positions, dropout) with n layers, as a DistilBertForMaskedLM; or the given config file. */
static int student_config(const dbt_distill_opts *o, const dbt_config *t, dbt_config *s) {
    if (o->student_config) {
        if (dbt_config_load(s, o->student_config)) return -1;
        if (s->arch != DBT_ARCH_DISTILBERT) {
            dbt_config_free(s);
            return dbt_set_error("%s: the student must be a DistilBERT (model_type \"distilbert\")", o->student_config);
        }
    } else {
        static const char *const labels[] = {"LABEL_0", "LABEL_1"};
        memset(s, 0, sizeof *s);
        s->arch = DBT_ARCH_DISTILBERT;
        s->vocab_size = t->vocab_size;
        s->dim = t->dim;
        s->n_layers = o->student_layers > 0 ? o->student_layers : (t->n_layers > 1 ? t->n_layers / 2 : 1);
        s->n_heads = t->n_heads;
        s->hidden_dim = t->hidden_dim;
        s->max_position_embeddings = t->max_position_embeddings;
        s->activation = t->activation;
        s->layer_norm_eps = 1e-12f; /* DistilBERT's, fixed */
        s->pad_token_id = t->pad_token_id;
        s->dropout = t->dropout;
        s->attention_dropout = t->attention_dropout;
        s->classifier_dropout = 0.2f; /* DistilBertConfig's seq_classif_dropout and qa_dropout */
        s->qa_dropout = 0.1f;
        s->initializer_range = t->initializer_range;
        if (dbt_config_set_labels(s, 2, labels)) return -1;
    }
    s->head = DBT_HEAD_MLM;
    snprintf(s->architecture, sizeof s->architecture, "%s", dbt_architecture_name(DBT_ARCH_DISTILBERT, DBT_HEAD_MLM));
    if (s->sinusoidal_pos_embds) {
        dbt_config_free(s);
        return dbt_set_error("sinusoidal position embeddings are frozen in transformers: give the student learned ones");
    }
    if (s->vocab_size != t->vocab_size) {
        dbt_config_free(s);
        return dbt_set_error("the student's vocabulary (%d) must be the teacher's (%d)", s->vocab_size, t->vocab_size);
    }
    return 0;
}

/* The terms that compare hidden states need the same width. */
static int check_widths(const dbt_distill_opts *o, const dbt_config *s, const dbt_config *t, int teacher_head) {
    if ((o->alpha_cos > 0 || (o->alpha_mse > 0 && !teacher_head)) && s->dim != t->dim)
        return dbt_set_error("alpha_cos (and alpha_mse without a teacher head) compare hidden states: the student's "
                             "width (%d) must be the teacher's (%d)", s->dim, t->dim);
    return 0;
}

/* The layer map (given or default), checked against both models. */
static int layer_map(const dbt_distill_opts *o, const dbt_config *s, const dbt_config *t, int *map) {
    if (o->layer_map) {
        if (o->n_layer_map != s->n_layers)
            return dbt_set_error("the layer map names %d layers, the student has %d", o->n_layer_map, s->n_layers);
        memcpy(map, o->layer_map, (size_t)s->n_layers * sizeof *map);
    } else {
        dbt_layer_map_default(t->n_layers, s->n_layers, map);
    }
    for (int i = 0; i < s->n_layers; i++)
        if (map[i] < 0 || map[i] >= t->n_layers)
            return dbt_set_error("layer map entry %d is not a teacher layer (0..%d)", map[i], t->n_layers - 1);
    if (s->dim != t->dim || s->hidden_dim != t->hidden_dim || s->n_heads != t->n_heads ||
        s->max_position_embeddings > t->max_position_embeddings)
        return dbt_set_error("a student initialized from the teacher needs its width, FFN size and heads, and at most its "
                             "positions (or use --from-scratch)");
    return 0;
}

/* Writes the initialized student to out_dir: random weights (and head), over which the
 * teacher's embeddings, mapped layers and head are laid unless from_scratch. */
static int init_student(const dbt_distill_opts *o, const dbt_model *teacher, const dbt_config *sc) {
    int *map = calloc((size_t)sc->n_layers, sizeof *map);
    dbt_weights w;
    float *storage = NULL;
    memset(&w, 0, sizeof w);
    int rc = -1;
    if (!map) return dbt_set_error("out of memory");
    if (!o->from_scratch && layer_map(o, sc, &teacher->cfg, map)) goto done;
    if (dbt_init_random_weights(sc, o->train.seed, &w, &storage)) goto done;
    if (!o->from_scratch) {
        dbt_student_from_teacher(&teacher->w, map, sc->n_layers, &w);
        fprintf(stderr, "distill: student layers from teacher layers");
        for (int i = 0; i < sc->n_layers; i++) fprintf(stderr, "%s%d", i ? "," : " ", map[i]);
        fprintf(stderr, "%s\n", teacher->w.mlm_transform.w ? "" : " (the MLM head is new: the teacher has none)");
    }
    if (dbt_mlm_prepare_out(o->train.out_dir) || dbt_write_mlm_folder(o->train.out_dir, sc, &w) ||
        dbt_copy_tokenizer_files(o->teacher_dir, o->train.out_dir, DBT_ARCH_DISTILBERT))
        goto done;
    rc = 0;
done:
    free(map);
    free(storage);
    free(w.layers);
    return rc;
}

/* Loads the teacher and checks what it allows. */
static dbt_model *load_teacher(const dbt_distill_opts *o) {
    dbt_model *t = dbt_distill_load_teacher(o->teacher_dir);
    if (!t) { dbt_prefix_error("teacher"); return NULL; }
    if (!t->tok) {
        dbt_set_error("the teacher %s has no tokenizer files", o->teacher_dir);
    } else if (!o->from_scratch && dbt_model_dequantize(t)) { /* the student starts from its fp32 layers */
        dbt_prefix_error("teacher");
    } else if (t->info.head != DBT_HEAD_MLM && o->alpha_ce > 0) {
        dbt_set_error("the teacher %s has no masked-LM head, so there are no soft targets: set --alpha-ce 0 (alpha_mlm, "
                      "alpha_cos and alpha_mse, then on hidden states, still apply)", o->teacher_dir);
    } else {
        return t;
    }
    dbt_model_free(t);
    return NULL;
}

int dbt_distill(const dbt_distill_opts *o) {
    if (check_opts(o)) return -1;
    const int resume = dbt_mlm_resume_state(&o->train);
    if (resume < 0) return -1;
    if (resume && o->init_only) return dbt_set_error("--init-only and --resume exclude each other");
    dbt_model *teacher = load_teacher(o), *student = NULL;
    if (!teacher) return -1;
    const int head = teacher->info.head == DBT_HEAD_MLM;
    int rc = -1;
    if (!resume) {
        dbt_config sc;
        if (student_config(o, &teacher->cfg, &sc)) goto done;
        /* [dist] rank 0 writes the student's folder; the others load it from there */
        int bad = check_widths(o, &sc, &teacher->cfg, head) || (dbt_dist_rank() == 0 && init_student(o, teacher, &sc));
        dbt_config_free(&sc);
        if (dbt_dist_agree(bad ? -1 : 0)) goto done;
        if (o->init_only) { rc = 0; goto done; }
    }
    student = dbt_model_load_for_training(o->train.out_dir, DBT_HEAD_MLM, 0, NULL, 1, o->train.seed);
    if (!student) goto done;
    if (student->cfg.vocab_size != teacher->cfg.vocab_size) {
        dbt_set_error("the student's vocabulary differs from the teacher's");
        goto done;
    }
    if (check_widths(o, &student->cfg, &teacher->cfg, head)) goto done;
    dbt_distill_cfg loss = {o->temperature, o->alpha_ce, o->alpha_mlm, o->alpha_mse, o->alpha_cos, o->restrict_ce_to_mask};
    dbt_mlm_run run = {student, teacher, teacher->tok, loss, &o->train, "distillation", resume};
    rc = dbt_mlm_train(&run);
done:
    dbt_model_free(student);
    dbt_model_free(teacher);
    return rc;
}
