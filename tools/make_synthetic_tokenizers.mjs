// Small synthetic tokenizer.json files for the components of Hugging Face `tokenizers` that the real files of the
// conformance test do not use (WordPiece, Unigram, WordLevel; BertNormalizer, NFD/NFKC/NFKD, StripAccents,
// Lowercase, Strip, Replace, Prepend; BertPreTokenizer, Whitespace, WhitespaceSplit, Metaspace, Digits,
// Punctuation, Split with every behaviour and invert, CharDelimiterSplit; BertProcessing, RobertaProcessing,
// TemplateProcessing, ByteLevel trimming; BPE with an end-of-word suffix; added tokens with lstrip, rstrip,
// single_word, normalized).
//
//   cd build/npm-ref && node ../../tools/make_synthetic_tokenizers.mjs     (needs `tokenizers`, see tokenizer_reference.mjs)
//
// Vocabularies are learnt from the GUM sentences of tests/data/tokenizers/corpus.json (word counts; a small
// greedy BPE trainer for the merges), so that the corpus exercises real merges, continuation pieces and unknown
// words. Each file is loaded by the Rust library and saved back by it, so what is committed is the library's own
// serialisation, complete with every default field. Then run tools/tokenizer_reference.mjs for the references.

import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(join(process.cwd(), 'package.json'));
const rust = require('tokenizers');

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const outDir = join(root, 'tests', 'data', 'tokenizers', 'synthetic');
const corpus = JSON.parse(readFileSync(join(root, 'tests', 'data', 'tokenizers', 'corpus.json'), 'utf8'));
const gum = corpus.slice(0, 834);  // the GUM sentences come first (tools/make_tokenizer_corpus.py)

// --- counting -------------------------------------------------------------------------------------------------

function countWords(texts, split) {
  const counts = new Map();
  for (const t of texts) for (const w of split(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}
const stripAccentsLower = (s) => s.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();
const bertWords = (s) => s.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];

// Greedy BPE over words given as arrays of symbols: returns the merges, most frequent pair first.
function trainBpe(wordCounts, numMerges) {
  let words = wordCounts.map(([w, c]) => ({ s: Array.isArray(w) ? w : [...w], c }));
  const merges = [];
  for (let m = 0; m < numMerges; ++m) {
    const pairs = new Map();
    for (const { s, c } of words) {
      for (let i = 0; i + 1 < s.length; ++i) {
        const k = s[i] + '\u0000' + s[i + 1];
        pairs.set(k, (pairs.get(k) ?? 0) + c);
      }
    }
    let best = null;
    let bestCount = 1;
    for (const [k, c] of pairs) if (c > bestCount || (c === bestCount && best !== null && k < best)) { best = k; bestCount = c; }
    if (best === null) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    words = words.map(({ s, c }) => {
      const out = [];
      for (let i = 0; i < s.length; ++i) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { out.push(a + b); ++i; } else out.push(s[i]);
      }
      return { s: out, c };
    });
  }
  return merges;
}

// GPT-2's byte -> printable code point map.
const byteChar = (() => {
  const t = [];
  let next = 256;
  for (let b = 0; b < 256; ++b) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    t.push(String.fromCodePoint(printable ? b : next++));
  }
  return t;
})();
const toByteLevel = (s) => [...Buffer.from(s, 'utf8')].map((b) => byteChar[b]).join('');

function vocabFrom(pieces) {
  const vocab = {};
  for (const p of pieces) if (!(p in vocab)) vocab[p] = Object.keys(vocab).length;
  return vocab;
}

const added = (id, content, o = {}) => ({
  id, content, single_word: o.single_word ?? false, lstrip: o.lstrip ?? false, rstrip: o.rstrip ?? false,
  normalized: o.normalized ?? false, special: o.special ?? true,
});

function tokenizerJson({ added_tokens = [], normalizer = null, pre_tokenizer = null, post_processor = null, decoder = null, model }) {
  return { version: '1.0', truncation: null, padding: null, added_tokens, normalizer, pre_tokenizer, post_processor, decoder, model };
}

// --- shared vocabularies ----------------------------------------------------------------------------------------

const gptSplit = (s) => s.match(/'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu) ?? [];

// Byte-level BPE: 256 byte symbols, 700 merges learnt on GPT-2-style words.
function byteLevelBpe(specials, extraWords = []) {
  const counts = countWords(gum, gptSplit).map(([w, c]) => [toByteLevel(w), c]);
  for (const w of extraWords) counts.push([toByteLevel(w), 1]);
  const merges = trainBpe(counts, 700);
  const vocab = vocabFrom([...specials, ...byteChar, ...merges.map(([a, b]) => a + b)]);
  return { vocab, merges };
}

// --- the files ----------------------------------------------------------------------------------------------

const files = {};

{  // BERT-like: WordPiece, BertNormalizer (lowercase, accents stripped), BertPreTokenizer, BertProcessing.
  const words = countWords(gum.map(stripAccentsLower), bertWords);
  const chars = [...new Set(words.flatMap(([w]) => [...w]))].sort();
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const pieces = [...specials, ...chars, ...chars.filter((c) => /[\p{L}\p{N}]/u.test(c)).map((c) => `##${c}`),
    '\u65e5', '\u672c', '\u4e2d', '\u6587', '##s', '##ed', '##ing', '##ly', '##er', '##es', '##tion', '##al', '##ment',
    ...words.filter(([, c]) => c >= 2).slice(0, 1500).map(([w]) => w)];
  const vocab = vocabFrom(pieces);
  files.bert_wordpiece = tokenizerJson({
    added_tokens: specials.map((t) => added(vocab[t], t)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', vocab['[SEP]']], cls: ['[CLS]', vocab['[CLS]']] },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  });
}

{  // Cased WordPiece: BertNormalizer keeping case and accents, WhitespaceSplit + Punctuation(Contiguous) +
   // Digits(individual), TemplateProcessing, an added token matched on normalized text with single_word.
  const split = (s) => s.split(/\s+/).flatMap((w) => w.match(/[\p{L}]+|\p{N}|[^\s\p{L}\p{N}]+/gu) ?? []);
  const words = countWords(gum, split);
  const chars = [...new Set(words.flatMap(([w]) => [...w]))].sort();
  const specials = ['[UNK]', '[CLS]', '[SEP]'];
  const pieces = [...specials, ...chars, ...chars.map((c) => `##${c}`), '##s', '##ed', '##ing', '##ly',
    ...words.filter(([, c]) => c >= 3).slice(0, 900).map(([w]) => w), 'Hello', 'hello', 'world'];
  const vocab = vocabFrom(pieces);
  const n = Object.keys(vocab).length;
  files.wordpiece_cased_template = tokenizerJson({
    added_tokens: [added(vocab['[UNK]'], '[UNK]'), added(vocab['[CLS]'], '[CLS]'), added(vocab['[SEP]'], '[SEP]'),
      added(n, 'the', { special: false, single_word: true, normalized: true }),
      added(n + 1, '<mask>', { lstrip: true }), added(n + 2, '</s>', { rstrip: true, special: true })],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: false, strip_accents: false, lowercase: false },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' },
      { type: 'Punctuation', behavior: 'Contiguous' }, { type: 'Digits', individual_digits: true }] },
    post_processor: { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] } } },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 25, vocab },
  });
}

// Unigram pieces: "▁word" and subwords with log-frequency scores, every character with a low score.
function unigramVocab(specials, lower, byteFallback) {
  const norm = (s) => (lower ? s.toLowerCase() : s).normalize('NFKC');
  const words = countWords(gum.map(norm), (s) => s.split(/\s+/).filter((w) => w.length > 0));
  const total = words.reduce((n, [, c]) => n + c, 0);
  const scored = new Map();
  for (const [w, c] of words.slice(0, 1200)) scored.set(`\u2581${w}`, Math.log(c / total));
  for (const [w, c] of words.slice(0, 600)) {
    for (let k = 2; k < w.length; ++k) {
      const tail = w.slice(k);
      if (tail.length >= 2 && !scored.has(tail)) scored.set(tail, Math.log(c / total) - 2);
    }
  }
  const chars = [...new Set(words.flatMap(([w]) => [...w]))].sort();
  const vocab = specials.map((s) => [s, 0]);
  if (byteFallback) for (let b = 0; b < 256; ++b) vocab.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 0]);
  vocab.push(['\u2581', -3]);
  for (const c of chars) vocab.push([c, -12]);
  for (const [p, s] of scored) vocab.push([p, Math.round(s * 1e4) / 1e4]);
  const seen = new Set();
  return vocab.filter(([p]) => (seen.has(p) ? false : (seen.add(p), true)));
}

{  // T5-like Unigram: NFKC, Lowercase, Strip, Replace of space runs; Metaspace (always, split); "$A </s>".
  const vocab = unigramVocab(['<unk>', '<pad>', '</s>'], true, false);
  files.unigram_metaspace = tokenizerJson({
    added_tokens: [added(0, '<unk>'), added(1, '<pad>'), added(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Lowercase' },
      { type: 'Strip', strip_left: true, strip_right: true }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    post_processor: { type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      special_tokens: { '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } } },
    model: { type: 'Unigram', unk_id: 0, vocab, byte_fallback: false },
  });
}

{  // Cased Unigram with byte fallback: NFKD, Metaspace (first, no split), added tokens cut before normalisation.
  const vocab = unigramVocab(['<unk>', '<s>', '</s>'], false, true);
  files.unigram_byte_fallback = tokenizerJson({
    added_tokens: [added(0, '<unk>'), added(1, '<s>'), added(2, '</s>'),
      added(vocab.length, '<start_of_turn>', { rstrip: true }), added(vocab.length + 1, 'Hello', { special: false, normalized: true })],
    normalizer: { type: 'NFKD' },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
    post_processor: null,
    model: { type: 'Unigram', unk_id: 0, vocab: [...vocab, ['<start_of_turn>', 0], ['Hello', 0]], byte_fallback: true },
  });
}

{  // WordLevel: NFD + StripAccents + Lowercase, Whitespace pre-tokenizer.
  const words = countWords(gum.map(stripAccentsLower), (s) => s.match(/\w+|[^\w\s]+/gu) ?? []);
  const vocab = vocabFrom(['[UNK]', '[CLS]', ...words.slice(0, 2500).map(([w]) => w)]);
  files.wordlevel_whitespace = tokenizerJson({
    added_tokens: [added(0, '[UNK]'), added(1, '[CLS]')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Whitespace' },
    model: { type: 'WordLevel', vocab, unk_token: '[UNK]' },
  });
}

{  // RoBERTa-like: byte-level BPE with GPT-2's built-in regex, add_prefix_space, RobertaProcessing (trimmed
   // offsets), <mask> with lstrip as RoBERTa has it.
  const { vocab, merges } = byteLevelBpe(['<s>', '<pad>', '</s>', '<unk>']);
  const n = Object.keys(vocab).length;
  files.bpe_roberta = tokenizerJson({
    added_tokens: [added(0, '<s>'), added(1, '<pad>'), added(2, '</s>'), added(3, '<unk>'), added(n, '<mask>', { lstrip: true })],
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  });
}

{  // Split behaviours, one after the other: Removed, MergedWithPrevious, MergedWithNext, Isolated with invert,
   // Digits; NFKC; ByteLevel post-processor trimming offsets; added tokens with single_word / lstrip+rstrip.
  const { vocab, merges } = byteLevelBpe(['<|endoftext|>']);
  const n = Object.keys(vocab).length;
  files.bpe_split_behaviours = tokenizerJson({
    added_tokens: [added(0, '<|endoftext|>'), added(n, 'hello', { special: false, single_word: true, normalized: true }),
      added(n + 1, '<|im_start|>', { lstrip: true, rstrip: true })],
    normalizer: { type: 'NFKC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: '[ \\t]+' }, behavior: 'Removed', invert: false },
      { type: 'Split', pattern: { Regex: '[.,!?;:]' }, behavior: 'MergedWithPrevious', invert: false },
      { type: 'Split', pattern: { String: '-' }, behavior: 'MergedWithNext', invert: false },
      { type: 'Split', pattern: { Regex: '\\p{L}+' }, behavior: 'Isolated', invert: true },
      { type: 'Digits', individual_digits: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  });
}

{  // More behaviours: Contiguous, Removed with invert, Punctuation(MergedWithNext), CharDelimiterSplit,
   // individual Digits; NFD + StripAccents + NFC; TemplateProcessing with a two-id special token.
  const { vocab, merges } = byteLevelBpe(['<s>', '</s>', '<unk>']);
  files.bpe_split_contiguous = tokenizerJson({
    added_tokens: [added(0, '<s>'), added(1, '</s>'), added(2, '<unk>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'NFC' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: '\\s' }, behavior: 'Contiguous', invert: false },
      { type: 'Split', pattern: { Regex: '[^\\s]+' }, behavior: 'Removed', invert: true },
      { type: 'CharDelimiterSplit', delimiter: '/' },
      { type: 'Punctuation', behavior: 'MergedWithNext' },
      { type: 'Digits', individual_digits: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false }] },
    post_processor: { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: 'BOS', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ SpecialToken: { id: 'BOS', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '</s>', type_id: 1 } }],
      special_tokens: { BOS: { id: 'BOS', ids: [0, 1], tokens: ['<s>', '</s>'] }, '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } } },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
  });
}

{  // Character-level BPE with byte fallback and an unknown token, SentencePiece-style normalizer: Lowercase,
   // Replace of whitespace runs by a regex, Prepend "▁", Replace " " -> "▁"; WhitespaceSplit does nothing here
   // (no whitespace is left), Split on "▁" MergedWithNext; "<s> $A".
  const words = countWords(gum.map((s) => s.toLowerCase()), (s) => s.split(/\s+/).filter((w) => w).map((w) => `\u2581${w}`));
  // "é" is left out of the alphabet (and so of every merge) so that byte fallback has work on real words.
  const merges = trainBpe(words, 500).filter(([a, b]) => !(a + b).includes('\u00e9'));
  const chars = [...new Set(words.flatMap(([w]) => [...w]))].sort();
  const bytes = [];
  for (let b = 0; b < 256; ++b) bytes.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const vocab = vocabFrom(['<unk>', '<s>', '</s>', ...bytes, ...chars.filter((c) => c !== '\u00e9'), ...merges.map(([a, b]) => a + b)]);
  files.bpe_byte_fallback_prepend = tokenizerJson({
    added_tokens: [added(0, '<unk>'), added(1, '<s>'), added(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Lowercase' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
      { type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' },
      { type: 'Split', pattern: { String: '\u2581' }, behavior: 'MergedWithNext', invert: false }] },
    post_processor: { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  });
}

{  // CLIP-like: byte-level BPE whose word-final symbols carry the end_of_word_suffix "</w>"; NFC, Replace of
   // whitespace runs, Lowercase; CLIP's regex as an inverted Removed Split; RobertaProcessing without trimming.
  const clipRegex = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";
  const js = new RegExp(clipRegex, 'giu');
  const words = countWords(gum.map((s) => s.toLowerCase()), (s) => s.match(js) ?? []).map(([w, c]) => {
    const symbols = [...toByteLevel(w)];
    symbols[symbols.length - 1] += '</w>';
    return [symbols, c];
  });
  const merges = trainBpe(words, 600);
  const vocab = vocabFrom([...byteChar, ...byteChar.map((c) => `${c}</w>`), ...merges.map(([a, b]) => a + b),
    '<|startoftext|>', '<|endoftext|>']);
  const n = Object.keys(vocab).length;
  files.bpe_clip_suffix = tokenizerJson({
    added_tokens: [added(n - 2, '<|startoftext|>', { normalized: true }), added(n - 1, '<|endoftext|>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
      { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: clipRegex }, behavior: 'Removed', invert: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', n - 1], cls: ['<|startoftext|>', n - 2],
      trim_offsets: false, add_prefix_space: false },
    model: { type: 'BPE', dropout: null, unk_token: '<|endoftext|>', continuing_subword_prefix: '', end_of_word_suffix: '</w>',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  });
}

{  // Added tokens that overlap (leftmost-longest), matched on the original text (normalized: false) and on the
   // lowercased text (normalized: true), with single_word, lstrip and rstrip; byte-level BPE with GPT-2's regex.
  const { vocab, merges } = byteLevelBpe(['<|endoftext|>']);
  const n = Object.keys(vocab).length;
  const tokens = [['<|a|>', {}], ['<|a|><|b|>', {}], ['[x][y]', { special: false }],
    ['abc', { special: false, normalized: true, single_word: true }], ['abcd', { special: false, normalized: true }],
    ['user', { special: false, normalized: true, lstrip: true, rstrip: true }],
    ['\u00e9cole', { special: false, normalized: true }], ['hi', { special: false, normalized: true }],
    ['<|c|>', { lstrip: true }]];
  files.bpe_added_tokens = tokenizerJson({
    added_tokens: [added(0, '<|endoftext|>'), ...tokens.map(([t, o], k) => added(n + k, t, o))],
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  });
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
for (const [name, json] of Object.entries(files)) {
  const file = join(outDir, `${name}.json`);
  writeFileSync(file, JSON.stringify(json));
  const tok = rust.Tokenizer.fromFile(file);  // the library must accept it as written
  tok.save(file, false);                      // and what is committed is its own serialisation
  const size = readFileSync(file).length;
  console.error(`${name}: ${tok.getVocabSize(true)} tokens, ${size} bytes`);
}
