#!/usr/bin/env python3
"""prepare.py — the model benchmark's inputs, made once and kept in DIR (default build/bench/model):

    DIR/distilbert-base-seqcls2/   DistilBERT 6×768×3072, 2-label sequence-classification head,
                                   random init (seed 0), made by tests/oracle/make_models.py
    DIR/bert-base-seqcls2/         BERT-base 12×768×3072, same head, for the DistilBERT/BERT ratio
    DIR/distilbert.onnx            the DistilBERT checkpoint exported by torch.onnx.export
                                   (inputs input_ids, attention_mask: int64 [batch, seq], dynamic;
                                   output logits [batch, 2])
    DIR/distilbert.int8.onnx       onnxruntime.quantization.quantize_dynamic of it (int8 weights)
    DIR/manifest.json              versions, times, and the export check (ORT vs PyTorch logits)
    DIR/sst2-classifier[-quick]/   left alone here: classifier.py's fine-tuned MiniLM (own stamp)

    prepare.py [--dir DIR] [--force]

Everything is remade when --force is given or the stamp (this file, make_models.py, torch,
transformers, onnx and onnxruntime versions) changed.
"""
import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))

import common  # noqa: E402

LABELS = {"num_labels": 2, "id2label": {0: "NEGATIVE", 1: "POSITIVE"},
          "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}
OPSET = common.OPSET


def stamp():
    import onnx
    import onnxruntime
    import torch
    import transformers
    h = hashlib.sha256()
    for p in (os.path.abspath(__file__), os.path.join(ROOT, "tests", "oracle", "make_models.py")):
        with open(p, "rb") as f:
            h.update(f.read())
    for v in (torch.__version__, transformers.__version__, onnx.__version__, onnxruntime.__version__):
        h.update(v.encode())
    return h.hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, "build", "bench", "model"))
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    out = a.dir
    manifest_path = os.path.join(out, "manifest.json")
    st = stamp()
    if not a.force and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            m = json.load(f)
        if m.get("stamp") == st:
            print(json.dumps(m))
            return
    # Everything but the fine-tuned classifiers (classifier.py's, with their own stamp: minutes to remake).
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if not name.startswith("sst2-classifier"):
            p = os.path.join(out, name)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)

    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    import transformers as tf
    from make_models import make
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    # The tracer's note on torch.tensor constants (the attention mask's fill value, a constant
    # indeed) and quantize_dynamic's advice to pre-process (its symbolic shape inference fails on
    # this export, and without it the int8 model measured the same) are expected.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    logging.getLogger().setLevel(logging.ERROR)
    m = {"stamp": st, "torch": torch.__version__, "transformers": tf.__version__,
         "onnx": onnx.__version__, "onnxruntime": ort.__version__, "opset": OPSET}
    t0 = time.time()
    distil = make(os.path.join(out, "distilbert-base-seqcls2"), "distilbert", "seq-cls", "base", seed=0,
                  extra=LABELS)
    bert = make(os.path.join(out, "bert-base-seqcls2"), "bert", "seq-cls", "base", seed=0, extra=LABELS)
    m["checkpoints_s"] = round(time.time() - t0, 2)
    m["distilbert"] = os.path.basename(distil)
    m["bert"] = os.path.basename(bert)

    # The ONNX export, from the weights just saved (loaded back the way the PyTorch peer loads them).
    t0 = time.time()
    model = tf.AutoModelForSequenceClassification.from_pretrained(distil).eval()
    ids = torch.tensor(common.token_ids(2, 16), dtype=torch.int64)
    onnx_path = os.path.join(out, "distilbert.onnx")
    wrapped = common.export_logits_onnx(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, onnx_path)
    m["export_s"] = round(time.time() - t0, 2)

    t0 = time.time()
    int8_path = os.path.join(out, "distilbert.int8.onnx")
    quantize_dynamic(onnx_path, int8_path, weight_type=QuantType.QInt8)
    m["quantize_s"] = round(time.time() - t0, 2)

    # The export check: the exported graphs against PyTorch on shapes other than the traced one.
    checks = []
    for b, s in [(1, 16), (3, 77), (1, 512)]:
        ids = torch.tensor(common.token_ids(b, s), dtype=torch.int64)
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            ref = wrapped(ids, mask).numpy()
        feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
        row = {"batch": b, "seq": s}
        for name, path in (("ort_fp32", onnx_path), ("ort_int8", int8_path)):
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            got = sess.run(["logits"], feeds)[0]
            row[name + "_max_abs_diff"] = float(np.max(np.abs(got - ref)))
        checks.append(row)
    m["export_check_vs_pytorch"] = checks
    if max(c["ort_fp32_max_abs_diff"] for c in checks) > 1e-3:
        print("prepare.py: the fp32 ONNX export disagrees with PyTorch: %s" % checks, file=sys.stderr)
        sys.exit(1)
    m["sizes_mb"] = {n: round(os.path.getsize(os.path.join(out, n)) / 2**20, 1)
                     for n in ("distilbert.onnx", "distilbert.int8.onnx")}
    with open(manifest_path, "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    print(json.dumps(m))


if __name__ == "__main__":
    main()
