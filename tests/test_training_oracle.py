"""One training step against PyTorch: the same tiny checkpoint, the same batch, dropout off.
The loss must agree within 1e-5 relative, every gradient within 1e-4 (relative to the tensor's
largest gradient, or to 1e-2 for tensors whose gradient is zero in exact arithmetic), and the weights after AdamW steps (weight decay, clipping, warmup schedule)
within 1e-5."""
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import ROOT

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")
from safetensors.numpy import load_file  # noqa: E402

import make_models  # noqa: E402

TEXTS = ["The quick brown fox jumps over the lazy dog.", "hello", "Ünïcödé and 中文 mixed with punctuation!!",
         "a somewhat longer sentence that has a few more tokens than the others, to vary lengths"]


@pytest.fixture(scope="module")
def train_step_bin(dbt_bin):
    path = os.path.join(os.path.dirname(dbt_bin), "tools", "train_step")
    assert os.access(path, os.X_OK), f"{path} is not built (make builds tests/tools)"
    return path


def torch_step(folder, batch, steps):
    cfg = tf.AutoConfig.from_pretrained(folder)
    model = getattr(tf, cfg.architectures[0]).from_pretrained(folder).eval()  # eval: dropout off
    tok = tf.AutoTokenizer.from_pretrained(folder)
    enc = tok(batch["texts"], batch.get("pairs"), padding=True, return_tensors="pt")
    if cfg.model_type == "distilbert":
        enc.pop("token_type_ids", None)
    kw = dict(enc)
    T = enc["input_ids"].shape[1]
    if "token_labels" in batch:
        lab = torch.full((len(batch["texts"]), T), -100, dtype=torch.long)
        for i, row in enumerate(batch["token_labels"]):
            lab[i, :len(row)] = torch.tensor(row)
        kw["labels"] = lab
    elif "start_positions" in batch:
        kw["start_positions"] = torch.tensor(batch["start_positions"])
        kw["end_positions"] = torch.tensor(batch["end_positions"])
    else:
        lab = batch["labels"]
        kw["labels"] = torch.tensor(lab, dtype=torch.float if (cfg.num_labels == 1 or isinstance(lab[0], list)) else torch.long)
    # transformers' Trainer: no decay for biases and LayerNorm weights
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": batch["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=batch["lr"], eps=1e-8)
    sched = tf.get_linear_schedule_with_warmup(opt, batch["warmup_steps"], batch["total_steps"])
    losses, grads = [], None
    for step in range(steps):
        opt.zero_grad()
        out = model(**kw)
        out.loss.backward()
        losses.append(out.loss.item())
        if step == 0:
            grads = {n: p.grad.detach().clone().numpy() for n, p in model.named_parameters() if p.grad is not None}
        torch.nn.utils.clip_grad_norm_(model.parameters(), batch["max_grad_norm"])
        opt.step()
        sched.step()
    weights = {n: p.detach().numpy() for n, p in model.named_parameters()}
    return losses, grads, weights


def run_case(train_step_bin, tmp_path, folder, batch, steps=1, warmup=0):
    # lr 5e-5 (transformers' default): Adam's first update is ~lr·sign(g), so it turns gradient rounding noise on elements
    # with g ≈ 0 into weight differences of order lr.
    batch = {"lr": 5e-5, "weight_decay": 0.01, "max_grad_norm": 1.0, "warmup_steps": warmup, "total_steps": 10,
             "steps": steps, **batch}
    bpath = tmp_path / "batch.json"
    bpath.write_text(json.dumps(batch))
    out = tmp_path / "out"
    out.mkdir()
    p = subprocess.run([train_step_bin, folder, str(bpath), str(out)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    losses, grads, weights = torch_step(folder, batch, steps)
    cg, cw = load_file(str(out / "grads.safetensors")), load_file(str(out / "weights.safetensors"))
    np.testing.assert_allclose(res["losses"], losses, rtol=1e-5)
    worst_g, worst_w = 0.0, 0.0
    for name, g in grads.items():
        if name not in cg:  # a tied decoder has no gradient of its own
            assert name.endswith("vocab_projector.weight") or name.endswith("decoder.weight"), name
            continue
        # relative to the tensor's largest gradient; gradients that are zero in exact arithmetic
        # (the key bias: softmax ignores a constant added to a row) are rounding noise on both sides
        scale = max(np.abs(g).max(), 1e-2)
        err = np.abs(cg[name] - g).max() / scale
        worst_g = max(worst_g, err)
        assert err < 1e-4, (name, err, np.abs(g).max())
    for name, w in weights.items():
        # the key bias and the QA bias have a zero gradient in exact arithmetic (a softmax ignores a
        # constant added to all of a row): both sides hold rounding noise, and Adam's step follows
        # its arbitrary sign
        if name not in cw or name.endswith(("k_lin.bias", "attention.self.key.bias", "qa_outputs.bias")):
            continue
        err = np.abs(cw[name] - w).max()
        worst_w = max(worst_w, err)
        assert err < 1e-5, (name, err)
    assert set(cg) <= set(grads), set(cg) - set(grads)
    print(f"loss {res['loss']:.6f} vs {losses[0]:.6f}; worst grad rel err {worst_g:.2e}; worst weight err {worst_w:.2e}")


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_seq_cls_step(train_step_bin, tmp_path, tiny_models, kind):
    run_case(train_step_bin, tmp_path, tiny_models[f"{kind}-seq-cls"], {"texts": TEXTS, "labels": [0, 2, 1, 2]})


def test_seq_cls_pairs_step(train_step_bin, tmp_path, tiny_models):
    run_case(train_step_bin, tmp_path, tiny_models["bert-seq-cls"],
             {"texts": TEXTS[:3], "pairs": ["a b c", "second text", "x"], "labels": [1, 0, 2]})


def test_regression_step(train_step_bin, tmp_path):
    folder = make_models.make(str(tmp_path / "m"), "distilbert", "seq-cls", "tiny", seed=5,
                              extra={"num_labels": 1, "id2label": {0: "LABEL_0"}, "label2id": {"LABEL_0": 0}})
    run_case(train_step_bin, tmp_path, folder, {"texts": TEXTS, "labels": [0.5, 3.0, -1.0, 2.2]})


def test_multi_label_step(train_step_bin, tmp_path):
    folder = make_models.make(str(tmp_path / "m"), "bert", "seq-cls", "tiny", seed=6,
                              extra={"problem_type": "multi_label_classification", "num_labels": 3,
                                     "id2label": {0: "a", 1: "b", 2: "c"}, "label2id": {"a": 0, "b": 1, "c": 2}})
    run_case(train_step_bin, tmp_path, folder,
             {"texts": TEXTS, "labels": [[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]]})


def token_labels(folder, texts, n_labels, seed):
    tok = tf.AutoTokenizer.from_pretrained(folder)
    rng = np.random.default_rng(seed)
    out = []
    for t in texts:
        ids = tok(t)["input_ids"]
        row = [int(x) for x in rng.integers(0, n_labels, len(ids))]
        row[0] = row[-1] = -100
        for k in range(1, len(ids) - 1):
            if rng.random() < 0.3:
                row[k] = -100
        out.append(row)
    return out


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_token_cls_step(train_step_bin, tmp_path, tiny_models, kind):
    folder = tiny_models[f"{kind}-token-cls"]
    run_case(train_step_bin, tmp_path, folder, {"texts": TEXTS, "token_labels": token_labels(folder, TEXTS, 9, 1)})


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_mlm_step(train_step_bin, tmp_path, tiny_models, kind):
    folder = tiny_models[f"{kind}-mlm"]
    labels = token_labels(folder, TEXTS, 30522, 2)
    run_case(train_step_bin, tmp_path, folder, {"texts": TEXTS, "token_labels": labels})


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_qa_step(train_step_bin, tmp_path, tiny_models, kind):
    # transformers' QA loss takes its softmax over the padded length, padding positions included,
    # so its value depends on the batch's padding; equal lengths make it well defined.
    folder = tiny_models[f"{kind}-qa"]
    run_case(train_step_bin, tmp_path, folder, {"texts": ["who is it?"] * 4,
                                                "pairs": ["red green blue yellow", "one two three four",
                                                          "cat dog bird fish", "sun moon star sky"],
                                                "start_positions": [1, 3, 0, 5], "end_positions": [2, 4, 0, 6]})


def test_schedule_and_clipping_over_steps(train_step_bin, tmp_path, tiny_models):
    """Four updates with warmup and linear decay: the losses follow the oracle's."""
    run_case(train_step_bin, tmp_path, tiny_models["distilbert-seq-cls"], {"texts": TEXTS, "labels": [0, 2, 1, 2],
             "lr": 1e-3, "max_grad_norm": 0.05, "total_steps": 5}, steps=4, warmup=2)
