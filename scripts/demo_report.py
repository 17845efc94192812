#!/usr/bin/env python3
"""Writes the demo's report (markdown, JSON, SVG) from OUT/measurements.jsonl and the model
folders' config.json / train logs. Standard library only.

    python3 scripts/demo_report.py OUT_DIR ELAPSED_SECONDS
"""
import json
import os
import sys

LABELS = {
    "teacher": "BERT teacher (4 layers)",
    "student": "DistilBERT student, distilled (2 layers)",
    "control": "same student, no distillation (2 layers)",
    "abl-no-ce": "student without L_ce",
    "abl-no-cos": "student without L_cos",
    "abl-no-mlm": "student without L_mlm",
    "abl-random-init": "student from random init",
}


def params(folder):
    """Parameters of the encoder and the classification head, from config.json."""
    c = json.load(open(os.path.join(folder, "config.json")))
    if c["model_type"] == "distilbert":
        D, L, H, V, P, T = c["dim"], c["n_layers"], c["hidden_dim"], c["vocab_size"], c["max_position_embeddings"], 0
    else:
        D, L, H, V, P, T = (c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"],
                            c["max_position_embeddings"], c["type_vocab_size"])
    n = (V + P + T) * D + 2 * D + L * (4 * (D * D + D) + 2 * H * D + H + D + 4 * D)
    n += (D * D + D) + 2 * D + 2  # pre-classifier or pooler, classifier (2 labels)
    return n


def svg(rows, path):
    w, h, left = 760, 60 + 34 * len(rows), 300
    acc_max = max(r["accuracy"] for r in rows)
    spd_max = max(r["speed"] for r in rows)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>",
           f"<rect width='{w}' height='{h}' fill='white'/>",
           "<text x='10' y='20' font-size='14'>SST-2 dev accuracy (blue) and speed relative to the teacher (orange)</text>"]
    for i, r in enumerate(rows):
        y = 40 + 34 * i
        out.append(f"<text x='10' y='{y + 12}'>{LABELS.get(r['model'], r['model'])}</text>")
        aw = (w - left - 60) * r["accuracy"] / max(acc_max, 1e-9)
        sw = (w - left - 60) * r["speed"] / max(spd_max, 1e-9)
        out.append(f"<rect x='{left}' y='{y}' width='{aw:.1f}' height='13' fill='#1f77b4'/>")
        out.append(f"<text x='{left + aw + 4:.1f}' y='{y + 11}'>{100 * r['accuracy']:.1f}%</text>")
        out.append(f"<rect x='{left}' y='{y + 15}' width='{sw:.1f}' height='10' fill='#ff7f0e'/>")
        out.append(f"<text x='{left + sw + 4:.1f}' y='{y + 25}'>{r['speed']:.2f}x</text>")
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def main():
    out, elapsed = sys.argv[1], float(sys.argv[2])
    rows = [json.loads(l) for l in open(os.path.join(out, "measurements.jsonl"))]
    teacher = next(r for r in rows if r["model"] == "teacher")
    for r in rows:
        r["accuracy"] = r["metrics"]["accuracy"]
        r["params"] = params(os.path.join(out, r["model"] + "-sst2"))
        r["ms_per_sentence"] = 1000.0 * r["seconds"] / (4 * r["metrics"]["n"])
        r["speed"] = teacher["seconds"] / r["seconds"]
        r["retained"] = r["accuracy"] / teacher["accuracy"]
    md = ["# distilbert.c demo: DistilBERT's recipe in small", "",
          f"Whole pipeline: {elapsed / 60:.1f} min on {os.cpu_count()} cores. Latency: `distilbert classify`, one thread, "
          "the 872 SST-2 dev sentences four times in one process (start and model load included), best of 3.", "",
          "| model | parameters | file | latency (ms/sentence) | speed vs teacher | SST-2 dev acc. | % of teacher |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {LABELS.get(r['model'], r['model'])} | {r['params'] / 1e6:.2f} M | {r['bytes'] / 2**20:.1f} MiB | "
                  f"{r['ms_per_sentence']:.3f} | {r['speed']:.2f}× | {100 * r['accuracy']:.1f} | {100 * r['retained']:.1f} |")
    s = next(r for r in rows if r["model"] == "student")
    c = next(r for r in rows if r["model"] == "control")
    md += ["", f"The distilled student keeps {100 * s['retained']:.1f}% of the teacher's accuracy with "
           f"{100 * (1 - s['params'] / teacher['params']):.0f}% fewer parameters and runs {s['speed']:.2f}× as fast; "
           f"the control (same size, no teacher) reaches {100 * c['accuracy']:.1f}% "
           f"({100 * (s['accuracy'] - c['accuracy']):+.1f} points for distillation).", "",
           "Paper goals: ≥ 97% of the teacher's accuracy, ≥ 1.6× faster, clearly better than the control.", ""]
    open(os.path.join(out, "report.md"), "w").write("\n".join(md) + "\n")
    json.dump({"elapsed_s": elapsed, "rows": rows}, open(os.path.join(out, "report.json"), "w"), indent=1)
    svg(rows, os.path.join(out, "report.svg"))
    print("\n".join(md))


if __name__ == "__main__":
    main()
