/* data.h — reading training and evaluation data: classification tables (GLUE TSV with or
 * without header, CSV, JSON lines; gzip accepted), CoNLL token/tag files, SQuAD v1.1 JSON. */
#ifndef DBT_DATA_H
#define DBT_DATA_H

#include <stdint.h>

/* ---- lines of a (possibly gzip-compressed) text file ---- */
typedef struct {
    char **lines;
    int64_t n;
    char *storage;
} dbt_lines;
int dbt_read_lines(const char *path, dbt_lines *out); /* .gz is decompressed; '\r' before '\n' dropped */
void dbt_lines_free(dbt_lines *l);

/* ---- classification / regression ---- */
typedef struct {
    const char *text_column, *pair_column, *label_column; /* header names or 0-based indices; NULL: guess */
    int no_header;                                        /* the first line is data */
    int regression;                                       /* labels are real numbers (one output) */
} dbt_cls_format;

typedef struct {
    char *text, *pair;  /* pair may be NULL */
    int32_t label;      /* class id */
    float target;       /* regression value */
} dbt_cls_example;

typedef struct {
    dbt_cls_example *ex;
    int64_t n;
    char **label_names; /* n_labels; "" for regression */
    int n_labels;
    int regression;
} dbt_cls_data;

/* Reads path. Class labels become ids: when `names`/`n_names` is given (the model's id2label),
 * labels are matched to those names first (or used as ids when they are the integers
 * 0..n_names-1); otherwise integers 0..k-1 stay as they are and other labels are numbered in
 * sorted order. */
int dbt_read_classification(const char *path, const dbt_cls_format *fmt, const char *const *names, int n_names,
                            dbt_cls_data *out);
void dbt_cls_data_free(dbt_cls_data *d);

/* ---- token classification (CoNLL: one "token ... tag" per line, blank lines between
 * sentences, -DOCSTART- lines skipped; the tag is the last column) ---- */
typedef struct {
    char **words;
    int32_t *tags;  /* ids into label_names */
    int n;
} dbt_ner_sentence;

typedef struct {
    dbt_ner_sentence *s;
    int64_t n;
    char **label_names; /* sorted, as transformers' run_ner does */
    int n_labels;
} dbt_ner_data;

int dbt_read_conll(const char *path, const char *const *names, int n_names, dbt_ner_data *out);
void dbt_ner_data_free(dbt_ner_data *d);

/* ---- extractive QA (SQuAD v1.1 JSON) ---- */
typedef struct {
    char *id, *question, *context;
    int n_answers;
    char **answers;      /* texts */
    int32_t *starts;     /* character (code point) offsets into the context */
} dbt_qa_example;

typedef struct {
    dbt_qa_example *ex;
    int64_t n;
} dbt_qa_data;

int dbt_read_squad(const char *path, dbt_qa_data *out);
void dbt_qa_data_free(dbt_qa_data *d);

#endif
