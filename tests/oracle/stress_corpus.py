#!/usr/bin/env python3
"""Builds the tokenizer stress corpus: tests/fixtures/tokenizer/stress_corpus.txt.

    python tests/oracle/stress_corpus.py            # (re)writes the fixture
    python tests/oracle/stress_corpus.py --check    # exit 1 if the fixture is not what we build

The corpus is deterministic (fixed seeds, data read from the repository) and is one text per line,
UTF-8, with no '\\n' inside a line ('\\r', '\\x0b', '\\x0c', U+0085, U+2028 and U+2029 are kept:
they are text to the tokenizer, not line breaks to the CLI). It aims at every corner of BERT's
normalizer (clean text, CJK padding, NFD + accent stripping, lowercasing), its pre-tokenizer
(whitespace and punctuation), WordPiece (long words, [UNK]) and the added-token matching of
[CLS]/[SEP]/[MASK]/... in raw text.

The character pools (POOLS) are also used by tests/test_tokenizer_oracle.py to draw fresh random
text for the live comparison with the oracle.
"""
import gzip
import json
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "stress_corpus.txt")


def r(a, b):
    """The characters of the inclusive code point range [a, b]."""
    return [chr(c) for c in range(a, b + 1)]


# ---- character pools ------------------------------------------------------------------------
POOLS = {
    "ascii_letters": list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "digits": list("0123456789"),
    "ascii_punct": list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "latin1": r(0xC0, 0xFF) + ["\u00aa", "\u00b5", "\u00ba"],
    "latin_ext": r(0x100, 0x24F) + r(0x1E00, 0x1EFF) + ["\u0130", "\u0131", "\u00df", "\u1e9e"],
    "combining": r(0x300, 0x36F) + r(0x1AB0, 0x1ACE) + r(0x1DC0, 0x1DFF) + r(0x20D0, 0x20F0)
    + r(0xFE20, 0xFE2F) + ["\u0345", "\u05b0", "\u0653", "\u0670", "\u093c", "\u094d",
                           "\u0e38", "\u0f71", "\u0f72", "\u0f80", "\u3099", "\u309a"],
    # marks that survive strip_accents (Mc, Me, marks newer than the oracle's tables) and
    # class-0 Mn: what canonical reordering has to get right
    "surviving_marks": ["\U0001d165", "\U0001d166", "\U0001d16d", "\U0001d16e", "\U0001d172",
                        "\u0903", "\u093e", "\u0488", "\u20dd", "\u1dfb", "\u1df6", "\u1abf",
                        "\U00016ff0", "\u1715", "\u1734", "\u0941", "\u0f39", "\U0001133b",
                        "\U00011938", "\u0b55", "\u0ece"],
    "greek": r(0x370, 0x3FF) + r(0x1F00, 0x1FFE) + ["\u03c2", "\u03a3"],
    "cyrillic": r(0x400, 0x52F) + ["\u1c89", "\u1c8a"],
    "armenian_georgian": r(0x531, 0x58A) + r(0x10A0, 0x10FF) + r(0x1C90, 0x1CBF),
    "hebrew": r(0x591, 0x5F4) + ["\ufb1d", "\ufb1f", "\ufb2a", "\ufb4f"],
    "arabic": r(0x600, 0x6FF) + r(0x750, 0x77F) + r(0x870, 0x8FF) + ["\ufdfa", "\ufdfd", "\ufe70"],
    "bidi_marks": ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                   "\u2066", "\u2067", "\u2068", "\u2069", "\u061c"],
    "indic": r(0x900, 0x97F) + r(0x980, 0x9FE) + r(0xA00, 0xA76) + r(0xB80, 0xBFA)
    + r(0xC00, 0xC7F) + r(0xD00, 0xD7F) + r(0xD80, 0xDF4),
    "thai_lao_tibetan": r(0xE01, 0xE5B) + r(0xE81, 0xEDF) + r(0xF00, 0xFDA),
    "southeast_asian": r(0x1000, 0x109F) + r(0x1780, 0x17F9) + r(0x1A00, 0x1A1F) + r(0xA9E0, 0xA9FE),
    "hangul_syllables": r(0xAC00, 0xD7A3),
    "hangul_jamo": r(0x1100, 0x11FF) + r(0x3131, 0x318E) + r(0xA960, 0xA97C) + r(0xD7B0, 0xD7FB),
    "kana": r(0x3041, 0x30FF) + r(0x31F0, 0x31FF) + r(0xFF66, 0xFF9F) + ["\u3000", "\u3001", "\u3002", "\u30fc"],
    "cjk": r(0x4E00, 0x9FFF) + r(0x3400, 0x4DBF),
    "cjk_ext": r(0x20000, 0x20100) + r(0x2A6D0, 0x2A6FF) + r(0x2A700, 0x2A720)
    + r(0x2B730, 0x2B760) + r(0x2B800, 0x2B830) + r(0x2B810, 0x2B940) + r(0x2CEA0, 0x2CEC0)
    + r(0x2EBE0, 0x2EBF0) + r(0x30000, 0x30010) + r(0x31340, 0x31360),
    "cjk_compat": r(0xF900, 0xFAFF) + r(0x2F800, 0x2FA1F) + r(0x2E80, 0x2FDF) + r(0x3200, 0x33FF),
    "fullwidth": r(0xFF01, 0xFF5E) + r(0xFF5F, 0xFF65) + r(0xFFE0, 0xFFEE),
    "ligatures_compat": r(0xFB00, 0xFB06) + r(0x2150, 0x218B) + r(0x2460, 0x24FF)
    + r(0x1D400, 0x1D4FF) + ["\u2126", "\u212a", "\u212b", "\u2160", "\u00bd", "\u2122", "\u2026"],
    "math_symbols": r(0x2200, 0x22FF) + r(0x2190, 0x21FF) + r(0x27C0, 0x27EF) + r(0x2A00, 0x2AFF)
    + ["\u00b1", "\u00d7", "\u00f7", "\u221e", "\u2211", "\u222b", "\u00ac", "\u00b0"],
    "currency_symbols": r(0x20A0, 0x20C0) + ["$", "\u00a2", "\u00a3", "\u00a5", "\u058f", "\u0e3f"],
    "general_punct": r(0x2010, 0x2027) + r(0x2030, 0x205E) + r(0x2E00, 0x2E5D) + r(0x3001, 0x3003)
    + r(0x3008, 0x3011) + r(0xFE10, 0xFE19) + r(0xFE30, 0xFE4F) + ["\u00a1", "\u00a7", "\u00ab", "\u00b6",
                                                                   "\u00b7", "\u00bb", "\u00bf",
                                                                   "\u166d", "\U000111c9", "\u061d",
                                                                   "\U0001e95e"],
    "emoji": r(0x1F300, 0x1F64F) + r(0x1F680, 0x1F6FF) + r(0x1F900, 0x1F9FF) + r(0x2600, 0x27BF)
    + r(0x1FA70, 0x1FAF8),
    "emoji_modifiers": r(0x1F3FB, 0x1F3FF) + ["\u200d", "\ufe0f", "\ufe0e", "\u20e3"] + r(0x1F1E6, 0x1F1FF)
    + r(0xE0020, 0xE007F),
    "zero_width_format": ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\u2061",
                          "\u2062", "\u2063", "\u2064", "\ufeff", "\u00ad", "\u034f", "\u180e",
                          "\U000e0001", "\u0890", "\u08e2", "\U000110cd", "\U00013430", "\u206a",
                          "\ufff9", "\ufffa", "\ufffb"],
    "controls": ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1c", "\x1f",
                 "\x7f", "\x80", "\x85", "\x9f", "\r"],
    "odd_whitespace": ["\t", "\r", "\x0b", "\x0c", "\u00a0", "\u1680", "\u2028", "\u2029", "\u202f",
                       "\u205f", "\u3000", "\x85", "\u180e", "\u200b"] + r(0x2000, 0x200A),
    "replacement_private": ["\ufffd", "\ufffc", "\ue000", "\uf8ff", "\U000f0000", "\U0010fffd",
                            "\U0010ffff", "\ufffe", "\uffff", "\U0001fffe"],
    "unassigned_new": ["\u0378", "\u0870", "\u08b5", "\u0b55", "\u0d04", "\u1aff", "\u2e5e",
                       "\ua7cb", "\ua7d0", "\U00011f00", "\U00013440", "\U0001e4d0", "\U0001f7f0",
                       "\U0001fabf", "\U00031350", "\U000e01f0", "\U000e0100", "\U0002ebf0"],
    "special_tokens": ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[mask]", "[cls]", "[ MASK]",
                       "[MASK ]", "[[MASK]]", "[MASK][MASK]", "[UNK]x", "x[SEP]", "[Mask]", "[unused0]",
                       "[unused99]", "##", "##ing", "[CLS ]"],
    "case_traps": ["\u0130", "\u0131", "I", "i", "\u00df", "\u1e9e", "\u03c2", "\u03a3", "\u03c3",
                   "\u1f88", "\u1fbc", "\u0149", "\u01c5", "\u01c4", "\u01c6", "\u2126", "\u212a",
                   "\ufb00", "\ufb01", "\ufb03", "\u0587", "\u1e96", "\u2c6f", "\ua7ae",
                   "\U00010400", "\U0001e900", "\U00016e40", "\u13a0", "\uab70"],
}
WORDS = ["the", "unaffable", "running", "tokenization", "naïve", "café", "Straße", "İstanbul",
         "ıi", "ﬁnancial", "Ærøskøbing", "résumé", "jalapeño", "façade", "coöperate", "über",
         "Ελληνικά", "русский", "עברית", "العربية", "हिन्दी", "ไทย", "한국어", "日本語", "中文",
         "東京", "ÅNGSTRÖM", "DŽungla", "ǅ", "ﬀ", "ﬃ", "Ⅻ", "①", "㎏", "㍿", "Ｈｅｌｌｏ", "ｶﾀｶﾅ",
         "don't", "U.S.A.", "e-mail", "C++", "$3.50", "100%", "3.14159", "#hashtag", "@user",
         "https://example.com/a?b=c&d=e#f", "a_b", "x^2", "a|b", "~tilde", "`tick`", "<tag>",
         "a=b", "1+1", "IPv6::1", "12:30", "...", "--", "—", "«quote»", "„Zitat“", "¿Qué?", "¡Sí!"]


def build_lines():
    rng = random.Random(20240601)
    L = []

    def add(*xs):
        for x in xs:
            assert "\n" not in x, repr(x)
            L.append(x)

    # -- plain and empty ------------------------------------------------------------------------
    add("", " ", "   ", "\t", " \t \t ", "\r", "\u3000\u3000", "\u00a0", "\x0b\x0c", "a", "A", ".", "'",
        "Hello, world!", "HELLO WORLD", "hello  world", "  leading and trailing  ")
    # -- each pool on its own, in runs and in words --------------------------------------------
    for name in sorted(POOLS):
        pool = POOLS[name]
        add("".join(pool[:200]))
        add(" ".join(pool[:120]))
        for _ in range(4):
            add("".join(rng.choice(pool) for _ in range(rng.randint(1, 40))))
            add("x" + rng.choice(pool) + "y " + "".join(rng.choice(pool) for _ in range(3)) + " z")
    # -- Latin with accents and combining marks in odd orders ----------------------------------
    add("e\u0301 e\u0300\u0301 e\u0301\u0300 e\u0327\u0301 e\u0301\u0327 a\u0316\u0301\u0300\u0323",
        "A\u030a \u00c5 \u212b a\u0308\u0304 a\u0304\u0308 o\u031b\u0323 o\u0323\u031b \u1ec7 \u1ec6",
        "\u0301start with a mark \u0300\u0301\u0302 and only marks \u0345\u0301",
        "q\u0307\u0323 q\u0323\u0307 \u1e0b\u0323 \u1e0d\u0307 \u0044\u0323\u0307 \u0044\u0307\u0323",
        "a\U0001d16d\u0941\U0001d165b a\U0001d16d\U0001d165b a\U0001d165\U0001d16db",
        "a\U0001d16d\u0301\U0001d165b x\u1dfb\u0301\U0001d165y x\u0301\u1dfb\u0316y",
        "a\U00016ff0\U0001d165b a\U0001d165\U00016ff0b a\u1715\U0001d165b a\U0001d165\u1715b",
        "a\u0f71\u0f72\u0f74b \u0f73 \u0f75 \u0f81 \u0f77 \u0f79 a\u05b0\u05b8\u05bc",
        "\u1100\u1161\u11a8 \uac01 \u1100\u1161 \u11a8 \ud7a3 \u3131\u314f",
        "\u0928\u093c\u0929 \u0915\u093c \u0958 \u09a1\u09bc \u09dc \u0b47\u0b3e \u0b4b",
        "\U00011935\U00011930 \U00011938 \U00011931\U00011938\U00011930",
        "Ǆ ǅ ǆ Ǉ ǈ ǉ Ǌ ǋ ǌ Ǳ ǲ ǳ",
        "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ")
    # -- case traps ----------------------------------------------------------------------------
    add("İstanbul ISTANBUL istanbul ıstanbul İİİ i̇", "Straße STRASSE straße ẞ ß ẞẞ",
        "ΟΔΥΣΣΕΥΣ Οδυσσεύς ὀδυσσεύς σς Σ ς", "DIYARBAKIR Diyarbakır dıyarbakır",
        "ǅemal Ǆ ǆ ῼ ᾳ ᾼ Ω K Å ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ", "ᲐᲑᲒ აბგ Ꭰ ꭰ 𐐀 𐐨 𞤀 𞤢 Ⱥ ⱥ")
    # -- scripts in sentences ------------------------------------------------------------------
    add("Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
        "Съешь же ещё этих мягких французских булок, да выпей чаю.",
        "\u202bשלום עולם\u202c — \u200fمرحبا بالعالم\u200e!",
        "العربية: مَرْحَبًا بِكُمْ فِي الْمَدِينَةِ ١٢٣ ٤٥٦ ؟ ، ؛",
        "हिन्दी में एक वाक्य। क्षत्रिय ज्ञान श्री ॐ",
        "বাংলা ভাষা, தமிழ் மொழி, తెలుగు, ಕನ್ನಡ, മലയാളം, ગુજરાતી, ਪੰਜਾਬੀ, ଓଡ଼ିଆ, සිංහල",
        "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ ๑๒๓",
        "ພາສາລາວ ဗမာစာ ភាសាខ្មែរ བོད་ཡིག་ ᠮᠣᠩᠭᠣᠯ",
        "한국어 문장입니다. 안녕하세요! ㅋㅋㅋ ᄒᆞᆫ글",
        "日本語の文章です。カタカナとひらがな、ｶﾀｶﾅ、漢字。",
        "中文句子，包括標點符號：「你好」！（測試）《書名》",
        "𠀀𠀁𠀂 𪜀 𫝀 𫠝𫠞𫠟 𫠠𫠡 𬺰 𬺱 𮯠 𰀀 𱍐 丽丸乁 豈更車 ⺀⼀㐀䶵",
        "\U0002b81d\U0002b81e\U0002b81f\U0002b820\U0002b821\U0002b91f\U0002b920\U0002b921 x\U0002b8ffy",
        "ꯃꯩꯇꯩ ᥖᥭᥰ ꪼꪕ ᨅᨔ ᮞᮥᮔ᮪ᮓ ꦗꦮ ᬅᬓ᭄ᬱᬭ",
        "Ethiopic ሰላም ፡ Cherokee ᏣᎳᎩ Canadian ᐃᓄᒃᑎᑐᑦ ᙭ ᙮ Runic ᚠᚢᚦ ᛫ Ogham ᚁ ᚂ",
        "𓀀𓀁 𓐰𓐱 𐎀𐎁 𒀀𒀁 𐌰𐌱 𝔄𝔅 𝕬 𝟘𝟙 𞸀 𞹯")
    # -- emoji -----------------------------------------------------------------------------------
    add("👍 👍🏻 👍🏿 👨‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈 🏴‍☠️ 🇺🇸 🇯🇵 🇪🇺 1️⃣ #️⃣ *️⃣",
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f flag of England",
        "I ❤️ NY ☕ ✈️ ♻️ ©️ ®️ ™️ ❗ ❓ 〰️ 🙂🙃😂🤣", "emoji👍inside👍words a👨‍👩‍👧b",
        "🧑🏼‍🤝‍🧑🏾 🫠 🫶🏽 🪬 🩷 🐦‍⬛ 🫎 🫏")
    # -- control, zero-width, formats, replacement, NUL ------------------------------------------
    add("zero\u200bwidth\u200cjoiner\u200dand\u200emarks\u200f!", "word\u2060joiner\ufeffbom\u00adsoft\u00adhyphen",
        "\ufeffstarts with a BOM", "tag\U000e0001 \U000e0041\U000e0042 end", "next\x85line and\u2028line\u2029para",
        "nul\x00inside\x00text", "bell\x07 esc\x1b[31m red \x1b[0m", "del\x7f c1\x80\x9f", "\ufffd replacement \ufffd\ufffd x\ufffdy",
        "\x00", "\x00\x00\x00", "\ufffd", "\u200b", "\u200b\u200c\u200d", "\ufeff", "\u00ad",
        "private \ue000\uf8ff\U000f0000\U0010fffd use", "nonchars \ufffe\uffff\U0001fffe\U0010ffff",
        "arabic\u0890\u0891\u08e2 format \U000110cd \U00013430\U00013438\U0001343f",
        "a\u0600b \u06dd \u070f \u180e \u2061\u2062\u2063\u2064 \u206a\u206f \ufff9\ufffa\ufffb",
        "interlinear\ufff9an\ufffa\ufffb \U0001bca0\U0001bca3 \U0001d173\U0001d17a")
    # -- odd whitespace --------------------------------------------------------------------------
    ws = POOLS["odd_whitespace"]
    add("tab\tseparated\tvalues", "carriage\rreturn\r\rdouble", "vertical\x0btab form\x0cfeed",
        "nbsp\u00a0here\u00a0\u00a0twice", "ogham\u1680space", "en\u2000em\u2001three\u2004thin\u2009hair\u200a!",
        "narrow\u202fnbsp math\u205fspace ideo\u3000space", "".join(ws), " ".join(ws),
        "x".join(ws), "\t\t\t", "\r\n".replace("\n", ""), " \u3000 \u00a0 ")
    for _ in range(8):
        add("".join(rng.choice(ws + ["a", "b", "."]) for _ in range(30)))
    # -- long words ------------------------------------------------------------------------------
    for n in (98, 99, 100, 101, 102, 150, 300):
        add("a" * n, "x" + "ab" * (n // 2), "Pneumono" + "u" * max(0, n - 8))
    add(("é" * 100), ("é" * 101), ("e\u0301" * 50), ("e\u0301" * 51), ("中" * 120),
        ("İ" * 100), ("ß" * 101), ("ﬁ" * 100), ("\u00c5" * 99) + "\u0301",
        "a" * 99 + "\u0301", "a" * 100 + "\u0301", "a" * 100 + "\u200b", "a" * 100 + "\x00" + "b",
        "a" * 100 + "!" + "b" * 100, " ".join(["z" * 101] * 3), "\U0001f600" * 101,
        "supercalifragilisticexpialidocious " * 4,
        "Llanfair\u00adpwllgwyngyll\u00adgogery\u00adchwyrn\u00addrobwll\u00adllan\u00adtysilio\u00adgogo\u00adgoch",
        "antidisestablishmentarianism" * 4, "1234567890" * 11, "-" * 120)
    # -- punctuation runs, ASCII symbols -------------------------------------------------------
    add("!!!???...,,,;;;:::", "$+<=>^`|~", "$$$ +++ <<< === >>> ^^^ ``` ||| ~~~",
        "a$b+c<d=e>f^g`h|i~j", "(((nested [brackets] {braces})))", "\"quoted\" 'single' `back`",
        "a.b.c,d;e:f!g?h", "...and...then...", "—–‐‑‒―", "¡¿‽⁇⁈⁉", "«»‹›„“”‚‘’", "§¶†‡•‰‱′″‴",
        "㊀ ㊙ ㋿ ㍻ ㎡ ㏒", "∀x∈ℝ: x²≥0 ∑ᵢ aᵢ ∫₀^∞ e^{-x} dx = 1", "≤≥≠≈∞±×÷√∛∜∝∠∧∨∩∪",
        "⟨ψ|φ⟩ ⊗ ⊕ ⊢ ⊨ ⟹ ⟺ ∎", "1/2 ½ ¼ ¾ ⅓ ⅔ ⅛ 10⁻³ H₂O", "℃ ℉ № ℗ ℠ ™ Ω ℮ ⅋",
        "#!/bin/sh && echo $HOME || exit 1; a->b", "a\\b\\\\c", "@#%&*_-+=[]{}|;:'\",.<>/?")
    # -- special tokens inside text ------------------------------------------------------------
    add("[MASK]", "[CLS]", "[SEP]", "[UNK]", "[PAD]", "[mask]", "[Mask]", "[CLS] hello [SEP] world [SEP]",
        "The capital of France is [MASK].", "[MASK][MASK][MASK]", "x[MASK]y", "[ MASK ]", "[[MASK]]",
        "[UNK] is unknown, [unk] is not", "[unused0] [unused1] [unused99]", "[MASK].[SEP],[CLS]!",
        "\u00a0[MASK]\u00a0", "[MA\u200bSK]", "[MASK\u0301]", "ＭＡＳＫ [ＭＡＳＫ]", "[CLS]" * 30,
        "a [SEP]b[SEP] c", "##ing ##s ## #", "[PAD] [PAD]padding")
    # -- ligatures, fullwidth, compatibility ----------------------------------------------------
    add("ﬁnance ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ", "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ！ １２３ ＡＢＣ", "ﾊﾝｶｸ ｶﾀｶﾅ ｰ ｯ",
        "① ② ⑩ ⑴ ⒜ Ⓐ ⓐ", "Ⅰ Ⅱ Ⅻ ⅰ ⅻ", "㍻ ㍼ ㍽ ㍾ ㋿ ㌀", "𝐀𝐁𝐂 𝑎𝑏𝑐 𝒜 𝓐 𝔸 𝕒 𝖆 𝗔 𝘢 𝙖 𝚊",
        "Ǆ ǈ ǌ ǲ ŉ ſ ẛ", "ᴬᴮᴰ ᵃᵇᶜ ⁱⁿ ₐₑₒ")
    # -- real English sentences --------------------------------------------------------------------
    with open(os.path.join(ROOT, "data", "sst2", "dev.tsv"), encoding="utf-8") as f:
        rows = [x.rsplit("\t", 1)[0] for x in f.read().split("\n")[1:] if x.strip()]
    add(*rows[:60])
    add(*(x for x in rng.sample(rows, 40)))
    with gzip.open(os.path.join(ROOT, "data", "corpus", "brown.txt.gz"), "rt", encoding="utf-8") as f:
        brown = [x for x in f.read().split("\n") if x.strip()]
    add(*brown[:30])
    add(*rng.sample(brown, 30))
    with gzip.open(os.path.join(ROOT, "data", "corpus", "wikitext-2-valid.txt.gz"), "rt", encoding="utf-8") as f:
        wiki = [x for x in f.read().split("\n") if len(x.strip()) > 20]
    add(*wiki[:20])
    add(*rng.sample(wiki, 20))
    with gzip.open(os.path.join(ROOT, "data", "squad", "dev-v1.1.shared-half.json.gz"), "rt", encoding="utf-8") as f:
        squad = json.load(f)["data"]
    paras = [p for a in squad for p in a["paragraphs"]]
    add(*(p["context"].replace("\n", " ") for p in rng.sample(paras, 15)))
    add(*(q["question"].replace("\n", " ") for p in rng.sample(paras, 15) for q in p["qas"][:1]))
    # non-ASCII real text from SQuAD (accents, dashes, quotes)
    fancy = [p["context"] for p in paras if any(ord(ch) > 0x7f for ch in p["context"])]
    add(*(x.replace("\n", " ") for x in rng.sample(fancy, 10)))
    # -- words from WORDS, in random mixes ---------------------------------------------------------
    for _ in range(40):
        add(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))))
    # -- random mixes of every pool ---------------------------------------------------------------
    names = sorted(POOLS)
    for _ in range(120):
        k = rng.randint(1, 4)
        chosen = [POOLS[rng.choice(names)] for _ in range(k)] + [POOLS["ascii_letters"], [" "]]
        add("".join(rng.choice(rng.choice(chosen)) for _ in range(rng.randint(1, 80))))
    return L


def render(lines):
    return "".join(x + "\n" for x in lines)


def main():
    text = render(build_lines())
    if "--check" in sys.argv:
        with open(OUT, encoding="utf-8", newline="") as f:
            ok = f.read() == text
        print("up to date" if ok else "stale: run tests/oracle/stress_corpus.py")
        return 0 if ok else 1
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    print("%s: %d lines, %d bytes" % (os.path.relpath(OUT, ROOT), text.count("\n"), len(text.encode())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
