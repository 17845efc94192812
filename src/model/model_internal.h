/* model_internal.h — the model as plain structs: config, weights, and where they live.
 *
 * Weights point either into the safetensors mapping (F32, aligned: zero copy) or into buffers
 * the model owns (F16/BF16 widened to F32, computed sinusoidal positions); `owned` lists the
 * latter so that dbt_model_free releases exactly those. */
#ifndef DBT_MODEL_INTERNAL_H
#define DBT_MODEL_INTERNAL_H

#include "config.h"
#include "distilbert.h"
#include "safetensors.h"
#include "../kernels/kernels.h"

typedef struct {
    float *w; /* n_out × n_in (PyTorch's Linear layout) */
    float *b; /* n_out, may be NULL */
    int n_out, n_in;
    /* Reduced precision (linear.c; the encoder's q, k, v, o, ff1, ff2 only): the forms of w the
     * kernels read, and the one dbt_linear_apply uses (a dbt_compute_dtype; FP32 reads w). */
    dbt_bf16_weights *bf16;
    dbt_int8_weights *i8;
    int i8_from_file;     /* i8 came quantized from the folder: kept */
    /* i8_from_file: the weights as stored (in the folder's mapping) and their per-row scales. The
     * fp32 w is made from them only when something reads it (--dtype fp32|bf16, training, a
     * student built from these layers): dbt_linear_dequantize; until then w is NULL. */
    const int8_t *q8;
    const float *q8_scale;
    float *w_dequant;     /* that w, malloc'd; freed by dbt_model_free_lowp */
    int dtype;
} dbt_linear;

/* y = act(x·wᵀ + b) in l->dtype (act: a dbt_activation or DBT_GEMM_NO_ACT). */
void dbt_linear_apply(const dbt_linear *l, const float *x, int M, int act, float *y);
/* Frees the reduced-precision forms of every encoder Linear (dbt_model_free). */
void dbt_model_free_lowp(dbt_model *m);
/* Makes w (Wq·scale) of a Linear whose int8 weights came from the folder, if not made yet; 0, or
 * -1 when out of memory. dbt_model_dequantize does it for every encoder Linear. */
int dbt_linear_dequantize(dbt_linear *l);
int dbt_model_dequantize(dbt_model *m);

typedef struct {
    float *gamma, *beta;
    int n;
} dbt_layernorm;

typedef struct {
    dbt_linear q, k, v, o;     /* attention projections */
    dbt_layernorm ln_attn;     /* DistilBERT sa_layer_norm / BERT attention.output.LayerNorm */
    dbt_linear ff1, ff2;       /* feed-forward */
    dbt_layernorm ln_ffn;      /* DistilBERT output_layer_norm / BERT output.LayerNorm */
} dbt_layer;

typedef struct {
    float *word_emb;           /* vocab × dim */
    float *pos_emb;            /* max_position_embeddings × dim */
    float *type_emb;           /* type_vocab_size × dim (BERT), NULL for DistilBERT */
    dbt_layernorm ln_emb;
    dbt_layer *layers;         /* n_layers */
    dbt_linear pooler;         /* BERT; w == NULL when the checkpoint has none */
    /* MLM head: transform → activation → LayerNorm → decoder (tied to word_emb) + bias */
    dbt_linear mlm_transform;
    dbt_layernorm mlm_ln;
    float *mlm_decoder;        /* vocab × dim */
    float *mlm_bias;           /* vocab */
    /* classification heads */
    dbt_linear pre_classifier; /* DistilBERT sequence classification only */
    dbt_linear classifier;     /* n_labels × dim */
    dbt_linear qa;             /* 2 × dim */
} dbt_weights;

struct dbt_model {
    dbt_config cfg;
    dbt_model_info info;
    dbt_weights w;
    dbt_safetensors st;
    void **owned;
    int n_owned;
    dbt_tokenizer *tok;
    char *warnings;
    char *dir;                 /* the folder it was loaded from (pipelines read module configs) */
    /* loading for training: a head missing from the checkpoint is initialized as transformers
     * does (normal(0, initializer_range) weights, zero biases), seeded */
    int init_head;
    uint64_t init_seed;
    /* while loading: how many tensors the config needs and the checkpoint lacks, and the first
     * names (model_load.c), so that all are reported together */
    int n_missing;
    char *missing;
    dbt_compute_dtype dtype;   /* of the encoder's Linear layers (dbt_model_set_dtype) */
    /* dbt_model_forward's reusable state (forward.c). The activation arena grows to the largest
     * batch seen; a call that finds it in use (arena_busy) by a concurrent call allocates its
     * own. `frozen`: loaded by dbt_model_load, so the weights never change and the first forward
     * may pack the Linear weights once (`packed`, published with release/acquire). */
    float *arena;
    size_t arena_cap; /* floats */
    _Atomic int arena_busy;
    int frozen;
    _Atomic(struct dbt_packed_set *) packed;
};

/* dbt_model_load with training options: n_labels/labels (n_labels 0: from config.json) replace
 * the config's labels; init_head lets a missing head be freshly initialized (reported in the
 * warnings). */
dbt_model *dbt_model_load_for_training(const char *dir, dbt_head head, int n_labels, const char *const *labels,
                                       int init_head, uint64_t seed);

#endif
