"""Shared pytest fixtures: the CLI under test, and oracle-made checkpoints.

The binary comes from $DBT_BIN (make test-asan points it at the sanitizer build), default
build/distilbert. Tests marked `slow` are the base-size tier (CI runs them; test-asan skips them).
"""
import os
import subprocess
import sys
import zlib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: base-size models; a few minutes")


@pytest.fixture(scope="session")
def dbt_bin():
    path = os.environ.get("DBT_BIN", os.path.join(ROOT, "build", "distilbert"))
    assert os.access(path, os.X_OK), f"{path} is not built (run make)"
    return path


def run_cli(dbt_bin, args, stdin="", check=True, timeout=600):
    """Runs the CLI; stdin may be str or bytes. Returns the CompletedProcess (text mode)."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    p = subprocess.run([dbt_bin] + list(args), input=data, capture_output=True, timeout=timeout)
    p.stdout = p.stdout.decode("utf-8", errors="replace")
    p.stderr = p.stderr.decode("utf-8", errors="replace")
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}: {p.stderr}")
    return p


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Random-init tiny checkpoints of every head, for both architectures: name → folder."""
    import make_models  # needs the oracle (transformers)
    out = tmp_path_factory.mktemp("tiny-models")
    models = {}
    for kind in ["distilbert", "bert"]:
        for head in make_models.HEADS:
            name = f"{kind}-{head}"
            models[name] = make_models.make(str(out / name), kind, head, "tiny", seed=zlib.crc32(name.encode()) % 1000)
    return models


# ---- tokenizer oracle tests: agreement counts, printed at the end of the run ------------------
_TOKENIZER_REPORT = []  # (group, case, agree, total, always) from tests/test_tokenizer_oracle.py


@pytest.fixture(scope="session")
def tokenizer_report():
    """report(group, case, agree, total, always=False): "case: N/M lines agree" in the summary,
    shown with -v, when the case disagrees, or always (the live cases: their seed)."""
    return lambda group, case, agree, total, always=False: _TOKENIZER_REPORT.append(
        (group, case, agree, total, always))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _TOKENIZER_REPORT:
        return
    verbose = config.option.verbose > 0
    terminalreporter.section("tokenizer vs oracle (every case with -v)")
    totals = {}
    for group, case, agree, total, always in _TOKENIZER_REPORT:
        t = totals.setdefault(group, [0, 0, 0])
        t[0] += 1
        t[1] += agree
        t[2] += total
        if verbose or always or agree != total:
            terminalreporter.write_line("%s%s: %d/%d lines agree" % (
                "  " if agree == total else "! ", case, agree, total))
    for group, (n, agree, total) in totals.items():
        terminalreporter.write_line("%-14s %d/%d lines agree (%d cases)" % (group + ":", agree, total, n))
