#!/usr/bin/env python3
"""train_bench.py — the training benchmark's conductor: full training steps of distilbert.c against
PyTorch on the same checkpoint, the same batch and the same thread count, measured in one run,
interleaved. Started by run.sh.

    train_bench.py --bench-train BIN --data-model DIR --data-train DIR [--quick] [--results FILE]

One step, on both sides: zero the gradients, forward in training mode (dropout on), cross-entropy
on the sequence-classification logits, backward, clipping by global norm 1.0, one AdamW update
(lr 5e-5, weight decay 0.01 on all but biases and LayerNorm weights). Models: all-MiniLM-L6-v2's
BERT with a fresh 2-label head (bench/train/prepare.py) and the random-init base-size DistilBERT
of bench/model/prepare.py. For each thread count (1, then 2) and each model, two worker processes
are started, pinned with taskset as bench/model pins them (1 thread: one core; 2 threads: two):
    ours      bench_train.c       (the environment as it is)
    pytorch   train_peer.py       (at its best: bench/model's peer_env — OpenBLAS SkylakeX kernels
                                   where the CPU has AVX-512, OMP_WAIT_POLICY=PASSIVE, tcmalloc)
Each first runs `check` on the model's first shape: one step with dropout off from the weights as
loaded, then a forward pass after the update — the losses and the gradient norm must agree (they
are printed as they come). Then, per shape, W warm-up steps each, then rounds in which each worker
runs k timed steps (k so that a turn lasts ~turn_s), in an order alternating from round to round,
with a short pause between turns. The figure is the median over all timed steps. Once the run is
past its time budget, each remaining shape gets min_rounds rounds. Last, a few more steps on the
model's first shape, each split in its phases (forward + loss, backward, freeing the cache,
clip + AdamW), on both sides: where the time goes.

The machinery (Worker, pinning, peer environment, quantiles) is bench/model/bench.py's, imported.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "model"))
import train_common  # noqa: E402
import common  # noqa: E402  (bench/model/common.py: read_config, flops)
from bench import (Worker, cpu_flags, cpu_model, git_info, log, peer_env, pin_sets,  # noqa: E402
                   quantiles)  # bench/model/bench.py

# (model key, batch, seq); a model's first shape is also its check shape.
FULL = dict(cells=[("minilm", 8, 128), ("minilm", 32, 128), ("distilbert", 8, 128)], threads=[1, 2],
            turn_s=1.0, cell_s=30.0, min_rounds=5, max_rounds=15, warmup=1, phase_steps=3, budget_s=400)
QUICK = dict(cells=[("minilm", 8, 128), ("distilbert", 4, 128)], threads=[1, 2],
             turn_s=0.5, cell_s=4.0, min_rounds=3, max_rounds=5, warmup=1, phase_steps=1, budget_s=70)
MODELS = {"minilm": "all-MiniLM-L6-v2 (BERT 6×384)", "distilbert": "DistilBERT-base (6×768)"}
NAMES = {"ours": "distilbert.c", "pytorch": "PyTorch"}
CHECK_RTOL = 1e-4


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-train", required=True)
    ap.add_argument("--data-model", required=True, help="what bench/model/prepare.py made")
    ap.add_argument("--data-train", required=True, help="what bench/train/prepare.py made")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "train.json"))
    ap.add_argument("--command", default="bench/train/run.sh")
    a = ap.parse_args()
    P = QUICK if a.quick else FULL
    t_start = time.time()
    load_samples = [os.getloadavg()]
    mm = json.load(open(os.path.join(a.data_model, "manifest.json")))
    mt = json.load(open(os.path.join(a.data_train, "manifest.json")))
    dirs = {"minilm": os.path.join(a.data_train, mt["minilm"]),
            "distilbert": os.path.join(a.data_model, mm["distilbert"])}
    cfg = {k: common.read_config(d) for k, d in dirs.items()}
    avx512 = "avx512f" in cpu_flags()
    pins = pin_sets()
    threads_list = [t for t in P["threads"] if pins.get(t)]
    skipped = [t for t in P["threads"] if not pins.get(t)]
    if skipped:
        log("train_bench.py: fewer CPUs than threads, skipping %s threads" % skipped)
    log("load average at start: %.2f %.2f %.2f (%d CPUs)" % (load_samples[0] + (os.cpu_count(),)))
    tmp = tempfile.mkdtemp(prefix="bench-train-")
    models = []
    for key, _, _ in P["cells"]:
        if key not in models:
            models.append(key)

    results, checks, phases, workers_info, rounds_log = [], [], [], {}, []
    deadline = t_start + P["budget_s"]
    for t in threads_list:
        gap = 0.15 if t > 1 else 0.02
        for mk in models:
            cells = [(b, s) for k, b, s in P["cells"] if k == mk]
            specs = [("ours", [a.bench_train, "--model", dirs[mk], "--threads", str(t)], dict(os.environ)),
                     ("pytorch", [a.python, os.path.join(HERE, "train_peer.py"), dirs[mk], "--threads", str(t)],
                      peer_env(t, avx512))]
            workers = []
            for key, argv, env in specs:  # one after the other: load times without contention
                log("start %s, %s, %d thread%s" % (key, mk, t, "s" if t > 1 else ""))
                workers.append(Worker(key, t, argv, env, pins[t], tmp))
                workers[-1].cpu_share = {}  # (b, s) -> [process CPU time / wall time / threads] per step
            by = {w.key: w for w in workers}
            # The check: one step with dropout off from the weights as loaded, on both sides.
            b0, s0 = cells[0]
            ck = {w.key: w.ask("check %d %d" % (b0, s0)) for w in workers}
            c = {"model": mk, "threads": t, "batch": b0, "seq": s0, "ours": ck["ours"], "pytorch": ck["pytorch"],
                 "rel_diff": {q: rel(ck["ours"][q], ck["pytorch"][q]) for q in ("loss", "grad_norm", "loss_after")}}
            c["ok"] = max(c["rel_diff"].values()) < CHECK_RTOL
            checks.append(c)
            log("  check %s %d×%d %dt: loss ours %.7f PyTorch %.7f (rel %.1e); grad norm %.6f / %.6f (rel %.1e); "
                "loss after the update %.7f / %.7f (rel %.1e) %s"
                % (mk, b0, s0, t, ck["ours"]["loss"], ck["pytorch"]["loss"], c["rel_diff"]["loss"],
                   ck["ours"]["grad_norm"], ck["pytorch"]["grad_norm"], c["rel_diff"]["grad_norm"],
                   ck["ours"]["loss_after"], ck["pytorch"]["loss_after"], c["rel_diff"]["loss_after"],
                   "OK" if c["ok"] else "MISMATCH"))
            for (b, s) in cells:
                est, losses = {}, {}
                for w in workers:
                    r = w.run(b, s, 1, warmup=P["warmup"], logits=True)
                    est[w.key] = r["times_ms"][0] / 1e3
                    w.samples[(b, s)] = []
                    w.cpu_share[(b, s)] = []
                k = {key: max(1, min(20, round(P["turn_s"] / e))) for key, e in est.items()}
                round_s = sum(k[key] * est[key] + gap for key in est)
                rounds = max(P["min_rounds"], min(P["max_rounds"], int(P["cell_s"] / round_s)))
                log("  %s %2d x %-3d %d thread%s: %d rounds, ~%.1f s each" % (mk, b, s, t, "s" if t > 1 else " ",
                                                                            rounds, round_s))
                for r in range(rounds):
                    if r >= P["min_rounds"] and time.time() > deadline:
                        log("  over the time budget: stopping this shape after %d rounds" % r)
                        rounds = r
                        break
                    order = workers if r % 2 == 0 else workers[::-1]
                    for w in order:
                        rep = w.run(b, s, k[w.key], logits=True)
                        w.samples[(b, s)] += rep["times_ms"]
                        w.cpu_share[(b, s)] += [c / wall / t for c, wall in zip(rep["cpu_ms"], rep["times_ms"])]
                        losses[w.key] = rep["losses"][-1]
                        time.sleep(gap)
                    load_samples.append(os.getloadavg())
                rounds_log.append({"model": mk, "batch": b, "seq": s, "threads": t, "rounds": rounds,
                                   "steps_per_turn": k})
                row = {"model": mk, "batch": b, "seq": s, "threads": t, "tokens": b * s,
                       "gflop_per_step_approx": 3 * common.flops(cfg[mk], b, s) / 1e9, "impls": {},
                       "last_loss": losses}
                for key, w in by.items():
                    q = quantiles(w.samples[(b, s)])
                    q["tokens_per_s"] = b * s / (q["median_ms"] / 1e3)
                    q["gflops_approx"] = row["gflop_per_step_approx"] / (q["median_ms"] / 1e3)
                    q["cpu_share"] = statistics.median(w.cpu_share[(b, s)])
                    row["impls"][key] = q
                row["ratio_ours_over_pytorch"] = (row["impls"]["ours"]["tokens_per_s"]
                                                  / row["impls"]["pytorch"]["tokens_per_s"])
                results.append(row)
                log("    ours %.1f ms, PyTorch %.1f ms: ×%.2f" % (row["impls"]["ours"]["median_ms"],
                                                                 row["impls"]["pytorch"]["median_ms"],
                                                                 row["ratio_ours_over_pytorch"]))
            # Where the time goes: a few more steps on the first shape, each split in its phases.
            split = {"model": mk, "threads": t, "batch": b0, "seq": s0, "impls": {}}
            for w in workers:
                rep = w.ask("phases %d %d %d" % (b0, s0, P["phase_steps"]))
                split["impls"][w.key] = {ph: statistics.median(v) for ph, v in rep["phases_ms"].items()}
                split["impls"][w.key]["step"] = statistics.median(rep["times_ms"])
            phases.append(split)
            for w in workers:
                w.close()
                workers_info.setdefault(w.key, {}).setdefault(mk, {})[str(t)] = {
                    **w.ready, **w.stats, "command": " ".join(w.argv), "env_changes": w.env_changes}
    load_samples.append(os.getloadavg())

    # Report.
    lines = []
    pr = lines.append
    mode = "quick" if a.quick else "full"
    la0, la_max, la1 = load_samples[0][0], max(x[0] for x in load_samples), load_samples[-1][0]
    pr("")
    pr("Training throughput — one full step: forward with dropout, cross-entropy, backward, clip at norm 1.0, "
       "AdamW (weight decay 0.01); same checkpoint, batch (random ids and labels) and thread count on both "
       "sides; %s mode; CPU %s, %d CPUs" % (mode, cpu_model(), os.cpu_count()))
    pr("Median ms per step over all timed steps (interleaved rounds, pinned); tokens/s = batch·seq / median; "
       "GFLOP/s ≈ 3 × the forward pass's matrix-product FLOPs / median; ratio = ours tokens/s / PyTorch's "
       "(goal ≥ 1.5); CPU share = median over steps of the process's CPU time / (wall time × threads) — "
       "below 100%% where the step waited (other load, or threads idle in serial parts). Load average "
       "(1 min) at start %.2f, highest during %.2f, at end %.2f — a shared machine; our own workers "
       "count 1–2 of it." % (la0, la_max, la1))
    pr("")
    pr("| implementation | model | batch×seq | threads | median ms/step | p25–p75 ms | tokens/s | GFLOP/s | CPU share | "
       "ratio ours/PyTorch |")
    pr("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        for key in ("ours", "pytorch"):
            q = row["impls"][key]
            ratio = "%.2f" % row["ratio_ours_over_pytorch"] if key == "ours" else "—"
            pr("| %s | %s | %d×%d | %d | %.1f | %.1f–%.1f | %.0f | %.1f | %.0f%% | %s |"
               % (NAMES[key], MODELS[row["model"]], row["batch"], row["seq"], row["threads"], q["median_ms"],
                  q["p25_ms"], q["p75_ms"], q["tokens_per_s"], q["gflops_approx"], 100 * q["cpu_share"], ratio))
    pr("")
    pr("Check — one step from the same weights, dropout off (ours / PyTorch):")
    pr("")
    pr("| model | batch×seq | threads | loss | grad norm | loss after the update | max rel. diff | |")
    pr("|---|---|---:|---|---|---|---:|---|")
    for c in checks:
        o, p = c["ours"], c["pytorch"]
        pr("| %s | %d×%d | %d | %.7f / %.7f | %.6f / %.6f | %.7f / %.7f | %.1e | %s |"
           % (MODELS[c["model"]], c["batch"], c["seq"], c["threads"], o["loss"], p["loss"], o["grad_norm"],
              p["grad_norm"], o["loss_after"], p["loss_after"], max(c["rel_diff"].values()),
              "OK" if c["ok"] else "MISMATCH"))
    pr("")
    pr("Where the time goes — median ms per phase over %d more steps on each model's first shape (ours: "
       "dbt_train_forward + loss, dbt_train_backward, free cache (0: the workspace is kept across steps), dbt_adamw_step; PyTorch: "
       "model(...) + loss, loss.backward(), clip_grad_norm_ + optimizer.step()):" % P["phase_steps"])
    pr("")
    pr("| model | batch×seq | threads | implementation | zero grad | forward + loss | backward | free cache | "
       "clip + AdamW | step |")
    pr("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for sp in phases:
        for key in ("ours", "pytorch"):
            q = sp["impls"][key]
            pr("| %s | %d×%d | %d | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |"
               % (MODELS[sp["model"]], sp["batch"], sp["seq"], sp["threads"], NAMES[key], q["zero_grad"],
                  q["forward_loss"], q["backward"], q["free_cache"], q["clip_adamw"], q["step"]))
    if not all(c["ok"] for c in checks):
        pr("")
        pr("WARNING: the check differs by more than %.0e relative." % CHECK_RTOL)
    elapsed = time.time() - t_start
    pr("")
    pr("Measured in %.0f s." % elapsed)
    print("\n".join(lines))

    out = {
        "benchmark": "train",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": a.command,
        "mode": mode,
        "elapsed_s": round(elapsed, 1),
        "machine": {"cpu": cpu_model(), "nproc": os.cpu_count(), "avx512f": avx512,
                    "pinning": {str(t): pins[t] for t in threads_list}, "skipped_threads": skipped,
                    "python": platform.python_version(),
                    "loadavg_1_5_15": {"start": load_samples[0], "end": load_samples[-1],
                                       "max_1min_during": la_max},
                    "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                           "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}},
        "library": git_info(),
        "models": {k: {**cfg[k], "dir": os.path.relpath(dirs[k], ROOT), "name": MODELS[k]} for k in models},
        "prepare": {"model": mm, "train": mt},
        "batch": "B sequences of exactly T tokens: [CLS], T-2 ids 1000 + splitmix64(b·T + t) mod 28000, [SEP]; "
                 "labels splitmix64(2^40 + b) & 1; attention mask all ones (bench/train/train_common.py)",
        "step": "zero_grad; forward (train mode, dropout on); cross-entropy (mean); backward; clip global norm "
                "1.0; AdamW lr 5e-5 constant, betas (0.9, 0.999), eps 1e-8, weight decay 0.01 except biases "
                "and LayerNorm weights",
        "optimizer": train_common.OPTIM,
        "method": {k: P[k] for k in ("turn_s", "cell_s", "min_rounds", "max_rounds", "warmup", "phase_steps",
                                     "budget_s")},
        "rounds": rounds_log,
        "checks": checks,
        "phases": phases,
        "workers": workers_info,
        "results": results,
        "table_markdown": "\n".join(lines),
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
    with open(a.results, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    shutil.rmtree(tmp, ignore_errors=True)
    log("wrote %s" % os.path.relpath(a.results, ROOT))


if __name__ == "__main__":
    main()
