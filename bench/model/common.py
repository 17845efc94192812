"""common.py — what every part of the model benchmark must agree on: the inputs and the FLOPs.

Only the standard library here: the orchestrator imports it without torch or numpy.
"""
import json
import os

CLS, SEP = 101, 102


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
