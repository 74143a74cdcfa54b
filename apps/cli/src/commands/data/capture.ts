import { type CaptureResult, captureData } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../../base-command.js';

export default class DataCapture extends EagletCommand {
  static override description =
    `Run the frozen target once over prepared data and keep what the draft trains on, for offline training.
Writes the aux layers' hidden states of every token and the final hidden state on the loss rows (bf16 safetensors
shards), the target's embedding and lm_head, and capture.json, which ties them to the target (its Hub commit when it
came from the Hub) and to the prepared data's fingerprint. A train config whose trainData and evalData name capture
folders then trains without loading the target. Interrupted runs (Ctrl-C, kill, a full disk) resume when rerun.`;
  static override examples = [
    '<%= config.bin %> data capture --model ./my-target-model --data prepared/ --out captured/',
    '<%= config.bin %> data capture --model org/model@revision --data prepared/ --out captured/ --nproc 8',
    '<%= config.bin %> data capture --model ./model --data prepared/ --out captured/ --aux-layers 2,16,29 --json',
  ];
  static override flags = {
    target: Flags.string({
      description:
        "target plugin id (see `eaglet plugins`; default: the one that claims the model's architecture)",
    }),
    model: Flags.string({
      description: 'target checkpoint folder or Hugging Face Hub id (org/name[@revision])',
      required: true,
    }),
    data: Flags.string({
      description: 'prepared folder (repeat for several)',
      required: true,
      multiple: true,
    }),
    out: Flags.string({ description: 'output folder', required: true }),
    'aux-layers': Flags.string({
      description:
        "vLLM's aux layer ids to tap, e.g. 2,16,29 (default: the target's; must match the draft's at training)",
    }),
    'shard-tokens': Flags.integer({ description: 'tokens per shard (the unit of commit)', default: 65536 }),
    'batch-tokens': Flags.integer({ description: 'padded tokens per target forward', default: 8192 }),
    precision: Flags.string({
      options: ['bf16', 'fp32'],
      default: 'bf16',
      description: 'dtype the target runs in',
    }),
    device: Flags.string({ options: ['auto', 'cpu', 'cuda'], default: 'auto' }),
    nproc: Flags.integer({ description: 'GPUs on this machine (more than 1 runs torchrun)', default: 1 }),
    overwrite: Flags.boolean({
      description: 'delete an earlier or unfinished capture in --out first',
      default: false,
    }),
  };

  async run(): Promise<CaptureResult> {
    const { flags } = await this.parse(DataCapture);
    const { registry } = await this.eaglet(flags.config);
    const result = await captureData(
      registry,
      {
        ...(flags.target ? { target: flags.target } : {}),
        model: flags.model,
        data: flags.data,
        out: flags.out,
        ...(flags['aux-layers'] ? { auxLayerIds: flags['aux-layers'].split(',').map(Number) } : {}),
        shardTokens: flags['shard-tokens'],
        batchTokens: flags['batch-tokens'],
        precision: flags.precision as 'bf16' | 'fp32',
        device: flags.device as 'auto' | 'cpu' | 'cuda',
        nprocPerNode: flags.nproc,
        overwrite: flags.overwrite,
      },
      { events: this.events(), signal: this.stopSignal() },
    );
    if (!this.jsonEnabled()) {
      const m = result.manifest;
      const bytes = m.shards.reduce((n, s) => n + s.bytes, 0);
      this.log(
        `${result.alreadyDone ? 'already captured' : 'captured'}: ${m.counts.records} records, ${m.counts.tokens} tokens ` +
          `(${m.counts.rows} loss rows) in ${m.shards.length} shards, ${(bytes / 2 ** 20).toFixed(1)} MiB ` +
          `(${m.bytesPerToken.toFixed(0)} bytes/token) + target head ${(m.head.bytes / 2 ** 20).toFixed(1)} MiB`,
      );
      if (!result.alreadyDone && result.tokens)
        this.log(
          `  ${result.tokensPerSecond.toFixed(0)} tokens/s over ${result.shardsWritten} shards written by this run`,
        );
      this.log(`  aux layers ${m.target.auxLayerIds.join(', ')} of ${m.target.model}`);
      this.log(`output: ${result.out} (use it as trainData / evalData to train offline)`);
    }
    return result;
  }
}
