"""`make install PREFIX=...`: the installed header, libraries and pkg-config file are enough to
build a program against libdistilbert, shared and static, and the program runs (it tokenizes
with the installed library and checks the ids against bert-base-uncased's vocab.txt)."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(ROOT, "data", "vocab", "bert-base-uncased", "vocab.txt")

PROGRAM = r"""
#include <distilbert.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    dbt_tokenizer *tok = dbt_tokenizer_load(argv[1], NULL);
    if (!tok) { fprintf(stderr, "%s\n", dbt_last_error()); return 1; }
    dbt_encoding *e;
    const char *text = "Hello, world!";
    int n = dbt_encode(tok, text, strlen(text), NULL, 0, NULL, &e);
    if (n != 1) return 1;
    for (int i = 0; i < e[0].n; i++) printf("%d ", e[0].ids[i]);
    printf("%s\n", DBT_VERSION);
    dbt_encodings_free(e, n);
    dbt_tokenizer_free(tok);
    return argc == 2 ? 0 : 1;
}
"""


def pkg_config(prefix, *args):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    p = subprocess.run(["pkg-config"] + list(args) + ["distilbert"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


@pytest.mark.skipif("asan" in os.environ.get("DBT_BIN", ""), reason="installs the release build")
def test_install_and_build_against_it(tmp_path):
    prefix = str(tmp_path / "prefix")
    p = subprocess.run(["make", "--no-print-directory", "-s", "-C", ROOT, "install", "PREFIX=" + prefix],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    lib = os.path.join(prefix, "lib")
    for f in ["bin/distilbert", "include/distilbert.h", "lib/libdistilbert.a", "lib/libdistilbert.so",
              "lib/libdistilbert.so.0", "lib/pkgconfig/distilbert.pc"]:
        assert os.path.exists(os.path.join(prefix, f)), f
    assert os.readlink(os.path.join(lib, "libdistilbert.so")) == "libdistilbert.so.0"
    src = tmp_path / "prog.c"
    src.write_text(PROGRAM)
    # the ids of "Hello, world!" in bert-base-uncased: [CLS] hello , world ! [SEP]
    with open(VOCAB, encoding="utf-8") as f:
        ids = {t: i for i, t in enumerate(f.read().split("\n"))}
    want = " ".join(str(ids[t]) for t in ["[CLS]", "hello", ",", "world", "!", "[SEP]"])
    for kind, link in [("shared", pkg_config(prefix, "--libs")), ("static", pkg_config(prefix, "--libs", "--static"))]:
        exe = str(tmp_path / ("prog-" + kind))
        cmd = ["cc", "-std=c11", str(src), "-o", exe] + pkg_config(prefix, "--cflags")
        if kind == "static":  # the archive itself, then what it needs (Libs.private)
            link = [os.path.join(lib, "libdistilbert.a")] + [x for x in link if x != "-ldistilbert"]
        cmd += link
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 0, " ".join(cmd) + "\n" + p.stderr
        run = subprocess.run([exe, VOCAB], capture_output=True, text=True, env=dict(os.environ, LD_LIBRARY_PATH=lib))
        assert run.returncode == 0, run.stderr
        assert run.stdout.split()[:-1] == want.split(), (kind, run.stdout)
        if kind == "shared":
            needed = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True).stdout
            assert "libdistilbert.so.0" in needed  # the SONAME, not the link-time name
