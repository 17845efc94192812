#!/usr/bin/env python3
"""peer.py — the peers of the model benchmark, as worker processes driven over a pipe by bench.py
(the same line protocol as bench_model.c):

    peer.py torch DIR    --threads N   transformers' AutoModelForSequenceClassification on Debian's
                                       torch: eval(), torch.inference_mode(), torch.set_num_threads(N)
    peer.py ort   MODEL.onnx --threads N   ONNX Runtime, CPUExecutionProvider, ORT_ENABLE_ALL,
                                       intra_op_num_threads N, sequential execution

After loading (timed) and one (1, 16) forward pass it prints one JSON line, then answers
`run B S N W L`, `stats` and `quit` on stdin, one JSON line each (see bench_model.c). Both feed
input_ids and attention_mask (int64, all ones) as a tokenizer's batch would; the tensors are
built before the clock starts. The environment (thread variables, OpenBLAS core type, tcmalloc)
is set by bench.py when it starts the process.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402


def rss_mb():
    now = peak = -1.0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    now = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return now, peak


def openblas_core():
    """The core type of the OpenBLAS loaded in this process, if one is."""
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None


def torch_impl(path, threads):
    import torch
    torch.set_num_threads(threads)
    import transformers as tf
    rss0, _ = rss_mb()
    t0 = time.perf_counter()
    model = tf.AutoModelForSequenceClassification.from_pretrained(path).eval()
    load_ms = (time.perf_counter() - t0) * 1e3
    rss1, _ = rss_mb()

    def inputs(b, s):
        ids = torch.tensor(common.token_ids(b, s), dtype=torch.int64)
        return ids, torch.ones_like(ids)

    def fwd(x):
        with torch.inference_mode():
            return model(input_ids=x[0], attention_mask=x[1]).logits

    info = {"impl": "PyTorch %s (transformers %s)" % (torch.__version__, tf.__version__),
            "torch_threads": torch.get_num_threads(),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "openblas_core": openblas_core(), "ld_preload": os.environ.get("LD_PRELOAD")}
    return info, load_ms, rss0, rss1, inputs, fwd, lambda y: y.numpy().ravel().tolist()


def ort_impl(path, threads):
    import numpy as np
    import onnxruntime as ort
    rss0, _ = rss_mb()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    rss1, _ = rss_mb()

    def inputs(b, s):
        ids = np.array(common.token_ids(b, s), dtype=np.int64)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    def fwd(x):
        return sess.run(["logits"], x)[0]

    info = {"impl": "ONNX Runtime %s" % ort.__version__, "model": os.path.basename(path),
            "providers": sess.get_providers()}
    return info, load_ms, rss0, rss1, inputs, fwd, lambda y: y.ravel().tolist()


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("torch", "ort"):
        print("usage: peer.py torch|ort PATH [--threads N]", file=sys.stderr)
        sys.exit(2)
    kind, path = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
    info, load_ms, rss0, rss1, inputs, fwd, to_list = (torch_impl if kind == "torch" else ort_impl)(
        path, threads)
    x = inputs(1, 16)
    t0 = time.perf_counter()
    fwd(x)
    first_ms = (time.perf_counter() - t0) * 1e3
    rss2, _ = rss_mb()
    out = sys.stdout
    out.write(json.dumps({"ready": True, **info, "threads": threads, "load_ms": load_ms,
                          "first_forward_ms": first_ms, "rss_before_load_mb": rss0,
                          "rss_after_load_mb": rss1, "rss_after_first_forward_mb": rss2}) + "\n")
    out.flush()
    shape = None
    perf = time.perf_counter
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
            b, s, n, w = (int(p) for p in parts[1:5])
            keep = len(parts) > 5 and parts[5] == "1"
            if (b, s) != shape:
                x, shape = inputs(b, s), (b, s)
            for _ in range(w):
                fwd(x)
            times = []
            y = None
            for _ in range(n):
                t0 = perf()
                y = fwd(x)
                times.append((perf() - t0) * 1e3)
            reply = {"times_ms": times}
            if keep:
                reply["logits"] = to_list(y)
        except Exception as e:  # report, keep serving
            reply = {"error": "%s: %s" % (type(e).__name__, e)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
