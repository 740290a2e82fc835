#!/usr/bin/env node
// Checks that a tokenizer.json written by `deepseekrl tokenizer train` is a valid Hugging Face file: it loads in
// HF's Rust tokenizers (npm "tokenizers") and in @lenml/tokenizers, and both encode every {"text"} line of CORPUS
// to the ids in IDS (our encoder's output, from `deepseekrl tokenizer encode`). Exit code 1 on any difference.
// Usage: node check-trained.js TOKENIZER.json CORPUS.jsonl IDS.jsonl
'use strict';
const { cacheRequire, loadLenml, lenmlEncode, readJsonl } = require('./lib');

async function main() {
  const [file, corpus, idsFile] = process.argv.slice(2);
  const texts = readJsonl(corpus).map((r) => r.text);
  const ours = readJsonl(idsFile).map((r) => JSON.stringify(r.ids));
  const { Tokenizer } = cacheRequire('tokenizers');
  const rust = Tokenizer.fromFile(file);
  const js = loadLenml(file, null);
  let rustSame = 0, jsSame = 0;
  for (let i = 0; i < texts.length; i++) {
    const r = Array.from((await rust.encode(texts[i], null, { addSpecialTokens: false })).getIds());
    if (JSON.stringify(r) === ours[i]) rustSame++;
    else if (texts.length - rustSame <= 3) console.error(`line ${i + 1}: rust ${JSON.stringify(r).slice(0, 120)} ours ${ours[i].slice(0, 120)}`);
    if (JSON.stringify(lenmlEncode(js, texts[i])) === ours[i]) jsSame++;
  }
  console.log(`HF Rust tokenizers: ${rustSame}/${texts.length} identical; @lenml/tokenizers: ${jsSame}/${texts.length} identical`);
  process.exit(rustSame === texts.length ? 0 : 1);
}
main().catch((e) => { console.error(e); process.exit(1); });
