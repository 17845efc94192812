"""`distilbert ner` against transformers' pipeline("token-classification") for every aggregation
strategy: labels, groups, words and offsets must be identical, scores within 1e-5.

Random tiny models label near-uniformly, so the classifier is sharpened after `make` (weights
scaled, a bias towards O and PER) to get runs of I- tags, B- breaks, dropped O tokens and words
whose pieces disagree. The scale keeps the top probability short of 1.0: with saturated scores the
"max" strategy would pick between ties that a 1e-6 difference in the logits can flip."""
import json
import os

import numpy as np
import pytest

from conftest import run_cli

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")
import make_models  # noqa: E402

SCORE_TOL = 1e-5
STRATEGIES = ["none", "simple", "first", "average", "max"]

TEXTS = [
    "John Smith works at Acme Corp in New York.",
    "Angela Merkel met Emmanuel Macron in Paris, France, on Tuesday!",
    "Unbelievably, the misunderstanding continued: antidisestablishmentarianism.",
    "naïve café-goers in Zürich and São Paulo",
    "cafe\u0301 au lait for Ame\u0301lie Poulain",  # decomposed accents: stripped, offsets span them
    "emoji 😀 here, ab😀cd glued, a ☃ snowman",  # [UNK] words: the text itself is the word
    "",
    "don't stop, it's the U.S.A. vs. the U.K.?",
    "中文字符 and 日本語 mixed with names like Li Wei.",
    "a [MASK] token and [SEP] in the text",
    "tab\tseparated\twords   and   spaces",
    "İstanbul, Straße, ﬁnance and ǅemal",  # case mappings that change lengths
    "한국어 서울 and がぎぐ",  # Hangul decomposes to jamo: several tokens share one character
    "Hello ab\ufffdcd and Mary\u200bJane",  # removed characters inside a piece make it a "subword"
    "!!! ... ???",
    "In 1851, 3.14159 and $100,000 (approx.) went to O'Neil & Sons Ltd.",
    " ".join(["Barack Obama visited Berlin and Hamburg"] * 30),  # past 128 tokens: truncated
]

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


@pytest.fixture(scope="module")
def ner_models(tmp_path_factory):
    out = tmp_path_factory.mktemp("ner-models")
    models = {}
    for kind, seed in [("distilbert", 7), ("bert", 11)]:
        folder = str(out / kind)
        make_models.make(folder, kind, "token-cls", "tiny", seed=seed)
        model = tf.AutoModelForTokenClassification.from_pretrained(folder)
        with torch.no_grad():
            model.classifier.weight.mul_(12.0)
            model.classifier.bias.add_(torch.tensor([2.0, 1.0, 2.0, -1.0, -1.0, 0.0, 0.5, -1.0, -1.0]))
        model.save_pretrained(folder, safe_serialization=True)
        models[kind] = folder
    return models


def hf_ner(folder, texts, strategy, model_max_length=None):
    pipe = tf.pipeline("token-classification", model=folder, tokenizer=folder, aggregation_strategy=strategy,
                       device=-1)
    if model_max_length:
        pipe.tokenizer.model_max_length = model_max_length
    return [pipe(t) for t in texts]


def c_ner(dbt_bin, folder, texts, strategy, extra=()):
    p = run_cli(dbt_bin, ["ner", "--model", folder, "--aggregation", strategy] + list(extra),
                "".join(t + "\n" for t in texts))
    lines = p.stdout.splitlines()
    assert len(lines) == len(texts), p.stdout
    return [json.loads(l) for l in lines]


def assert_same(ref, got, text):
    assert len(got) == len(ref), f"{text!r}:\n HF {ref}\n C  {got}"
    for r, g in zip(ref, got):
        assert list(g.keys()) == list(r.keys()), (text, r, g)
        for k in r:
            if k == "score":
                assert abs(float(r[k]) - g[k]) <= SCORE_TOL, (text, r, g)
            else:
                assert g[k] == r[k], f"{text!r}: {k}:\n HF {r}\n C  {g}"


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_matches_transformers(dbt_bin, ner_models, kind, strategy):
    folder = ner_models[kind]
    ref = hf_ner(folder, TEXTS, strategy)
    got = c_ner(dbt_bin, folder, TEXTS, strategy)
    for text, r, g in zip(TEXTS, ref, got):
        assert_same(r, g, text)


def test_the_models_exercise_grouping(dbt_bin, ner_models):
    """Guards the meaning of the comparisons: tokens merge into groups, O tokens are dropped, and the
    word strategies disagree with simple somewhere."""
    folder = ner_models["distilbert"]
    out = {s: c_ner(dbt_bin, folder, TEXTS, s) for s in STRATEGIES}
    n_tokens = sum(len(x) for x in out["none"])
    n_groups = sum(len(x) for x in out["simple"])
    assert 0 < n_groups < n_tokens
    assert any(" " in e["word"] or "##" not in e["word"] and e["end"] - e["start"] > 6
               for x in out["simple"] for e in x)
    assert out["first"] != out["simple"] and out["average"] != out["first"] and out["max"] != out["first"]
    labels = {e["entity"] for x in out["none"] for e in x}
    assert "O" not in labels and len(labels) >= 4


def test_batches_and_raw_logits(dbt_bin, ner_models):
    folder = ner_models["bert"]
    whole = c_ner(dbt_bin, folder, TEXTS, "simple")
    # batches of another size round the logits differently in the last bits, nothing more
    for text, a, b in zip(TEXTS, whole, c_ner(dbt_bin, folder, TEXTS, "simple", ["--batch-size", "2"])):
        assert_same(a, b, text)
    raw = c_ner(dbt_bin, folder, TEXTS, "simple", ["--raw"])
    assert [r["result"] for r in raw] == whole
    model = tf.AutoModelForTokenClassification.from_pretrained(folder).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    for text, r in zip(TEXTS, raw):
        enc = tok(text, truncation=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0].numpy()
        assert np.array(r["logits"]).shape == logits.shape
        assert np.abs(np.array(r["logits"]) - logits).max() < 1e-4


@pytest.mark.parametrize("strategy", ["none", "first"])
def test_max_length_truncates_like_model_max_length(dbt_bin, ner_models, strategy):
    folder = ner_models["distilbert"]
    ref = hf_ner(folder, TEXTS, strategy, model_max_length=9)
    got = c_ner(dbt_bin, folder, TEXTS, strategy, ["--max-length", "9"])
    for text, r, g in zip(TEXTS, ref, got):
        assert_same(r, g, text)


def test_arguments_and_stdin_agree(dbt_bin, ner_models):
    folder = ner_models["distilbert"]
    p = run_cli(dbt_bin, ["ner", "--model", folder, "--aggregation", "average", TEXTS[0], TEXTS[3]])
    args = [json.loads(l) for l in p.stdout.splitlines()]
    lines = c_ner(dbt_bin, folder, [TEXTS[0], TEXTS[3]], "average")
    assert len(args) == 2
    for text, a, b in zip([TEXTS[0], TEXTS[3]], args, lines):  # one at a time vs a batch: last-bit differences
        assert_same(a, b, text)


@pytest.mark.parametrize("head", ["none", "mlm"])
def test_model_without_token_head_fails(dbt_bin, tmp_path, head):
    folder = make_models.make(str(tmp_path / head), "bert", head, "tiny")
    p = run_cli(dbt_bin, ["ner", "--model", folder], "John lives in Paris\n", check=False)
    assert p.returncode != 0
    assert p.stdout == ""
    assert "token classification" in p.stderr and "classifier.weight" in p.stderr, p.stderr


def test_bad_aggregation_and_missing_model(dbt_bin, tmp_path):
    p = run_cli(dbt_bin, ["ner", "--model", str(tmp_path), "--aggregation", "mean"], "x\n", check=False)
    assert p.returncode != 0 and "aggregation" in p.stderr
    p = run_cli(dbt_bin, ["ner", "--model", str(tmp_path / "nothing")], "x\n", check=False)
    assert p.returncode != 0 and p.stderr.strip()
