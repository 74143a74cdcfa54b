import { type ExportResult, exportDraft } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../base-command.js';

export default class Export extends EagletCommand {
  static override description =
    `Export a training checkpoint as a draft folder vLLM loads (config.json + model.safetensors, no embedding),
and optionally in the speculators layout. --checkpoint takes a checkpoint or a training outputDir (its newest checkpoint).`;
  static override examples = [
    '<%= config.bin %> export --checkpoint out/ --out draft/',
    '<%= config.bin %> export --checkpoint out/checkpoints/step-00001000 --out drafts/ --format vllm --format speculators',
  ];
  static override flags = {
    checkpoint: Flags.string({ description: 'checkpoint folder or training outputDir', required: true }),
    out: Flags.string({ description: 'output folder', required: true }),
    format: Flags.string({
      description: 'export layout (repeat for several)',
      options: ['vllm', 'speculators'],
      multiple: true,
      default: ['vllm'],
    }),
    'speculative-tokens': Flags.integer({
      description: 'num_speculative_tokens written into a speculators config',
      default: 3,
    }),
    'target-model': Flags.string({
      description: "verifier named in a speculators config (default: the training run's)",
    }),
  };

  async run(): Promise<ExportResult> {
    const { flags } = await this.parse(Export);
    const result = await exportDraft(
      {
        checkpoint: flags.checkpoint,
        outputDir: flags.out,
        formats: flags.format as ('vllm' | 'speculators')[],
        speculativeTokens: flags['speculative-tokens'],
        ...(flags['target-model'] ? { targetModel: flags['target-model'] } : {}),
      },
      { events: this.events() },
    );
    if (!this.jsonEnabled()) {
      this.log(`exported step ${result.step} of ${result.checkpoint}`);
      for (const [fmt, folder] of Object.entries(result.drafts)) this.log(`  ${fmt}: ${folder}`);
    }
    return result;
  }
}
