/* checkpoint.c — HF folders out of params, atomically. */
#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/file.h"
#include "../model/config.h"
#include "../model/safetensors.h"
#include "dist.h"

static int write_file_synced(const char *path, const void *data, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return dbt_set_error("cannot create %s: %s", path, strerror(errno));
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return dbt_set_error("cannot write %s: %s", path, strerror(e));
        }
        p += w;
        n -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) return dbt_set_error("cannot sync %s: %s", path, strerror(errno));
    return 0;
}

static int copy_file(const char *from, const char *to) {
    size_t n;
    char *data = dbt_read_file(from, 1u << 30, &n);
    if (!data) return -1;
    int rc = write_file_synced(to, data, n);
    free(data);
    return rc;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_weights(const char *path, const dbt_params *p, const float *base, const char *suffix) {
    dbt_st_write_tensor *t = calloc((size_t)p->n, sizeof *t);
    char (*names)[160] = calloc((size_t)p->n, sizeof *names);
    if (!t || !names) { free(t); free(names); return dbt_set_error("out of memory"); }
    for (int i = 0; i < p->n; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", p->list[i].name, suffix);
        t[i].name = names[i];
        t[i].dtype = DBT_DT_F32;
        t[i].ndim = p->list[i].ndim;
        t[i].shape[0] = p->list[i].shape[0];
        t[i].shape[1] = p->list[i].shape[1];
        t[i].data = base + p->list[i].offset;
    }
    int rc = dbt_st_write(path, t, p->n, "{\"format\": \"pt\"}");
    free(t);
    free(names);
    return rc;
}

static int write_checkpoint(const dbt_model *m, const dbt_params *p, const char *src_dir, const char *dir,
                            const dbt_adamw *opt, const dbt_train_state *state) {
    char tmp[4096], path[4200], from[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", dir, (int)getpid());
    remove_tree(tmp);
    if (mkdir(tmp, 0755) != 0) return dbt_set_error("cannot create %s: %s", tmp, strerror(errno));
    int rc = -1;
    char *cfg = dbt_config_to_json(&m->cfg, dbt_architecture_name(m->cfg.arch, m->info.head));
    if (!cfg) { dbt_set_error("out of memory"); goto fail; }
    rc = write_file_synced(dbt_path_join(path, sizeof path, tmp, "config.json"), cfg, strlen(cfg));
    free(cfg);
    if (rc) goto fail;
    if ((rc = write_weights(dbt_path_join(path, sizeof path, tmp, "model.safetensors"), p, p->data, ""))) goto fail;
    static const char *const tok_files[] = {"vocab.txt", "tokenizer.json", "special_tokens_map.json", "modules.json",
                                            "sentence_bert_config.json"};
    for (size_t i = 0; src_dir && i < sizeof tok_files / sizeof tok_files[0]; i++)
        if (dbt_file_exists(dbt_path_join(from, sizeof from, src_dir, tok_files[i])) &&
            (rc = copy_file(from, dbt_path_join(path, sizeof path, tmp, tok_files[i]))))
            goto fail;
    /* tokenizer_config.json: told that DistilBERT takes no token_type_ids (config.h) */
    if (src_dir && (rc = dbt_copy_tokenizer_config(src_dir, tmp, m->cfg.arch, write_file_synced))) goto fail;
    if (opt) {
        if ((rc = write_weights(dbt_path_join(path, sizeof path, tmp, "optimizer.exp_avg.safetensors"), p, opt->m, "")) ||
            (rc = write_weights(dbt_path_join(path, sizeof path, tmp, "optimizer.exp_avg_sq.safetensors"), p, opt->v, "")))
            goto fail;
    }
    if (state) {
        char js[1024];
        int n = snprintf(js, sizeof js,
                         "{\n  \"global_step\": %lld,\n  \"epoch\": %lld,\n  \"cursor\": %lld,\n  \"seed\": %llu,\n"
                         "  \"rng\": [\"%016llx\", \"%016llx\", \"%016llx\", \"%016llx\"],\n  \"best_metric\": %.17g,\n"
                         "  \"optimizer_step\": %lld,\n  \"world_size\": %d\n}\n",
                         (long long)state->step, (long long)state->epoch, (long long)state->cursor,
                         (unsigned long long)state->seed, (unsigned long long)state->rng.s[0],
                         (unsigned long long)state->rng.s[1], (unsigned long long)state->rng.s[2],
                         (unsigned long long)state->rng.s[3], state->best_metric,
                         (long long)(opt ? opt->step : state->step), dbt_dist_size());
        if ((rc = write_file_synced(dbt_path_join(path, sizeof path, tmp, "trainer_state.json"), js, (size_t)n))) goto fail;
    }
    sync_dir(tmp);
    /* Swap the new folder in with one rename: if dir exists, exchange them atomically, then
     * remove the old one (now at tmp). */
    if (dbt_is_dir(dir)) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0) {
            rc = dbt_set_error("cannot replace %s: %s", dir, strerror(errno));
            goto fail;
        }
        /* Files of the old folder that the checkpoint does not write (the training log, the
         * plot, notes) move into the new one; an open log stays valid (same inode). */
        DIR *d = opendir(tmp);
        struct dirent *e;
        char a[4200], b[4200];
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            dbt_path_join(b, sizeof b, dir, e->d_name);
            if (!dbt_file_exists(b) && !dbt_is_dir(b)) rename(dbt_path_join(a, sizeof a, tmp, e->d_name), b);
        }
        if (d) closedir(d);
        remove_tree(tmp);
    } else if (rename(tmp, dir) != 0) {
        rc = dbt_set_error("cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = '\0'; else strcpy(parent, ".");
    sync_dir(parent);
    return 0;
fail:
    remove_tree(tmp);
    return rc ? rc : -1;
}

/* In a data-parallel job every rank calls this at the same point: rank 0 writes, and every rank
 * learns whether it could (so that a full disk stops the whole job, not rank 0 alone). The
 * ranks' weights are compared first: they take identical steps, and this is where a divergence
 * would be caught (and repaired from rank 0) before it is saved. */
int dbt_save_checkpoint(const dbt_model *m, const dbt_params *p, const char *src_dir, const char *dir,
                        const dbt_adamw *opt, const dbt_train_state *state) {
    if (dbt_dist_size() == 1) return write_checkpoint(m, p, src_dir, dir, opt, state);
    if (opt) {
        /* the buffers are the caller's own (non-const) ones; only a divergence rewrites them */
        int r = dbt_dist_check_weights((dbt_params *)p, (dbt_adamw *)opt);
        if (r < 0) return -1;
        if (r > 0 && dbt_dist_rank() == 0)
            fprintf(stderr, "warning: the ranks' weights differed at step %lld: re-synchronized from rank 0\n",
                    (long long)opt->step);
    }
    int rc = dbt_dist_rank() == 0 ? write_checkpoint(m, p, src_dir, dir, opt, state) : 0;
    return dbt_dist_agree(rc);
}

static int read_moments(const char *path, const dbt_params *p, float *dst) {
    dbt_safetensors st = {0};
    if (dbt_st_open_file(&st, path)) return -1;
    int rc = 0;
    for (int i = 0; i < p->n && rc == 0; i++) {
        dbt_st_tensor *t = dbt_st_find(&st, p->list[i].name);
        if (!t || t->dtype != DBT_DT_F32 || t->numel != p->list[i].numel)
            rc = dbt_set_error("%s: no matching F32 tensor \"%s\"", path, p->list[i].name);
        else
            memcpy(dst + p->list[i].offset, t->data, (size_t)t->numel * sizeof(float));
    }
    dbt_st_close(&st);
    return rc;
}

int dbt_load_train_state(const char *dir, const dbt_params *p, dbt_adamw *opt, dbt_train_state *state) {
    char path[4096];
    size_t len;
    char *text = dbt_read_file(dbt_path_join(path, sizeof path, dir, "trainer_state.json"), 1 << 20, &len);
    if (!text) return dbt_prefix_error("cannot resume");
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(j, "rng");
    if (!j || cJSON_GetArraySize(rng) != 4) {
        cJSON_Delete(j);
        return dbt_set_error("%s: malformed trainer state", path);
    }
#define NUM(k) (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, k)) ? cJSON_GetObjectItemCaseSensitive(j, k)->valuedouble : 0)
    state->step = (int64_t)NUM("global_step");
    state->epoch = (int64_t)NUM("epoch");
    state->cursor = (int64_t)NUM("cursor");
    state->seed = (uint64_t)NUM("seed");
    state->best_metric = NUM("best_metric");
    opt->step = (int64_t)NUM("optimizer_step");
    /* the position in the epoch counts global batches, whose size is ranks × batch size */
    const int saved_ranks = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "world_size")) ? (int)NUM("world_size") : 1;
#undef NUM
    for (int i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetArrayItem(rng, i);
        state->rng.s[i] = cJSON_IsString(v) ? strtoull(v->valuestring, NULL, 16) : 0;
    }
    cJSON_Delete(j);
    if (saved_ranks != dbt_dist_size())
        return dbt_set_error("%s was saved by a run of %d rank%s: resume it with as many (mpirun -np %d), as the "
                             "position in the epoch counts batches of ranks × batch size",
                             path, saved_ranks, saved_ranks == 1 ? "" : "s", saved_ranks);
    if (read_moments(dbt_path_join(path, sizeof path, dir, "optimizer.exp_avg.safetensors"), p, opt->m) ||
        read_moments(dbt_path_join(path, sizeof path, dir, "optimizer.exp_avg_sq.safetensors"), p, opt->v))
        return -1;
    return 0;
}
