#!/usr/bin/env node
// Golden ids for the chat-template tests: the texts DeepSeek-R1's template and the R1-Zero template render for the
// conversations in ChatTemplateTests (written out here by hand from the templates), encoded by @lenml/tokenizers.
// Usage: node chat-golden.js OUT.jsonl
'use strict';
const fs = require('fs');
const path = require('path');
const { modelsDir, loadLenml, lenmlEncode } = require('./lib');

const B = '<｜begin▁of▁sentence｜>', E = '<｜end▁of▁sentence｜>', U = '<｜User｜>', A = '<｜Assistant｜>';
const zero = (p) => 'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: ' + p + '. Assistant:';
const cases = [
  { name: 'r1_single_turn', text: `${B}${U}What is 2+2?${A}<think>\n` },
  { name: 'r1_multi_turn', text: `${B}Be brief.\n\nAnswer in English.${U}What is 2+2?${A}\n\n4${E}${U}And 3+3?${A}<think>\n` },
  { name: 'r1_chinese_no_prompt', text: `${B}${U}计算 1+1。${A}答案是 2。${E}` },
  { name: 'r1zero_gsm8k', text: zero('Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?'), bos: true },
];
const tok = loadLenml(path.join(modelsDir, 'tokenizer.json'), path.join(modelsDir, 'tokenizer_config.json'));
const lines = cases.map((c) => JSON.stringify({ name: c.name, text: c.text, ids: [...(c.bos ? [0] : []), ...lenmlEncode(tok, c.text)] }));
fs.writeFileSync(process.argv[2], lines.join('\n') + '\n');
console.error(`wrote ${lines.length} chat cases`);
