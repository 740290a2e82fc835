#!/usr/bin/env node
// The JS reference's single-thread encode speed on a {"text"} JSONL corpus, for `deepseekrl bench tokenizer`:
// one warm-up pass, then RUNS timed passes; prints {"encode_mb_per_s": median, "bytes": N, "lines": N} on stdout.
// Usage: node bench.js CORPUS.jsonl [RUNS]
'use strict';
const path = require('path');
const { modelsDir, loadLenml, lenmlEncode, readJsonl } = require('./lib');

const [corpus, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);
const texts = readJsonl(corpus).map((r) => r.text);
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf8'), 0);
const tok = loadLenml(path.join(modelsDir, 'tokenizer.json'), path.join(modelsDir, 'tokenizer_config.json'));
let sink = 0;
for (const t of texts) sink += lenmlEncode(tok, t).length;
const rates = [];
for (let r = 0; r < runs; r++) {
  const t0 = process.hrtime.bigint();
  for (const t of texts) sink += lenmlEncode(tok, t).length;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  rates.push(bytes / 1e6 / seconds);
}
rates.sort((a, b) => a - b);
const mid = rates.length >> 1;
const median = rates.length % 2 ? rates[mid] : (rates[mid - 1] + rates[mid]) / 2;
console.log(JSON.stringify({ encode_mb_per_s: median, bytes, lines: texts.length, tokens: sink }));
