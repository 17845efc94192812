/* report.c — progress bar, JSONL log, SVG plot. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/error.h"

double dbt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int dbt_report_open(dbt_report *r, const char *log_path, int append, int bar, int64_t total_steps,
                    const char *metric_name) {
    memset(r, 0, sizeof *r);
    if (!log_path) return 0; /* a report that records nothing: the ranks of a job but rank 0 */
    r->log = fopen(log_path, append ? "a" : "w");
    if (!r->log) return dbt_set_error("cannot write %s", log_path);
    r->bar = bar < 0 ? isatty(2) : bar;
    r->t0 = dbt_now();
    r->total_steps = total_steps;
    snprintf(r->metric_name, sizeof r->metric_name, "%s", metric_name);
    return 0;
}

static void push(double **x, double **y, int *n, int *cap, double a, double b) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        double *nx = realloc(*x, (size_t)*cap * sizeof *nx), *ny = nx ? realloc(*y, (size_t)*cap * sizeof *ny) : NULL;
        if (!nx || !ny) { if (nx) *x = nx; return; }
        *x = nx;
        *y = ny;
    }
    (*x)[*n] = a;
    (*y)[*n] = b;
    (*n)++;
}

static void fmt_time(char *b, size_t n, double s) {
    if (!isfinite(s) || s < 0) { snprintf(b, n, "?"); return; }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%dh%02dm", t / 3600, t / 60 % 60);
    else snprintf(b, n, "%dm%02ds", t / 60, t % 60);
}

void dbt_report_step(dbt_report *r, int64_t step, double epoch, double loss, double lr, double grad_norm,
                     double tokens_per_s) {
    dbt_report_step_extra(r, step, epoch, loss, lr, grad_norm, tokens_per_s, NULL);
}

void dbt_report_series(dbt_report *r, int64_t step, double value, const char *label) {
    if (!r->log) return;
    snprintf(r->series_label, sizeof r->series_label, "%s", label);
    push(&r->eval_x, &r->eval_y, &r->n_eval, &r->cap_eval, (double)step, value);
}

void dbt_report_step_extra(dbt_report *r, int64_t step, double epoch, double loss, double lr, double grad_norm,
                           double tokens_per_s, const char *extra) {
    if (!r->log) return;
    double el = dbt_now() - r->t0;
    fprintf(r->log, "{\"step\":%lld,\"epoch\":%.4f,\"loss\":%.6g,\"lr\":%.6g,\"grad_norm\":%.6g,\"tokens_per_s\":%.1f,\"elapsed_s\":%.2f%s}\n",
            (long long)step, epoch, loss, lr, grad_norm, tokens_per_s, el, extra ? extra : "");
    fflush(r->log);
    push(&r->loss_x, &r->loss_y, &r->n_loss, &r->cap_loss, (double)step, loss);
    if (r->bar) {
        const int width = 24;
        double frac = r->total_steps > 0 ? (double)step / (double)r->total_steps : 0;
        int fill = (int)(frac * width);
        char bar[64], eta[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[width] = '\0';
        fmt_time(eta, sizeof eta, step > 0 ? el / step * (double)(r->total_steps - step) : NAN);
        fprintf(stderr, "\r[%s] %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s ", bar, (long long)step,
                (long long)r->total_steps, loss, lr, tokens_per_s, eta);
        fflush(stderr);
    }
}

void dbt_report_eval(dbt_report *r, int64_t step, double epoch, double metric, const char *metrics_json) {
    if (!r->log) return;
    fprintf(r->log, "{\"step\":%lld,\"epoch\":%.4f,\"eval\":%s}\n", (long long)step, epoch, metrics_json);
    fflush(r->log);
    push(&r->eval_x, &r->eval_y, &r->n_eval, &r->cap_eval, (double)step, metric);
    if (r->bar) fprintf(stderr, "\n");
    fprintf(stderr, "step %lld  eval %s\n", (long long)step, metrics_json);
}

void dbt_report_line(dbt_report *r, const char *json_line) {
    if (!r->log) return;
    fprintf(r->log, "%s\n", json_line);
    fflush(r->log);
}

/* One panel: a polyline of (x, y) scaled into the box. */
static void panel(FILE *f, double ox, double oy, double w, double h, const double *x, const double *y, int n,
                  double xmax, const char *label, const char *color) {
    fprintf(f, "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='none' stroke='#999'/>\n", ox, oy, w, h);
    fprintf(f, "<text x='%.0f' y='%.0f' font-size='13' fill='%s'>%s</text>\n", ox + 6, oy + 16, color, label);
    if (n == 0) return;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i])) continue;
        lo = fmin(lo, y[i]);
        hi = fmax(hi, y[i]);
    }
    if (!isfinite(lo)) return;
    if (hi - lo < 1e-12) { hi += 0.5; lo -= 0.5; }
    fprintf(f, "<text x='%.0f' y='%.0f' font-size='11' text-anchor='end'>%.4g</text>\n", ox - 4, oy + 10, hi);
    fprintf(f, "<text x='%.0f' y='%.0f' font-size='11' text-anchor='end'>%.4g</text>\n", ox - 4, oy + h, lo);
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", color);
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i])) continue;
        double px = ox + (xmax > 0 ? x[i] / xmax : 0) * w, py = oy + h - (y[i] - lo) / (hi - lo) * h;
        fprintf(f, "%.1f,%.1f ", px, py);
    }
    fprintf(f, "'/>\n");
    if (n <= 40)
        for (int i = 0; i < n; i++)
            if (isfinite(y[i]))
                fprintf(f, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='%s'/>\n", ox + (xmax > 0 ? x[i] / xmax : 0) * w,
                        oy + h - (y[i] - lo) / (hi - lo) * h, color);
}

int dbt_report_svg(const dbt_report *r, const char *path, const char *title) {
    if (!r->log) return 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return dbt_set_error("cannot write %s", tmp);
    double xmax = 1;
    for (int i = 0; i < r->n_loss; i++) xmax = fmax(xmax, r->loss_x[i]);
    for (int i = 0; i < r->n_eval; i++) xmax = fmax(xmax, r->eval_x[i]);
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='720' height='420' font-family='sans-serif'>\n"
               "<rect width='720' height='420' fill='white'/>\n"
               "<text x='360' y='22' font-size='15' text-anchor='middle'>%s</text>\n", title);
    panel(f, 70, 40, 620, 150, r->loss_x, r->loss_y, r->n_loss, xmax, "training loss", "#1f77b4");
    char lab[64];
    if (r->series_label[0]) snprintf(lab, sizeof lab, "%s", r->series_label);
    else snprintf(lab, sizeof lab, "dev %s", r->metric_name);
    panel(f, 70, 220, 620, 150, r->eval_x, r->eval_y, r->n_eval, xmax, lab, "#d62728");
    fprintf(f, "<text x='380' y='405' font-size='12' text-anchor='middle'>optimizer step (max %.0f)</text>\n</svg>\n", xmax);
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) { unlink(tmp); return dbt_set_error("cannot write %s", path); }
    return 0;
}

void dbt_report_close(dbt_report *r) {
    if (r->bar) fprintf(stderr, "\n");
    if (r->log) fclose(r->log);
    free(r->loss_x);
    free(r->loss_y);
    free(r->eval_x);
    free(r->eval_y);
    memset(r, 0, sizeof *r);
}
