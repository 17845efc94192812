"""`distilbert vocab` against the oracle: tokenizers' WordPiece trainer on the same corpus gives
(nearly) the same vocabulary, and transformers / tokenizers load the folder we write and tokenize
exactly as `distilbert tokenize --model DIR` does.

Exact equality with the trainer is not expected: tokenizers breaks ties in an order that its hash
maps decide (it differs from run to run), so the Jaccard overlap is measured and reported."""
import gzip
import json
import os
import time

import pytest

from conftest import ROOT, run_cli

BROWN = os.path.join(ROOT, "data", "corpus", "brown.txt.gz")
WIKI = os.path.join(ROOT, "data", "corpus", "wikitext-2-valid.txt.gz")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
OVERLAP = []  # (case, jaccard, ours seconds, tokenizers seconds), printed by test_zz_report


def read_vocab(d):
    with open(os.path.join(d, "vocab.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def jaccard(a, b):
    a, b = set(a), set(b)
    return len(a & b) / len(a | b)


@pytest.fixture(scope="session")
def plain(tmp_path_factory):
    """The corpora decompressed (tokenizers' trainer reads plain files)."""
    d = tmp_path_factory.mktemp("corpus")
    out = {}
    for name, path in [("brown", BROWN), ("wiki", WIKI)]:
        p = d / (name + ".txt")
        with gzip.open(path, "rb") as f:
            p.write_bytes(f.read())
        out[name] = str(p)
    return out


def train_ours(dbt_bin, out, corpora, size, *extra):
    args = ["vocab", "--size", str(size), "--out", str(out)]
    for c in corpora:
        args += ["--corpus", c]
    t0 = time.time()
    p = run_cli(dbt_bin, args + list(extra))
    dt = time.time() - t0
    summary = json.loads(p.stdout)
    return summary, dt


def train_hf(files, size, lowercase=True, min_frequency=2, limit_alphabet=1000):
    from tokenizers import BertWordPieceTokenizer
    t = BertWordPieceTokenizer(lowercase=lowercase)
    t0 = time.time()
    t.train(files, vocab_size=size, min_frequency=min_frequency, limit_alphabet=limit_alphabet,
            show_progress=False)
    dt = time.time() - t0
    v = t.get_vocab()
    return sorted(v, key=v.get), dt


@pytest.fixture(scope="session")
def brown_vocabs(dbt_bin, tmp_path_factory):
    """Our vocabularies of 2000 and 8000 tokens on brown.txt.gz: size → (folder, summary, secs)."""
    out = {}
    for size in (2000, 8000):
        d = tmp_path_factory.mktemp("vocab%d" % size)
        summary, dt = train_ours(dbt_bin, d, [BROWN], size)
        out[size] = (str(d), summary, dt)
    return out


@pytest.mark.parametrize("size", [2000, 8000])
def test_overlap_with_tokenizers_trainer(brown_vocabs, plain, size):
    d, summary, dt = brown_vocabs[size]
    ours = read_vocab(d)
    assert len(ours) == size == summary["vocab_size"]
    assert ours[:5] == SPECIALS
    assert len(set(ours)) == len(ours)
    theirs, hf_dt = train_hf([plain["brown"]], size)
    assert theirs[:5] == SPECIALS
    j = jaccard(ours, theirs)
    OVERLAP.append(("brown --size %d" % size, j, dt, hf_dt))
    assert j >= 0.99, (j, sorted(set(ours) - set(theirs))[:20], sorted(set(theirs) - set(ours))[:20])
    # The alphabet (the single characters) is the same set, in the same order.
    singles = [t for t in ours if len(t) == 1]
    assert singles == [t for t in theirs if len(t) == 1]
    assert dt < 30  # a few seconds at most on one core (well under one in practice)


def test_options_against_tokenizers_trainer(dbt_bin, plain, tmp_path):
    """--cased, --min-frequency and --limit-alphabet on wikitext, both corpora given."""
    files = [plain["wiki"], plain["brown"]]
    summary, dt = train_ours(dbt_bin, tmp_path / "cased", [WIKI, BROWN], 3000, "--cased",
                             "--min-frequency", "3", "--limit-alphabet", "80")
    ours = read_vocab(tmp_path / "cased")
    theirs, hf_dt = train_hf(files, 3000, lowercase=False, min_frequency=3, limit_alphabet=80)
    j = jaccard(ours, theirs)
    OVERLAP.append(("wiki+brown --cased --size 3000 --limit-alphabet 80 --min-frequency 3", j, dt, hf_dt))
    assert summary["alphabet"] == 80
    assert [t for t in ours if len(t) == 1] == [t for t in theirs if len(t) == 1]
    assert "The" in ours and "the" in ours
    assert j >= 0.98, (j, sorted(set(ours) - set(theirs))[:20], sorted(set(theirs) - set(ours))[:20])

    # A min_frequency that stops the merges early: the same (short) vocabulary size.
    summary, dt = train_ours(dbt_bin, tmp_path / "minf", [WIKI], 30000, "--min-frequency", "400")
    ours = read_vocab(tmp_path / "minf")
    theirs, hf_dt = train_hf([plain["wiki"]], 30000, min_frequency=400)
    assert len(ours) < 30000
    assert len(ours) == len(theirs)
    j = jaccard(ours, theirs)
    OVERLAP.append(("wiki --size 30000 --min-frequency 400 (%d tokens)" % len(ours), j, dt, hf_dt))
    assert j >= 0.99


def test_folder_files(brown_vocabs):
    d, summary, _ = brown_vocabs[8000]
    assert sorted(os.listdir(d)) == ["special_tokens_map.json", "tokenizer.json",
                                     "tokenizer_config.json", "vocab.txt"]  # no temporary files
    cfg = json.load(open(os.path.join(d, "tokenizer_config.json")))
    assert cfg["do_lower_case"] is True
    assert cfg["model_max_length"] == 512
    assert cfg["tokenizer_class"] == "BertTokenizer"
    assert {cfg["added_tokens_decoder"][str(i)]["content"] for i in range(5)} == set(SPECIALS)
    stm = json.load(open(os.path.join(d, "special_tokens_map.json")))
    assert stm == {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
                   "sep_token": "[SEP]", "unk_token": "[UNK]"}
    tj = json.load(open(os.path.join(d, "tokenizer.json")))
    assert tj["normalizer"]["type"] == "BertNormalizer" and tj["normalizer"]["lowercase"] is True
    assert tj["pre_tokenizer"]["type"] == "BertPreTokenizer"
    assert tj["model"]["type"] == "WordPiece" and tj["model"]["unk_token"] == "[UNK]"
    assert tj["model"]["continuing_subword_prefix"] == "##"
    assert tj["post_processor"]["type"] == "TemplateProcessing"
    assert tj["decoder"]["type"] == "WordPiece"
    assert [a["content"] for a in tj["added_tokens"]] == SPECIALS
    vocab = read_vocab(d)
    assert tj["model"]["vocab"] == {t: i for i, t in enumerate(vocab)}
    assert summary["lines"] == 57340 and summary["distinct_words"] > 40000


def corpus_lines():
    """A few hundred lines: every 150th of brown, wikitext's first non-empty ones, and some
    with accents, CJK, special tokens and odd spacing."""
    with gzip.open(BROWN, "rt", encoding="utf-8") as f:
        brown = f.read().split("\n")[::150]
    with gzip.open(WIKI, "rt", encoding="utf-8") as f:
        wiki = [l for l in f.read().split("\n") if l.strip()][:150]
    extra = ["Café NAÏVE résumé — Zoë's coöperation", "東京 is in 日本.", "Hello [MASK] world [SEP] x",
             "  leading and   trailing spaces  ", "", "supercalifragilisticexpialidocious " * 3,
             "Ünïcödé ΑΒΓ абв", "tabs\tand\u00a0nbsp", "x" * 120]
    return [l for l in brown + wiki if len(l) < 2000] + extra


@pytest.mark.parametrize("cased", [False, True])
def test_hf_loads_and_agrees(dbt_bin, brown_vocabs, tmp_path, cased):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    if cased:
        d = str(tmp_path / "cased")
        train_ours(dbt_bin, d, [BROWN, WIKI], 4000, "--cased")
    else:
        d = brown_vocabs[8000][0]
    lines = corpus_lines()
    assert len(lines) > 500
    p = run_cli(dbt_bin, ["tokenize", "--model", d], "\n".join(lines) + "\n")
    ours = [json.loads(l) for l in p.stdout.splitlines()]
    assert len(ours) == len(lines)
    fast = AutoTokenizer.from_pretrained(d)
    assert type(fast).__name__ == "BertTokenizerFast"
    assert fast.do_lower_case == (not cased)
    raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    bad = []
    for line, o in zip(lines, ours):
        e = fast(line, return_offsets_mapping=True)
        r = raw.encode(line)
        offs = [list(x) for x in e["offset_mapping"]]
        if not (o["ids"] == e["input_ids"] == r.ids and o["offsets"] == offs == [list(x) for x in r.offsets]):
            bad.append(line)
    assert not bad, bad[:5]
    # Pairs go through the template too: [CLS] A [SEP] B [SEP] with type ids 0…0 1…1.
    pairs = [(lines[i], lines[i + 1]) for i in range(0, 40, 2)]
    p = run_cli(dbt_bin, ["tokenize", "--model", d, "--pair"], "".join(a + "\t" + b + "\n" for a, b in pairs))
    for (a, b), l in zip(pairs, p.stdout.splitlines()):
        o = json.loads(l)
        e = fast(a, b)
        assert o["ids"] == e["input_ids"] and o["type_ids"] == e["token_type_ids"]
    # Slow BertTokenizer reads vocab.txt + tokenizer_config.json: same ids.
    slow = AutoTokenizer.from_pretrained(d, use_fast=False)
    for line, o in list(zip(lines, ours))[::5]:
        assert slow(line)["input_ids"] == o["ids"], line


def unk_rate(dbt_bin, d, path, n=3000):
    unk = read_vocab(d).index("[UNK]")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if l.strip()][:n]
    p = run_cli(dbt_bin, ["tokenize", "--model", d, "--no-special-tokens"], "\n".join(lines) + "\n")
    ids = [i for l in p.stdout.splitlines() for i in json.loads(l)["ids"]]
    return sum(i == unk for i in ids) / len(ids)


def test_coverage_few_unknowns(dbt_bin, brown_vocabs, tmp_path):
    """A vocabulary covers its training corpus without [UNK] (every character is in the alphabet).
    Held-out text has [UNK] only for words with characters the corpus lacks (wikitext's "@-@",
    "=" and "<unk>" are not in brown), so that rate is reported, not asserted."""
    both = str(tmp_path / "both")
    train_ours(dbt_bin, both, [BROWN, WIKI], 8000)
    rates = {"brown": unk_rate(dbt_bin, both, BROWN), "wiki": unk_rate(dbt_bin, both, WIKI),
             "held-out": unk_rate(dbt_bin, brown_vocabs[8000][0], WIKI)}
    OVERLAP.append(("[UNK] rate, vocab of brown+wikitext (8000): brown %.4f%%, wikitext %.4f%%; "
                    "vocab of brown only on wikitext: %.2f%%"
                    % (100 * rates["brown"], 100 * rates["wiki"], 100 * rates["held-out"]), None, None, None))
    assert rates["brown"] == 0 and rates["wiki"] == 0
    assert unk_rate(dbt_bin, brown_vocabs[8000][0], BROWN) == 0


def test_gzip_and_plain_and_stdin_agree(dbt_bin, plain, tmp_path):
    a, _ = train_ours(dbt_bin, tmp_path / "gz", [WIKI], 1500)
    b, _ = train_ours(dbt_bin, tmp_path / "plain", [plain["wiki"]], 1500)
    with open(plain["wiki"], "rb") as f:
        p = run_cli(dbt_bin, ["vocab", "--corpus", "-", "--size", "1500", "--out", str(tmp_path / "stdin")], f.read())
    assert a["distinct_words"] == b["distinct_words"] == json.loads(p.stdout)["distinct_words"]
    assert read_vocab(tmp_path / "gz") == read_vocab(tmp_path / "plain") == read_vocab(tmp_path / "stdin")
    # Deterministic: the same run again writes the same bytes.
    train_ours(dbt_bin, tmp_path / "again", [WIKI], 1500)
    for name in ["vocab.txt", "tokenizer.json", "tokenizer_config.json"]:
        assert (tmp_path / "gz" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_errors(dbt_bin, tmp_path):
    p = run_cli(dbt_bin, ["vocab", "--corpus", str(tmp_path / "missing.txt"), "--size", "100",
                          "--out", str(tmp_path / "o")], check=False)
    assert p.returncode == 1 and "missing.txt" in p.stderr
    p = run_cli(dbt_bin, ["vocab", "--corpus", BROWN, "--out", str(tmp_path / "o")], check=False)
    assert p.returncode == 1 and "--size" in p.stderr
    p = run_cli(dbt_bin, ["vocab", "--corpus", BROWN, "--size", "x", "--out", str(tmp_path / "o")], check=False)
    assert p.returncode == 2
    (tmp_path / "file").write_text("x")
    p = run_cli(dbt_bin, ["vocab", "--corpus", BROWN, "--size", "100", "--out", str(tmp_path / "file")], check=False)
    assert p.returncode == 1
    assert run_cli(dbt_bin, ["vocab", "--help"]).stdout.startswith("usage: distilbert vocab")


def test_zz_report(capsys):
    """Prints the overlaps measured above (pytest -s, or see the captured output)."""
    with capsys.disabled():
        print()
        for case, j, ours, theirs in OVERLAP:
            if j is None:
                print("  vocab: %s" % case)
            else:
                print("  vocab: %s: Jaccard %.4f with tokenizers' trainer (ours %.2f s, tokenizers %.2f s)"
                      % (case, j, ours, theirs))
