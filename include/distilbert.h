/*
 * distilbert.h — the public face of libdistilbert.
 *
 * DistilBERT and BERT in C: a WordPiece tokenizer identical to Hugging Face's fast tokenizer,
 * and (as the project grows) the encoder, its task heads, fine-tuning and distillation.
 *
 * Conventions
 *   - Every function that can fail returns NULL or a negative number and leaves a message in
 *     dbt_last_error() (thread-local). Nothing in the library prints or exits.
 *   - Objects returned by *_load / *_new are freed by the matching *_free; NULL is accepted.
 *   - Text is UTF-8. Invalid UTF-8 never fails: each maximal ill-formed subsequence is read as
 *     one U+FFFD (the Unicode "maximal subpart" practice, as Python's errors="replace"), and
 *     U+FFFD is then removed by the BERT normalizer. Offsets count code points of that text.
 */
#ifndef DISTILBERT_H
#define DISTILBERT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DBT_VERSION "0.1.0"

/* The message of the last failure in this thread ("" if none). */
const char *dbt_last_error(void);

/* Where the library's warnings go (e.g. "input 3 was truncated"); none until this is called. */
void dbt_set_log(void (*fn)(const char *msg, void *user_data), void *user_data);

/* ------------------------------------------------------------------------------------------ */
/* Tokenizer: BertTokenizerFast semantics (BertNormalizer → BertPreTokenizer → WordPiece →     */
/* [CLS] A [SEP] (B [SEP]) post-processing), loaded from vocab.txt or tokenizer.json.         */
/* ------------------------------------------------------------------------------------------ */

typedef struct dbt_tokenizer dbt_tokenizer;

/* Overrides applied on top of what the files say; -1 means "as the files say". */
typedef struct {
    int lowercase;     /* do_lower_case; a bare vocab.txt defaults to 1 (uncased) */
    int strip_accents; /* -1 with lowercase unset in files: follows lowercase, like HF */
} dbt_tokenizer_opts;

/* path is one of
 *   - a model folder: tokenizer.json if present, else vocab.txt (+ tokenizer_config.json);
 *   - a tokenizer.json file;
 *   - a vocab.txt file (one token per line, id = line number).
 * opts may be NULL. */
dbt_tokenizer *dbt_tokenizer_load(const char *path, const dbt_tokenizer_opts *opts);
void dbt_tokenizer_free(dbt_tokenizer *tok);

int32_t dbt_tokenizer_vocab_size(const dbt_tokenizer *tok);  /* including added tokens */
const char *dbt_tokenizer_id_to_token(const dbt_tokenizer *tok, int32_t id); /* NULL if out of range */
int32_t dbt_tokenizer_token_to_id(const dbt_tokenizer *tok, const char *token); /* -1 if absent */
/* Ids of the special tokens, -1 when the vocabulary has none. */
typedef struct { int32_t pad, unk, cls, sep, mask; } dbt_special_ids;
dbt_special_ids dbt_tokenizer_special_ids(const dbt_tokenizer *tok);
int32_t dbt_tokenizer_model_max_length(const dbt_tokenizer *tok); /* 0 when unknown */

typedef enum {
    DBT_TRUNCATE_NONE = 0,
    DBT_TRUNCATE_LONGEST_FIRST,
    DBT_TRUNCATE_ONLY_FIRST,
    DBT_TRUNCATE_ONLY_SECOND,
} dbt_truncation;

typedef struct {
    int add_special_tokens;    /* [CLS] ... [SEP]; default 1 */
    int max_length;            /* total length including special tokens; 0 = unlimited */
    int stride;                /* tokens shared by consecutive overflow windows */
    dbt_truncation truncation; /* used when max_length > 0 */
    int return_overflowing;    /* 1: also return the windows past the first */
} dbt_encode_opts;

/* The defaults: add special tokens, no truncation, unless tok (may be NULL) was loaded from a
 * tokenizer.json that sets truncation. */
dbt_encode_opts dbt_encode_opts_default(const dbt_tokenizer *tok);

/* One encoded sequence (or window). All arrays have n entries and live in one allocation. */
typedef struct {
    int32_t n;
    int32_t *ids;
    int32_t *type_ids;
    int32_t *attention_mask;
    int32_t *special_tokens_mask;
    int32_t *word_ids;     /* word index within its sequence, -1 for special/padding tokens */
    int32_t *sequence_ids; /* 0 or 1, -1 for special/padding tokens */
    int32_t *offsets;      /* 2n: [start, end) in code points of the token's own input text */
} dbt_encoding;

/* Encodes text (and pair, if not NULL and not empty: like transformers, an empty second text is
 * no second text). Returns the number of windows (1 + overflow windows)
 * and stores a malloc'd array of them in *out, or -1 on error (e.g. stride >= room left). */
int dbt_encode(const dbt_tokenizer *tok, const char *text, size_t text_len, const char *pair,
               size_t pair_len, const dbt_encode_opts *opts, dbt_encoding **out);
void dbt_encodings_free(dbt_encoding *encs, int n);

/* How dbt_encodings_pad lays out a batch. */
typedef struct {
    int length;      /* pad to this length (longer encodings stay as they are); 0: to the longest */
    int multiple_of; /* then round the length up to a multiple of this; 0: no rounding */
    int left;        /* 1: padding goes before the tokens (padding_side "left") */
} dbt_pad_opts;

/* The defaults: to the longest, no rounding, on the right, unless tok (may be NULL) was loaded
 * from a tokenizer.json whose "padding" says otherwise (Fixed length, direction,
 * pad_to_multiple_of) or a tokenizer_config.json with "padding_side". */
dbt_pad_opts dbt_pad_opts_default(const dbt_tokenizer *tok);

/* 1 when tok's tokenizer.json enables padding, which the `tokenizers` library then applies to
 * every encode (each text with its overflow windows is a batch); transformers' tokenizer(...)
 * pads only when asked. */
int dbt_tokenizer_pads_by_default(const dbt_tokenizer *tok);

/* Pads encs[0..n) (each with its own windows, if the caller keeps them together) as opts says
 * (NULL: dbt_pad_opts_default) with the pad id and pad type id of the tokenizer, attention and
 * word ids marking the padding (mask 0, special-tokens mask 1, word and sequence id -1, offsets
 * (0,0)). Returns 0, or -1 on allocation failure or a negative length. */
int dbt_encodings_pad(const dbt_tokenizer *tok, dbt_encoding *encs, int n, const dbt_pad_opts *opts);

/* Ids → text like HF's decode: WordPiece "##" joining, optional removal of special tokens and
 * clean_up_tokenization_spaces. Returns a malloc'd string, or NULL if an id is out of range. */
char *dbt_decode(const dbt_tokenizer *tok, const int32_t *ids, int n, int skip_special_tokens,
                 int clean_up_tokenization_spaces);


/* ------------------------------------------------------------------------------------------ */
/* Model: a Hugging Face DistilBERT or BERT folder (config.json + model.safetensors).          */
/* ------------------------------------------------------------------------------------------ */

typedef enum { DBT_ARCH_DISTILBERT = 0, DBT_ARCH_BERT } dbt_arch;

typedef enum {
    DBT_ACT_GELU = 0,   /* exact: x·Φ(x) with erf */
    DBT_ACT_RELU,
    DBT_ACT_GELU_TANH,  /* gelu_new, gelu_pytorch_tanh */
    DBT_ACT_GELU_FAST,
    DBT_ACT_QUICK_GELU,
    DBT_ACT_SILU,
    DBT_ACT_TANH,
} dbt_activation;

/* The task head on top of the encoder. */
typedef enum {
    DBT_HEAD_NONE = 0,  /* the bare encoder (DistilBertModel, BertModel, sentence-transformers) */
    DBT_HEAD_MLM,       /* ...ForMaskedLM: logits over the vocabulary at each position */
    DBT_HEAD_SEQ_CLS,   /* ...ForSequenceClassification: n_labels logits per sequence */
    DBT_HEAD_TOKEN_CLS, /* ...ForTokenClassification: n_labels logits per token */
    DBT_HEAD_QA,        /* ...ForQuestionAnswering: start and end logits per token */
    DBT_HEAD_AUTO = -1, /* for dbt_model_load: the head that config.json's architectures name */
} dbt_head;

typedef enum {
    DBT_PROBLEM_DEFAULT = 0, /* not stated: single-label if n_labels > 1, else regression */
    DBT_PROBLEM_SINGLE_LABEL,
    DBT_PROBLEM_MULTI_LABEL,
    DBT_PROBLEM_REGRESSION,
} dbt_problem_type;

typedef struct dbt_model dbt_model;

/* The precision of the encoder's Linear layers (attention q, k, v, output; the two FFN layers).
 * Embeddings, attention scores and softmax, LayerNorm and the task heads always run in fp32.
 *   FP32  the default;
 *   BF16  weights and inputs rounded to bfloat16, products summed in fp32 (AVX512_BF16 when the
 *         CPU has it, else the same arithmetic widened to fp32);
 *   INT8  dynamic quantization as ONNX Runtime's: int8 weights per output channel, inputs
 *         quantized per token at run time (uint8 with a zero point), exact int32 sums (VNNI). */
typedef enum { DBT_DTYPE_FP32 = 0, DBT_DTYPE_BF16, DBT_DTYPE_INT8 } dbt_compute_dtype;

/* What a loaded model is (read-only; owned by the model). */
typedef struct {
    dbt_arch arch;
    dbt_head head;
    int vocab_size, dim, n_layers, n_heads, hidden_dim, max_position_embeddings, type_vocab_size;
    dbt_activation activation;
    float layer_norm_eps;
    int n_labels;
    const char *const *id2label;  /* n_labels names */
    dbt_problem_type problem_type;
    const char *architecture;     /* config.json's architectures[0], "" if none */
    int64_t n_params;             /* parameters of the encoder and the loaded head */
    dbt_compute_dtype dtype;      /* of the encoder's Linear layers: FP32, or INT8 for a folder
                                     written by dbt_quantize_folder(..., "int8"); see set_dtype */
} dbt_model_info;

/* Loads dir/config.json and dir/model.safetensors (or its shards), with the weights of `head`
 * (DBT_HEAD_AUTO: the one config.json names). Weights in F32 are used in place from the
 * memory mapping; F16 and BF16 are widened to F32. A missing tensor is an error; tensors the
 * model does not use are listed by dbt_model_warnings(). The tokenizer in the same folder is
 * loaded too when there is one (dbt_model_tokenizer). */
dbt_model *dbt_model_load(const char *dir, dbt_head head);
void dbt_model_free(dbt_model *m);
const dbt_model_info *dbt_model_get_info(const dbt_model *m);
/* The tokenizer loaded with the model, or NULL when the folder has none. Owned by the model. */
const dbt_tokenizer *dbt_model_tokenizer(const dbt_model *m);
/* Notes from loading (unused tensors, tied weights...), "" if none. Owned by the model. */
const char *dbt_model_warnings(const dbt_model *m);

/* Converts the encoder's Linear layers to `dtype` in memory (weights packed once, here). A model
 * loaded from an int8 folder keeps its stored int8 weights; its FP32/BF16 forms are made from
 * their dequantized values. Not while a forward pass on m runs. Returns 0, or -1 (dbt_last_error:
 * out of memory, a layer too wide for int32 sums). */
int dbt_model_set_dtype(dbt_model *m, dbt_compute_dtype dtype);
/* "fp32", "bf16", "int8"; and back (returns -1 for another name). */
const char *dbt_compute_dtype_name(dbt_compute_dtype dtype);
int dbt_compute_dtype_parse(const char *name, dbt_compute_dtype *dtype);

/* Writes a reduced-precision copy of the model folder `dir` to `out_dir` (created; replaced
 * atomically by rename). dtype:
 *   "int8"  the encoder's Linear weights as I8 tensors, each with "<name>.weight_scale" (F32, one
 *           scale per output row), everything else F32; config.json gets "quantization_config":
 *           {"quant_method": "distilbert.c", "dtype": "int8"}. dbt_model_load runs it in INT8.
 *   "bf16", "f16"  every floating tensor as BF16 / F16 (config.json's torch_dtype says so): a plain
 *           Hugging Face folder, which transformers loads too.
 * Tokenizer and sentence-transformers files are copied. Returns 0, or -1 (dbt_last_error). */
int dbt_quantize_folder(const char *dir, const char *out_dir, const char *dtype);

/* Threads used by dbt_model_forward (default: the number of online CPUs). */
void dbt_set_num_threads(int n);
int dbt_get_num_threads(void);

/* The result of a forward pass over a batch. Sequences are packed row after row without
 * padding: sequence i owns rows [row_start[i], row_start[i+1]) of the per-token arrays. */
typedef struct {
    int n_seqs;
    int32_t *row_start;  /* n_seqs + 1 */
    int32_t n_rows;      /* tokens in the batch */
    int dim;
    float *hidden;       /* n_rows × dim: the last hidden state */
    float *pooled;       /* n_seqs × dim: BERT's pooler output (tanh), NULL for DistilBERT */
    float *logits;       /* the head's output, NULL for DBT_HEAD_NONE:
                            MLM       n_rows × vocab_size (rows with mlm_rows == 0 are left 0)
                            SEQ_CLS   n_seqs × n_labels
                            TOKEN_CLS n_rows × n_labels
                            QA        n_rows × 2 (start, end) */
    int logits_cols;
} dbt_output;

typedef struct {
    int head_logits;          /* 1: compute the head's logits (default) */
    const uint8_t *mlm_rows;  /* MLM only: n_rows flags; compute logits only where set (NULL: all) */
} dbt_forward_opts;

/* Runs the encoder (and head) on n encoded sequences. Returns 0, or -1 (e.g. a sequence longer
 * than max_position_embeddings or an id outside the vocabulary). Free with dbt_output_free.
 * Results do not depend on the thread count or on which other sequences share the batch.
 * Memory: the model keeps its working buffers between calls (grown to the largest batch seen,
 * about (5·dim + hidden_dim)·4 bytes per token, freed by dbt_model_free), and a model from
 * dbt_model_load packs its Linear weights once, at its first call (about the size of those
 * weights again; DBT_PREPACK=0 in the environment turns that off). Reentrant: concurrent calls
 * on one model are safe; one at a time uses the kept buffers, the others allocate their own. */
int dbt_model_forward(dbt_model *m, const dbt_encoding *encs, int n, const dbt_forward_opts *opts,
                      dbt_output *out);
void dbt_output_free(dbt_output *out);

/* ------------------------------------------------------------------------------------------ */
/* Pipelines: what transformers' pipeline() gives for each task, as JSON text per input.       */
/* ------------------------------------------------------------------------------------------ */

typedef enum {
    DBT_TASK_FILL_MASK = 0, /* [{"score","token","token_str","sequence"}...] per [MASK] */
    DBT_TASK_CLASSIFY,      /* {"label","score"} (top_k 1) or [{"label","score"}...] */
    DBT_TASK_NER,           /* [{"entity"|"entity_group","score","word","start","end"}...] */
    DBT_TASK_QA,            /* {"score","start","end","answer"} (top_k 1) or a list */
    DBT_TASK_EMBED,         /* {"embedding":[...]} */
} dbt_task;

typedef enum { DBT_AGG_NONE = 0, DBT_AGG_SIMPLE, DBT_AGG_FIRST, DBT_AGG_AVERAGE, DBT_AGG_MAX } dbt_aggregation;
typedef enum { DBT_FN_DEFAULT = 0, DBT_FN_SOFTMAX, DBT_FN_SIGMOID, DBT_FN_NONE } dbt_score_fn;
typedef enum { DBT_POOL_DEFAULT = 0, DBT_POOL_MEAN, DBT_POOL_CLS, DBT_POOL_MAX } dbt_pooling;

typedef struct {
    int top_k;                    /* fill-mask 5, classify 1 (-1: every label), qa 1 */
    dbt_score_fn function;        /* classify: DEFAULT picks as transformers does */
    dbt_aggregation aggregation;  /* ner */
    int max_length;               /* tokens per sequence; 0: the model's (qa: 384) */
    int doc_stride;               /* qa: -1 → min(max_length / 2, 128) */
    int max_answer_len;           /* qa: 15 */
    int max_question_len;         /* qa: 64 */
    int handle_impossible_answer; /* qa: allow the empty answer */
    dbt_pooling pooling;          /* embed: DEFAULT reads 1_Pooling/config.json, else mean */
    int normalize;                /* embed: -1 as modules.json says (Normalize module), 0/1 */
    int raw;                      /* add the raw logits to each result */
    int batch_size;               /* sequences per forward pass: 32 */
} dbt_pipeline_opts;

dbt_pipeline_opts dbt_pipeline_opts_default(dbt_task task);

/* One input: a text, or a pair (classify: a text pair; qa: text = question, text_pair = context). */
typedef struct {
    const char *text;
    const char *text_pair;
} dbt_input;

/* The head a task needs, for dbt_model_load. */
dbt_head dbt_task_head(dbt_task task);

/* Runs the task on n inputs. json_out[i] receives a malloc'd JSON text in the pipeline's shape.
 * Returns 0, or -1 (then json_out holds nothing to free). */
int dbt_pipeline_run(dbt_model *m, dbt_task task, const dbt_input *in, int n, const dbt_pipeline_opts *o,
                     char **json_out);

/* ------------------------------------------------------------------------------------------ */
/* Training: fine-tuning and evaluation (transformers' Trainer semantics: AdamW, linear         */
/* warmup/decay, clipping, no decay on biases and LayerNorm weights).                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    dbt_task task;                 /* DBT_TASK_CLASSIFY, DBT_TASK_NER or DBT_TASK_QA (FILL_MASK: eval only) */
    const char *model_dir;         /* start from here (a missing head is initialized, reported) */
    const char *train_path, *dev_path; /* dev_path may be NULL */
    const char *out_dir;           /* the trained model, as a Hugging Face folder */
    int epochs;                    /* 3 */
    int64_t max_steps;             /* 0: epochs decide */
    float lr;                      /* 5e-5 */
    int batch_size;                /* 32 */
    int grad_accum;                /* 1 */
    int max_length;                /* 128 (qa: 384) */
    int doc_stride;                /* qa: 128 */
    float warmup_ratio;            /* 0 */
    float weight_decay;            /* 0 */
    float max_grad_norm;           /* 1.0 */
    uint64_t seed;                 /* 42 */
    int log_every;                 /* steps between log lines: 10 */
    int64_t eval_every;            /* steps between evaluations; 0: once per epoch */
    int resume;                    /* continue from out_dir's saved state */
    int progress;                  /* -1: a progress bar when stderr is a terminal */
    /* classification data: column names or indices (NULL: guessed), regression */
    const char *text_column, *pair_column, *label_column;
    int regression;
    /* task-specific distillation (teacher_dir NULL: none): loss = alpha_ce·KL·T² + alpha_task·task */
    const char *teacher_dir;
    float alpha_ce, alpha_task, temperature;
} dbt_finetune_opts;

dbt_finetune_opts dbt_finetune_opts_default(dbt_task task);
/* Trains; writes out_dir (model, tokenizer files, train_log.jsonl, training.svg, training state).
 * Returns 0, 1 when interrupted by SIGINT (state saved), -1 on error. */
int dbt_finetune(const dbt_finetune_opts *o);

/* Evaluates model_dir on data_path; *json receives the metrics as a malloc'd JSON object
 * (accuracy, f1, mcc, pearson, spearman / seqeval precision, recall, f1 / SQuAD exact_match, f1). */
int dbt_evaluate(dbt_task task, const char *model_dir, const char *data_path, const dbt_finetune_opts *o, char **json);
/* The same on a loaded model (one dbt_model_load'ed with dbt_task_head(task)), in the precision
 * dbt_model_set_dtype gave it; o->model_dir is not read. task DBT_TASK_FILL_MASK evaluates the
 * masked LM on text, as dbt_evaluate_mlm does. */
int dbt_evaluate_model(dbt_model *m, dbt_task task, const char *data_path, const dbt_finetune_opts *o, char **json);
/* Masked-LM evaluation of a model with its MLM head on held-out text (one sequence per line, cut
 * and filtered as pretrain reads its corpus; o->max_length, o->batch_size, o->seed): 15% of each
 * batch's tokens drawn uniformly (special tokens never), 80% [MASK] / 10% kept / 10% random, from
 * o->seed, so that models compared on the same text see the same masks. *json: {"loss" (mean
 * cross-entropy over the masked tokens), "perplexity" (exp(loss)), "accuracy", "masked", "n"}.
 * masks_path (may be NULL) receives each sequence's corrupted input_ids and labels (-100 where
 * nothing is predicted), one JSON line each, to check the figures with another implementation. */
int dbt_evaluate_mlm(dbt_model *m, const char *text_path, const dbt_finetune_opts *o, const char *masks_path,
                     char **json);

/* ------------------------------------------------------------------------------------------ */
/* Masked-LM training: pretraining (a teacher from scratch) and knowledge distillation of a    */
/* BERT teacher into a DistilBERT student (Sanh et al. 2019, Hugging Face's distiller).        */
/* ------------------------------------------------------------------------------------------ */

/* What both share: the corpus, dynamic masking, the optimization. */
typedef struct {
    const char *out_dir;           /* the trained ...ForMaskedLM folder, with its log and state */
    const char *const *corpus;     /* text files (.gz read too): one sequence per line */
    int n_corpus;
    int max_length;                /* 128: longer lines are split; sequences under 12 tokens dropped */
    double mask_prop;              /* 0.15 of the tokens predicted, drawn ∝ count^-smoothing */
    double word_mask, word_keep, word_rand; /* 0.8 [MASK], 0.1 kept, 0.1 random token */
    double smoothing;              /* 0.7 (0: uniform over the non-special tokens) */
    int epochs;                    /* 3 */
    int64_t max_steps;             /* 0: epochs decide */
    float lr;                      /* 5e-4, linear warmup then decay; AdamW betas (0.9, 0.98), eps 1e-6 */
    int batch_size, grad_accum;    /* 16, 1: batches group sequences of similar length */
    float warmup_ratio;            /* 0.05 */
    float weight_decay;            /* 0 */
    float max_grad_norm;           /* 5 */
    uint64_t seed;                 /* 42 */
    int log_every;                 /* 10 steps */
    int64_t save_every;            /* steps between checkpoints; 0: at the end of each epoch */
    int resume;                    /* continue from out_dir's saved state */
    int progress;                  /* -1: a progress bar when stderr is a terminal */
} dbt_mlm_train_opts;

typedef struct {
    const char *teacher_dir;       /* BERT or DistilBERT folder; frozen. Without an MLM head only
                                      mlm, cos and mse (then on hidden states) apply */
    int student_layers;            /* 0: half the teacher's */
    const char *student_config;    /* a DistilBERT config.json instead (NULL: the teacher's sizes) */
    const int *layer_map;          /* student layer i = teacher layer layer_map[i]; NULL: evenly
                                      spaced with first and last (12 → 6: 0,2,4,7,9,11) */
    int n_layer_map;
    int from_scratch;              /* random student instead of the teacher's layers */
    int init_only;                 /* write the initialized student to out_dir and stop */
    float temperature;             /* 2 */
    float alpha_ce, alpha_mlm, alpha_mse, alpha_cos; /* 5, 2, 0, 1 */
    int restrict_ce_to_mask;       /* the soft-target (and mse) terms on masked tokens only */
    dbt_mlm_train_opts train;
} dbt_distill_opts;

dbt_distill_opts dbt_distill_opts_default(void);
/* Distills; writes out_dir (DistilBertForMaskedLM, the teacher's tokenizer files,
 * train_log.jsonl with each loss term, training.svg, training state). Returns 0, 1 when
 * interrupted by SIGINT (state saved), -1 on error. */
int dbt_distill(const dbt_distill_opts *o);

typedef struct {
    const char *model_dir;         /* continue pretraining this folder (NULL: a new model) */
    const char *vocab_path;        /* new model: a vocab.txt (lowercased unless cased) ... */
    int cased;
    const char *tokenizer_path;    /* ... or a tokenizer folder / tokenizer.json */
    const char *config_path;       /* new model: a config.json, else the sizes below */
    dbt_arch arch;                 /* DBT_ARCH_BERT */
    int n_layers, dim, n_heads, hidden_dim, max_positions; /* 12, 768, 12, 3072, 512 */
    dbt_mlm_train_opts train;
} dbt_pretrain_opts;

dbt_pretrain_opts dbt_pretrain_opts_default(void);
/* Masked-LM training; writes a BertForMaskedLM / DistilBertForMaskedLM folder that transformers
 * loads and `distill` takes as a teacher. Returns 0, 1 when interrupted (state saved), -1. */
int dbt_pretrain(const dbt_pretrain_opts *o);

/* ------------------------------------------------------------------------------------------ */
/* Data-parallel training over MPI (`mpirun -np N distilbert finetune|distill|pretrain ...`).  */
/* Every rank loads the same model and data; rank r trains on its slice of each global batch   */
/* (N × batch_size sequences), the gradients are summed over ranks before each AdamW step, so  */
/* N ranks with batch_size B take the steps one process with batch N·B takes. Only rank 0      */
/* writes (checkpoints, train_log.jsonl, training.svg) and evaluates. Without dbt_dist_init,   */
/* or in a build without MPI (dbt_dist_backend() == "none"), there is one rank.               */
/* ------------------------------------------------------------------------------------------ */

/* Joins the job when the process was started by an MPI launcher (mpirun/mpiexec/srun: their
 * environment names a rank), else stays a single process without touching MPI (no start-up
 * cost, nothing printed). A program that initialized MPI itself is joined as it is. Returns the
 * number of ranks, or -1. */
int dbt_dist_init(int *argc, char ***argv);
/* Leaves the job. status != 0 after a failure that only this rank saw (the others may wait for
 * it in a collective): aborts the whole job (MPI_Abort) so that nothing hangs; otherwise
 * finalizes MPI. Nothing happens without MPI. */
void dbt_dist_finalize(int status);
int dbt_dist_rank(void);              /* 0 .. size-1; 0 without MPI */
int dbt_dist_size(void);              /* 1 without MPI */
int dbt_dist_local_size(void);        /* ranks on this machine (to share its cores): 1 without MPI */
const char *dbt_dist_backend(void);   /* "mpi" when built with MPI, else "none" */
/* 1 when the failure a training function just returned was every rank's (a NaN loss, a
 * checkpoint rank 0 could not write): each rank has the message, rank 0 need report it. */
int dbt_dist_failed_together(void);

/* WordPiece vocabulary training, as tokenizers' WordPieceTrainer (BertWordPieceTokenizer.train):
 * each line is normalized and split as BERT does, words are counted, the alphabet is their
 * characters ("##c" inside words), then the most frequent adjacent pair is merged until the
 * vocabulary has vocab_size entries ([PAD] [UNK] [CLS] [SEP] [MASK] are ids 0..4). */
typedef struct {
    int vocab_size;        /* target size, special tokens included (the alphabet may exceed it) */
    int lowercase;         /* 1: uncased (lowercase and strip accents, the default); 0: cased */
    int64_t min_frequency; /* a pair seen fewer times is not merged: 2 */
    int limit_alphabet;    /* keep the N most frequent characters: 1000; 0: all of them */
    int model_max_length;  /* written to tokenizer_config.json: 512 */
} dbt_vocab_train_opts;

typedef struct {
    int64_t n_lines, n_words, n_distinct_words;
    int alphabet_size;     /* characters kept */
    int n_merges;
    int vocab_size;        /* entries written to vocab.txt */
} dbt_vocab_train_stats;

dbt_vocab_train_opts dbt_vocab_train_opts_default(void);
/* Trains on n text files (.gz is decompressed, "-" is stdin) and writes out_dir (created if
 * needed): vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json, each
 * atomically. stats may be NULL. Returns 0, or -1. */
int dbt_train_vocab(const char *const *corpus_paths, int n, const dbt_vocab_train_opts *o, const char *out_dir,
                    dbt_vocab_train_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* DISTILBERT_H */
