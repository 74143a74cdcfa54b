#!/usr/bin/env node
// Fails when generic code names a model family, its special tokens or its sizes.
//
// eaglet's rule: what a target model is (its architecture, chat template, special tokens, audio
// placeholder, layer counts, widths) is declared once, in its target plugin. Every other product
// file (core, flows, the engine, the audio package, the backends, the data formats, the apps)
// must work for any target, so it may not name one. Tests and docs are free to.
//
// A line that must name a family for a reason that is not a target fact carries a marker with
// the reason, on the line itself or the line above:  `model-agnostic: allow (<why>)`.
// Eagle3 drafts are Llama decoder layers by definition (vLLM reads `LlamaForCausalLMEagle3`), so
// those architecture names are not target facts and are allowed everywhere.
//
// Usage: node tools/checks/model-agnostic.mjs [--list]   (exit 1 when anything is found)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Generic product code: every folder here must stay model-agnostic. */
export const GENERIC_ROOTS = [
  'packages/core/src',
  'packages/audio/src',
  'packages/chat-template/src',
  'packages/flows/src',
  'packages/engine/src',
  'packages/engine/python/eaglet_engine',
  'plugins/formats/src',
  'plugins/torch-backend/src',
  'plugins/vllm-backend/src',
  'plugins/vllm-backend/python/eaglet_vllm',
  'apps/cli/src',
  'apps/server/src',
  'apps/server/dashboard',
];

const EXTENSIONS = /\.(ts|mts|js|mjs|py|html|css|json)$/;

/** What a target fact looks like in source: family names, special tokens, ids and sizes. */
export const FORBIDDEN = [
  { what: 'model family name', re: /qwen|whisper|mistral|gemma|deepseek|\bphi-?\d|chatml/i },
  // Llama, except the Eagle3 draft's own architecture names (see the header).
  {
    what: 'model family name',
    llama: true,
    re: /llama(?!ForCausalLMEagle3|_eagle3)/i,
    except: /Eagle3LlamaForCausalLM|LlamaForCausalLMEagle3|llama_eagle3/,
  },
  {
    what: 'special token',
    re: /<\|(AUDIO|audio_bos|audio_eos|im_start|im_end|endoftext|eot_id|begin_of_text)\|>/,
  },
  // Qwen2 special-token ids (151643..151656) and vocabulary/width sizes of known targets.
  { what: 'special-token id or model size', re: /\b(1516[45]\d|156032|151936|152064|11008)\b/ },
];

const MARKER = /model-agnostic: allow \(.+\)/;

/**
 * Files that may say "Llama": they define the Eagle3 draft, which is one Llama decoder layer by
 * definition (vLLM loads it as LlamaForCausalLMEagle3, model_type "llama"), or compute decoder
 * layers of the Llama layout that most targets share (the fast decode path, which checks a
 * target's layers structurally and refuses other layouts). Other family names stay forbidden there.
 */
const LLAMA_LAYOUT_FILES = new Set([
  'packages/core/src/schemas/draft.ts',
  'packages/engine/python/eaglet_engine/draft.py',
  'packages/engine/python/eaglet_engine/export.py',
  'packages/engine/python/eaglet_engine/schemas/train.schema.json',
  'packages/engine/python/eaglet_engine/generate/static_target.py',
  'packages/engine/python/eaglet_engine/generate/fused_decode.py',
  'packages/engine/python/eaglet_engine/generate/static_draft.py',
]);

function* files(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    if (
      name === 'node_modules' ||
      name === 'dist' ||
      name === '__pycache__' ||
      name === 'tests' ||
      name === 'test'
    )
      continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (EXTENSIONS.test(name)) yield path;
  }
}

export function findModelNames(base = root) {
  const hits = [];
  for (const generic of GENERIC_ROOTS) {
    for (const file of files(join(base, generic))) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (MARKER.test(line) || MARKER.test(lines[i - 1] ?? '')) return;
        for (const rule of FORBIDDEN) {
          if (rule.llama && LLAMA_LAYOUT_FILES.has(relative(base, file))) continue;
          const stripped = rule.except ? line.replace(new RegExp(rule.except, 'g'), '') : line;
          const m = rule.re.exec(stripped);
          if (m) {
            hits.push({ file: relative(base, file), line: i + 1, what: rule.what, text: m[0] });
            break;
          }
        }
      });
    }
  }
  return hits;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const hits = findModelNames();
  for (const h of hits) console.log(`${h.file}:${h.line}: ${h.what} "${h.text}"`);
  if (hits.length) {
    console.error(
      `\n${hits.length} place(s) in generic code name a target model. Move the fact into its target plugin ` +
        '(plugins/<target>/), or, where it is not a target fact, mark the line ' +
        '`model-agnostic: allow (<why>)`.',
    );
    process.exit(1);
  }
  console.log('model-agnostic: generic code names no target model');
}
