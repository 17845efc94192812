/* pretrain.c — `distilbert pretrain`: masked-LM training of a new model (random weights as
 * transformers initializes them, a tokenizer from a vocab.txt or a tokenizer folder) or of an
 * existing folder, with the same loop, data and dynamic masking as distillation. Its output is
 * a ...ForMaskedLM folder, i.e. a teacher `distill` accepts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/file.h"
#include "../model/config.h"
#include "dist.h"
#include "distill.h"
#include "mlm_loop.h"

dbt_pretrain_opts dbt_pretrain_opts_default(void) {
    dbt_pretrain_opts o;
    memset(&o, 0, sizeof o);
    o.train = dbt_mlm_train_opts_default();
    o.arch = DBT_ARCH_BERT;
    o.n_layers = 12;
    o.dim = 768;
    o.n_heads = 12;
    o.hidden_dim = 3072;
    o.max_positions = 512;
    return o;
}

static int check_opts(const dbt_pretrain_opts *o) {
    if (dbt_mlm_train_opts_check(&o->train)) return -1;
    int sources = !!o->model_dir + !!o->vocab_path + !!o->tokenizer_path;
    if (sources != 1 && !o->train.resume)
        return dbt_set_error("give exactly one of a model folder (to continue), a vocabulary or a tokenizer (a new model)");
    if (o->model_dir && o->config_path) return dbt_set_error("a config file is for new models only");
    if (o->n_layers < 1 || o->dim < 1 || o->n_heads < 1 || o->hidden_dim < 1 || o->max_positions < 12 ||
        o->dim % o->n_heads)
        return dbt_set_error("layers, dim, heads, hidden dim must be >= 1, dim a multiple of heads, positions >= 12");
    return 0;
}

static dbt_tokenizer *load_tokenizer(const dbt_pretrain_opts *o) {
    if (o->vocab_path) {
        dbt_tokenizer_opts to = {!o->cased, -1};
        return dbt_tokenizer_load(o->vocab_path, &to);
    }
    return dbt_tokenizer_load(o->tokenizer_path, NULL);
}

/* The new model's config: the file, or the sizes given, with the tokenizer's vocabulary. */
static int new_config(const dbt_pretrain_opts *o, const dbt_tokenizer *tok, dbt_config *c) {
    const int V = dbt_tokenizer_vocab_size(tok);
    if (o->config_path) {
        if (dbt_config_load(c, o->config_path)) return -1;
        if (c->vocab_size < V) {
            dbt_config_free(c);
            return dbt_set_error("%s: vocab_size %d is smaller than the tokenizer's %d", o->config_path, c->vocab_size, V);
        }
    } else {
        static const char *const labels[] = {"LABEL_0", "LABEL_1"};
        const dbt_special_ids sp = dbt_tokenizer_special_ids(tok);
        memset(c, 0, sizeof *c);
        c->arch = o->arch;
        c->vocab_size = V;
        c->dim = o->dim;
        c->n_layers = o->n_layers;
        c->n_heads = o->n_heads;
        c->hidden_dim = o->hidden_dim;
        c->max_position_embeddings = o->max_positions;
        c->type_vocab_size = o->arch == DBT_ARCH_BERT ? 2 : 0;
        c->activation = DBT_ACT_GELU;
        c->layer_norm_eps = 1e-12f;
        c->pad_token_id = sp.pad >= 0 ? sp.pad : 0;
        c->dropout = c->attention_dropout = 0.1f;
        c->classifier_dropout = o->arch == DBT_ARCH_BERT ? 0.1f : 0.2f;
        c->qa_dropout = 0.1f;
        c->initializer_range = 0.02f;
        if (dbt_config_set_labels(c, 2, labels)) return -1;
    }
    c->head = DBT_HEAD_MLM;
    snprintf(c->architecture, sizeof c->architecture, "%s", dbt_architecture_name(c->arch, DBT_HEAD_MLM));
    if (c->sinusoidal_pos_embds) {
        dbt_config_free(c);
        return dbt_set_error("sinusoidal position embeddings are frozen in transformers: use learned ones");
    }
    return 0;
}

/* The tokenizer files of the new model: a vocab.txt with a tokenizer_config.json saying its
 * casing, or the files of a tokenizer folder, or a tokenizer.json. */
static int write_tokenizer(const dbt_pretrain_opts *o, const dbt_config *c) {
    char path[4096], text[256];
    const char *out = o->train.out_dir;
    if (!o->vocab_path && dbt_is_dir(o->tokenizer_path)) return dbt_copy_tokenizer_files(o->tokenizer_path, out, c->arch);
    if (dbt_copy_file(o->vocab_path ? o->vocab_path : o->tokenizer_path,
                      dbt_path_join(path, sizeof path, out, o->vocab_path ? "vocab.txt" : "tokenizer.json")))
        return -1;
    /* DistilBERT takes no token_type_ids: say so, or transformers' tokenizer passes them */
    const char *inputs = c->arch == DBT_ARCH_DISTILBERT ? ",\n  \"model_input_names\": [\"input_ids\", \"attention_mask\"]" : "";
    int n = o->vocab_path ? snprintf(text, sizeof text, "{\n  \"do_lower_case\": %s,\n  \"model_max_length\": %d%s\n}\n",
                                     o->cased ? "false" : "true", c->max_position_embeddings, inputs)
                          : snprintf(text, sizeof text, "{\n  \"model_max_length\": %d%s\n}\n", c->max_position_embeddings, inputs);
    return dbt_write_file_atomic(dbt_path_join(path, sizeof path, out, "tokenizer_config.json"), text, (size_t)n);
}

/* A new model in out_dir: config, random weights, tokenizer files. */
static int create_model(const dbt_pretrain_opts *o) {
    dbt_tokenizer *tok = load_tokenizer(o);
    if (!tok) return -1;
    dbt_config c;
    int rc = new_config(o, tok, &c);
    dbt_tokenizer_free(tok);
    if (rc) return -1;
    dbt_weights w;
    float *storage = NULL;
    rc = dbt_init_random_weights(&c, o->train.seed, &w, &storage);
    if (rc == 0)
        rc = dbt_mlm_prepare_out(o->train.out_dir) || dbt_write_mlm_folder(o->train.out_dir, &c, &w) ||
             write_tokenizer(o, &c) ? -1 : 0;
    free(storage);
    free(w.layers);
    dbt_config_free(&c);
    return rc;
}

int dbt_pretrain(const dbt_pretrain_opts *o) {
    if (check_opts(o)) return -1;
    const int resume = dbt_mlm_resume_state(&o->train);
    if (resume < 0) return -1;
    const char *start = o->train.out_dir;
    int made = 0; /* [dist] rank 0 prepares out_dir; the others wait for it, then read it */
    if (!resume && o->model_dir) {
        /* continue an existing model: its tokenizer files go with the checkpoints */
        if (dbt_dist_rank() == 0) {
            dbt_config mc;
            char cfg_path[4096];
            made = dbt_config_load(&mc, dbt_path_join(cfg_path, sizeof cfg_path, o->model_dir, "config.json"));
            if (!made) {
                made = dbt_mlm_prepare_out(o->train.out_dir) ||
                       dbt_copy_tokenizer_files(o->model_dir, o->train.out_dir, mc.arch) ? -1 : 0;
                dbt_config_free(&mc);
            }
        }
        start = o->model_dir;
    } else if (!resume && dbt_dist_rank() == 0) {
        made = create_model(o);
    }
    if (dbt_dist_agree(made)) return -1;
    dbt_model *m = dbt_model_load_for_training(start, DBT_HEAD_MLM, 0, NULL, 1, o->train.seed);
    if (!m) return -1;
    if (dbt_dist_rank() == 0 && *dbt_model_warnings(m)) fprintf(stderr, "%s", dbt_model_warnings(m));
    int rc = -1;
    if (!m->tok) {
        dbt_set_error("%s has no tokenizer files", start);
    } else {
        dbt_distill_cfg loss = {1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0};
        dbt_mlm_run run = {m, NULL, m->tok, loss, &o->train, "pretraining", resume};
        rc = dbt_mlm_train(&run);
    }
    dbt_model_free(m);
    return rc;
}
