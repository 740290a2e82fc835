// Shared helpers: locate the npm cache that infra/setup.sh fills and load the reference tokenizers from it.
'use strict';
const path = require('path');
const fs = require('fs');
const { createRequire } = require('module');

const root = path.resolve(__dirname, '..', '..');
const cache = process.env.DEEPSEEKRL_NPM_CACHE || path.join(root, '.cache', 'npm');
if (!fs.existsSync(path.join(cache, 'node_modules'))) {
  console.error(`error: ${cache}/node_modules is missing; run infra/setup.sh first`);
  process.exit(2);
}
const cacheRequire = createRequire(path.join(cache, 'package.json'));
const modelsDir = path.join(cache, 'node_modules', '@lenml', 'tokenizer-deepseek_v3', 'models');

/** The @lenml/tokenizers (transformers.js) tokenizer for a tokenizer.json (+ optional tokenizer_config.json). */
function loadLenml(tokenizerJsonPath, configPath) {
  const { TokenizerLoader } = cacheRequire('@lenml/tokenizers');
  const tokenizerJSON = JSON.parse(fs.readFileSync(tokenizerJsonPath, 'utf8'));
  const tokenizerConfig = configPath ? JSON.parse(fs.readFileSync(configPath, 'utf8')) : {};
  return TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
}

/** Encodes without BOS/EOS. */
function lenmlEncode(tok, text) {
  return tok.encode(text, { add_special_tokens: false });
}

function readJsonl(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

module.exports = { root, cache, cacheRequire, modelsDir, loadLenml, lenmlEncode, readJsonl };
