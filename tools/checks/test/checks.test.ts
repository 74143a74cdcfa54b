import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ESM scripts without type declarations
import { checkBoundaries } from '../boundaries.mjs';
// @ts-expect-error: plain ESM scripts without type declarations
import { findModelNames } from '../model-agnostic.mjs';

/** A temporary tree laid out like the repository, with the given files. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'eaglet-checks-'));
  for (const [path, body] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), body);
  }
  return root;
}

describe('model-agnostic check', () => {
  it('finds family names, special tokens and sizes in generic code, not in plugins or tests', () => {
    const root = tree({
      'packages/flows/src/a.ts': "const placeholder = '<|AUDIO|>';\n",
      'packages/engine/python/eaglet_engine/b.py': 'from transformers import WhisperFeatureExtractor\n',
      'packages/core/src/c.ts': 'export const vocab = 156032;\n',
      'apps/cli/src/d.ts': "const example = 'Qwen2-Audio-7B-Instruct';\n",
      'plugins/qwen2-audio/src/target.ts': "const token = '<|AUDIO|>';\n",
      'packages/flows/test/e.test.ts': "const token = '<|AUDIO|>';\n",
    });
    const hits = findModelNames(root) as Array<{ file: string; line: number; what: string }>;
    expect(hits.map((h) => `${h.file}:${h.line} ${h.what}`).sort()).toEqual([
      'apps/cli/src/d.ts:1 model family name',
      'packages/core/src/c.ts:1 special-token id or model size',
      'packages/engine/python/eaglet_engine/b.py:1 model family name',
      'packages/flows/src/a.ts:1 special token',
    ]);
  });

  it("allows the Eagle3 draft's own Llama architecture names and marked lines", () => {
    const root = tree({
      'packages/core/src/draft.ts': [
        "architectures: ['LlamaForCausalLMEagle3'],",
        '// model-agnostic: allow (the seed script is named after its model)',
        "const script = 'qwen2_audio_bench.py';",
        "const llama = 'llama';",
      ].join('\n'),
    });
    expect(findModelNames(root)).toEqual([
      { file: 'packages/core/src/draft.ts', line: 4, what: 'model family name', text: 'llama' },
    ]);
  });

  it('lets the Eagle3 draft and the Llama-layout fast path say Llama, and nothing else', () => {
    const root = tree({
      'packages/engine/python/eaglet_engine/draft.py': '# one Llama decoder layer\nx = "Qwen2"\n',
      'packages/engine/python/eaglet_engine/trainer.py': '# a Llama layer\n',
    });
    expect(findModelNames(root).map((h: { file: string; line: number }) => `${h.file}:${h.line}`)).toEqual([
      'packages/engine/python/eaglet_engine/draft.py:2',
      'packages/engine/python/eaglet_engine/trainer.py:1',
    ]);
  });
});

describe('boundaries check (dependency-cruiser)', () => {
  const base = {
    'tsconfig.base.json': JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' },
    }),
    'packages/core/src/index.ts': 'export const core = 1;\n',
    'plugins/b/src/index.ts':
      "import { core } from '../../../packages/core/src/index.js';\nexport const b = core;\n",
  };

  it('passes a tree that follows the layer rules', () => {
    const root = tree({
      ...base,
      'plugins/a/src/index.ts':
        "import { core } from '../../../packages/core/src/index.js';\nexport const a = core;\n",
    });
    expect(checkBoundaries(root)).toMatchObject({ ok: true });
  });

  it.each([
    [
      'plugins-do-not-import-each-other',
      'plugins/a/src/index.ts',
      "export { b } from '../../b/src/index.js';\n",
    ],
    [
      'core-is-the-bottom-layer',
      'packages/core/src/x.ts',
      "export { b } from '../../../plugins/b/src/index.js';\n",
    ],
    [
      'product-imports-no-test-fixtures',
      'apps/cli/src/x.ts',
      "export { f } from '../../../tools/fixtures/src/index.js';\n",
    ],
    ['no-circular', 'packages/audio/src/x.ts', "export { y } from './y.js';\nexport const x = 1;\n"],
  ])('reports %s', (rule, file, body) => {
    const root = tree({
      ...base,
      [file]: body,
      'tools/fixtures/src/index.ts': 'export const f = 1;\n',
      'packages/audio/src/y.ts': "export { x } from './x.js';\nexport const y = 1;\n",
    });
    const result = checkBoundaries(root);
    expect(result.ok).toBe(false);
    expect(result.output).toContain(rule);
  });
});
