"""common.py — what every part of the model benchmark must agree on: the inputs and the FLOPs.

Only the standard library at import time: the orchestrator imports it without torch or numpy
(export_logits_onnx imports torch and onnx when called).
"""
import json
import os

CLS, SEP = 101, 102
OPSET = 14  # the ONNX opset of every export (prepare.py's base model, classifier.py's fine-tune)


def token_ids(batch, seq):
    """B sequences of exactly S tokens: [CLS] w1 .. w(S-2) [SEP], w = 1000 + (7919·b + 104729·t) mod
    28000 — the formula bench_model.c uses, so that every implementation sees the same batch."""
    rows = []
    for b in range(batch):
        row = [1000 + (7919 * b + 104729 * t) % 28000 for t in range(seq)]
        row[0], row[-1] = CLS, SEP
        rows.append(row)
    return rows


def read_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    if c.get("model_type") == "distilbert":
        return dict(arch="distilbert", dim=c["dim"], layers=c["n_layers"], hidden=c["hidden_dim"],
                    labels=len(c.get("id2label", {})) or 2)
    return dict(arch="bert", dim=c["hidden_size"], layers=c["num_hidden_layers"],
                hidden=c["intermediate_size"], labels=len(c.get("id2label", {})) or 2)


def flops(cfg, batch, seq):
    """FLOPs of one forward pass of the encoder and the sequence-classification head: 2·M·N·K for
    every matrix product. Per layer and sequence of S tokens (D = dim, H = hidden_dim):
    Q, K, V and output projections 4·2·S·D·D, feed-forward 2·2·S·D·H, attention scores QKᵀ
    2·S·S·D and weighted values PV 2·S·S·D (all heads together). The head works on the first
    token: DistilBERT's pre_classifier (D×D) or BERT's pooler (D×D), then the classifier (D×labels).
    Embeddings, LayerNorm, softmax, GELU and biases are not counted."""
    d, h, s = cfg["dim"], cfg["hidden"], seq
    layer = 4 * 2 * s * d * d + 2 * 2 * s * d * h + 2 * 2 * s * s * d
    head = 2 * d * d + 2 * d * cfg["labels"]
    return batch * (cfg["layers"] * layer + head)


def export_logits_onnx(model, example, path):
    """Exports a transformers model's logits, model(**inputs).logits, to the ONNX file `path`: the
    inputs named and ordered as in `example` (name → int64 tensor used for tracing), the batch and
    sequence axes dynamic; checks the file. Returns the traced module (called with the inputs in
    that order, it gives the logits), for comparing the export against PyTorch."""
    import onnx
    import torch
    names = list(example)

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).logits

    wrapped = Logits(model).eval()
    with torch.no_grad():
        torch.onnx.export(wrapped, tuple(example.values()), path, input_names=names, output_names=["logits"],
                          opset_version=OPSET, do_constant_folding=True,
                          dynamic_axes={k: {0: "batch", 1: "seq"} for k in names} | {"logits": {0: "batch"}})
    onnx.checker.check_model(path)
    return wrapped
