"""distilbert finetune / eval on tiny models: saved folders load in transformers with no missing or
unexpected keys and give the same outputs; resume reaches the same weights as an uninterrupted
run; SIGINT saves and exits; a NaN loss stops with a clear error; metrics match the references."""
import gzip
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import ROOT, run_cli

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")
from safetensors.numpy import load_file  # noqa: E402

SST_DEV = os.path.join(ROOT, "data", "sst2", "dev.tsv")


@pytest.fixture(scope="module")
def sst_small(tmp_path_factory):
    d = tmp_path_factory.mktemp("sst")
    with gzip.open(os.path.join(ROOT, "data", "sst2", "train.tsv.gz"), "rt") as f:
        lines = f.read().splitlines()
    (d / "train.tsv").write_text("\n".join(lines[:161]) + "\n")  # header + 160 examples
    dev = open(SST_DEV).read().splitlines()
    (d / "dev.tsv").write_text("\n".join(dev[:65]) + "\n")
    return d


def finetune(dbt_bin, args, check=True):
    return run_cli(dbt_bin, ["finetune", "--no-progress", "--seed", "3"] + args, check=check)


def hf_load_clean(folder):
    model, info = getattr(tf, tf.AutoConfig.from_pretrained(folder).architectures[0]).from_pretrained(
        folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.eval()


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_classify_finetune_saves_a_folder_transformers_loads(dbt_bin, tiny_models, sst_small, tmp_path, kind):
    out = tmp_path / "out"
    finetune(dbt_bin, ["--task", "classify", "--model", tiny_models[f"{kind}-none"], "--train", str(sst_small / "train.tsv"),
                       "--dev", str(sst_small / "dev.tsv"), "--out", str(out), "--epochs", "1", "--batch-size", "8",
                       "--lr", "1e-3"])
    for f in ["config.json", "model.safetensors", "vocab.txt", "train_log.jsonl", "training.svg", "trainer_state.json"]:
        assert (out / f).exists(), f
    log = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("eval" in r for r in log) and any("loss" in r for r in log)
    model = hf_load_clean(str(out))
    tok = tf.AutoTokenizer.from_pretrained(str(out))
    texts = ["a gorgeous, witty film", "it is dreadful", ""]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():  # model(**tok(...)) as users call it: DistilBERT must get no token_type_ids
        ref = model(**enc).logits.numpy()
    got = [json.loads(l) for l in run_cli(dbt_bin, ["classify", "--model", str(out), "--raw"], "\n".join(texts) + "\n").stdout.splitlines()]
    assert np.abs(np.array([g["logits"] for g in got]) - ref).max() < 1e-4


def test_sigint_saves_and_resume_finishes_identically(dbt_bin, tiny_models, sst_small, tmp_path):
    """Interrupted anywhere, the saved state (weights, AdamW moments, dropout RNG, position in the
    epoch) lets --resume finish with exactly the weights of an uninterrupted run."""
    common = ["--task", "classify", "--model", tiny_models["distilbert-none"], "--train", str(sst_small / "train.tsv"),
              "--batch-size", "4", "--lr", "5e-4", "--epochs", "20", "--warmup-ratio", "0.1", "--weight-decay", "0.01",
              "--grad-accum", "2"]
    finetune(dbt_bin, common + ["--out", str(tmp_path / "full")])
    p = subprocess.Popen([dbt_bin, "finetune", "--no-progress", "--seed", "3"] + common + ["--out", str(tmp_path / "cut")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    if p.returncode == 0:
        pytest.skip("training finished before the signal")
    assert p.returncode == 130, err
    assert b"interrupted" in err
    state = json.loads((tmp_path / "cut" / "trainer_state.json").read_text())
    assert state["global_step"] > 0
    finetune(dbt_bin, common + ["--out", str(tmp_path / "cut"), "--resume"])
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(tmp_path / "cut" / "model.safetensors"))
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_nan_loss_stops_with_a_clear_error(dbt_bin, tiny_models, sst_small, tmp_path):
    p = finetune(dbt_bin, ["--task", "classify", "--model", tiny_models["bert-none"], "--train", str(sst_small / "train.tsv"),
                           "--out", str(tmp_path / "o"), "--lr", "1e30", "--max-grad-norm", "0", "--epochs", "2"], check=False)
    assert p.returncode == 1 and ("NaN" in p.stderr or "infinite" in p.stderr), p.stderr


def test_eval_classification_matches_sklearn(dbt_bin, tiny_models, tmp_path):
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
    folder = tiny_models["distilbert-seq-cls"]
    texts, labels = [], []
    for i, line in enumerate(open(SST_DEV).read().splitlines()[1:200]):
        t, y = line.rsplit("\t", 1)
        texts.append(t.strip())
        labels.append(["NEG", "NEU", "POS"][(int(y) + i) % 3])
    data = tmp_path / "d.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
    res = json.loads(run_cli(dbt_bin, ["eval", "--task", "classify", "--model", folder, "--data", str(data)]).stdout)
    preds = [json.loads(l)["label"] for l in run_cli(dbt_bin, ["classify", "--model", folder], "\n".join(texts) + "\n").stdout.splitlines()]
    assert res["accuracy"] == pytest.approx(accuracy_score(labels, preds), abs=1e-12)
    assert res["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"), abs=1e-9)
    assert res["mcc"] == pytest.approx(matthews_corrcoef(labels, preds), abs=1e-9)


def test_eval_columns_by_index_or_name_and_headers(dbt_bin, tiny_models, tmp_path):
    """A headerless file read with column indices keeps its first line as data (CoLA: source, label,
    mark, sentence); a header that names the columns is skipped, whether they are asked for by name or
    by index. Each count and accuracy is checked against the predictions of `classify`."""
    from sklearn.metrics import accuracy_score
    folder = tiny_models["distilbert-seq-cls"]
    rows = [l.split("\t") for l in open(os.path.join(ROOT, "data", "glue", "CoLA", "dev.tsv")).read().splitlines()[:40]]
    texts, labels = [r[3] for r in rows], [r[1] for r in rows]
    preds = [json.loads(l)["label"] for l in run_cli(dbt_bin, ["classify", "--model", folder], "\n".join(texts) + "\n").stdout.splitlines()]
    names = tf.AutoConfig.from_pretrained(folder).id2label
    want = accuracy_score([names[int(y)] for y in labels], preds)
    body = "".join("\t".join(r) + "\n" for r in rows)
    cases = [("", ["--text-column", "3", "--label-column", "1"]),
             ("", []),  # CoLA's four columns are recognized
             ("src\tlabel\tmark\tsentence\n", []),
             ("src\tlabel\tmark\tsentence\n", ["--text-column", "3", "--label-column", "1"]),
             ("a\tb\tc\td\n", ["--text-column", "d", "--label-column", "b"])]
    for i, (header, cols) in enumerate(cases):
        data = tmp_path / f"d{i}.tsv"
        data.write_text(header + body)
        res = json.loads(run_cli(dbt_bin, ["eval", "--task", "classify", "--model", folder, "--data", str(data)] + cols).stdout)
        assert res["n"] == len(rows), (header, cols, res)
        assert res["accuracy"] == pytest.approx(want, abs=1e-12), (header, cols)


def conll_sample(path, n):
    sents, cur = [], []
    with gzip.open(os.path.join(ROOT, "data", "conll2003", path), "rt") as f:
        for line in f:
            line = line.strip()
            if not line:
                if cur:
                    sents.append(cur)
                    cur = []
                if len(sents) == n:
                    break
                continue
            cur.append(line)
    return "\n\n".join("\n".join(s) for s in sents) + "\n"


def test_ner_finetune_and_eval_match_seqeval(dbt_bin, tiny_models, tmp_path):
    from seqeval.metrics import f1_score
    (tmp_path / "train.txt").write_text(conll_sample("eng.train.gz", 64))
    (tmp_path / "dev.txt").write_text(conll_sample("eng.testa.gz", 32))
    out = tmp_path / "ner"
    finetune(dbt_bin, ["--task", "ner", "--model", tiny_models["distilbert-none"], "--train", str(tmp_path / "train.txt"),
                       "--dev", str(tmp_path / "dev.txt"), "--out", str(out), "--epochs", "2", "--batch-size", "8", "--lr", "2e-3"])
    model = hf_load_clean(str(out))
    res = json.loads(run_cli(dbt_bin, ["eval", "--task", "ner", "--model", str(out), "--data", str(tmp_path / "dev.txt")]).stdout)
    # the reference: transformers' model, labels on each word's first sub-token (run_ner's way)
    tok = tf.AutoTokenizer.from_pretrained(str(out))
    id2label = model.config.id2label
    gold_all, pred_all = [], []
    for sent in (tmp_path / "dev.txt").read_text().strip().split("\n\n"):
        words = [l.split()[0] for l in sent.splitlines()]
        tags = [l.split()[-1] for l in sent.splitlines()]
        enc = tok(words, is_split_into_words=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0]
        prev, g, p = None, [], []
        for t, w in enumerate(enc.word_ids()):
            if w is not None and w != prev:
                g.append(tags[w])
                p.append(id2label[int(logits[t].argmax())])
            prev = w
        gold_all.append(g)
        pred_all.append(p)
    assert res["f1"] == pytest.approx(f1_score(gold_all, pred_all), abs=1e-9)


def test_qa_finetune_and_eval(dbt_bin, tiny_models, tmp_path):
    with gzip.open(os.path.join(ROOT, "data", "squad", "dev-v1.1.shared-half.json.gz"), "rt") as f:
        squad = json.load(f)
    small = {"version": "1.1", "data": [{"title": "t", "paragraphs": squad["data"][0]["paragraphs"][:3]}]}
    (tmp_path / "s.json").write_text(json.dumps(small))
    out = tmp_path / "qa"
    finetune(dbt_bin, ["--task", "qa", "--model", tiny_models["bert-none"], "--train", str(tmp_path / "s.json"),
                       "--dev", str(tmp_path / "s.json"), "--out", str(out), "--epochs", "1", "--batch-size", "8",
                       "--max-length", "128", "--doc-stride", "32"])
    hf_load_clean(str(out))
    res = json.loads(run_cli(dbt_bin, ["eval", "--task", "qa", "--model", str(out), "--data", str(tmp_path / "s.json"),
                                       "--max-length", "128", "--doc-stride", "32"]).stdout)
    assert set(res) >= {"exact_match", "f1"} and 0 <= res["f1"] <= 100


def test_task_distillation_with_a_teacher(dbt_bin, tiny_models, sst_small, tmp_path):
    """finetune --teacher adds the soft-target loss: with alpha_task 0 the student learns only from the
    teacher, and its predictions move towards the teacher's."""
    teacher = tiny_models["distilbert-seq-cls"]
    # give the teacher two labels named like the data's
    tdir = tmp_path / "teacher"
    finetune(dbt_bin, ["--task", "classify", "--model", teacher.replace("seq-cls", "none"), "--train", str(sst_small / "train.tsv"),
                       "--out", str(tdir), "--epochs", "15", "--batch-size", "8", "--lr", "3e-3"])
    texts = [l.split("\t")[0] for l in (sst_small / "train.tsv").read_text().splitlines()[1:]]
    tpred = [json.loads(l)["label"] for l in run_cli(dbt_bin, ["classify", "--model", str(tdir)], "\n".join(texts) + "\n").stdout.splitlines()]
    out = tmp_path / "student"
    # 8 epochs: at 4 the student sat on the plateau of a constant prediction for most dropout
    # streams (4 of 5 seeds, before and after the dropout generator changed), so the test passed
    # or failed by the stream; at 8 it follows the teacher (~98% agreement) for every seed tried
    finetune(dbt_bin, ["--task", "classify", "--model", tiny_models["bert-none"], "--train", str(sst_small / "train.tsv"),
                       "--out", str(out), "--epochs", "8", "--batch-size", "8", "--lr", "2e-3", "--teacher", str(tdir),
                       "--alpha-ce", "1", "--alpha-task", "0", "--temperature", "2"])
    losses = [json.loads(l)["loss"] for l in (out / "train_log.jsonl").read_text().splitlines() if '"loss"' in l]
    assert losses[-1] < losses[0], losses  # the soft-target loss goes down
    spred = [json.loads(l)["label"] for l in run_cli(dbt_bin, ["classify", "--model", str(out)], "\n".join(texts) + "\n").stdout.splitlines()]
    agree = sum(a == b for a, b in zip(spred, tpred)) / len(texts)
    print(f"student agrees with the teacher on {agree:.2%} of the training texts; teacher labels {sorted(set(tpred))}")
    assert len(set(tpred)) == 2  # the teacher is not constant, so agreement means something
    assert agree > 0.65  # chance is ~0.5; the runs above gave 0.95-0.98


def test_options_do_not_depend_on_their_order(dbt_bin, tiny_models, sst_small, tmp_path):
    """--task used to reset the options given before it to the task's defaults (`--seed 3 --task
    classify` trained with seed 42): options given before or after it now give the same run."""
    data = ["--model", tiny_models["distilbert-none"], "--train", str(sst_small / "train.tsv"), "--max-steps", "3",
            "--no-progress"]
    opts = ["--seed", "7", "--batch-size", "4", "--lr", "1e-3", "--max-length", "32"]

    def run(name, args):
        run_cli(dbt_bin, ["finetune"] + args + data + ["--out", str(tmp_path / name)])
        start = json.loads((tmp_path / name / "train_log.jsonl").read_text().splitlines()[0])
        return start, load_file(str(tmp_path / name / "model.safetensors"))

    start_a, a = run("before", opts + ["--task", "classify"])
    start_b, b = run("after", ["--task", "classify"] + opts)
    _, c = run("other-seed", ["--task", "classify"] + opts[2:] + ["--seed", "8"])
    assert start_a["seed"] == 7 and start_a["batch_size"] == 4 and start_a["lr"] == pytest.approx(1e-3), start_a
    assert start_a == start_b
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert any(not np.array_equal(a[k], c[k]) for k in a)  # the seed is not ignored either
