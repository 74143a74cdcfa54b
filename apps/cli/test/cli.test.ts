import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeMalformedDataset, makeSpeechDataset, tinyHfChatModel } from '@eaglet/fixtures';
import { describe, expect, it } from 'vitest';
import { eaglet } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'eaglet-cli-'));
const EXAMPLE_PLUGIN = join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'tools',
  'fixtures',
  'plugins',
  'example-llama',
);

describe('eaglet (built binary)', () => {
  it('`target info` on a chat LLM: hf-chat claims it and says what it reads and whether vLLM serves its draft', async () => {
    const r = await eaglet(['target', 'info', '--model', tinyHfChatModel()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^hf-chat: LlamaForCausalLM, 8 layers, hidden 128/);
    expect(r.stdout).toMatch(/reads from the model folder:\n {2}config\.json: architectures/);
    expect(r.stdout).toMatch(/chat template: .*chat_template\.jinja/);
    expect(r.stdout).toMatch(/note: vLLM serves an Eagle3 draft for LlamaForCausalLM natively/);
  });

  it('--help lists the commands', async () => {
    const r = await eaglet(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['data', 'doctor', 'plugins', 'target']) expect(r.stdout).toContain(cmd);
  });

  it('plugins lists the built-ins with versions, as text and JSON', async () => {
    const cwd = tmp();
    const text = await eaglet(['plugins'], { cwd });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/eaglet:formats 0\.1\.0/);
    expect(text.stdout).toMatch(/formats\s+openai-conversations, sharegpt, ultrachat/);
    const json = JSON.parse((await eaglet(['plugins', '--json'], { cwd })).stdout);
    expect(json.plugins[0]).toMatchObject({ name: 'eaglet:formats', module: '@eaglet/formats' });
  });

  it('doctor checks the real environment and says what is missing', async () => {
    const r = await eaglet(['doctor', '--json']);
    const report = JSON.parse(r.stdout);
    const byName = Object.fromEntries(report.checks.map((c: { name: string }) => [c.name, c]));
    expect(byName.node.status).toBe('ok');
    expect(byName.ffmpeg.status).toBe('ok');
    expect(byName.python.status).toBe('ok');
    expect(byName.torch.status).toBe('ok');
    expect(['ok', 'warn']).toContain(byName.cuda.status);
    expect(r.code).toBe(report.ok ? 0 : 1);
  });

  it('doctor fails with a fix when the engine Python is missing', async () => {
    const r = await eaglet(['doctor'], { env: { EAGLET_PYTHON: '/nonexistent/python', EAGLET_HOME: tmp() } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ python .*no Python environment/);
    expect(r.stdout).toContain('npm run bootstrap');
  });

  it('data validate passes real LibriVox speech in the seed format', async () => {
    const ds = makeSpeechDataset(tmp());
    const r = await eaglet(['data', 'validate', ds.jsonl]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OK: 5 records, all valid.');
  });

  it('data validate reports each malformed record and exits 1; --json has them all', async () => {
    const { jsonl, expected } = makeMalformedDataset(tmp());
    const r = await eaglet(['data', 'validate', jsonl]);
    expect(r.code).toBe(1);
    for (const e of expected)
      expect(r.stdout).toContain(`${jsonl}:${e.line}: ${e.path ? `${e.path}: ` : ''}`);
    expect(r.stdout).toMatch(new RegExp(`INVALID: ${expected.length} of ${expected.length + 1} records`));
    const json = await eaglet(['data', 'validate', jsonl, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report.problems).toHaveLength(expected.length);
    expect(json.stderr).toBe(''); // quiet: no progress under --json
  });

  it('reports a bad config file with a coded error', async () => {
    const cwd = tmp();
    writeFileSync(join(cwd, 'eaglet.config.json'), '{"plugins": ["./missing-plugin.mjs"]}');
    const r = await eaglet(['plugins'], { cwd });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error [EAGLET_PLUGIN_NOT_FOUND]');
    expect(r.stderr).toContain('hint: check the path');
  });

  it("takes a backend's own settings as --backend-option and names a bad one with its backend", async () => {
    const cwd = tmp();
    const paths = [
      '--target-model',
      'm',
      '--test-data-path',
      't.jsonl',
      '--output-file',
      'o.json',
      '--no-use-eagle',
    ];
    const torch = await eaglet(
      [
        'bench',
        ...paths,
        '--backend-option',
        'cpuThreads=-1',
        '--backend-option',
        'gpuMemoryUtilization=0.5',
      ],
      { cwd },
    );
    expect(torch.code).toBe(1);
    expect(torch.stderr).toContain('error [EAGLET_CONFIG_INVALID]: invalid options for backend torch');
    expect(torch.stderr).toMatch(/backendOptions\.cpuThreads: .*\(backend torch\)/);
    expect(torch.stderr).toMatch(
      /backendOptions\.gpuMemoryUtilization: backend torch has no such option \(it takes: cpuThreads\)/,
    );
    // JSON values, and key paths into nested options.
    const vllm = await eaglet(
      [
        'bench',
        ...paths,
        '--backend',
        'vllm',
        '--backend-option',
        'engineArgs.swap_space=4',
        '--backend-option',
        'enforceEager="yes"',
      ],
      { cwd },
    );
    expect(vllm.code).toBe(1);
    expect(vllm.stderr).toMatch(/backendOptions\.enforceEager: .*boolean.*\(backend vllm\)/);
    expect(vllm.stderr).not.toMatch(/backendOptions\.engineArgs/);
  });
});

describe('an external plugin through the CLI', () => {
  const project = () => {
    const cwd = tmp();
    mkdirSync(join(cwd, 'node_modules'));
    symlinkSync(EXAMPLE_PLUGIN, join(cwd, 'node_modules', 'eaglet-plugin-example-llama'));
    writeFileSync(
      join(cwd, 'eaglet.config.json'),
      JSON.stringify({ plugins: ['eaglet-plugin-example-llama'] }),
    );
    mkdirSync(join(cwd, 'tiny-llama'));
    writeFileSync(
      join(cwd, 'tiny-llama', 'config.json'),
      JSON.stringify({
        architectures: ['LlamaForCausalLM'],
        num_hidden_layers: 8,
        hidden_size: 64,
        vocab_size: 512,
        eos_token_id: 2,
      }),
    );
    writeFileSync(
      join(cwd, 'tiny-llama', 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { 'model.embed_tokens.weight': 'model.safetensors' } }),
    );
    return cwd;
  };

  it('is listed by `eaglet plugins` with its version and module', async () => {
    const r = await eaglet(['plugins'], { cwd: project() });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('eaglet-plugin-example-llama 1.2.3  (eaglet-plugin-example-llama)');
    expect(r.stdout).toMatch(/targets\s+example-llama/);
  });

  it('its target model is used by `eaglet target info`', async () => {
    const cwd = project();
    const r = await eaglet(
      ['target', 'info', '--target', 'example-llama', '--model', 'tiny-llama', '--json'],
      { cwd },
    );
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.info).toMatchObject({ numLayers: 8, auxLayerIds: [2, 4, 5], hiddenSize: 64 });
    expect(d.draft).toMatchObject({
      hidden_size: 64,
      draft_vocab_size: 512,
      num_key_value_heads: 2,
      eagle_aux_hidden_state_layer_ids: [2, 4, 5],
    });
  });

  it('its data format is used by `eaglet data validate`', async () => {
    const cwd = project();
    writeFileSync(
      join(cwd, 'pr.jsonl'),
      '{"id":"a","prompt":"hi","response":"hello"}\n{"id":"","prompt":"x","response":"y"}\n',
    );
    const r = await eaglet(['data', 'validate', 'pr.jsonl'], { cwd });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('pr.jsonl:2: id: id must be a non-empty string');
    expect(r.stdout).toContain('[prompt-response]: 2 records, 1 valid, 1 invalid');
  });

  it('an unknown target names the known ones', async () => {
    const r = await eaglet(['target', 'info', '--target', 'nope', '--model', '.'], { cwd: project() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown target model "nope"');
    expect(r.stderr).toMatch(/known target models: (.*, )?example-llama/); // beside the built-in qwen2-audio
  });
});
