"""`distilbert qa` against transformers' pipeline("question-answering") (4.46.3).

Random-init tiny checkpoints (tests/oracle/make_models.py) still give definite spans, so the
C pipeline and the oracle must agree on answer, start and end exactly, and on scores to 1e-5
relative. The cases cover long contexts read in many windows (--max-length 64 --doc-stride 16
with the tiny model's 128 positions), accents/CJK/emoji (code-point offsets), top_k 1/3/5,
max_answer_len 1/5/15, handle_impossible_answer, and numpy's tie order for the zero-score spans
that fill top_k when a context is too short to give k real ones.

    DBT_BIN=$PWD/build/distilbert .venv/bin/python -m pytest -q tests/test_pipeline_qa.py
"""
import gzip
import json
import os
import subprocess
import sys
import warnings

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))
DBT_BIN = os.environ.get("DBT_BIN", os.path.join(ROOT, "build", "distilbert"))

KINDS = ["distilbert", "bert"]

SHORT = [
    ("Who wrote Moby-Dick?", "Moby-Dick was written by Herman Melville in 1851."),
    ("Where do I live?", "My name is Wolfgang and I live in Berlin"),
    ("Where?", "Paris"),
    ("Where?", "Paris is nice"),
    ("What is it?", "It is antidisestablishmentarianism, unbelievably."),
    ("Où est la tour Eiffel ?", "La tour Eiffel se trouve à Paris, près de la Seine; elle fut achevée en 1889."),
    ("東京タワーはどこ？", "東京タワーは東京都港区芝公園にある電波塔です。高さは333メートル。"),
    ("What is the emoji?", "The answer 😀 is 👍🏽 here, naïve café, Ångström and Ñandú — ok… «quoted»."),
    ("Qui a écrit ça ?", "Écrit par Zoë Ćwikła-Øster in Kraków; 北京 and Москва are cities. 🎉🎉 The end."),
    ("Where [CLS] is?", "Paris [SEP] is nice [CLS] and [MASK] fine"),
    ("What   spaces?", "  Leading   and trailing\tspaces\nand new lines  "),
]

LONG_EXTRA = [
    ("Which café?", ("Zoë went to the café in Zürich. " * 3 + "東京 and 大阪 are far apart. 😀 " * 4 +
                     "The naïve coöperation of façades is remarkable. " * 5)),
]


def squad_cases(n_articles=3, per_article=3):
    with gzip.open(os.path.join(ROOT, "data", "squad", "dev-v1.1.shared-half.json.gz"), "rt") as f:
        data = json.load(f)["data"]
    out = []
    for art in data[:n_articles]:
        for para in art["paragraphs"][:per_article]:
            out.append((para["qas"][0]["question"], para["context"]))
    # a context longer than the tiny model could read in one window, many times over
    big = " ".join(p["context"] for p in data[3]["paragraphs"][:4])
    out.append((data[3]["paragraphs"][1]["qas"][0]["question"], big))
    return out


CASES = SHORT + LONG_EXTRA + squad_cases()

# (name, pipeline kwargs); the CLI flags are derived from them.
CONFIGS = [
    ("default", {}),
    ("top3", {"top_k": 3}),
    ("len1-top3", {"max_answer_len": 1, "top_k": 3}),
    ("len5-impossible", {"max_answer_len": 5, "handle_impossible_answer": True}),
    ("impossible-top5", {"handle_impossible_answer": True, "top_k": 5, "max_answer_len": 3}),
    ("windows", {"max_seq_len": 64, "doc_stride": 16}),
    ("windows-top3-impossible", {"max_seq_len": 64, "doc_stride": 16, "top_k": 3, "handle_impossible_answer": True}),
    ("windows-len1-top5", {"max_seq_len": 48, "doc_stride": 8, "top_k": 5, "max_answer_len": 1}),
    ("windows-stride30-top2", {"max_seq_len": 64, "doc_stride": 30, "max_answer_len": 15, "top_k": 2}),
]


def cli_flags(kw):
    flags = []
    for k, flag in [("top_k", "--top-k"), ("max_answer_len", "--max-answer-len"), ("max_seq_len", "--max-length"),
                    ("doc_stride", "--doc-stride")]:
        if k in kw:
            flags += [flag, str(kw[k])]
    if kw.get("handle_impossible_answer"):
        flags.append("--handle-impossible-answer")
    return flags


def run_cli(args, stdin, check=True):
    p = subprocess.run([DBT_BIN] + args, input=stdin.encode(), capture_output=True, timeout=600)
    out, err = p.stdout.decode(), p.stderr.decode()
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}: {err}")
    return p.returncode, out, err


def jsonl(cases):
    return "".join(json.dumps({"question": q, "context": c}, ensure_ascii=False) + "\n" for q, c in cases)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    assert os.access(DBT_BIN, os.X_OK), f"{DBT_BIN} is not built (run make)"
    import make_models
    out = tmp_path_factory.mktemp("qa-models")
    return {kind: make_models.make(str(out / kind), kind, "qa", "tiny", seed=11 + i) for i, kind in enumerate(KINDS)}


@pytest.fixture(scope="module")
def oracles(models):
    from transformers import pipeline
    return {kind: pipeline("question-answering", model=d, tokenizer=d, device=-1) for kind, d in models.items()}


def oracle_run(pipe, q, c, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipe(question=q, context=c, **kw)


def as_list(r):
    return r if isinstance(r, list) else [r]


def same_result(got, want):
    """Same shape (object or list), same spans, scores within 1e-5 relative."""
    if isinstance(want, dict) != isinstance(got, dict):
        return False
    got, want = as_list(got), as_list(want)
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if list(g) != ["score", "start", "end", "answer"]:
            return False
        if (g["start"], g["end"], g["answer"]) != (w["start"], w["end"], w["answer"]):
            return False
        if abs(g["score"] - w["score"]) > 1e-5 * max(abs(w["score"]), 1e-30):
            return False
    return True


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name,kw", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_matches_transformers(models, oracles, kind, name, kw):
    _, out, _ = run_cli(["qa", "--model", models[kind]] + cli_flags(kw), jsonl(CASES))
    lines = out.splitlines()
    assert len(lines) == len(CASES)
    bad = []
    for (q, c), line in zip(CASES, lines):
        got = json.loads(line)
        want = oracle_run(oracles[kind], q, c, kw)
        if not same_result(got, want):
            bad.append((q, c[:60], got, want))
    assert not bad, f"{len(bad)}/{len(CASES)} differ, first: {bad[0]}"


def test_windows_really_overflow(models):
    """The long cases do produce several windows at --max-length 64 --doc-stride 16."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(models["distilbert"])
    counts = [len(tok(q, c, truncation="only_second", max_length=64, stride=16,
                      return_overflowing_tokens=True)["input_ids"]) for q, c in CASES]
    assert max(counts) >= 8 and sum(n > 1 for n in counts) >= 8


def test_command_line_question_and_batching(models, oracles):
    """--question/--context gives what stdin gives; the batch size changes nothing."""
    d = models["bert"]
    q, c = CASES[-1]
    _, one, _ = run_cli(["qa", "--model", d, "--question", q, "--context", c, "--max-length", "64",
                         "--doc-stride", "16", "--top-k", "3"], "")
    want = oracle_run(oracles["bert"], q, c, {"max_seq_len": 64, "doc_stride": 16, "top_k": 3})
    assert same_result(json.loads(one), want)
    flags = ["--max-length", "64", "--doc-stride", "16", "--top-k", "2"]
    _, a, _ = run_cli(["qa", "--model", d] + flags, jsonl(CASES))
    _, b, _ = run_cli(["qa", "--model", d, "--batch-size", "3"] + flags, jsonl(CASES))
    _, s, _ = run_cli(["qa", "--model", d, "--batch-size", "1"] + flags, jsonl(CASES))
    for x, y, z in zip(a.splitlines(), b.splitlines(), s.splitlines()):
        assert same_result(json.loads(y), json.loads(x)) and same_result(json.loads(z), json.loads(x))


def test_raw_logits(models):
    """--raw: {"result": ..., "logits": [{"start": [...], "end": [...]} per window]}, the logits
    those of the model on each window of the tokenizer."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    d = models["distilbert"]
    cases = [CASES[0], CASES[-1]]
    _, plain, _ = run_cli(["qa", "--model", d, "--max-length", "64", "--doc-stride", "16"], jsonl(cases))
    _, raw, _ = run_cli(["qa", "--model", d, "--max-length", "64", "--doc-stride", "16", "--raw"], jsonl(cases))
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForQuestionAnswering.from_pretrained(d).eval()
    for (q, c), p_line, r_line in zip(cases, plain.splitlines(), raw.splitlines()):
        r = json.loads(r_line)
        assert list(r) == ["result", "logits"]
        assert r["result"] == json.loads(p_line)
        enc = tok(q, c, truncation="only_second", max_length=64, stride=16, return_overflowing_tokens=True)
        assert len(r["logits"]) == len(enc["input_ids"])
        for w, ids in enumerate(enc["input_ids"]):
            kw = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
            with torch.no_grad():
                o = model(**kw)
            for key, t in [("start", o.start_logits[0]), ("end", o.end_logits[0])]:
                got = torch.tensor(r["logits"][w][key])
                assert got.shape == t.shape
                assert torch.allclose(got, t, atol=1e-4), (w, key)


def test_errors_like_transformers(models):
    d = models["distilbert"]
    # doc_stride larger than max_seq_len: transformers' ValueError text
    rc, out, _ = run_cli(["qa", "--model", d, "--max-length", "64", "--doc-stride", "65"], jsonl(CASES[:1]), check=False)
    assert rc == 1 and "`doc_stride` (65) is larger than `max_seq_len` (64)" in json.loads(out)["error"]
    # empty question / context, next to a good input that still gets its answer
    good = jsonl(CASES[:1])
    rc, out, _ = run_cli(["qa", "--model", d], jsonl([("", "some context")]) + good + jsonl([("q?", "")]), check=False)
    lines = [json.loads(x) for x in out.splitlines()]
    assert rc == 1 and len(lines) == 3
    assert "`question` cannot be empty" in lines[0]["error"]
    assert "answer" in lines[1]
    assert "`context` cannot be empty" in lines[2]["error"]
    # a question that leaves no room for the context in a window, and a stride that does not fit
    # (transformers: the tokenizer's truncation error / panic)
    rc, out, _ = run_cli(["qa", "--model", d, "--max-length", "8"], jsonl([("Where is the thing that we want?", "x y z " * 20)]),
                         check=False)
    assert rc == 1 and "error" in json.loads(out)
    rc, out, _ = run_cli(["qa", "--model", d, "--max-length", "16", "--doc-stride", "12"],
                         jsonl([("Where is the thing that we want?", "x y z " * 20)]), check=False)
    assert rc == 1 and "error" in json.loads(out)
    # the tokenizer's own check (stride >= max_length - 2) comes before any truncation; a large
    # stride that is never needed is no error
    rc, out, _ = run_cli(["qa", "--model", d, "--max-length", "16", "--doc-stride", "15"],
                         jsonl([("Where is the thing that we want?", "x y z")]), check=False)
    assert rc == 1 and "stride" in json.loads(out)["error"]
    rc, out, _ = run_cli(["qa", "--model", d, "--max-length", "16", "--doc-stride", "12"],
                         jsonl([("Where is the thing that we want?", "x y z")]))
    assert json.loads(out)["answer"]
    # not JSON / no context
    rc, out, _ = run_cli(["qa", "--model", d], "just text\n" + json.dumps({"question": "q"}) + "\n", check=False)
    assert rc == 1 and all("error" in json.loads(x) for x in out.splitlines())


def test_library_argument_errors(models):
    """What the CLI cannot pass (it checks its flags itself) but the API can: transformers'
    ValueErrors for top_k < 1 and max_answer_len < 1."""
    import ctypes
    if "asan" in DBT_BIN:
        pytest.skip("the sanitizer build's library cannot be loaded into Python")
    lib_path = os.path.join(os.path.dirname(DBT_BIN), "libdistilbert.so")
    if not os.path.exists(lib_path):
        pytest.skip(f"{lib_path} is not built")
    lib = ctypes.CDLL(lib_path)

    class Opts(ctypes.Structure):  # dbt_pipeline_opts: 12 ints (enums are ints)
        _fields_ = [(n, ctypes.c_int) for n in [
            "top_k", "function", "aggregation", "max_length", "doc_stride", "max_answer_len", "max_question_len",
            "handle_impossible_answer", "pooling", "normalize", "raw", "batch_size"]]

    class Input(ctypes.Structure):
        _fields_ = [("text", ctypes.c_char_p), ("text_pair", ctypes.c_char_p)]

    DBT_TASK_QA, DBT_HEAD_QA = 3, 4
    lib.dbt_model_load.restype = ctypes.c_void_p
    lib.dbt_model_load.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.dbt_model_free.argtypes = [ctypes.c_void_p]
    lib.dbt_pipeline_opts_default.restype = Opts
    lib.dbt_pipeline_run.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(Input), ctypes.c_int,
                                     ctypes.POINTER(Opts), ctypes.POINTER(ctypes.c_void_p)]
    lib.dbt_last_error.restype = ctypes.c_char_p
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]

    m = lib.dbt_model_load(models["bert"].encode(), DBT_HEAD_QA)
    assert m, lib.dbt_last_error()
    try:
        q, c = CASES[0]
        inp = (Input * 1)(Input(q.encode(), c.encode()))
        out = (ctypes.c_void_p * 1)()

        def run(**changes):
            o = lib.dbt_pipeline_opts_default(DBT_TASK_QA)
            for k, v in changes.items():
                setattr(o, k, v)
            rc = lib.dbt_pipeline_run(m, DBT_TASK_QA, inp, 1, ctypes.byref(o), out)
            if rc != 0:
                return None, lib.dbt_last_error().decode()
            text = ctypes.string_at(out[0]).decode()
            libc.free(out[0])
            return json.loads(text), None

        got, err = run()
        assert err is None and set(got) == {"score", "start", "end", "answer"}
        assert run(max_answer_len=0)[1] == "max_answer_len parameter should be >= 1 (got 0)"
        assert run(top_k=0)[1] == "top_k parameter should be >= 1 (got 0)"
        assert "larger than `max_seq_len` (32)" in run(max_length=32, doc_stride=40)[1]
    finally:
        lib.dbt_model_free(m)
