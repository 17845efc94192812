"""The fp32 forward engine: results must not depend on the thread count, on how the inputs are
batched, on the kernel (AVX-512 / AVX2 / scalar paths of attention, LayerNorm, GEMM), on whether
the weights are prepacked, nor on concurrent calls sharing one model.

The tiny oracle models are too small for any of the parallel paths to engage (the kernels run
serially below a few hundred thousand multiply-adds), so these tests make "mid" models: 256 wide,
4 heads of 64 (the head size of the real models), and inputs up to 300 tokens, long enough that
attention works in row blocks. Each is still checked against transformers.
"""
import ctypes
import json
import os
import subprocess
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")
import make_models  # noqa: E402

TOL = 1e-4        # against transformers, as tests/test_model_oracle.py
SAME = 2e-6       # between our own runs: fp32 rounding at most (in practice they are identical)

MID = dict(distilbert=dict(dim=256, n_heads=4, hidden_dim=1024, max_position_embeddings=512),
           bert=dict(hidden_size=256, num_attention_heads=4, intermediate_size=1024, max_position_embeddings=512))

TEXTS = [
    "Hello world, this is a test.",
    " ".join(f"word{i % 37}" for i in range(150)),          # ~300 tokens: attention in row blocks
    "short",
    "A sentence with punctuation; accents (café, naïve), numbers 1234 and [MASK] tokens!",
    " ".join(["again"] * 90) + " [MASK] end",
    "x",
]


@pytest.fixture(scope="module")
def mid_models(tmp_path_factory):
    out = tmp_path_factory.mktemp("mid-models")
    return {name: make_models.make(str(out / name), kind, head, "tiny", seed=7, extra=MID[kind])
            for name, kind, head in [("distilbert-mlm", "distilbert", "mlm"), ("bert-seq-cls", "bert", "seq-cls")]}


# Printing 30 k MLM logits per token as JSON would take most of the time: the CLI runs skip the
# MLM head (the ctypes tests below check it), the other heads print their logits.
HEAD_ARGS = {"distilbert-mlm": ["--head", "none"], "bert-seq-cls": []}


def forward(dbt_bin, folder, texts, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([dbt_bin, "forward", "--model", folder] + list(args), input=("\n".join(texts) + "\n").encode(),
                       capture_output=True, env=e, timeout=600)
    assert p.returncode == 0, p.stderr.decode()
    return [json.loads(l) for l in p.stdout.decode().splitlines()]


def max_diff(a, b):
    d = 0.0
    for x, y in zip(a, b):
        assert x["tokens"] == y["tokens"]
        for key in ("last_hidden_state", "pooler_output", "logits"):
            if key in x:
                d = max(d, float(np.abs(np.array(x[key]) - np.array(y[key])).max()))
    return d


@pytest.mark.parametrize("name", ["distilbert-mlm", "bert-seq-cls"])
def test_threads_and_batching_do_not_change_results(dbt_bin, mid_models, name):
    folder, h = mid_models[name], HEAD_ARGS[name]
    ref = forward(dbt_bin, folder, TEXTS, "--threads", "1", "--batch-size", "32", *h)
    runs = {
        "2 threads": forward(dbt_bin, folder, TEXTS, "--threads", "2", "--batch-size", "32", *h),
        "3 threads": forward(dbt_bin, folder, TEXTS, "--threads", "3", "--batch-size", "32", *h),
        "one at a time": forward(dbt_bin, folder, TEXTS, "--threads", "2", "--batch-size", "1", *h),
        "pairs": forward(dbt_bin, folder, TEXTS, "--threads", "2", "--batch-size", "2", *h),
        "reversed": forward(dbt_bin, folder, TEXTS[::-1], "--threads", "2", *h)[::-1],
        "not prepacked": forward(dbt_bin, folder, TEXTS, "--threads", "2", *h, env={"DBT_PREPACK": "0"}),
    }
    diffs = {k: max_diff(ref, v) for k, v in runs.items()}
    print(name, diffs)
    assert all(d <= SAME for d in diffs.values()), diffs


def hf_reference(folder, texts):
    cfg = tf.AutoConfig.from_pretrained(folder)
    model = getattr(tf, cfg.architectures[0]).from_pretrained(folder).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    enc = tok(texts, padding=True, return_tensors="pt")
    if cfg.model_type == "distilbert":
        enc.pop("token_type_ids", None)
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    return out, enc["attention_mask"].sum(1).tolist()


@pytest.mark.parametrize("kernel", ["default", "avx2", "scalar"])
@pytest.mark.parametrize("name", ["distilbert-mlm", "bert-seq-cls"])
def test_every_kernel_matches_transformers(dbt_bin, mid_models, name, kernel):
    """DBT_KERNEL picks the GEMM micro-kernel and, with it, the vectorized LayerNorm, softmax
    and GELU paths (scalar: the reference loops)."""
    if kernel == "avx2" and "avx2" not in open("/proc/cpuinfo").read():
        pytest.skip("no AVX2 on this CPU")
    folder = mid_models[name]
    ref, lengths = hf_reference(folder, TEXTS)
    env = {} if kernel == "default" else {"DBT_KERNEL": kernel}
    got = forward(dbt_bin, folder, TEXTS, "--threads", "2", *HEAD_ARGS[name], env=env)
    d = {"hidden": 0.0, "logits": 0.0}
    for i, (n, g) in enumerate(zip(lengths, got)):
        assert len(g["tokens"]) == n
        d["hidden"] = max(d["hidden"], float(np.abs(np.array(g["last_hidden_state"]) -
                                                  ref.hidden_states[-1][i, :n].numpy()).max()))
        if "logits" in g:
            r = ref.logits[i] if ref.logits.dim() == 2 else ref.logits[i, :n]
            d["logits"] = max(d["logits"], float(np.abs(np.array(g["logits"]) - r.numpy()).max()))
    print(name, kernel, d)
    assert all(v < TOL for v in d.values()), d


# ---- the library directly (ctypes): MLM row selection, concurrent calls on one model ----------

class Encoding(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32)] + [(f, ctypes.POINTER(ctypes.c_int32)) for f in
                                          ("ids", "type_ids", "attention_mask", "special_tokens_mask", "word_ids",
                                           "sequence_ids", "offsets")]


class ForwardOpts(ctypes.Structure):
    _fields_ = [("head_logits", ctypes.c_int), ("mlm_rows", ctypes.POINTER(ctypes.c_uint8))]


class Output(ctypes.Structure):
    _fields_ = [("n_seqs", ctypes.c_int), ("row_start", ctypes.POINTER(ctypes.c_int32)), ("n_rows", ctypes.c_int32),
                ("dim", ctypes.c_int), ("hidden", ctypes.POINTER(ctypes.c_float)),
                ("pooled", ctypes.POINTER(ctypes.c_float)), ("logits", ctypes.POINTER(ctypes.c_float)),
                ("logits_cols", ctypes.c_int)]


@pytest.fixture(scope="module")
def lib(dbt_bin):
    path = os.path.join(os.path.dirname(dbt_bin), "libdistilbert.so")
    with open(path, "rb") as f:
        if b"__asan_init" in f.read():  # its runtime must come first: loading it here would abort
            pytest.skip("sanitizer build: the library cannot be loaded into Python")
    try:
        so = ctypes.CDLL(path)
    except OSError as e:
        pytest.skip(f"cannot load {path}: {e}")
    so.dbt_model_load.restype = ctypes.c_void_p
    so.dbt_model_load.argtypes = [ctypes.c_char_p, ctypes.c_int]
    so.dbt_model_free.argtypes = [ctypes.c_void_p]
    so.dbt_model_forward.argtypes = [ctypes.c_void_p, ctypes.POINTER(Encoding), ctypes.c_int,
                                     ctypes.POINTER(ForwardOpts), ctypes.POINTER(Output)]
    so.dbt_output_free.argtypes = [ctypes.POINTER(Output)]
    so.dbt_last_error.restype = ctypes.c_char_p
    return so


def encodings(seqs):
    keep, encs = [], (Encoding * len(seqs))()
    for e, ids in zip(encs, seqs):
        a = (ctypes.c_int32 * len(ids))(*ids)
        keep.append(a)
        e.n, e.ids = len(ids), ctypes.cast(a, ctypes.POINTER(ctypes.c_int32))
    return encs, keep


def run(lib, model, seqs, rows=None):
    encs, keep = encodings(seqs)
    opts = ForwardOpts(1, None)
    if rows is not None:
        flags = (ctypes.c_uint8 * len(rows))(*rows)
        keep.append(flags)
        opts.mlm_rows = ctypes.cast(flags, ctypes.POINTER(ctypes.c_uint8))
    out = Output()
    assert lib.dbt_model_forward(model, encs, len(seqs), ctypes.byref(opts), ctypes.byref(out)) == 0, \
        lib.dbt_last_error()
    R, D, C = out.n_rows, out.dim, out.logits_cols
    hidden = np.ctypeslib.as_array(out.hidden, (R * D,)).reshape(R, D).copy()
    logits = np.ctypeslib.as_array(out.logits, (R * C,)).reshape(R, C).copy()
    lib.dbt_output_free(ctypes.byref(out))
    return hidden, logits


def batch(seed, n, lo=3, hi=300):
    rng = np.random.default_rng(seed)
    return [[101] + rng.integers(1000, 29000, size=int(rng.integers(lo, hi))).tolist() + [102] for _ in range(n)]


@pytest.fixture(scope="module")
def mlm(lib, mid_models):
    m = lib.dbt_model_load(mid_models["distilbert-mlm"].encode(), -1)
    assert m, lib.dbt_last_error()
    yield m
    lib.dbt_model_free(m)


def test_mlm_row_selection(lib, mlm):
    """Logits of the selected rows are those of the full pass; the others are 0."""
    seqs = batch(1, 5)
    hidden, full = run(lib, mlm, seqs)
    R = hidden.shape[0]
    rng = np.random.default_rng(2)
    for rows in [rng.random(R) < 0.15, np.arange(R) >= R - 3, np.arange(R) < 2, np.zeros(R, bool), np.ones(R, bool)]:
        _, got = run(lib, mlm, seqs, rows.astype(np.uint8).tolist())
        assert np.abs(got[rows] - full[rows]).max(initial=0) <= SAME
        assert not got[~rows].any()


def test_concurrent_calls_on_one_model(lib, mlm):
    """Calls from several threads at once (ctypes releases the GIL): one uses the model's
    buffers, the others their own; every result equals the same batch run alone."""
    batches = [batch(10 + i, 1 + i % 3, hi=200) for i in range(6)]
    alone = [run(lib, mlm, b) for b in batches]
    got = [None] * len(batches)

    def work(i):
        for _ in range(3):
            got[i] = run(lib, mlm, batches[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (h0, l0), (h1, l1) in zip(alone, got):
        assert np.abs(h0 - h1).max() <= SAME and np.abs(l0 - l1).max() <= SAME
