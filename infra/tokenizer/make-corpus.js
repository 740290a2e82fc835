#!/usr/bin/env node
// Writes the seeded golden corpus for the tokenizer tests: >= 2,000 varied lines as {"text": ...} JSONL.
// Deterministic (mulberry32 seed 20250101): re-running it gives the same bytes. Usage: node make-corpus.js OUT.jsonl
'use strict';
const fs = require('fs');

let seed = 20250101;
function rand() { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

const english = [
  'The quick brown fox jumps over the lazy dog.', "It's a truth universally acknowledged, isn't it?",
  'Reinforcement learning from verifiable rewards works surprisingly well.', "We'll see what they've done; I'd rather not.",
  'In 1969, Apollo 11 landed on the Moon.', 'Dr. Smith (the one from Boston) arrived at 3:45 p.m.',
  'Hello, world!', 'She said: "Don\'t stop — keep going…"', 'A naïve café owner’s résumé.', 'ALL CAPS SHOUTING HERE',
  'mixedCase camelCase snake_case kebab-case PascalCase', 'e.g. i.e. etc. vs. Mr. Mrs.',
];
const chinese = ['我爱自然语言处理。', '深度求索发布了新的模型，推理能力很强！', '今天天气很好，我们去公园散步吧。', '数学题：小明有3个苹果，又买了5个。', '机器学习（ML）是人工智能的一个分支'];
const japanese = ['こんにちは、世界！', '東京は日本の首都です。', 'カタカナとひらがなを混ぜる：テスト、てすと。', '私はラーメンが好きです😋', 'ｶﾀｶﾅ半角もある'];
const korean = ['안녕하세요, 세계!', '한국어 토크나이저 테스트입니다.', '서울은 대한민국의 수도이다.'];
const arabic = ['مرحبا بالعالم!', 'اللغة العربية جميلة جداً.', 'هذا اختبار ١٢٣٤٥ للأرقام.'];
const hindi = ['नमस्ते दुनिया!', 'हिन्दी भाषा में परीक्षण।', 'क्षत्रिय ज्ञान श्री'];
const thai = ['สวัสดีชาวโลก', 'ภาษาไทยไม่มีช่องว่างระหว่างคำ', 'กรุงเทพมหานคร'];
const russian = ['Привет, мир!', 'Съешь же ещё этих мягких французских булок, да выпей чаю.', 'Ёлка и ёжик.'];
const other = ['Γειά σου Κόσμε', 'שלום עולם', 'Xin chào thế giới', 'Zażółć gęślą jaźń', 'Ελληνικά: αβγδε', 'ąčęėįšųūž', 'ﬁ ﬂ ﬀ ligatures', 'Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ'];
const emoji = ['👍', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '❤️', '🇯🇵', '🧑🏿‍💻', '😀😃😄', '🤖', '✅', '👩🏻‍🚀', '☕', '🫠', '1️⃣', '#️⃣'];
const combining = ['e\u0301', 'a\u0308\u0304', 'n\u0303o', 'Z\u0351\u0352\u0353a\u0354\u0355lgo', '\u0301start', 'ñ vs n\u0303', 'क्\u200dष'];
const code = [
  'def f(x):\n    return x ** 2 + 1\n', 'for (int i = 0; i < n; ++i) { sum += a[i]; }', 'const add = (a, b) => a + b;',
  'fn main() {\n\tprintln!("{}", 42);\n}', 'SELECT id, name FROM users WHERE age >= 18 ORDER BY name;',
  '#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }', 'public sealed class Foo { private readonly int _x; }',
  'if err != nil {\n\t\treturn fmt.Errorf("wrap: %w", err)\n\t}', '    x = [i for i in range(10) if i % 2 == 0]',
  '<div class="a">Hello</div>', '{"key": [1, 2.5, true, null], "k2": {"nested": "v"}}', 'x+=1;y-=2;z*=3;w/=4;',
  '$ ls -la | grep "\\.cs$" && echo done', 'std::vector<std::string> v{"a", "b"};', 'lambda x: x@W.T',
];
const latex = ['$\\frac{a}{b} + \\sqrt{x^2 + y^2}$', '\\begin{align} E &= mc^2 \\\\ F &= ma \\end{align}', '$\\boxed{42}$', '\\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}', '$\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$'];
const urls = ['https://example.com/path/to/page?query=1&x=y#frag', 'http://localhost:8080/api/v1/items/123', 'mailto:someone@example.org', 'ftp://files.example.net/pub/file-1.2.3.tar.gz', 'www.example.co.uk/über/naïve'];
const specials = ['<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>', '<｜User｜>', '<｜Assistant｜>', '<｜▁pad▁｜>', '<｜fim▁hole｜>', '<｜fim▁begin｜>', '<｜fim▁end｜>', '<｜tool▁sep｜>', '<｜place▁holder▁no▁7｜>'];
const spaces = [' ', '  ', '   ', '\t', '\t\t', ' \t ', '\n', '\r\n', '\n\n', '\u00a0', '\u3000', '\u2003', '\r', '\u2028', '\v', '\f'];
const pools = [english, chinese, japanese, korean, arabic, hindi, thai, russian, other, emoji, combining, code, latex, urls, specials];

function digits(n) { let s = ''; for (let i = 0; i < n; i++) s += String(int(0, 9)); return s; }
function mix(k) {
  let s = '';
  for (let i = 0; i < k; i++) {
    const r = rand();
    if (r < 0.6) s += pick(pick(pools));
    else if (r < 0.7) s += digits(int(1, 40));
    else if (r < 0.85) s += pick(spaces);
    else if (r < 0.95) s += String.fromCodePoint(int(0x21, 0x7e));
    else s += String.fromCodePoint(pick([int(0xa0, 0x2fff), int(0x3000, 0x9fff), int(0xac00, 0xd7a3), int(0x1f300, 0x1faff), int(0x20000, 0x2a6df), int(0x1d400, 0x1d7ff)]));
    if (rand() < 0.5) s += ' ';
  }
  return s;
}
function r1Chat() {
  const q = pick([...english, ...chinese, ...latex]);
  const think = pick(['Let me think step by step.', '首先，我们计算。', 'First, 3 + 5 = 8.\nThen 8 * 2 = 16.']);
  return `<｜begin▁of▁sentence｜><｜User｜>${q}<｜Assistant｜><think>\n${think}\n</think>\n\nThe answer is $\\boxed{${int(0, 999)}}$.<｜end▁of▁sentence｜>`;
}
function r1Zero() {
  return 'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: ' + pick(english) + '. Assistant:';
}

const lines = [];
// Every fixed sample alone, so each script and feature is covered at least once.
for (const pool of pools) for (const s of pool) lines.push(s);
for (const s of spaces) { lines.push(s); lines.push('a' + s + 'b'); lines.push(s + 'x'); lines.push('x' + s); }
lines.push('', ' ', 'a', '0', '00', '000', '0000', '1234567890123456789012345678901234567890', '3.14159265358979', '1,000,000', '-42', '12abc34', 'abc123def');
lines.push('line one\r\nline two\r\n', 'tabs\there\tand\tthere', 'trailing spaces   ', '   leading spaces', 'a\n\n\n\nb', ' \n \n ', '\t\n', 'x\r\n\r\ny');
lines.push('<｜User｜><｜User｜>', '<｜User｜', '｜User｜>', '<<｜User｜>>', ' <｜Assistant｜> ', '<think>\n', '</think>', '<｜begin▁of▁sentence｜>hello<｜end▁of▁sentence｜>');
while (lines.length < 1400) {
  const r = rand();
  if (r < 0.08) lines.push(r1Chat());
  else if (r < 0.1) lines.push(r1Zero());
  else if (r < 0.2) lines.push(digits(int(1, 200)));
  else if (r < 0.3) lines.push(pick(spaces).repeat(int(1, 30)) + pick(english) + pick(spaces).repeat(int(1, 30)));
  else lines.push(mix(int(1, 12)));
}
while (lines.length < 2400) lines.push(mix(int(3, 40)));
// A few long lines (paragraph-sized) for throughput.
for (let i = 0; i < 100; i++) lines.push(mix(int(100, 300)));

const out = lines.map((text) => JSON.stringify({ text })).join('\n') + '\n';
fs.writeFileSync(process.argv[2] || 'corpus.jsonl', out);
console.error(`wrote ${lines.length} lines, ${Buffer.byteLength(out)} bytes`);
