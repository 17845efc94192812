"""Creates random-init Hugging Face checkpoints with the oracle (transformers on Debian's torch):
every head of DistilBERT and BERT, tiny by default, base-size on request. Each folder gets
config.json, model.safetensors and the bert-base-uncased tokenizer files.

    python tests/oracle/make_models.py OUT_DIR [--size tiny|base] [--only NAME ...]
"""
import argparse
import os
import shutil
import sys

import torch
import transformers as tf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VOCAB = os.path.join(ROOT, "data", "vocab", "bert-base-uncased", "vocab.txt")

HEADS = {
    "mlm": ("ForMaskedLM", {}),
    "seq-cls": ("ForSequenceClassification", {"num_labels": 3, "id2label": {0: "NEG", 1: "NEU", 2: "POS"},
                                             "label2id": {"NEG": 0, "NEU": 1, "POS": 2}}),
    "token-cls": ("ForTokenClassification", {"id2label": {i: l for i, l in enumerate(
        ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"])}}),
    "qa": ("ForQuestionAnswering", {}),
    "none": ("Model", {}),
}


def config(kind, size, extra):
    vocab = 30522
    if kind == "distilbert":
        dims = dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=128) if size == "tiny" \
            else dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072, max_position_embeddings=512)
        return tf.DistilBertConfig(**{"vocab_size": vocab, **dims, **extra})
    dims = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                max_position_embeddings=128) if size == "tiny" \
        else dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                  max_position_embeddings=512)
    return tf.BertConfig(**{"vocab_size": vocab, **dims, **extra})  # extra may override the sizes


def make(out, kind, head, size, seed=0, extra=None, dtype=None):
    torch.manual_seed(seed)
    suffix, head_extra = HEADS[head]
    cls = getattr(tf, ("DistilBert" if kind == "distilbert" else "Bert") + suffix)
    cfg = config(kind, size, {**head_extra, **(extra or {})})
    model = cls(cfg).eval()
    if size == "tiny":  # spread the weights so that differences would show
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(out, safe_serialization=True)
    tok = (tf.DistilBertTokenizerFast if kind == "distilbert" else tf.BertTokenizerFast)(VOCAB)
    tok.model_max_length = cfg.max_position_embeddings
    tok.save_pretrained(out)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", default="tiny", choices=["tiny", "base"])
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    for kind in ["distilbert", "bert"]:
        for head in HEADS:
            name = f"{kind}-{head}"
            if a.only and name not in a.only:
                continue
            make(os.path.join(a.out, name), kind, head, a.size)
            print(name, file=sys.stderr)


if __name__ == "__main__":
    main()
