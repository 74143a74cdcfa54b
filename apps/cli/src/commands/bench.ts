import { BenchConfig, loadRunConfig } from '@eaglet/core';
import { type BenchOutcome, bench } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../base-command.js';
import { backendOptionFlag, backendOptionOverrides, withDefault } from '../config-flags.js';

export default class Bench extends EagletCommand {
  static override description =
    `Benchmark the target alone (baseline) and with the Eagle3 draft on the same prompts, in --rounds rounds whose order alternates.
Reports throughput, latency (mean, p50, p90), the speedup of each round and their geometric mean with a 95% interval, mean acceptance
length (1 + accepted/drafts), acceptance per draft position, and at temperature 0 whether Eagle3's outputs equal the baseline's; as JSON
(--output-file), Markdown and a PNG plot beside it. A speedup above the mean acceptance length, rounds that disagree or scatter beyond
noise, or a single round make the result "not trustworthy", and the report says so instead of presenting the speedup.
The seed script's flags are accepted with underscores too (--target_model, --num_spec_tokens, ...).
Settings only one backend understands go in --backend-option key=value (backendOptions in a run config).`;
  static override examples = [
    '<%= config.bin %> bench --target-model ./my-target-model --draft-model ./eagle3 --test-data-path test.jsonl --output-file out/bench.json --num-spec-tokens 4 --num-prompts 10',
    '<%= config.bin %> bench --backend vllm --target_model ./my-target-model --draft_model eagle3 --use_eagle --num_spec_tokens 4 --output_file out.json --test_data_path test.jsonl --backend-option gpuMemoryUtilization=0.85',
  ];
  static override flags = {
    'run-config': Flags.string({ description: 'JSON file with BenchConfig fields (flags override it)' }),
    set: Flags.string({ description: 'override a field: key.path=value', multiple: true }),
    backend: Flags.string({
      description:
        'backend plugin (torch: embedded; vllm); default: the first registered, the embedded torch backend',
    }),
    target: Flags.string({
      description: "target plugin id (default: the plugin that claims the target model's architecture)",
    }),
    'target-model': Flags.string({
      aliases: ['target_model'],
      description: 'target model folder or Hub id, org/name[@revision] (seed: --target_model)',
    }),
    'draft-model': Flags.string({
      aliases: ['draft_model'],
      description: 'exported Eagle3 draft folder or Hub id (seed: --draft_model)',
    }),
    'use-eagle': Flags.boolean({
      aliases: ['use_eagle'],
      allowNo: true,
      description: withDefault(
        BenchConfig,
        'useEagle',
        'run Eagle3 (seed: --use_eagle); --no-use-eagle runs the baseline alone',
      ),
    }),
    baseline: Flags.boolean({
      allowNo: true,
      description: withDefault(BenchConfig, 'baseline', 'run the baseline; --no-baseline runs Eagle3 alone'),
    }),
    'output-file': Flags.string({
      aliases: ['output_file'],
      description: 'JSON report (seed: --output_file)',
    }),
    'test-data-path': Flags.string({
      aliases: ['test_data_path'],
      description: 'prompts jsonl (seed: --test_data_path)',
    }),
    'num-prompts': Flags.integer({
      aliases: ['num_prompts'],
      description: withDefault(BenchConfig, 'numPrompts', 'prompts (seed: --num_prompts)'),
    }),
    temp: Flags.string({
      aliases: ['temperature'],
      description: withDefault(BenchConfig, 'temperature', 'sampling temperature (seed: --temp)'),
    }),
    'max-model-len': Flags.integer({
      aliases: ['max_model_len'],
      description: withDefault(BenchConfig, 'maxModelLen', 'seed: --max_model_len'),
    }),
    'output-len': Flags.integer({
      aliases: ['output_len'],
      description: withDefault(BenchConfig, 'outputLen', 'max new tokens (seed: --output_len)'),
    }),
    'max-num-seqs': Flags.integer({
      aliases: ['max_num_seqs'],
      description: withDefault(BenchConfig, 'maxNumSeqs', 'seed: --max_num_seqs'),
    }),
    'num-spec-tokens': Flags.integer({
      aliases: ['num_spec_tokens'],
      description: withDefault(BenchConfig, 'numSpecTokens', 'draft chain length (seed: --num_spec_tokens)'),
    }),
    tp: Flags.integer({ description: withDefault(BenchConfig, 'tp', 'tensor-parallel size (seed: --tp)') }),
    seed: Flags.integer({ description: withDefault(BenchConfig, 'seed', 'seed: --seed') }),
    device: Flags.string({
      description: withDefault(BenchConfig, 'device', 'where the model runs'),
      options: ['auto', 'cpu', 'cuda'],
    }),
    dtype: Flags.string({
      description: withDefault(BenchConfig, 'dtype', 'weights and activations'),
      options: ['auto', 'bf16', 'fp16', 'fp32'],
    }),
    'warmup-prompts': Flags.integer({
      description: withDefault(
        BenchConfig,
        'warmupPrompts',
        'unmeasured warm-up prompts before every measured pass',
      ),
    }),
    rounds: Flags.integer({
      description: withDefault(
        BenchConfig,
        'rounds',
        'measured rounds; each runs every mode once over the same prompts, the order alternating',
      ),
    }),
    'backend-option': backendOptionFlag,
    'cpu-threads': Flags.integer({
      description: 'CPU threads of the embedded engine',
      deprecated: { message: 'use --backend-option cpuThreads=N' },
    }),
  };

  async run(): Promise<BenchOutcome> {
    const { flags } = await this.parse(Bench);
    const { registry } = await this.eaglet(flags.config);
    const config = loadRunConfig(BenchConfig, {
      ...(flags['run-config'] ? { file: flags['run-config'] } : {}),
      overrides: [
        ...(flags.set ?? []),
        ...backendOptionOverrides(flags['backend-option'], { cpuThreads: flags['cpu-threads'] }),
      ],
      cwd: process.cwd(),
      fields: {
        backend: flags.backend,
        target: flags.target,
        targetModel: flags['target-model'],
        draftModel: flags['draft-model'],
        useEagle: flags['use-eagle'],
        baseline: flags.baseline,
        outputFile: flags['output-file'],
        testDataPath: flags['test-data-path'],
        numPrompts: flags['num-prompts'],
        temperature: flags.temp === undefined ? undefined : Number(flags.temp),
        maxModelLen: flags['max-model-len'],
        outputLen: flags['output-len'],
        maxNumSeqs: flags['max-num-seqs'],
        numSpecTokens: flags['num-spec-tokens'],
        tp: flags.tp,
        seed: flags.seed,
        device: flags.device,
        dtype: flags.dtype,
        warmupPrompts: flags['warmup-prompts'],
        rounds: flags.rounds,
      },
    });
    const outcome = await bench(registry, config, { events: this.events(), signal: this.stopSignal() });
    if (!this.jsonEnabled()) {
      const { readFileSync } = await import('node:fs');
      this.log(`\n${readFileSync(outcome.files.markdown, 'utf8')}`);
      this.log(
        `report: ${outcome.files.json}\n        ${outcome.files.markdown}\n        ${outcome.files.plot}`,
      );
    }
    return outcome;
  }
}
