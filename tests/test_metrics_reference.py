"""src/training/metrics.c against the reference implementations on random inputs:
scikit-learn (accuracy, binary/macro precision-recall-F1, MCC), scipy (pearsonr, spearmanr,
rankdata), seqeval 1.2.2 (entities and classification_report in default mode) and the official
SQuAD v1.1 evaluation (written out below from evaluate-v1.1.py).

The library is driven through tests/tools/metrics_cli.c, compiled here against the static library
next to $DBT_BIN (build/ or build-asan/). Floats must agree to 1e-9 relative, integers exactly.
Each test prints the number of cases it compared and the largest deviation (pytest -s shows it).
"""
import json
import math
import os
import random
import re
import string
import subprocess
import unicodedata
import warnings
from collections import Counter

import pytest

from conftest import ROOT

np = pytest.importorskip("numpy")
scipy_stats = pytest.importorskip("scipy.stats")
skm = pytest.importorskip("sklearn.metrics")
seqeval_metrics = pytest.importorskip("seqeval.metrics")
from seqeval.metrics.sequence_labeling import get_entities  # noqa: E402

REL = 1e-9


def makefile_libs():
    """The Makefile's LIBS, so that the driver links like everything else."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        for line in f:
            m = re.match(r"LIBS\s*:?=\s*(.*)", line)
            if m:
                return m.group(1).split()
    return ["-lopenblas", "-lutf8proc", "-lcjson", "-lm", "-pthread"]


@pytest.fixture(scope="module")
def metrics_cli(dbt_bin, tmp_path_factory):
    """Compiles tests/tools/metrics_cli.c against the library built next to the CLI under test."""
    build = os.path.dirname(os.path.abspath(dbt_bin))
    lib = os.path.join(build, "libdistilbert.a")
    assert os.path.exists(lib), f"{lib} is not built (run make)"
    exe = str(tmp_path_factory.mktemp("metrics") / "metrics_cli")
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if "asan" in os.path.basename(build) else []
    cmd = [os.environ.get("CC", "cc"), "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", *san,
           "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "src"),
           os.path.join(ROOT, "tests", "tools", "metrics_cli.c"), lib, "-o", exe, *makefile_libs()]
    subprocess.run(cmd, check=True)
    return exe


def call(exe, requests):
    """Runs a batch of requests through the C library; returns the list of results."""
    p = subprocess.run([exe], input=json.dumps(requests).encode(), capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return json.loads(p.stdout)


class Deviation:
    """Compares C results with the reference and remembers the largest differences."""

    def __init__(self, name):
        self.name, self.cases, self.max_abs, self.max_rel = name, 0, 0.0, 0.0
        self.compared = self.identical = 0

    def close(self, got, want, what=""):
        want = float(want)
        if got is None:  # NaN prints as null
            assert math.isnan(want), f"{self.name} {what}: C gave NaN, reference {want!r}"
            return
        if math.isnan(want):
            raise AssertionError(f"{self.name} {what}: C gave {got!r}, reference NaN")
        d = abs(got - want)
        self.compared += 1
        self.identical += d == 0
        rel = d / max(abs(got), abs(want)) if d else 0.0
        self.max_abs, self.max_rel = max(self.max_abs, d), max(self.max_rel, rel)
        assert d <= REL * max(abs(got), abs(want)), f"{self.name} {what}: C {got!r} vs reference {want!r}"

    def exact(self, got, want, what=""):
        assert got == want, f"{self.name} {what}: C {got!r} vs reference {want!r}"

    def report(self):
        bits = f", {self.identical}/{self.compared} values bit-identical" if self.compared else ""
        print(f"\n{self.name}: {self.cases} random cases, max |Δ| {self.max_abs:.3g}, max rel {self.max_rel:.3g}{bits}")


def quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


# ---- classification -------------------------------------------------------------------------

def random_labels(rng, n, k):
    base = rng.choice([0, 0, 0, -3, 7])
    probs = [rng.random() + 0.05 for _ in range(k)]
    return [base + rng.choices(range(k), probs)[0] for _ in range(n)]


def classification_cases(rng, count):
    cases = []
    for _ in range(count):
        k = rng.choice([1, 2, 2, 2, 3, 4, 7, 12, 40])
        n = rng.choice([0, 1, 2, 3, 5, 10, 37, 100, 257, 1000]) if k < 40 else rng.choice([50, 300, 2000])
        gold = random_labels(rng, n, k)
        noise = rng.random()
        pred = [g if rng.random() > noise else rng.choice(gold) + rng.choice([0, 0, 1]) for g in gold]
        if rng.random() < 0.1:  # inverted binary predictions
            pred = [1 - g for g in gold]
        cases.append((pred, gold))
    # hand-picked corners: perfect, all one class, pos_label absent, {0, 2}, labels only 1.
    cases += [([0, 1, 1, 0], [0, 1, 1, 0]), ([1, 1, 1], [1, 1, 1]), ([0, 0], [0, 0]), ([0, 2, 2], [2, 0, 2]),
              ([2, 2], [2, 2]), ([1, 0], [0, 1]), ([5, 5, 5], [5, 5, 6])]
    return cases


def sk_binary(pred, gold):
    try:
        p, r, f, _ = quiet(skm.precision_recall_fscore_support, gold, pred, average="binary", pos_label=1)
        return {"precision": p, "recall": r, "f1": f}
    except ValueError:
        return None


def test_classification_metrics(metrics_cli):
    rng = random.Random(1234)
    cases = classification_cases(rng, 1500)
    reqs = []
    for pred, gold in cases:
        for m in ["accuracy", "mcc", "prf_binary", "prf_macro"]:
            reqs.append({"metric": m, "pred": pred, "gold": gold})
    got = iter(call(metrics_cli, reqs))
    devs = {m: Deviation(m) for m in ["accuracy", "mcc", "prf_binary", "prf_macro"]}
    errors = 0
    for i, (pred, gold) in enumerate(cases):
        acc = next(got)
        want = quiet(skm.accuracy_score, gold, pred) if gold else float("nan")
        devs["accuracy"].close(acc, want, f"case {i}")
        devs["mcc"].close(next(got), quiet(skm.matthews_corrcoef, gold, pred), f"case {i}")
        b = next(got)
        want = sk_binary(pred, gold)
        if want is None:
            assert "error" in b, f"case {i}: sklearn raises for {sorted(set(pred + gold))}, C gave {b}"
            errors += 1
        else:
            for key in want:
                devs["prf_binary"].close(b[key], want[key], f"case {i} {key}")
        m = next(got)
        if gold:
            p, r, f, _ = quiet(skm.precision_recall_fscore_support, gold, pred, average="macro")
            assert abs(quiet(skm.f1_score, gold, pred, average="macro") - f) == 0
        else:
            p = r = f = float("nan")
        for key, w in zip(["precision", "recall", "f1"], [p, r, f]):
            devs["prf_macro"].close(m[key], w, f"case {i} {key}")
    for d in devs.values():
        d.cases = len(cases)
        d.report()
    print(f"prf_binary: {errors} cases where sklearn raises (multiclass / pos_label absent), C failed too")
    assert errors > 100


# ---- correlation ----------------------------------------------------------------------------

def random_vector(rng, n, kind):
    if kind == "normal":
        return [rng.gauss(0, 1) for _ in range(n)]
    if kind == "ties":
        return [float(rng.randint(0, 4)) for _ in range(n)]
    if kind == "offset":  # large mean, small spread: cancellation in x - mean
        return [1e6 + rng.gauss(0, 1e-3) for _ in range(n)]
    if kind == "scaled":
        s = 10 ** rng.uniform(-200, 200)
        return [s * rng.gauss(0, 1) for _ in range(n)]
    if kind == "halves":
        return [rng.randint(-6, 6) / 2 for _ in range(n)]
    if kind == "constant":
        return [3.25] * n
    raise ValueError(kind)


def correlation_cases(rng, count):
    kinds = ["normal", "ties", "offset", "scaled", "halves", "constant"]
    cases = []
    for _ in range(count):
        n = rng.choice([2, 2, 3, 4, 5, 8, 9, 17, 50, 129, 300, 1000])
        kx = rng.choices(kinds, [5, 3, 1, 1, 2, 0.3])[0]
        ky = rng.choices(kinds, [5, 3, 1, 1, 2, 0.3])[0]
        x = random_vector(rng, n, kx)
        y = random_vector(rng, n, ky)
        if rng.random() < 0.3:  # correlated
            y = [a * rng.choice([1, -2]) + b * rng.random() for a, b in zip(x, y)]
        cases.append((x, y))
    cases += [([1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0]), ([0.0, -0.0, 1.0], [1.0, 2.0, 3.0]), ([5.0, 1.0], [2.0, 7.0])]
    return cases


def test_correlation(metrics_cli):
    rng = random.Random(99)
    cases = correlation_cases(rng, 1500)
    reqs = []
    for x, y in cases:
        reqs += [{"metric": "pearson", "pred": x, "gold": y}, {"metric": "spearman", "pred": x, "gold": y},
                 {"metric": "rankdata", "x": x}]
    got = iter(call(metrics_cli, reqs))
    dp, ds, dr = Deviation("pearson"), Deviation("spearman"), Deviation("rankdata")
    nan_cases = 0
    for i, (x, y) in enumerate(cases):
        want_p = quiet(scipy_stats.pearsonr, x, y)[0]
        want_s = quiet(scipy_stats.spearmanr, x, y)[0]
        nan_cases += math.isnan(want_p)
        dp.close(next(got), want_p, f"case {i}")
        ds.close(next(got), want_s, f"case {i}")
        ranks = next(got)
        for a, b in zip(ranks, scipy_stats.rankdata(x)):
            dr.exact(a, float(b), f"case {i}")
    for d in (dp, ds, dr):
        d.cases = len(cases)
        d.report()
    print(f"correlation: {nan_cases} cases with a constant input (NaN)")
    # Below two points scipy raises; the C functions give NaN.
    assert call(metrics_cli, [{"metric": "pearson", "pred": [1.0], "gold": [2.0]},
                              {"metric": "spearman", "pred": [1.0], "gold": [2.0]}]) == [None, None]


# ---- seqeval --------------------------------------------------------------------------------

TYPES = ["PER", "LOC", "MISC", "ORG"]
ODD_TAGS = ["B", "I", "E", "S", "E-PER", "S-LOC", "X-PER", "B-PER-X", "I-PER-X", "-", ".", "O-PER", "BLOC",
            "I-", "B-_", "Ü-LOC", "B-ÄRT", "I-ÄRT", "B-Zeit", "I-zeit", ".-PER", "S-"]


def random_tags(rng, n, odd):
    out, prev_type = [], None
    for _ in range(n):
        r = rng.random()
        if r < 0.45:
            out.append("O")
            prev_type = None
        elif odd and r < 0.55:
            out.append(rng.choice(ODD_TAGS))
        elif prev_type and r < 0.8:
            out.append("I-" + prev_type)
        else:
            t = rng.choice(TYPES)
            out.append(("I-" if odd and rng.random() < 0.2 else "B-") + t)  # I- after O / type switch
            prev_type = t
    return out


def perturb(rng, tags, rate):
    out = []
    for t in tags:
        r = rng.random()
        if r < rate / 3:
            out.append("O")
        elif r < 2 * rate / 3:
            out.append(rng.choice(["B-", "I-"]) + rng.choice(TYPES))
        elif r < rate:
            out.append(rng.choice(ODD_TAGS + ["I-PER", "B-LOC"]))
        else:
            out.append(t)
    return out


def test_seqeval_entities(metrics_cli):
    rng = random.Random(7)
    seqs = [random_tags(rng, rng.choice([0, 1, 2, 5, 20, 60]), odd=rng.random() < 0.6) for _ in range(3000)]
    seqs += [["I-PER"], ["O", "I-PER", "I-PER"], ["B-PER", "I-LOC"], ["E-PER", "E-PER"], ["S-PER", "I-PER"],
             ["B-PER", "S-PER", "E-PER"], ["X-PER", "X-LOC"], ["."], ["-", "I"]]
    got = call(metrics_cli, [{"metric": "entities", "tags": s} for s in seqs])
    d = Deviation("seqeval get_entities")
    for i, (s, g) in enumerate(zip(seqs, got)):
        want = [list(e) for e in quiet(get_entities, s)]
        d.exact(g, want, f"sequence {i} {s}")
    d.cases = len(seqs)
    d.report()


def seqeval_reference(pred, gold):
    rep = quiet(seqeval_metrics.classification_report, gold, pred, output_dict=True)
    scores = (quiet(seqeval_metrics.precision_score, gold, pred), quiet(seqeval_metrics.recall_score, gold, pred),
              quiet(seqeval_metrics.f1_score, gold, pred))
    return rep, scores


def test_seqeval_report(metrics_cli):
    rng = random.Random(2024)
    cases = []
    for _ in range(1500):
        odd = rng.random() < 0.5
        gold = [random_tags(rng, rng.choice([0, 1, 3, 8, 15, 40]), odd) for _ in range(rng.choice([1, 1, 2, 4, 9]))]
        rate = rng.choice([0.0, 0.05, 0.2, 0.6])
        pred = [perturb(rng, s, rate) for s in gold]
        cases.append((pred, gold))
    # sentences are joined with an 'O' between them: a chunk never runs across a boundary.
    cases += [([["B-PER"], ["I-PER"]], [["B-PER", ], ["I-PER"]]), ([["O"]], [["O"]]), ([[]], [[]]),
              ([["B-PER", "I-PER"]], [["B-PER", "I-LOC"]])]
    got = call(metrics_cli, [{"metric": "seqeval", "pred": p, "gold": g} for p, g in cases])
    # seqeval raises TypeError for no sentences at all; so does the C function.
    with pytest.raises(TypeError):
        seqeval_reference([], [])
    assert "error" in call(metrics_cli, {"metric": "seqeval", "pred": [], "gold": []})
    d = Deviation("seqeval classification_report")
    for i, ((pred, gold), g) in enumerate(zip(cases, got)):
        rep, (p, r, f) = seqeval_reference(pred, gold)
        names = [k for k in rep if not k.endswith(" avg")]
        d.exact(g["order"], names, f"case {i} types")
        for name in names + ["micro avg", "macro avg", "weighted avg"]:
            mine = g["types"][name] if name in g["types"] else g[name.split()[0]]
            for key in ["precision", "recall", "f1-score"]:
                d.close(mine[key], rep[name][key], f"case {i} {name} {key}")
            d.exact(mine["support"], int(rep[name]["support"]), f"case {i} {name} support")
        for key, w in zip(["precision", "recall", "f1-score"], [p, r, f]):
            d.close(g["micro"][key], w, f"case {i} micro {key}")
    d.cases = len(cases)
    d.report()


# ---- SQuAD v1.1 -----------------------------------------------------------------------------
# The official evaluate-v1.1.py, its functions as published.

def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def squad_f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return (normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def squad_evaluate(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article['paragraphs']:
            for qa in paragraph['qas']:
                total += 1
                if qa['id'] not in predictions:
                    continue
                ground_truths = list(map(lambda x: x['text'], qa['answers']))
                prediction = predictions[qa['id']]
                exact_match += metric_max_over_ground_truths(exact_match_score, prediction, ground_truths)
                f1 += metric_max_over_ground_truths(squad_f1_score, prediction, ground_truths)
    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total
    return {'exact_match': exact_match, 'f1': f1}


WORDS = ["The", "the", "a", "an", "A", "An", "THE", "ThE", "cat", "Cat", "dog's", "dog", "e.g.", "U.S.", "1,000",
         "ﬁsh", "Σ", "ΟΔΟΣ", "ΑΣ.", "ΣΑΣ", "Σ'Α", "İstanbul", "straße", "STRASSE", "é", "e\u0301", "naïve", "the\u0301",
         "thé", "an_", "_the", "a-b", "α", "東京", "—", "–", "(the)", '"a"', "’s", "the’s", "Ǆ", "ǅungla", "Ⅻ",
         "²", "٣", "ａn", "a\u200bn", "ǈ", "Ω", "ΑΣ\u0301", "x", "y", "z", "1", "42", "3.14", "!", "?!", "...", "'",
         "the.", "a,", "an;", "#an", "Ⓐ", "ŉ", "ǰ", "ß", "ẞ", "K", "Å", "ς", "σ"]
SPACES = [" ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2009", "\x1c", "\x1f", "\u0085", "\u2028", "", "-", "\u200b", "\u180e"]


def random_text(rng, max_words):
    n = rng.randint(0, max_words)
    s = rng.choice(["", " ", "\t"])
    for _ in range(n):
        s += rng.choice(WORDS) + rng.choice(SPACES)
    return s


def squad_cases(rng, count):
    cases = []
    for _ in range(count):
        q = rng.choice([1, 1, 2, 5, 20])
        preds, golds = [], []
        for _ in range(q):
            answers = [random_text(rng, 6) for _ in range(rng.choice([1, 1, 2, 3, 4]))]
            if rng.random() < 0.1:
                pred = None  # unanswered
            elif rng.random() < 0.4:  # a variant of one of the answers
                pred = rng.choice(answers)
                pred = rng.choice([pred, pred.upper(), pred.lower(), "The " + pred, pred + "!", pred + " " + random_text(rng, 2)])
            else:
                pred = random_text(rng, 6)
            preds.append(pred)
            golds.append(answers)
        cases.append((preds, golds))
    return cases


def test_squad(metrics_cli):
    rng = random.Random(11)
    cases = squad_cases(rng, 1500)
    got = call(metrics_cli, [{"metric": "squad", "pred": p, "gold": g} for p, g in cases])
    d, dq = Deviation("squad evaluate"), Deviation("squad per question")
    texts = []
    for i, ((preds, golds), g) in enumerate(zip(cases, got)):
        dataset = [{"paragraphs": [{"qas": [{"id": str(j), "answers": [{"text": t} for t in a]}
                                            for j, a in enumerate(golds)]}]}]
        predictions = {str(j): p for j, p in enumerate(preds) if p is not None}
        want = squad_evaluate(dataset, predictions)
        d.close(g["exact_match"], want["exact_match"], f"case {i} EM")
        d.close(g["f1"], want["f1"], f"case {i} F1")
        for j, (p, a) in enumerate(zip(preds, golds)):
            if p is None:
                continue
            dq.exact(g["em_q"][j], int(metric_max_over_ground_truths(exact_match_score, p, a)), f"case {i} q{j} EM {p!r} {a!r}")
            dq.close(g["f1_q"][j], metric_max_over_ground_truths(squad_f1_score, p, a), f"case {i} q{j} F1 {p!r} {a!r}")
            dq.cases += 1
            texts += [p] + a
    d.cases = len(cases)
    d.report()
    dq.report()
    norm = call(metrics_cli, {"metric": "normalize", "texts": texts})
    for t, n in zip(texts, norm):
        assert n == normalize_answer(t), repr(t)
    print(f"squad normalize_answer: {len(texts)} texts identical")


def test_unicode_tables(metrics_cli):
    """Every assigned code point (Python's Unicode data) through lower() and normalize_answer, in
    contexts that expose Final_Sigma's Cased / Case_Ignorable, \\b's word characters and split()'s
    whitespace."""
    cps = [c for c in range(1, 0x110000)  # U+0000 cannot be in a C string
           if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) not in ("Cn", "Cs")
           and not (c >= 0xF0000 and unicodedata.category(chr(c)) == "Co")]
    lower_in, norm_in = [], []
    for c in cps:
        ch = chr(c)
        lower_in += [ch, "A" + ch + "Σ", "AΣ" + ch, ch + "Σ"]
        norm_in.append("the" + ch + "an" + ch + "x" + ch)
    lo, no = call(metrics_cli, [{"metric": "lower", "texts": lower_in}, {"metric": "normalize", "texts": norm_in}])
    bad_lower = [t for t, g in zip(lower_in, lo) if g != t.lower()]
    bad_norm = [t for t, g in zip(norm_in, no) if g != normalize_answer(t)]
    print(f"\nunicode tables: {len(cps)} code points, {len(lower_in)} lower() and {len(norm_in)} normalize_answer texts")
    assert not bad_lower, [(ascii(t), ascii(t.lower())) for t in bad_lower[:20]]
    assert not bad_norm, [ascii(t) for t in bad_norm[:20]]
