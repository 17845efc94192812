/* report.h — what a training run shows and leaves behind: a progress bar on a terminal, a JSONL
 * log of step metrics and evaluations, and an SVG plot of the loss and the dev metric. */
#ifndef DBT_REPORT_H
#define DBT_REPORT_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *log;            /* out_dir/train_log.jsonl */
    int bar;              /* draw the progress bar */
    double t0;            /* start time (s) */
    int64_t total_steps;
    /* history for the plot */
    double *loss_x, *loss_y;
    int n_loss, cap_loss;
    double *eval_x, *eval_y;
    int n_eval, cap_eval;
    char metric_name[32];
    char series_label[48]; /* set by dbt_report_series: the second panel plots a training series */
} dbt_report;

double dbt_now(void);
/* log_path NULL: a report that records and shows nothing (every call a no-op), which is what the
 * ranks of a data-parallel job but rank 0 keep. */
int dbt_report_open(dbt_report *r, const char *log_path, int append, int bar, int64_t total_steps,
                    const char *metric_name);
void dbt_report_step(dbt_report *r, int64_t step, double epoch, double loss, double lr, double grad_norm,
                     double tokens_per_s);
/* dbt_report_step with more members in the record: `extra` is `,"k":v...` (or NULL). */
void dbt_report_step_extra(dbt_report *r, int64_t step, double epoch, double loss, double lr, double grad_norm,
                           double tokens_per_s, const char *extra);
/* A point of a training series (e.g. masked-token accuracy) for the second panel of the plot,
 * when there is no dev set; nothing is logged. */
void dbt_report_series(dbt_report *r, int64_t step, double value, const char *label);
void dbt_report_eval(dbt_report *r, int64_t step, double epoch, double metric, const char *metrics_json);
void dbt_report_line(dbt_report *r, const char *json_line); /* any other record */
/* Writes the plot atomically. */
int dbt_report_svg(const dbt_report *r, const char *path, const char *title);
void dbt_report_close(dbt_report *r);

#endif
