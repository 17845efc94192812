"""Task-specific distillation (`finetune --teacher`) against PyTorch.

The reference for question answering is Hugging Face's run_squad_w_distillation.py (DistilBERT's
second distillation step, on SQuAD):
    loss_start = KLDivLoss(batchmean)(log_softmax(s_start/T), softmax(t_start/T)) · T²
    loss_end   = the same on the end logits
    loss = alpha_ce · (loss_start + loss_end) / 2 + alpha_squad · (CE(start) + CE(end)) / 2
with the teacher run (no grad) on the student's own input windows. There every window is padded
to max_seq_length and both softmaxes also run over the padding positions; distilbert.c packs
without padding, so its softmaxes run over each window's own tokens (as its task loss does,
test_training_oracle.test_qa_step). The reference is therefore restated on unpadded windows:
exactly the script when nothing is padded (equal lengths), its mean over windows otherwise.
Classification uses the same KL term with one distribution per sequence; NER one per token (the
mean over every token of the batch, special tokens included: no reference script exists)."""
import gzip
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import ROOT, run_cli

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")
from safetensors.numpy import load_file  # noqa: E402

import make_models  # noqa: E402

F = torch.nn.functional


@pytest.fixture(scope="module")
def step_bin(dbt_bin):
    path = os.path.join(os.path.dirname(dbt_bin), "tools", "task_distill_step")
    assert os.access(path, os.X_OK), f"{path} is not built (make builds tests/tools)"
    return path


def kl_term(s, t, T):
    """The reference's soft-target term: rows are the distributions. In double, as distilbert.c
    sums it: in float32 a KL of 0.01 between two near distributions is a difference of terms of
    size 1 and keeps only ~5 digits."""
    s, t = s.double(), t.double()
    return torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s / T, dim=-1), F.softmax(t / T, dim=-1)) * T ** 2


def load(folder):
    cfg = tf.AutoConfig.from_pretrained(folder)
    return getattr(tf, cfg.architectures[0]).from_pretrained(folder).eval(), cfg.model_type


def inputs(model_type, enc):
    kw = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if model_type != "distilbert":
        kw["token_type_ids"] = enc["token_type_ids"]
    return kw


# ---- (a) one step on a fixed batch: loss and every gradient -----------------------------------

QA_BATCH = {"texts": ["who is it?"] * 4,  # equal lengths: no padding, so the script's loss exactly
            "pairs": ["red green blue yellow", "one two three four", "cat dog bird fish", "sun moon star sky"],
            "start_positions": [1, 3, 0, 5], "end_positions": [2, 4, 0, 6]}


def torch_distill_step(student, teacher, batch):
    model, st = load(student)
    tmodel, tt = load(teacher)
    tok = tf.AutoTokenizer.from_pretrained(student)
    enc = tok(batch["texts"], batch.get("pairs"), padding=True, return_tensors="pt", return_token_type_ids=True)
    a_ce, a_task, T = batch["alpha_ce"], batch["alpha_task"], batch["temperature"]
    kw = inputs(st, enc)
    if "start_positions" in batch:  # run_squad_w_distillation.py's train step, verbatim in substance
        out = model(**kw, start_positions=torch.tensor(batch["start_positions"]),
                    end_positions=torch.tensor(batch["end_positions"]))
        with torch.no_grad():
            t = tmodel(**inputs(tt, enc))  # the script's teacher is a BERT, given the segment ids
        soft = (kl_term(out.start_logits, t.start_logits, T) + kl_term(out.end_logits, t.end_logits, T)) / 2.0
        task = out.loss
    else:
        with torch.no_grad():
            t = tmodel(**inputs(tt, enc)).logits
        if "token_labels" in batch:
            L = enc["input_ids"].shape[1]
            lab = torch.full((len(batch["texts"]), L), -100, dtype=torch.long)
            for i, row in enumerate(batch["token_labels"]):
                lab[i, :len(row)] = torch.tensor(row)
            out = model(**kw, labels=lab)
            real = enc["attention_mask"].bool()
            soft = kl_term(out.logits[real], t[real], T)  # one distribution per (unpadded) token
        else:
            out = model(**kw, labels=torch.tensor(batch["labels"]))
            soft = kl_term(out.logits, t, T)
        task = out.loss
    loss = a_ce * soft + a_task * task
    loss.backward()
    grads = {n: p.grad.detach().numpy() for n, p in model.named_parameters() if p.grad is not None}
    return loss.item(), task.item(), soft.item(), grads


def run_case(step_bin, tmp_path, student, teacher, batch):
    batch = {"alpha_ce": 0.7, "alpha_task": 0.3, "temperature": 3.0, **batch}
    (tmp_path / "batch.json").write_text(json.dumps(batch))
    out = tmp_path / "out"
    out.mkdir()
    p = subprocess.run([step_bin, student, teacher, str(tmp_path / "batch.json"), str(out)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    loss, task, soft, grads = torch_distill_step(student, teacher, batch)
    print(f"loss {res['loss']:.8f} vs {loss:.8f}; soft {res['soft_loss']:.8f} vs {soft:.8f}; "
          f"task {res['task_loss']:.8f} vs {task:.8f}")
    assert soft > 1e-3  # the teacher and the student differ: the term is not trivially 0
    np.testing.assert_allclose(res["soft_loss"], soft, rtol=1e-5)
    np.testing.assert_allclose(res["task_loss"], task, rtol=1e-5)
    np.testing.assert_allclose(res["loss"], loss, rtol=1e-5)
    cg = load_file(str(out / "grads.safetensors"))
    worst = 0.0
    for name, g in grads.items():
        # relative to the tensor's largest gradient; those zero in exact arithmetic (key bias, QA
        # bias) are rounding noise on both sides
        err = np.abs(cg[name] - g).max() / max(np.abs(g).max(), 1e-2)
        worst = max(worst, err)
        assert err < 1e-4, (name, err)
    print(f"worst grad rel err {worst:.2e}")


@pytest.mark.parametrize("student,teacher", [("distilbert", "bert"), ("bert", "distilbert")])
def test_qa_distillation_step_matches_the_reference(step_bin, tmp_path, tiny_models, student, teacher):
    run_case(step_bin, tmp_path, tiny_models[f"{student}-qa"], tiny_models[f"{teacher}-qa"], QA_BATCH)


def test_classification_distillation_step(step_bin, tmp_path, tiny_models):
    run_case(step_bin, tmp_path, tiny_models["distilbert-seq-cls"], tiny_models["bert-seq-cls"],
             {"texts": ["a gorgeous, witty film", "it is dreadful", "hello there", "fine"], "labels": [2, 0, 1, 1]})


def test_ner_distillation_step(step_bin, tmp_path, tiny_models):
    texts = ["John lives in New York", "hi", "Acme Corp hired Mary Smith yesterday"]
    tok = tf.AutoTokenizer.from_pretrained(tiny_models["bert-token-cls"])
    rng = np.random.default_rng(4)
    labels = []
    for t in texts:  # labels on some tokens, -100 on the others and on the specials
        n = len(tok(t)["input_ids"])
        labels.append([-100] + [int(x) if rng.random() < 0.7 else -100 for x in rng.integers(0, 9, n - 2)] + [-100])
    run_case(step_bin, tmp_path, tiny_models["bert-token-cls"], tiny_models["distilbert-token-cls"],
             {"texts": texts, "token_labels": labels})


# ---- (b) finetune --task qa --teacher: the loss of a run, on doc-stride windows -----------------

MAXLEN, STRIDE = 48, 16


@pytest.fixture(scope="module")
def qa_setup(tmp_path_factory):
    """Dropout-free student (DistilBERT) and teacher (BERT, with a sharpened QA head), and a small
    SQuAD file whose contexts span several windows."""
    d = tmp_path_factory.mktemp("qa-distill")
    nodrop = {"dropout": 0.0, "attention_dropout": 0.0, "qa_dropout": 0.0}
    student = make_models.make(str(d / "student"), "distilbert", "qa", "tiny", seed=11, extra=nodrop)
    teacher = make_models.make(str(d / "teacher"), "bert", "qa", "tiny", seed=12,
                               extra={"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    tmodel = tf.BertForQuestionAnswering.from_pretrained(teacher)
    with torch.no_grad():
        tmodel.qa_outputs.weight.mul_(8.0)  # peaked start/end distributions: a teacher with an opinion
    tmodel.save_pretrained(teacher, safe_serialization=True)
    with gzip.open(os.path.join(ROOT, "data", "squad", "dev-v1.1.shared-half.json.gz"), "rt") as f:
        squad = json.load(f)
    paras = squad["data"][0]["paragraphs"][:2]
    for p in paras:
        p["qas"] = p["qas"][:3]
    (d / "train.json").write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paras}]}))
    return d, student, teacher


def windows(folder, train_json):
    """run_qa's prepare_train_features on the SQuAD file: (encodings, start, end) per window."""
    tok = tf.AutoTokenizer.from_pretrained(folder)
    out = []
    for art in json.loads(open(train_json).read())["data"]:
        for para in art["paragraphs"]:
            ctx = para["context"]
            for qa in para["qas"]:
                enc = tok(qa["question"].lstrip(), ctx, truncation="only_second", max_length=MAXLEN, stride=STRIDE,
                          return_overflowing_tokens=True, return_offsets_mapping=True, return_token_type_ids=True)
                a = qa["answers"][0]
                sc, ec = a["answer_start"], a["answer_start"] + len(a["text"])
                for w in range(len(enc["input_ids"])):
                    offs, seq = enc["offset_mapping"][w], enc.sequence_ids(w)
                    s = e = enc["input_ids"][w].index(tok.cls_token_id)
                    ts = seq.index(1)
                    te = len(seq) - 1 - seq[::-1].index(1)
                    if offs[ts][0] <= sc and offs[te][1] >= ec:
                        while ts < len(offs) and offs[ts][0] <= sc:
                            ts += 1
                        s = ts - 1
                        while offs[te][1] >= ec:
                            te -= 1
                        e = te + 1
                    out.append(({k: torch.tensor([enc[k][w]]) for k in ["input_ids", "attention_mask", "token_type_ids"]},
                                s, e))
    return out


def qa_logits(folder, wins, grad=False):
    model, mt = load(folder)
    with torch.set_grad_enabled(grad):
        outs = [model(**inputs(mt, enc)) for enc, _, _ in wins]
    return model, [(o.start_logits[0], o.end_logits[0]) for o in outs]


def reference_loss(stu, tea, wins, a_ce, a_task, T):
    """The script's loss, window by window (batch of one, so no padding), averaged over windows:
    the batch's loss, as batchmean and the CE's mean are means over its windows."""
    total = 0
    for (ss, se), (ts, te), (_, s, e) in zip(stu, tea, wins):
        soft = (kl_term(ss[None], ts[None], T) + kl_term(se[None], te[None], T)) / 2.0
        task = (F.cross_entropy(ss[None], torch.tensor([s])) + F.cross_entropy(se[None], torch.tensor([e]))) / 2.0
        total = total + a_ce * soft + a_task * task
    return total / len(wins)


def finetune_log(dbt_bin, student, teacher, train, out, args):
    cmd = ["finetune", "--no-progress", "--task", "qa", "--model", student, "--train", str(train), "--out", str(out),
           "--max-length", str(MAXLEN), "--doc-stride", str(STRIDE), "--batch-size", "64", "--log-every", "1"] + args
    if teacher:
        cmd += ["--teacher", teacher]
    run_cli(dbt_bin, cmd)
    return [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines() if '"loss"' in l]


def test_qa_finetune_with_teacher_first_step_matches_the_reference(dbt_bin, qa_setup, tmp_path):
    """The loss finetune logs for its first update (one batch holding every window) and the
    gradient norm equal the reference's on the same doc-stride windows: the teacher sees the
    student's windows, start and end terms are combined and scaled as the script does."""
    d, student, teacher = qa_setup
    wins = windows(student, d / "train.json")
    assert len(wins) > 6 and any(s == 0 for _, s, _ in wins) and any(s > 0 for _, s, _ in wins), len(wins)
    log = finetune_log(dbt_bin, student, teacher, d / "train.json", tmp_path / "o",
                       ["--max-steps", "1", "--alpha-ce", "0.7", "--alpha-task", "0.3", "--temperature", "3"])
    model, stu = qa_logits(student, wins, grad=True)
    _, tea = qa_logits(teacher, wins)
    ref = reference_loss(stu, tea, wins, 0.7, 0.3, 3.0)
    ref.backward()
    norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters() if p.grad is not None)).item()
    print(f"{len(wins)} windows: loss {log[0]['loss']} vs {ref.item():.7g}; grad norm {log[0]['grad_norm']} vs {norm:.7g}")
    # the log prints 6 significant digits
    np.testing.assert_allclose(log[0]["loss"], ref.item(), rtol=1e-5)
    np.testing.assert_allclose(log[0]["grad_norm"], norm, rtol=1e-4)


def test_qa_finetune_with_teacher_follows_the_teacher(dbt_bin, qa_setup, tmp_path):
    """With alpha_task 0 the logged loss is the soft-target term alone: it falls, and the student's
    start/end distributions on the training windows end much closer to the teacher's than those of
    the same run without a teacher."""
    d, student, teacher = qa_setup
    common = ["--epochs", "40", "--lr", "3e-3", "--seed", "1"]  # one batch (update) per epoch
    with_t = finetune_log(dbt_bin, student, teacher, d / "train.json", tmp_path / "kd",
                          common + ["--alpha-ce", "1", "--alpha-task", "0", "--temperature", "2"])
    finetune_log(dbt_bin, student, None, d / "train.json", tmp_path / "plain", common)
    wins = windows(student, d / "train.json")
    _, tea = qa_logits(teacher, wins)

    def soft(folder):
        _, stu = qa_logits(str(folder), wins)
        return reference_loss(stu, tea, wins, 1.0, 0.0, 2.0).item()

    k0, k_kd, k_plain = soft(student), soft(tmp_path / "kd"), soft(tmp_path / "plain")
    losses = [r["loss"] for r in with_t]
    print(f"soft-target loss logged {losses[0]:.4f} -> {losses[-1]:.4f}; vs teacher: start {k0:.4f}, "
          f"distilled {k_kd:.4f}, without teacher {k_plain:.4f}")
    assert losses[0] == pytest.approx(k0, rel=1e-5)
    assert losses[-1] < 0.5 * losses[0], losses
    assert k_kd < 0.5 * k0 and k_kd < 0.5 * k_plain
