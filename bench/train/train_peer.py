#!/usr/bin/env python3
"""train_peer.py — the PyTorch side of the training benchmark, a worker process driven over a pipe
by train_bench.py with bench_train.c's line protocol:

    train_peer.py DIR --threads N

transformers' AutoModelForSequenceClassification on Debian's torch, torch.set_num_threads(N);
torch.optim.AdamW (lr 5e-5 constant, eps 1e-8, weight decay 0.01 on all but biases and LayerNorm
weights, as transformers' Trainer groups them), clipping with clip_grad_norm_(1.0). One timed
step: optimizer.zero_grad(set_to_none=True), model.train() forward on input_ids and
attention_mask (all ones, as a tokenizer's batch would give), CrossEntropyLoss on the logits,
backward, clip_grad_norm_, optimizer.step() — the loop of transformers' Trainer without its
bookkeeping. The tensors are built before the clock starts. The environment (thread variables,
OpenBLAS core type, tcmalloc) is set by the conductor, as bench/model's peer_env does.

Commands: `check B T` (one step with dropout off — model.eval() — then a forward pass after the
update: loss, grad_norm, loss_after), `run B T N W L`, `phases B T N` (N steps, each split in
zero_grad, forward_loss, backward, free_cache (0 here), clip_adamw), `stats`, `quit`.
AdamW runs torch's default single-tensor loop (foreach=False on CPU in torch 1.13): on this
machine it took ~125 ms per update of DistilBERT-base's 67M parameters against ~145 ms with
foreach=True.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "model"))
import train_common  # noqa: E402
from peer import openblas_core, rss_mb  # noqa: E402  (bench/model/peer.py)

PHASES = ("zero_grad", "forward_loss", "backward", "free_cache", "clip_adamw")  # as bench_train.c's


def main():
    if len(sys.argv) < 2:
        print("usage: train_peer.py DIR [--threads N]", file=sys.stderr)
        sys.exit(2)
    path = sys.argv[1]
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
    import torch
    torch.set_num_threads(threads)
    import transformers as tf
    rss0, _ = rss_mb()
    t0 = time.perf_counter()
    model = tf.AutoModelForSequenceClassification.from_pretrained(path)
    model.train()
    o = train_common.OPTIM
    named = list(model.named_parameters())
    no_decay = [p for n, p in named if n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n]
    decay = [p for n, p in named if not (n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n)]
    params = [p for _, p in named]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=o["lr"], betas=o["betas"], eps=o["eps"])
    loss_fn = torch.nn.CrossEntropyLoss()
    load_ms = (time.perf_counter() - t0) * 1e3
    rss1, _ = rss_mb()

    def inputs(b, s):
        ids, labels = train_common.train_batch(b, s)
        ids = torch.tensor(ids, dtype=torch.int64)
        return ids, torch.ones_like(ids), torch.tensor(labels, dtype=torch.int64)

    def step(x):
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=x[0], attention_mask=x[1]).logits
        loss = loss_fn(logits, x[2])
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, o["max_grad_norm"])
        opt.step()
        return loss.item(), float(norm)

    perf, cpu_time = time.perf_counter, time.process_time  # process_time: all the process's threads

    def step_phases(x):
        """step(x), each phase timed: the split of bench_train.c's `phases`."""
        t = [perf()]
        opt.zero_grad(set_to_none=True)
        t.append(perf())
        loss = loss_fn(model(input_ids=x[0], attention_mask=x[1]).logits, x[2])
        t.append(perf())
        loss.backward()
        t.append(perf())
        t.append(perf())  # no cache to free: autograd frees its saved tensors during backward
        torch.nn.utils.clip_grad_norm_(params, o["max_grad_norm"])
        opt.step()
        t.append(perf())
        return [(b - a) * 1e3 for a, b in zip(t, t[1:])]

    out = sys.stdout
    out.write(json.dumps({"ready": True, "impl": "PyTorch %s (transformers %s)" % (torch.__version__, tf.__version__),
                          "torch_threads": torch.get_num_threads(),
                          "attn_implementation": getattr(model.config, "_attn_implementation", None),
                          "n_params": sum(p.numel() for p in params),
                          "openblas_core": openblas_core(), "ld_preload": os.environ.get("LD_PRELOAD"),
                          "threads": threads, "load_ms": load_ms, "rss_before_load_mb": rss0,
                          "rss_after_load_mb": rss1}) + "\n")
    out.flush()
    shape = None
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        if parts[0] == "stats":
            now, peak = rss_mb()
            out.write(json.dumps({"rss_mb": now, "peak_rss_mb": peak}) + "\n")
            out.flush()
            continue
        try:
            b, s = int(parts[1]), int(parts[2])
            if (b, s) != shape:
                x, shape = inputs(b, s), (b, s)
            if parts[0] == "check":
                model.eval()  # dropout off
                loss, norm = step(x)
                with torch.no_grad():
                    after = loss_fn(model(input_ids=x[0], attention_mask=x[1]).logits, x[2]).item()
                model.train()
                reply = {"loss": loss, "grad_norm": norm, "loss_after": after}
            elif parts[0] == "phases":
                n = int(parts[3])
                times, split = [], []
                for _ in range(n):
                    t0 = perf()
                    split.append(step_phases(x))
                    times.append((perf() - t0) * 1e3)
                reply = {"times_ms": times, "phases_ms": {k: [p[i] for p in split] for i, k in enumerate(PHASES)}}
            else:
                n, w = int(parts[3]), int(parts[4])
                keep = len(parts) > 5 and parts[5] == "1"
                for _ in range(w):
                    step(x)
                times, cpu, losses = [], [], []
                for _ in range(n):
                    c0, t0 = cpu_time(), perf()
                    losses.append(step(x)[0])
                    times.append((perf() - t0) * 1e3)
                    cpu.append((cpu_time() - c0) * 1e3)
                reply = {"times_ms": times, "cpu_ms": cpu}
                if keep:
                    reply["losses"] = losses
        except Exception as e:  # report, keep serving
            reply = {"error": "%s: %s" % (type(e).__name__, e)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
