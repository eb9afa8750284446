#!/usr/bin/python3
"""Writes tests/data/tokenizers/corpus.json, the strings the tokenizer conformance test encodes.

    /usr/bin/python3 tools/make_tokenizer_corpus.py [GUM_CONLLU]

GUM_CONLLU defaults to ../shared/data/gum/en_gum-ud-dev.conllu. Only the sentences of the GUM documents whose
sources are CC BY or public domain (genres news, interview, bio, voyage, textbook, vlog, speech, conversation,
per GUM's LICENSE.txt) are taken; tests/data/tokenizers/README.md carries their attribution. Then a few variants of
those sentences (case, surrounding whitespace, paragraphs), then the hand-written hard cases below, then 120
seeded random strings drawn from POOL. Deterministic: the same input gives the same file.
"""

import json
import os
import sys

CC_BY_GENRES = {"news", "interview", "bio", "voyage", "textbook", "vlog", "speech", "conversation"}


def gum_sentences(path):
    sentences, genre = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("# newdoc id = "):
                genre = line.split("=", 1)[1].strip().split("_")[1]
            elif line.startswith("# text = ") and genre in CC_BY_GENRES:
                sentences.append(line[len("# text = "):].rstrip("\n"))
    return sentences


def variants(sentences):
    """Whitespace, case and layout around real text, taken from every 17th sentence."""
    picked = sentences[::17]
    out = []
    for i, s in enumerate(picked):
        kind = i % 10
        if kind == 0:
            out.append(s.upper())
        elif kind == 1:
            out.append(s.lower())
        elif kind == 2:
            out.append(" " + s)
        elif kind == 3:
            out.append(s + "   ")
        elif kind == 4:
            out.append(s.replace(" ", "  "))
        elif kind == 5:
            out.append(s.replace(" ", "\t"))
        elif kind == 6:
            out.append(s + "\n")
        elif kind == 7:
            out.append(s.replace(" ", "\u00a0"))
        elif kind == 8:
            out.append("\n".join(sentences[i * 17:i * 17 + 3]))
        else:
            out.append("\n\n".join(sentences[i * 17:i * 17 + 4]) + "\n")
    return out


HARD = [
    # empty and whitespace
    "", " ", "  ", "\t", "\n", "\n\n\n", "\r\n", "\r", " \n ", "\n \n", "a\r\nb", "a\rb", "line one\r\nline two\r\n",
    "   leading spaces", "trailing spaces   ", "multiple   spaces   here", "tabs\tand\t\ttabs", "\ttab first",
    "x" + " " * 17 + "y", " " * 20, "\n" * 10, " \n" * 5, "a \n\n b", "end with newline\n", "\n\nstart with newlines",
    "\u00a0", "\u00a0non-breaking\u00a0spaces\u00a0", "ideographic\u3000space\u3000here", "\u3000",
    "mixed \t\n \u00a0 \u3000 whitespace", "thin\u2009space and\u202fnarrow", "line\u2028separator", "para\u2029separator",
    "zero\u200bwidth\u200bspace", "\ufeffbyte order mark", "soft\u00adhyphen", "word\u200djoiner\u200cnon",
    "vertical\x0btab and\x0cform feed", "next\x85line",
    # digits
    "1", "12", "123", "1234", "1234567", "12345678901234567890", "3.14159", "1,000,000", "-42", "+1 (555) 010-9999",
    "Year 2024: 365 days, 24 hours, 60 minutes.", "0.0001 and 1e-10 and 6.02e23", "v1.2.3-rc4", "2026-12-07T20:56:36Z",
    "\u0663\u0664\u0665 Arabic-Indic digits", "\uff11\uff12\uff13 fullwidth digits", "\u00bd \u00b2 \u00b3 \u2167 \u2082",
    "\u0967\u0968\u0969 Devanagari digits", "a1b2c3d4", "007", "1st 2nd 3rd 4th", "$19.99 \u20ac5 \u00a3100 \u00a5500",
    # contractions and apostrophes
    "don't", "I'LL", "I'll", "she's", "They've", "we'd", "I'm", "DON'T STOP", "it\u2019s curly", "y'all'd've",
    "O'Neill's", "rock 'n' roll", "'quoted'", "the '90s", "can't won't shan't", "You'RE", "HE'S", "'s", "'ll alone",
    # emoji
    "\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466",
    "\U0001F3F3\ufe0f\u200d\U0001F308", "\u2764\ufe0f", "\U0001F1EB\U0001F1F7\U0001F1EF\U0001F1F5", "a\U0001F600b",
    "\U0001F600\U0001F600\U0001F600", "keycap 1\ufe0f\u20e3", "\U0001F9D1\U0001F3FF\u200d\U0001F4BB coding",
    "I love it \U0001F60D\U0001F60D!!", "\U0001F44B\U0001F3FB\U0001F44B\U0001F3FC\U0001F44B\U0001F3FD\U0001F44B\U0001F3FE\U0001F44B\U0001F3FF",
    "\u263a \u2603 \u2605 \u2713 \u2192 \u221e", "\U0001F9FF\U0001FAE0", "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F Scotland",
    # CJK and other scripts
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002", "\u4e2d\u6587\u6d4b\u8bd5\uff0c\u4f60\u597d\u4e16\u754c\uff01",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4.", "\uff76\uff80\uff76\uff85 halfwidth katakana",
    "\u7e41\u9ad4\u4e2d\u6587\u8207\u7b80\u4f53\u4e2d\u6587", "\u6771\u4eac\u30bf\u30ef\u30fc is 333m tall",
    "\u3053\u3093\u306b\u3061\u306f\u3001\u4e16\u754c\uff01\u3000\u5143\u6c17\u3067\u3059\u304b\uff1f",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u0627\u0644\u0633\u0651\u064e\u0644\u064e\u0627\u0645\u064f \u0639\u064e\u0644\u064e\u064a\u0652\u0643\u064f\u0645\u0652",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092e\u0947\u0902 \u0915\u094d\u0937\u0924\u094d\u0930\u093f\u092f",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a", "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03ba\u03cc\u03c3\u03bc\u03b5",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!", "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0",
    "\u0ba4\u0bae\u0bbf\u0bb4\u0bcd", "\u0986\u09ae\u09bf \u09ac\u09be\u0982\u09b2\u09be\u09af\u09bc \u0997\u09be\u09a8 \u0997\u09be\u0987",
    "\u1200\u1208\u1218 Ethiopic", "\u13e3\u13b3\u13a9 Cherokee", "English \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u4e2d\u6587 mixed",
    "\U00013000 hieroglyph", "\ua66e", "\U0001D54F\U0001D552\U0001D565\U0001D559", "\ue000 private use",
    # combining marks, compatibility characters
    "e\u0301", "\u00e9", "Cafe\u0301 and Caf\u00e9", "n\u0303", "A\u030a vs \u00c5 vs \u212b", "\u0301 starts with a mark",
    "Z\u0335\u0321\u0322a\u0337l\u0338g\u0336o\u0334", "\u1100\u1161\u11a8 decomposed hangul", "\ufb01ne \ufb00 ligatures",
    "\u2168 \u338f \u2122 \u00bd \u2460", "\u00c5ngstr\u00f6m na\u00efve r\u00e9sum\u00e9 fa\u00e7ade",
    "A\u0308ngstro\u0308m nai\u0308ve re\u0301sume\u0301", "o\u0302\u0323 stacked marks", "\u1e69 and s\u0323\u0307",
    "\uff28\uff45\uff4c\uff4c\uff4f fullwidth", "\u0130stanbul \u0131 I i", "stra\u00dfe STRASSE \u1e9e",
    "\u01c5 titlecase", "\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3", "\u00aa\u00ba\u00b9", "\u2026 ellipsis",
    # special tokens written in the text
    "<s>", "</s>", "<unk>", "<s>Hello</s>", " <s> ", "<s><s>", "a<s>b", "</s> after", "text </s>", "< s >",
    "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|begin_of_text|>Hello",
    "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>", "<|reserved_special_token_5|>",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>", "text<|endoftext|>more", "<|im_start|", "<|im_end|> ", "<think>\nhmm\n</think>\n\nok",
    "<tool_call>{\"name\": \"f\"}</tool_call>", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n", "<bos><eos><pad>", "<bos>", " <bos>", "<mask>",
    "<start_of_image>", "<|endofprompt|>", "[CLS] [SEP] [MASK] [UNK] [PAD]", "[CLS]hello[SEP]", "<|BEGIN_OF_TEXT|>",
    "<0x41>", "\u2581 already a metaspace \u2581\u2581", "\u0120 and \u010a", "<|eot_id|><|eot_id|>", "<</s>>",
    # long words
    "Pneumonoultramicroscopicsilicovolcanoconiosis", "Donaudampfschifffahrtsgesellschaftskapit\u00e4n",
    "supercalifragilisticexpialidocious", "epäjärjestelmällistyttämättömyydellänsäkäänköhän",
    "Muvaffakiyetsizle\u015ftiricile\u015ftiremeyebileceklerimizdenmi\u015fsinizcesine", "a" * 200, "ab" * 100,
    "x" * 1000, "\u00e9" * 300, "\u4e00" * 100, "\U0001F600" * 50, "1" * 64, "-" * 80, "=" * 40, "." * 30,
    "well-known state-of-the-art mother-in-law", "anti\u00addis\u00adestab\u00adlish\u00adment",
    # URLs, addresses
    "https://example.com/path/to/page?query=1&b=two#frag", "http://www.example.co.uk/index.html",
    "mailto:user.name+tag@example.org", "ftp://files.example.net/pub/file-1.2.tar.gz", "C:\\Users\\me\\file.txt",
    "/usr/local/bin/headlens --model ./models/x", "192.168.0.1:8080", "@user #hashtag", "www.example.com",
    # code
    "def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "<div class=\"x\">Hi &amp; bye</div>", "SELECT * FROM t WHERE a = 'b';", "{\"key\": [1, 2, 3], \"v\": null}",
    "#include <stdio.h>\nint main(void) { return 0; }", "x = y != z && !w || (a >= b)", "    indented with 4 spaces",
    "\tindented with a tab", "camelCaseIdentifier snake_case_name SCREAMING_CASE kebab-case", "a->b::c<T>()",
    "$PATH ~/dir && echo \"$HOME\"", "regex: ^\\d+(?:\\.\\d+)?$", "x+=1;y-=2;z*=3;", "if x:\n\tpass\n\telse:\n\t\tpass",
    "```python\nprint('hi')\n```", "// comment\n/* block */", "a\\nb\\tc", "0xFF 0b1010 1_000_000",
    # punctuation
    "Hello!!! What??? Really...", "\u2014em dash\u2013 en dash", "\u00abguillemets\u00bb \u201equotes\u201c \u201cdouble\u201d",
    "(parentheses) [brackets] {braces}", "\u00bfQu\u00e9? \u00a1S\u00ed!", "!!!???", "@#$%^&*", "a.b,c;d:e",
    "\"Quote,\" she said. 'Single.'", "...", "?", "!", ".", ",", "'", "\"", "`backticks`", "~tilde~", "|pipe|",
    "\u3002\u3001\u300c\u300d\u300e\u300f", "\u00a7 \u00b6 \u2020 \u2021 \u2022",
    # case
    "HELLO WORLD", "hElLo WoRlD", "Hello World", "hello world", "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    # control characters
    "a\x00b", "\x07 bell", "\x1b[31mred\x1b[0m", "\x7f delete", "null\x00\x00end",
    # added later (appended so earlier indices stay): DeepSeek's and Claude's special tokens, overlapping added
    # tokens of the synthetic files
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>Hi<\uff5cend\u2581of\u2581sentence\uff5c>",
    "<\uff5cUser\uff5c>2+2?<\uff5cAssistant\uff5c><think>\n", "<|begin of sentence|>", "<EOT><META> <META_START>x",
    "\u4f60\u597d\u3053\u3093\u306b\u3061\u306f\u30ab\u30bf\u30ab\u30ca123456789", "#abc, .Def ;ghi !JKL",
    "<|a|><|b|> <|a|> <|a|><|b|><|c|>", "abc abcd xabc ab-c", "user: hi\nassistant: ok", "USER: HI", "[x][y][x][y]",
    "\u00c9cole \u00e9cole ECOLE", "  <|a|>  ", "\tuser\t", "single word usernames user",
]


# Characters the random strings are drawn from: the ones where normalizers, regex classes and byte-level splits
# disagree most easily (whitespace of every kind, marks, case mappings that change length, digits of other scripts,
# emoji parts, CJK, punctuation and symbols, apostrophes, controls).
POOL = list(" \t\n\r\u00a0\u2009\u3000\u200b\u200d\ufe0f\u0301\u0308\u0323\u064e\u093f") + \
    list("aAzZ\u00e9\u00c9\u0130\u0131\u00df\u1e9e\u0149\u01f0\u03a3\u03c2\u0390\ufb01\u2126\u212a") + \
    list("09\u0663\u0967\uff11\u00bd\u2167\u00b2") + \
    list("\U0001F600\U0001F3FD\U0001F468\U0001F1EB\u2764\u65e5\u672c\u3042\u30ab\uff76\ud55c\u1100\u1161") + \
    list("'\u2019\".,!?-_/\\<>|[](){}#$%&*+=@^`~\u2014\u2026\u00bf\u3002\u00a7\u20ac") + \
    list("\x00\x07\x1b\x7f\u0085\u2028\ue000") + ["<s>", "</s>", "<|im_start|>", "'s", "'LL", "\r\n", "  "]


def random_strings(count, seed=10):
    """Deterministic random strings of 1 to 24 pool elements (Python's `random` is stable across 3.x)."""
    import random
    rng = random.Random(seed)
    return ["".join(rng.choice(POOL) for _ in range(rng.randint(1, 24))) for _ in range(count)]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gum = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "data", "gum", "en_gum-ud-dev.conllu")
    sentences = gum_sentences(gum)
    corpus, seen = [], set()
    for s in sentences + variants(sentences) + HARD + random_strings(120):
        if s not in seen:
            seen.add(s)
            corpus.append(s)
    out = os.path.join(root, "tests", "data", "tokenizers", "corpus.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        # One string a line: diffs stay readable; ASCII-only escapes keep invisible characters visible.
        f.write("[\n" + ",\n".join(json.dumps(s, ensure_ascii=True) for s in corpus) + "\n]\n")
    print(f"{out}: {len(corpus)} strings ({len(sentences)} GUM sentences before de-duplication)", file=sys.stderr)


if __name__ == "__main__":
    main()
