"""The C tokenizer (through `distilbert tokenize` / `distilbert decode`) against Hugging Face's
BertTokenizerFast (transformers 4.46.3 / tokenizers 0.20.3): ids, tokens, type ids, offsets and
word ids must be IDENTICAL.

  (a) fixture tests: the committed golden files (tests/fixtures/tokenizer/golden_*.json.gz, made
      by tests/oracle/make_tokenizer_fixtures.py) — no oracle needed;
  (b) live tests on fresh random text (the seed is printed; DBT_TOKENIZER_SEED=N replays a run);
  (c) every code point 0..0x10FFFF, in both normalizer configurations;
  (d) invalid UTF-8: the oracle sees bytes.decode("utf-8", "replace");
  (e) errors: bad input and bad options give a message and a non-zero exit, never a crash.
(b)-(d) need the oracle and are skipped without transformers.

The binary is $DBT_BIN (default build/distilbert). Agreement counts ("N/M lines agree") are
printed at the end of the run: per group, and per case with -v, when a case disagrees, and for the
live cases (with their seed).
"""
import gzip
import importlib.util
import json
import os
import random
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))
import make_tokenizer_fixtures as mtf  # noqa: E402  (imports the oracle lazily)
import stress_corpus  # noqa: E402

HAVE_ORACLE = all(importlib.util.find_spec(m) is not None for m in ("transformers", "tokenizers"))
live = pytest.mark.skipif(not HAVE_ORACLE, reason="the oracle (transformers, tokenizers) is not installed")
FIELDS = ("ids", "tokens", "type_ids", "offsets", "word_ids")
MAX_REPORTED = 5


# ---- running the CLI -------------------------------------------------------------------------------

def run(dbt_bin, args, data, timeout=600):
    return subprocess.run([dbt_bin] + list(args), input=data, capture_output=True, timeout=timeout)


def crashed(p):
    """A signal, or a sanitizer report: anything but a clean exit or a clean error."""
    err = p.stderr.decode("utf-8", "replace")
    return p.returncode < 0 or p.returncode >= 128 or "Sanitizer" in err or "runtime error" in err


def cli_tokenize(dbt_bin, args, lines):
    """`distilbert tokenize ARGS` on the lines (bytes, no b'\\n'): the list of windows of each line."""
    p = run(dbt_bin, ["tokenize"] + list(args), b"".join(x + b"\n" for x in lines))
    assert p.returncode == 0 and not crashed(p), "tokenize %s exited %d: %s" % (
        " ".join(args), p.returncode, p.stderr.decode("utf-8", "replace")[-2000:])
    out, windows = [], "--stride" in args
    for raw in p.stdout.split(b"\n")[:-1]:
        j = json.loads(raw)
        w = {k: j[k] for k in FIELDS if k in j}
        if windows:
            if j["window"] == 0:
                out.append([])
            out[-1].append(w)
        else:
            out.append([w])
    assert len(out) == len(lines), "%d lines in, %d out" % (len(lines), len(out))
    return out


def cli_error(dbt_bin, args, line):
    """Runs one line that must be refused; returns None when it is, else what went wrong."""
    p = run(dbt_bin, ["tokenize"] + list(args), line + b"\n")
    if crashed(p):
        return "crashed (exit %d): %s" % (p.returncode, p.stderr.decode("utf-8", "replace")[-1500:])
    if p.returncode == 0:
        return "accepted, the oracle refuses it; output %s" % p.stdout.decode("utf-8", "replace")[:1500]
    if b"distilbert" not in p.stderr:
        return "exit %d without a message" % p.returncode
    return None


def describe(line, expected, got):
    """The first difference between two lists of windows, readably."""
    if isinstance(expected, dict):
        return "line %r: the oracle refuses it (%s); the C: %s" % (line, expected["error"], got)
    if len(expected) != len(got):
        return "line %r: %d windows expected, %d made" % (line, len(expected), len(got))
    for k, (e, g) in enumerate(zip(expected, got)):
        for f in FIELDS:
            if e.get(f) != g.get(f):
                return "line %r, window %d, %s:\n   oracle %s\n   C      %s\n   oracle tokens %s" % (
                    line, k, f, e.get(f), g.get(f), e["tokens"])
    return "line %r: ?" % (line,)


def check_lines(dbt_bin, args, lines, expected, shown=None):
    """Compares the CLI with the expected windows (or {"error"}) of each line. Returns the
    (agreeing count, descriptions of the first differences)."""
    shown = shown or lines
    ok_idx = [i for i, e in enumerate(expected) if not isinstance(e, dict)]
    got = cli_tokenize(dbt_bin, args, [lines[i] for i in ok_idx]) if ok_idx else []
    bad = [describe(shown[i], expected[i], g) for i, g in zip(ok_idx, got) if g != expected[i]]
    for i, e in enumerate(expected):
        if isinstance(e, dict):
            why = cli_error(dbt_bin, args, lines[i])
            if why:
                bad.append("line %r: %s" % (shown[i], why))
    return len(expected) - len(bad), bad


@pytest.fixture(scope="session")
def json_dir(tmp_path_factory):
    """The committed <model>.tokenizer.json.gz, gunzipped."""
    return mtf.gunzip_tokenizers(str(tmp_path_factory.mktemp("tokenizer-json")))


# ---- (a) the golden files ------------------------------------------------------------------------

GROUPS = ("corpus", "pairs", "truncation", "stride", "invalid_utf8", "decode")


def load_golden():
    golden = {}
    for g in GROUPS:
        path = os.path.join(mtf.FIXTURES, "golden_%s.json.gz" % g)
        if os.path.exists(path):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                golden[g] = json.load(f)["cases"]
    return golden


GOLDEN = load_golden()
FIXTURE_PARAMS = [pytest.param(g, i, p, id="%s[%s]" % (c["name"], p))
                  for g, cases in GOLDEN.items() for i, c in enumerate(cases) for p in c["paths"]]


def test_golden_files_present():
    assert set(GOLDEN) == set(GROUPS), "missing golden files: run tests/oracle/make_tokenizer_fixtures.py"
    for model in mtf.MODELS:
        assert os.path.exists(mtf.json_gz_file(model))


def test_stress_corpus_is_current():
    """The committed corpus is what tests/oracle/stress_corpus.py builds (and is big enough)."""
    lines = stress_corpus.build_lines()
    assert len(lines) >= 600
    with open(stress_corpus.OUT, encoding="utf-8", newline="") as f:
        assert f.read() == stress_corpus.render(lines), "run tests/oracle/stress_corpus.py"


@pytest.mark.parametrize("group,index,path", FIXTURE_PARAMS)
def test_fixture(dbt_bin, json_dir, tokenizer_report, group, index, path):
    case = GOLDEN[group][index]
    args = case["args"] + mtf.cli_args(case["model"], path, json_dir)
    name = "%s [%s]" % (case["name"], path)
    if case["kind"] == "decode":
        data = b"".join(json.dumps(ids).encode() + b"\n" for ids in case["ids"])
        p = run(dbt_bin, ["decode"] + args, data)
        assert p.returncode == 0 and not crashed(p), p.stderr.decode("utf-8", "replace")
        got = [json.loads(x) for x in p.stdout.decode("utf-8").split("\n")[:-1]]
        assert len(got) == len(case["ids"])
        bad = ["ids %s:\n   oracle %r\n   C      %r" % (ids, e, g)
               for ids, e, g in zip(case["ids"], case["expected"], got) if e != g]
        tokenizer_report(group, name, len(got) - len(bad), len(got))
        assert not bad, "%d/%d differ, e.g.\n%s" % (len(bad), len(got), "\n".join(bad[:MAX_REPORTED]))
        return
    if "lines_hex" in case:
        lines = [bytes.fromhex(x) for x in case["lines_hex"]]
    else:
        lines = [x.encode("utf-8") for x in case["lines"]]
    agree, bad = check_lines(dbt_bin, args, lines, case["expected"], case.get("lines"))
    tokenizer_report(group, name, agree, len(lines))
    assert not bad, "%d/%d lines agree; first differences:\n%s" % (
        agree, len(lines), "\n".join(bad[:MAX_REPORTED]))


# ---- (b) live: fresh random text -------------------------------------------------------------------

def seed_of_this_run():
    s = os.environ.get("DBT_TOKENIZER_SEED")
    return int(s) if s else random.SystemRandom().randrange(1, 1 << 31)


def random_text(rng, max_len=60):
    P = stress_corpus.POOLS
    names = sorted(P)
    kind = rng.random()
    if kind < 0.1:  # a base letter followed by a pile of marks, in random order
        base = rng.choice(P["ascii_letters"] + P["latin1"] + P["greek"] + P["indic"][:50])
        marks = P["combining"] + P["surviving_marks"]
        return " ".join(base + "".join(rng.choice(marks) for _ in range(rng.randint(1, 6)))
                        for _ in range(rng.randint(1, 6)))
    if kind < 0.15:  # long words around the 100-character limit
        return " ".join(rng.choice(P["ascii_letters"] + P["latin1"]) * rng.randint(95, 105) for _ in range(2))
    if kind < 0.25:
        return " ".join(rng.choice(stress_corpus.WORDS + P["special_tokens"]) for _ in range(rng.randint(1, 10)))
    pools = [P[rng.choice(names)] for _ in range(rng.randint(1, 4))] + [P["ascii_letters"], [" "] * 5]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(0, max_len)))


@pytest.fixture(scope="module")
def oracles(json_dir):
    return {(m, p): mtf.Oracle(m, p, os.path.join(json_dir, m + ".tokenizer.json"))
            for m in mtf.MODELS for p in mtf.PATHS}


@live
def test_live_random_text(dbt_bin, json_dir, oracles, tokenizer_report):
    seed = seed_of_this_run()
    print("random text seed: %d (DBT_TOKENIZER_SEED=%d replays it)" % (seed, seed))
    rng = random.Random(seed)
    texts = [random_text(rng) for _ in range(400)]
    failures = []
    for (m, p), o in oracles.items():
        agree, bad = check_lines(dbt_bin, mtf.encode_args() + mtf.cli_args(m, p, json_dir),
                                 [t.encode("utf-8") for t in texts], o.encode_batch(texts), texts)
        tokenizer_report("live", "random text %s [%s], seed %d" % (m, p, seed), agree, len(texts), True)
        failures += ["%s [%s]: %s" % (m, p, b) for b in bad[:MAX_REPORTED]]
    assert not failures, "seed %d (DBT_TOKENIZER_SEED=%d replays it):\n%s" % (seed, seed, "\n".join(failures))


@live
def test_live_random_truncation(dbt_bin, json_dir, oracles, tokenizer_report):
    seed = seed_of_this_run()
    print("truncation seed: %d (DBT_TOKENIZER_SEED=%d replays it)" % (seed, seed))
    rng = random.Random(seed)
    failures, agree_all, total = [], 0, 0
    for k in range(30):
        m, p = rng.choice(sorted(oracles))
        o = oracles[m, p]
        pair = rng.random() < 0.7
        strategy = rng.choice(["longest_first", "only_first", "only_second"])
        max_length = rng.choice([1, 2, 3, 4, 5, 7, 10, 16, 24, 40, 64])
        stride = rng.choice([None, None, 0, 1, 2, 3, 5, 8, 13])
        special = rng.random() < 0.85
        texts = [(random_text(rng, 80), random_text(rng, 120) if pair else None) for _ in range(12)]
        texts = [(a.replace("\t", " "), b) for a, b in texts]
        expected = [o.encode(a, b, max_length=max_length, stride=stride, truncation=strategy,
                             add_special_tokens=special) for a, b in texts]
        lines = [(a + "\t" + b if pair else a).encode("utf-8") for a, b in texts]
        # errors cost a process each: a few are enough
        errs = [i for i, e in enumerate(expected) if isinstance(e, dict)][3:]
        keep = [i for i in range(len(lines)) if i not in errs]
        args = mtf.encode_args(max_length, stride, strategy, special, pair) + mtf.cli_args(m, p, json_dir)
        agree, bad = check_lines(dbt_bin, args, [lines[i] for i in keep], [expected[i] for i in keep])
        agree_all += agree
        total += len(keep)
        failures += ["%s: %s" % (" ".join(args[:-2]), b) for b in bad[:2]]
    tokenizer_report("live", "random pairs, truncation and stride, seed %d" % seed, agree_all, total, True)
    assert not failures, "seed %d (DBT_TOKENIZER_SEED=%d replays it):\n%s" % (seed, seed, "\n".join(failures[:8]))


# ---- (c) every code point --------------------------------------------------------------------------

def code_point_tokenizers(json_dir, tmp_dir):
    """Two tokenizer.json files (uncased: lowercase + strip accents; cased: neither) whose vocabulary
    holds every code point the oracle's normalizer can output, each as its own token, and "" as
    continuing prefix: the ids then spell out the normalized text exactly, and the word ids and
    offsets show every split and every removal."""
    from tokenizers import Tokenizer
    with open(os.path.join(json_dir, "bert-base-uncased.tokenizer.json"), encoding="utf-8") as f:
        base = json.load(f)
    cps = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    chars = set("ab")
    for lower in (True, False):
        base["normalizer"].update(lowercase=lower, strip_accents=None)
        norm = Tokenizer.from_str(json.dumps(base)).normalizer
        for i in range(0, len(cps), 16384):
            chars.update(norm.normalize_str("".join(map(chr, cps[i:i + 16384]))))
    chars.discard(" ")
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])}
    for ch in sorted(chars):
        vocab.setdefault(ch, len(vocab))
    base["model"].update(vocab=vocab, continuing_subword_prefix="")
    for a in base["added_tokens"]:
        a["id"] = vocab[a["content"]]
    for k, v in base["post_processor"]["special_tokens"].items():
        v["ids"] = [vocab[k]]
    out = {}
    for lower in (True, False):
        base["normalizer"]["lowercase"] = lower
        path = os.path.join(tmp_dir, "codepoints-%s.json" % ("uncased" if lower else "cased"))
        with open(path, "w", encoding="utf-8") as f:
            json.dump(base, f, ensure_ascii=False)
        out["uncased" if lower else "cased"] = (path, Tokenizer.from_file(path))
    return out


def compare_code_points(dbt_bin, path, tok, words, per_line=64):
    """Tokenizes the words, per_line to a line (separated by spaces), with both; returns the words
    whose line differs, narrowed down to the words that differ on their own."""
    lines = [" ".join(words[i:i + per_line]) for i in range(0, len(words), per_line)]
    exp = tok.encode_batch(lines)
    p = run(dbt_bin, ["tokenize", "--word-ids", "--tokenizer", path],
            "".join(x + "\n" for x in lines).encode("utf-8"))
    assert p.returncode == 0 and not crashed(p), p.stderr.decode("utf-8", "replace")[-2000:]
    got = p.stdout.decode("utf-8").split("\n")[:-1]
    assert len(got) == len(lines)
    suspects = []
    for k, (e, g) in enumerate(zip(exp, got)):
        j = json.loads(g)
        if j["ids"] != e.ids or j["word_ids"] != e.word_ids or [tuple(o) for o in j["offsets"]] != e.offsets:
            suspects += words[k * per_line:(k + 1) * per_line]
    if not suspects or per_line == 1:
        return suspects
    return compare_code_points(dbt_bin, path, tok, suspects, 1)


@live
def test_every_code_point(dbt_bin, json_dir, tmp_path, tokenizer_report):
    """For every code point c but '\\n' (the line break) and the surrogates: "a<c>b" is split,
    removed, kept, lowercased, decomposed and stripped exactly as the oracle does, in the uncased
    and the cased configuration. Then, for every code point of planes 0, 1 and 14 (where all the
    marks are), its canonical ordering against marks that survive accent stripping."""
    t0 = time.time()
    toks = code_point_tokenizers(json_dir, str(tmp_path))
    cps = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and c != 10]
    words = ["a%sb" % chr(c) for c in cps]
    bad = {}
    for config, (path, tok) in toks.items():
        diff = compare_code_points(dbt_bin, path, tok, words)
        tokenizer_report("code points", "a<c>b for every code point, %s" % config,
                         len(words) - len(diff), len(words))
        bad[config] = diff
    # marks: U+1D165 (Mc, class 216) and U+1D16D (Mc, class 226) survive accent stripping
    marks = [chr(c) for c in list(range(0x80, 0x20000)) + list(range(0xE0000, 0xE1000))
             if not 0xD800 <= c < 0xE000]
    words = (["a%s\U0001d165b" % c for c in marks] + ["a\U0001d16d%sb" % c for c in marks]
             + ["a\U0001d16d%s\U0001d165b" % c for c in marks])
    path, tok = toks["uncased"]
    diff = compare_code_points(dbt_bin, path, tok, words)
    tokenizer_report("code points", "canonical ordering against surviving marks, uncased",
                     len(words) - len(diff), len(words))
    bad["ordering"] = diff
    print("every code point: %.1f s" % (time.time() - t0))
    msg = ["%s: %d differ, e.g. %s" % (k, len(v), ", ".join("U+%04X" % ord(w[1]) if len(w) == 3 else repr(w)
                                                            for w in v[:12]))
           for k, v in bad.items() if v]
    assert not msg, "\n".join(msg)


# ---- (d) invalid UTF-8 -----------------------------------------------------------------------------

def invalid_utf8_lines(rng):
    """Every byte, every two-byte sequence that starts with a non-ASCII byte, the boundary cases
    of three- and four-byte sequences, and random garbage; each between 'a' and 'b' so that the
    offset of 'b' counts the U+FFFD that the bytes became."""
    seqs = [bytes([b]) for b in range(256) if b != 10]
    seqs += [bytes([a, b]) for a in range(0x80, 0x100) for b in range(256) if b != 10]
    conts = [0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0]
    seqs += [bytes([a, b, c]) for a in range(0xE0, 0xF8) for b in conts for c in conts + [0x41]]
    seqs += [bytes([a, b, c, d]) for a in range(0xF0, 0xF6) for b in conts for c in (0x80, 0xBF, 0x41)
             for d in (0x80, 0xBF, 0x41)]
    seqs += mtf.INVALID_UTF8 + mtf.random_bytes_lines(rng, 300)
    return [b"a" + s + b"b" for s in seqs] + mtf.random_bytes_lines(rng, 200)


@live
def test_live_invalid_utf8(dbt_bin, json_dir, oracles, tokenizer_report):
    seed = seed_of_this_run()
    print("invalid UTF-8 seed: %d (DBT_TOKENIZER_SEED=%d replays it)" % (seed, seed))
    lines = invalid_utf8_lines(random.Random(seed))
    texts = [x.decode("utf-8", "replace") for x in lines]
    failures = []
    for m, p in (("bert-base-uncased", "vocab"), ("bert-base-cased", "json")):
        expected = oracles[m, p].encode_batch(texts)
        agree, bad = check_lines(dbt_bin, mtf.encode_args() + mtf.cli_args(m, p, json_dir), lines, expected)
        tokenizer_report("invalid utf-8", "bytes %s [%s], seed %d" % (m, p, seed), agree, len(lines), True)
        failures += bad[:MAX_REPORTED]
    assert not failures, "seed %d:\n%s" % (seed, "\n".join(failures))


def test_invalid_utf8_never_crashes(dbt_bin):
    """Random bytes (no oracle needed): the CLI must take them all, without a crash."""
    rng = random.Random(7)
    lines = [bytes(rng.choice([x for x in range(256) if x != 10]) for _ in range(rng.randint(0, 64)))
             for _ in range(2000)]
    for args in (["--vocab", mtf.vocab_file("bert-base-uncased")],
                 ["--vocab", mtf.vocab_file("bert-base-cased"), "--cased", "--max-length", "7", "--stride", "2"]):
        p = run(dbt_bin, ["tokenize", "--word-ids"] + args, b"".join(x + b"\n" for x in lines))
        assert p.returncode == 0 and not crashed(p), p.stderr.decode("utf-8", "replace")[-2000:]


# ---- padding: tokenizer.json "padding" and tokenizer_config.json padding_side -----------------------

PAD_FIELDS = FIELDS + ("attention_mask", "special_tokens_mask")


def pad_window(e):
    w = mtf.Oracle._window(e)
    w.update(attention_mask=list(e.attention_mask), special_tokens_mask=list(e.special_tokens_mask))
    return w


def cli_windows(dbt_bin, args, lines):
    """All fields of every window of every line: [[window, ...], ...]."""
    p = run(dbt_bin, ["tokenize", "--word-ids", "--attention-mask"] + args,
            "".join(x + "\n" for x in lines).encode("utf-8"))
    assert p.returncode == 0 and not crashed(p), p.stderr.decode("utf-8", "replace")[-2000:]
    out = []
    for raw in p.stdout.decode("utf-8").splitlines():
        j = json.loads(raw)
        if j.get("window", 0) == 0:
            out.append([])
        out[-1].append({k: j[k] for k in PAD_FIELDS})
    return out


def padding_lines():
    corpus = [x for x in mtf.read_corpus() if "\t" not in x]
    return corpus[::4][:200] + ["", "a", "short one", "x " * 60]


@live
@pytest.mark.parametrize("case", ["fixed-left-multiple", "longest-right-windows", "multiple-right-type1"])
def test_live_tokenizer_json_padding(dbt_bin, json_dir, tmp_path, tokenizer_report, case):
    """A tokenizer.json whose "padding" is set: `tokenizers` pads every encode (each text with its
    overflow windows); the CLI must make the same windows, padding included."""
    from tokenizers import Tokenizer
    model = "bert-base-uncased"
    tk = Tokenizer.from_file(os.path.join(json_dir, model + ".tokenizer.json"))
    extra = []
    if case == "fixed-left-multiple":
        tk.enable_padding(direction="left", length=40, pad_to_multiple_of=16, pad_id=0, pad_type_id=0)
    elif case == "longest-right-windows":
        tk.enable_padding()
        tk.enable_truncation(24, stride=5)
        extra = ["--max-length", "24", "--stride", "5"]
    else:
        tk.enable_padding(pad_to_multiple_of=8, pad_type_id=1)
    path = str(tmp_path / "padded.tokenizer.json")
    tk.save(path)
    lines = padding_lines()
    want = []
    for x in lines:
        e = tk.encode(x)
        want.append([pad_window(e)] + ([pad_window(o) for o in e.overflowing] if extra else []))
    got = cli_windows(dbt_bin, ["--tokenizer", path] + extra, lines)
    bad = [describe(x, w, g) for x, w, g in zip(lines, want, got) if w != g]
    tokenizer_report("padding", "tokenizer.json padding %s" % case, len(lines) - len(bad), len(lines), True)
    assert len(got) == len(lines) and not bad, "\n".join(bad[:MAX_REPORTED])


@live
def test_live_padding_side_and_pad_to(dbt_bin, tmp_path, tokenizer_report):
    """A model folder (vocab.txt + tokenizer_config.json with padding_side "left") and --pad-to N
    against transformers' tokenizer(text, padding="max_length", max_length=N)."""
    from transformers import BertTokenizerFast
    model = "bert-base-uncased"
    folder = tmp_path / "tok"
    folder.mkdir()
    with open(mtf.vocab_file(model), "rb") as f:
        (folder / "vocab.txt").write_bytes(f.read())
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "padding_side": "left"}))
    hf = BertTokenizerFast.from_pretrained(str(folder))
    assert hf.padding_side == "left"
    lines = padding_lines()
    want = []
    for x in lines:
        e = hf(x, padding="max_length", max_length=32, return_offsets_mapping=True).encodings[0]
        want.append([pad_window(e)])
    got = cli_windows(dbt_bin, ["--model", str(folder), "--pad-to", "32"], lines)
    bad = [describe(x, w, g) for x, w, g in zip(lines, want, got) if w != g]
    tokenizer_report("padding", "padding_side left, --pad-to 32", len(lines) - len(bad), len(lines), True)
    assert len(got) == len(lines) and not bad, "\n".join(bad[:MAX_REPORTED])


# ---- (e) errors ------------------------------------------------------------------------------------

UNCASED = ["--vocab", os.path.join(ROOT, "data", "vocab", "bert-base-uncased", "vocab.txt")]


def expect_error(dbt_bin, args, data, *words):
    p = run(dbt_bin, args, data)
    err = p.stderr.decode("utf-8", "replace")
    assert not crashed(p), "crashed: %s" % err
    assert p.returncode != 0, "exit 0 for %s" % args
    for w in words:
        assert w.lower() in err.lower(), "message %r lacks %r" % (err, w)
    return err


def test_error_pair_without_tab(dbt_bin):
    expect_error(dbt_bin, ["tokenize", "--pair"] + UNCASED, b"first\tsecond\nno tab here\n", "line 2", "TAB")


def test_error_missing_vocab(dbt_bin, tmp_path):
    missing = str(tmp_path / "no-such-vocab.txt")
    expect_error(dbt_bin, ["tokenize", "--vocab", missing], b"hello\n", "no-such-vocab.txt")
    expect_error(dbt_bin, ["tokenize", "--tokenizer", str(tmp_path / "nope.json")], b"hello\n", "nope.json")
    expect_error(dbt_bin, ["decode", "--vocab", missing], b"[101]\n", "no-such-vocab.txt")
    expect_error(dbt_bin, ["tokenize", "--model", str(tmp_path)], b"hello\n")


def test_error_bad_tokenizer_files(dbt_bin, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    expect_error(dbt_bin, ["tokenize", "--vocab", str(empty)], b"hello\n", "empty")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"model": {"type": "WordPiece", "vocab": {"a": 0}')
    expect_error(dbt_bin, ["tokenize", "--tokenizer", str(bad)], b"hello\n", "bad.json")
    bpe = tmp_path / "bpe.json"
    bpe.write_bytes(b'{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}')
    expect_error(dbt_bin, ["tokenize", "--tokenizer", str(bpe)], b"hello\n", "BPE")


def test_error_stride_not_smaller_than_window(dbt_bin):
    long = b"one two three four five six seven eight nine ten\n"
    # refused before any text, as tokenizers refuses the setting: stride > max_length - 2
    expect_error(dbt_bin, ["tokenize", "--max-length", "6", "--stride", "5"] + UNCASED, b"short\n", "stride")
    # accepted setting, but the window left for the sequence is not larger than the stride
    expect_error(dbt_bin, ["tokenize", "--max-length", "6", "--stride", "4"] + UNCASED, long, "stride")
    expect_error(dbt_bin, ["tokenize", "--pair", "--truncation", "only_second", "--max-length", "12",
                           "--stride", "5"] + UNCASED, b"one two three four five\t" + long, "stride")
    expect_error(dbt_bin, ["tokenize", "--max-length", "8", "--truncation", "only_second"] + UNCASED, long)
    expect_error(dbt_bin, ["tokenize", "--max-length", "8", "--truncation", "sideways"] + UNCASED, long, "sideways")


def test_error_decode_bad_ids(dbt_bin):
    expect_error(dbt_bin, ["decode"] + UNCASED, b"[101, 30522]\n", "30522")
    expect_error(dbt_bin, ["decode"] + UNCASED, b"[101, -1]\n")
    expect_error(dbt_bin, ["decode"] + UNCASED, b"101 abc\n")
