import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleLlamaPlugin } from 'eaglet-plugin-example-llama';
import { describe, expect, it } from 'vitest';
import { createEaglet, describeTarget, validateData } from '../src/index.js';

// The programmatic path another repo takes: import eaglet's packages, register its own plugin,
// run the same flows the CLI runs.
describe('an external plugin through the programmatic API', () => {
  const model = () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-llama-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        architectures: ['LlamaForCausalLM'],
        num_hidden_layers: 32,
        hidden_size: 4096,
        vocab_size: 128256,
        eos_token_id: [128001, 128009],
      }),
    );
    return dir;
  };

  it('registers as an object and drives describeTarget and validateData', async () => {
    const { registry } = await createEaglet({ cwd: tmpdir(), plugins: [exampleLlamaPlugin()] });
    const d = await describeTarget(registry, { target: 'example-llama', model: model() });
    expect(d.info.tapLayers).toEqual([1, 15, 28]);
    expect(d.info.eosTokenIds).toEqual([128001, 128009]);
    expect(d.draft.draft_vocab_size).toBe(8000);

    const file = join(mkdtempSync(join(tmpdir(), 'eaglet-pr-')), 'd.jsonl');
    writeFileSync(file, '{"id":"1","prompt":"2+2?","response":"4"}\n');
    const report = await validateData(registry, { files: [file] });
    expect(report.ok).toBe(true);
    expect(report.files[0]!.format).toBe('prompt-response');
  });

  it('registers by package name, like the config file does', async () => {
    const { registry } = await createEaglet({
      cwd: import.meta.dirname,
      plugins: ['eaglet-plugin-example-llama'],
    });
    expect(registry.plugins().map((p) => `${p.name}@${p.version}`)).toContain(
      'eaglet-plugin-example-llama@1.2.3',
    );
    expect(registry.ownerOf('target', 'example-llama')).toBe('eaglet-plugin-example-llama');
  });

  it('refuses a plugin whose ids clash with a built-in', async () => {
    const clash = {
      name: 'clash',
      version: '0',
      formats: [{ ...exampleLlamaPlugin().formats[0]!, name: 'sharegpt' }],
    };
    await expect(createEaglet({ cwd: tmpdir(), plugins: [clash] })).rejects.toThrow(
      /data format "sharegpt" from plugin "clash" is already registered by "eaglet:formats"/,
    );
  });
});
