#!/usr/bin/env python3
"""Regenerates the tokenizer golden files from the oracle (transformers 4.46.3 / tokenizers 0.20.3).

    .venv/bin/python tests/oracle/make_tokenizer_fixtures.py          # rewrite the fixtures
    .venv/bin/python tests/oracle/make_tokenizer_fixtures.py --unicode-exceptions
                                                # print the exception tables of src/tokenizer/unicode.c

Writes, under tests/fixtures/tokenizer/:
  stress_corpus.txt                     (via stress_corpus.py)
  <model>.tokenizer.json.gz             the fast tokenizer's backend_tokenizer, saved
  golden_<group>.json.gz                expected outputs, one file per group of cases

Two models (bert-base-uncased, bert-base-cased), each through two paths:
  vocab: the C side reads data/vocab/<model>/vocab.txt (--vocab, + --cased); the oracle is
         transformers' BertTokenizerFast(vocab_file, do_lower_case=...).
  json:  the C side reads <model>.tokenizer.json (--tokenizer); the oracle is
         tokenizers.Tokenizer.from_file (and, for decode, PreTrainedTokenizerFast around it).

A tokenize case is {"name", "model", "paths", "args", "lines" | "lines_hex", "expected"}; expected[i]
is the list of windows of line i ({"ids","tokens","type_ids","offsets","word_ids"}), or
{"error": message} when the oracle refuses the line (the C must then exit non-zero).
A decode case is {"name", "model", "paths", "args", "ids", "expected"} with one text per id list.

This module is also imported by tests/test_tokenizer_oracle.py for its live comparisons; it
imports transformers/tokenizers only inside functions, so importing it needs neither.
"""
import gzip
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
MODELS = {"bert-base-uncased": True, "bert-base-cased": False}  # name -> do_lower_case
PATHS = ("vocab", "json")
MAX_ERROR_LINES = 12  # per case: each error line costs the test one process

sys.path.insert(0, HERE)
import stress_corpus  # noqa: E402


def vocab_file(model):
    return os.path.join(ROOT, "data", "vocab", model, "vocab.txt")


def json_gz_file(model):
    return os.path.join(FIXTURES, model + ".tokenizer.json.gz")


def cli_args(model, path, json_dir):
    """The CLI flags that select the tokenizer of (model, path); json_dir holds the gunzipped
    <model>.tokenizer.json files."""
    if path == "vocab":
        return ["--vocab", vocab_file(model)] + ([] if MODELS[model] else ["--cased"])
    return ["--tokenizer", os.path.join(json_dir, model + ".tokenizer.json")]


def read_corpus():
    with open(os.path.join(FIXTURES, "stress_corpus.txt"), encoding="utf-8", newline="") as f:
        text = f.read()
    assert text.endswith("\n")
    return text[:-1].split("\n")


# ---- the oracle ---------------------------------------------------------------------------------

class Oracle:
    """One oracle tokenizer: (model, path)."""

    def __init__(self, model, path, json_path=None):
        self.model, self.path = model, path
        if path == "vocab":
            from transformers import BertTokenizerFast
            self.hf = BertTokenizerFast(vocab_file=vocab_file(model), do_lower_case=MODELS[model])
        else:
            from tokenizers import Tokenizer
            from transformers import PreTrainedTokenizerFast
            self.tk = Tokenizer.from_file(json_path)
            self.hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(json_path))

    @staticmethod
    def _window(e):
        return {"ids": list(e.ids), "tokens": list(e.tokens), "type_ids": list(e.type_ids),
                "offsets": [list(o) for o in e.offsets], "word_ids": list(e.word_ids)}

    def encode(self, a, b=None, max_length=None, stride=None, truncation=None, add_special_tokens=True):
        """The windows of (a, b) as the oracle makes them, or {"error": message}."""
        try:
            if self.path == "vocab":
                kw = dict(add_special_tokens=add_special_tokens, return_offsets_mapping=True)
                if max_length:
                    kw.update(truncation=truncation or "longest_first", max_length=max_length)
                if stride is not None:
                    kw.update(stride=stride, return_overflowing_tokens=True)
                encs = self.hf(a, b, **kw).encodings
                if stride is None:
                    encs = encs[:1]
            else:
                if b == "":  # transformers' convention, which the CLI follows: no pair at all
                    b = None
                if max_length:
                    self.tk.enable_truncation(max_length, stride=stride or 0,
                                              strategy=truncation or "longest_first")
                else:
                    self.tk.no_truncation()
                e = self.tk.encode(a, b, add_special_tokens=add_special_tokens)
                encs = [e] + (list(e.overflowing) if stride is not None else [])
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as ex:  # tokenizers' panics are BaseException (PanicException)
            return {"error": str(ex).split("\n")[0][:200]}
        return [self._window(e) for e in encs]

    def encode_batch(self, lines):
        """Plain encoding of many single texts (no truncation), fast."""
        if self.path == "vocab":
            encs = self.hf(lines, return_offsets_mapping=True).encodings
        else:
            self.tk.no_truncation()
            encs = self.tk.encode_batch(lines)
        return [[self._window(e)] for e in encs]

    def decode(self, ids, skip_special_tokens, clean_up):
        return self.hf.decode(ids, skip_special_tokens=skip_special_tokens,
                              clean_up_tokenization_spaces=clean_up)


def save_tokenizer_json(model):
    """Saves the fast tokenizer's backend_tokenizer as <model>.tokenizer.json.gz (reproducible)."""
    from transformers import BertTokenizerFast
    hf = BertTokenizerFast(vocab_file=vocab_file(model), do_lower_case=MODELS[model])
    data = hf.backend_tokenizer.to_str(pretty=False).encode("utf-8")
    with open(json_gz_file(model), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(data)


def gunzip_tokenizers(dest):
    """Writes <dest>/<model>.tokenizer.json for every model; returns dest."""
    os.makedirs(dest, exist_ok=True)
    for model in MODELS:
        out = os.path.join(dest, model + ".tokenizer.json")
        if not os.path.exists(out):
            with gzip.open(json_gz_file(model), "rb") as f, open(out, "wb") as g:
                g.write(f.read())
    return dest


def encode_args(max_length=None, stride=None, truncation=None, add_special_tokens=True, pair=False):
    """The CLI flags for these encode options (the tokenizer flags come from cli_args)."""
    a = ["--word-ids"]
    if pair:
        a.append("--pair")
    if max_length:
        a += ["--max-length", str(max_length)]
    if truncation:
        a += ["--truncation", truncation]
    if stride is not None:
        a += ["--stride", str(stride)]
    if not add_special_tokens:
        a.append("--no-special-tokens")
    return a


# ---- the cases ------------------------------------------------------------------------------------

def make_pairs(corpus, rng, n):
    firsts = [x for x in corpus if "\t" not in x]
    pairs = [("", ""), ("", "hello world"), ("hello world", ""), ("[CLS]", "[SEP]"),
             ("What is the capital of France?", "Paris is the capital and most populous city of France.")]
    while len(pairs) < n:
        pairs.append((rng.choice(firsts), rng.choice(corpus)))
    return pairs


def squad_pairs(rng, n):
    with gzip.open(os.path.join(ROOT, "data", "squad", "dev-v1.1.shared-half.json.gz"), "rt",
                   encoding="utf-8") as f:
        data = json.load(f)["data"]
    qa = [(q["question"].replace("\n", " ").replace("\t", " "), p["context"].replace("\n", " "))
          for a in data for p in a["paragraphs"] for q in p["qas"][:2]]
    qa.sort(key=lambda x: -len(x[1]))  # the longest contexts first: they overflow
    return qa[:n // 2] + rng.sample(qa[n // 2:], n - n // 2)


def tokenize_case(oracle, name, lines, *, pair=False, hex_lines=None, **opts):
    expected, kept, kept_hex, n_err = [], [], [], 0
    for i, line in enumerate(lines):
        if pair:
            a, b = line.split("\t", 1)
            r = oracle.encode(a, b, **opts)
        else:
            r = oracle.encode(line, None, **opts)
        if isinstance(r, dict):
            n_err += 1
            if n_err > MAX_ERROR_LINES:
                continue
        expected.append(r)
        kept.append(line)
        if hex_lines is not None:
            kept_hex.append(hex_lines[i])
    case = {"name": name, "kind": "tokenize", "model": oracle.model, "path": oracle.path,
            "args": encode_args(pair=pair, **opts), "expected": expected}
    if hex_lines is not None:
        case["lines_hex"] = kept_hex
    else:
        case["lines"] = kept
    return case


INVALID_UTF8 = [
    b"\x80", b"\xbf", b"\x80\x80abc", b"a\xc0\xafb", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xe0\x9f\xbf",
    b"\xf0\x80\x80\xaf", b"\xf0\x8f\xbf\xbf", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\x80\xed\xb0\x80", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
    b"\xff", b"\xfe", b"\xff\xfe", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"abc\xc3", b"abc\xe2\x82",
    b"abc\xf0\x9f\x98", b"\xc3(", b"\xe2(\xa1", b"\xe2\x82(", b"\xf0(\x8c\xbc", b"\xf0\x90(\xbc",
    b"\xf0\x28\x8c\x28", b"caf\xe9", b"na\xefve", b"\xc3\xa9\xe9\xc3\xa9", b"Hello \xf0\x9f\x98\x80 \xf0\x9f\x98 world",
    b"\xe6\x97\xa5\xe6\x9c", b"\xe6\x97\xa5\x80\xe6\x9c\xac", b"[MASK]\xff[SEP]", b"[MA\xffSK]",
    b"\xef\xbb\xbf\xef\xbb", b"\xef\xbf\xbd\xef\xbf", b"x\x00\xff\x00y", b"\xc2\xa0\xc2", b"\xe3\x80\x80\xe3\x80",
    b"a" * 99 + b"\xff", b"a" * 100 + b"\xff", b"a" * 99 + b"\xc3", b"\xf4\x8f\xbf\xbf", b"\xf4\x8f\xbf",
    b"\xe1\x80", b"\xe1\x80\x80", b"\xc2\x80\xc2", b"\x7f\x80\x81\x82", b"\xdf\xbf\xdf",
]


def random_bytes_lines(rng, n):
    """Random mixes of valid UTF-8 and broken bytes, no '\\n'."""
    pieces = [x for x in INVALID_UTF8] + [s.encode() for s in ("a", "é", "中", "😀", " ", "İ", "[MASK]", "\u0301")]
    out = []
    for _ in range(n):
        b = b"".join(rng.choice(pieces) if rng.random() < 0.7 else bytes([rng.choice(
            [x for x in range(256) if x != 10])]) for _ in range(rng.randint(1, 12)))
        out.append(b)
    return out


def build_groups():
    from tokenizers import Tokenizer  # noqa: F401  (fail early without the oracle)
    rng = random.Random(1234)
    corpus = read_corpus()
    json_dir = gunzip_tokenizers(os.path.join(FIXTURES, ".tmp-json"))
    oracles = {(m, p): Oracle(m, p, os.path.join(json_dir, m + ".tokenizer.json"))
               for m in MODELS for p in PATHS}
    groups = {}

    # corpus: every line, every tokenizer
    g = groups["corpus"] = []
    for (m, p), o in oracles.items():
        g.append({"name": "corpus/%s" % m, "kind": "tokenize", "model": m, "path": p,
                  "args": encode_args(), "lines": corpus, "expected": o.encode_batch(corpus)})
    # without special tokens
    g.append(tokenize_case(oracles["bert-base-uncased", "vocab"], "no_special/bert-base-uncased",
                           corpus[:300], add_special_tokens=False))
    g.append(tokenize_case(oracles["bert-base-cased", "json"], "no_special/bert-base-cased",
                           corpus[:300], add_special_tokens=False))

    # pairs
    pairs = make_pairs(corpus, rng, 300)
    pair_lines = [a + "\t" + b for a, b in pairs]
    g = groups["pairs"] = []
    for (m, p), o in oracles.items():
        g.append(tokenize_case(o, "pairs/%s" % m, pair_lines, pair=True))

    # truncation (no overflow windows)
    g = groups["truncation"] = []
    short_pairs = pair_lines[:80]
    for (m, p), mls in ((("bert-base-uncased", "vocab"), (1, 2, 3, 4, 5, 8, 13, 32, 64)),
                        (("bert-base-cased", "json"), (3, 5, 16, 40)),
                        (("bert-base-cased", "vocab"), (4, 24)), (("bert-base-uncased", "json"), (6, 20))):
        o = oracles[m, p]
        for strat in ("longest_first", "only_first", "only_second"):
            for ml in mls:
                g.append(tokenize_case(o, "truncation/%s/pair/%s/%d" % (m, strat, ml), short_pairs,
                                       pair=True, max_length=ml, truncation=strat))
        for strat in ("longest_first", "only_first", "only_second"):
            for ml in mls[:4]:
                g.append(tokenize_case(o, "truncation/%s/single/%s/%d" % (m, strat, ml), corpus[:150],
                                       max_length=ml, truncation=strat))
        g.append(tokenize_case(o, "truncation/%s/no_special/%d" % (m, mls[1]), corpus[:100],
                               max_length=mls[1], add_special_tokens=False))

    # overflow windows with a stride
    g = groups["stride"] = []
    qa = squad_pairs(rng, 24)
    qa_lines = [q + "\t" + c for q, c in qa]
    long_lines = sorted(corpus, key=len)[-80:]
    for (m, p), o in oracles.items():
        for ml, st in ((64, 16), (128, 32), (384, 128), (40, 0)):
            g.append(tokenize_case(o, "stride/%s/qa/only_second/%d/%d" % (m, ml, st), qa_lines, pair=True,
                                   max_length=ml, stride=st, truncation="only_second"))
        for ml, st in ((8, 2), (16, 4), (32, 30), (5, 3)):
            g.append(tokenize_case(o, "stride/%s/single/%d/%d" % (m, ml, st), long_lines,
                                   max_length=ml, stride=st))
        for strat, ml, st in (("longest_first", 16, 2), ("longest_first", 24, 5), ("longest_first", 12, 0),
                              ("only_first", 20, 3), ("only_second", 20, 3)):
            g.append(tokenize_case(o, "stride/%s/pair/%s/%d/%d" % (m, strat, ml, st), pair_lines[:120],
                                   pair=True, max_length=ml, stride=st, truncation=strat))
    # tokenizers' corner cases: max_length at or below the special tokens, stride at the limit
    o = oracles["bert-base-uncased", "vocab"]
    few = corpus[:40]
    few_pairs = pair_lines[:40]
    for ml, st in ((1, 0), (1, 5), (2, 0), (2, 1), (3, 0), (3, 1), (4, 1), (4, 2), (5, 3)):
        g.append(tokenize_case(o, "stride/corner/single/%d/%d" % (ml, st), few, max_length=ml, stride=st))
        g.append(tokenize_case(o, "stride/corner/pair/%d/%d" % (ml, st), few_pairs, pair=True,
                               max_length=ml, stride=st))
        g.append(tokenize_case(o, "stride/corner/pair_only_first/%d/%d" % (ml, st), few_pairs, pair=True,
                               max_length=ml, stride=st, truncation="only_first"))

    # invalid UTF-8 (the oracle reads bytes.decode("utf-8", "replace"))
    g = groups["invalid_utf8"] = []
    raw = INVALID_UTF8 + random_bytes_lines(rng, 150)
    texts = [b.decode("utf-8", "replace") for b in raw]
    for (m, p), o in oracles.items():
        g.append(tokenize_case(o, "invalid_utf8/%s" % m, texts, hex_lines=[b.hex() for b in raw]))

    # decode
    g = groups["decode"] = []
    id_lists_of = {}
    for m in MODELS:
        id_lists = [w[0]["ids"] for w in oracles[m, "vocab"].encode_batch(corpus[:250])]
        n_vocab = 30522 if MODELS[m] else 28996
        for _ in range(60):
            id_lists.append([rng.randrange(n_vocab) for _ in range(rng.randint(0, 30))])
        for _ in range(40):  # special tokens, [unused], pieces and punctuation in odd places
            pool = list(range(0, 110)) + list(range(995, 1070)) + [rng.randrange(n_vocab) for _ in range(40)]
            id_lists.append([rng.choice(pool) for _ in range(rng.randint(1, 25))])
        id_lists += [[], [101], [102, 101], [0, 0, 0]]
        id_lists_of[m] = id_lists
    for (m, p), o in oracles.items():
        id_lists = id_lists_of[m]
        for skip in (False, True):
            for clean in (True, False):
                args = (["--skip-special-tokens"] if skip else []) + ([] if clean else ["--no-clean-up"]) + ["--json"]
                g.append({"name": "decode/%s/skip=%d/clean=%d" % (m, skip, clean), "kind": "decode",
                          "model": m, "path": p, "args": args, "ids": id_lists,
                          "expected": [o.decode(ids, skip, clean) for ids in id_lists]})
    return groups


def merge_paths(cases):
    """Cases that differ only by path and expect the same output become one case with
    "paths": [...] (the vocab.txt and tokenizer.json oracles agree almost always)."""
    out, by_key = [], {}
    for c in cases:
        key = json.dumps([c["name"], c["model"], c["args"], c.get("lines"), c.get("lines_hex"), c.get("ids"),
                          c["expected"]], ensure_ascii=False)
        if key in by_key:
            by_key[key]["paths"].append(c["path"])
            continue
        c = dict(c)
        c["paths"] = [c.pop("path")]
        by_key[key] = c
        out.append(c)
    names = {}
    for c in out:
        names[c["name"]] = names.get(c["name"], 0) + 1
    for c in out:
        if names[c["name"]] > 1:  # the paths disagree: keep them apart, under distinct names
            c["name"] += "/" + "+".join(c["paths"])
    return out


def write_groups(groups):
    import tokenizers
    import transformers
    for name, cases in groups.items():
        cases = merge_paths(cases)
        doc = {"generator": "tests/oracle/make_tokenizer_fixtures.py",
               "oracle": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
               "cases": cases}
        data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        path = os.path.join(FIXTURES, "golden_%s.json.gz" % name)
        with open(path, "wb") as f:
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="", compresslevel=9) as gz:
                gz.write(data)
        print("%s: %d cases, %d bytes" % (os.path.relpath(path, ROOT), len(cases), os.path.getsize(path)))


# ---- the Unicode exception tables of src/tokenizer/unicode.c -------------------------------------

def unicode_exceptions():
    """Compares, code point by code point, what the oracle's components answer with what utf8proc
    answers (through the definitions of src/tokenizer/unicode.c), and returns the differences as
    {table name: (comment, sorted code points)}."""
    import ctypes
    import ctypes.util
    from tokenizers import normalizers, pre_tokenizers

    lib = ctypes.CDLL(ctypes.util.find_library("utf8proc") or "libutf8proc.so.2")

    class Prop(ctypes.Structure):  # the first two fields of utf8proc_property_t
        _fields_ = [("category", ctypes.c_int16), ("combining_class", ctypes.c_int16)]

    lib.utf8proc_get_property.restype = ctypes.POINTER(Prop)
    lib.utf8proc_decompose_char.restype = ctypes.c_ssize_t
    MN, PC, PO, CC, CF, CS, CO = 6, 12, 18, 26, 27, 28, 29  # utf8proc_category_t
    buf, lbc = (ctypes.c_int32 * 8)(), ctypes.c_int(0)

    def cat(c):
        return lib.utf8proc_get_property(c).contents.category

    def ccc(c):
        return lib.utf8proc_get_property(c).contents.combining_class

    def nfd(c):  # UTF8PROC_DECOMPOSE = 1 << 3
        n = lib.utf8proc_decompose_char(c, buf, 8, 1 << 3, ctypes.byref(lbc))
        return "".join(chr(buf[i]) for i in range(n))

    cps = [c for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000]
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                                       lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                       lowercase=False)
    NFD = normalizers.NFD()
    pre = pre_tokenizers.BertPreTokenizer()
    out = {k: [] for k in ("oracle_not_control", "oracle_not_punct", "oracle_punct", "oracle_not_mn",
                           "oracle_mn", "oracle_no_nfd", "oracle_ccc0")}
    for c in cps:
        ch = chr(c)
        o_ctrl = c != 0xFFFD and clean.normalize_str(ch) == ""
        c_ctrl = cat(c) in (CC, CF, CO, CS)
        if o_ctrl != c_ctrl:
            assert c_ctrl and cat(c) == CF, hex(c)
            out["oracle_not_control"].append(c)
        p = pre.pre_tokenize_str("a" + ch + "b")
        if len(p) != 2:  # not whitespace
            o_p = len(p) == 3 and p[1][0] == ch
            c_p = PC <= cat(c) <= PO
            if o_p != c_p:
                out["oracle_punct" if o_p else "oracle_not_punct"].append(c)
        o_d, c_d = NFD.normalize_str(ch), (nfd(c) if c >= 0xC0 else ch)
        if o_d != c_d:
            assert o_d == ch, hex(c)
            out["oracle_no_nfd"].append(c)
        elif o_d == ch:
            o_mn, c_mn = strip.normalize_str(ch) == "", c >= 0x300 and cat(c) == MN
            if o_mn != c_mn:
                out["oracle_mn" if o_mn else "oracle_not_mn"].append(c)

    # combining classes, seen through the oracle's canonical reordering of mark pairs
    def mismatch(x, y):
        o = NFD.normalize_str("a" + chr(x) + chr(y))[1:]
        d = [ord(q) for q in nfd(x) + nfd(y)]
        return o != "".join(chr(q) for q in sorted(d, key=ccc))

    reps = {}
    for c in range(0x300, 0x110000):
        k = ccc(c)
        if k and k not in reps and not 0xD800 <= c < 0xE000:
            z = 0x301 if k != 230 else 0x316
            if not mismatch(c, z) and not mismatch(z, c):  # a mark the oracle knows
                reps[k] = c
    for x in (c for c in cps if ccc(c)):
        if any(mismatch(x, y) or mismatch(y, x) for y in reps.values()):
            # the oracle never reorders it: combining class 0 for the oracle
            assert all(NFD.normalize_str("a" + chr(x) + chr(y))[1:] == chr(x) + chr(y) and
                       NFD.normalize_str("a" + chr(y) + chr(x))[1:] == chr(y) + chr(x) for y in reps.values())
            out["oracle_ccc0"].append(x)
    return out


COMMENTS = {
    "oracle_not_control": "Cf in Unicode 15, unassigned (so kept) for the oracle",
    "oracle_not_punct": "P* in Unicode 15, not punctuation for the oracle",
    "oracle_punct": "not P* in Unicode 15, punctuation (Po) for the oracle",
    "oracle_not_mn": "Mn in Unicode 15, not stripped by the oracle",
    "oracle_mn": "not Mn in Unicode 15, stripped (Mn) by the oracle",
    "oracle_no_nfd": "decomposes in Unicode 15, not for the oracle",
    "oracle_ccc0": "combining class > 0 in Unicode 15, 0 for the oracle",
}


def print_unicode_exceptions():
    for name, cs in unicode_exceptions().items():
        rs = []
        for c in cs:
            if rs and rs[-1][1] == c - 1:
                rs[-1][1] = c
            else:
                rs.append([c, c])
        print("/* %s (%d code points) */" % (COMMENTS[name], len(cs)))
        print("static const uc_range %s[] = {" % name)
        line = "   "
        for a, z in rs:
            item = " {0x%04X, 0x%04X}," % (a, z)
            if len(line) + len(item) > 96:
                print(line)
                line = "   "
            line += item
        print(line)
        print("};")


def main():
    if "--unicode-exceptions" in sys.argv:
        print_unicode_exceptions()
        return 0
    stress_corpus.main()
    for model in MODELS:
        save_tokenizer_json(model)
    write_groups(build_groups())
    tmp = os.path.join(FIXTURES, ".tmp-json")
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
