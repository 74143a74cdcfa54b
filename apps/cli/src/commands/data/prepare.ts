import { type PrepareResult, prepareData } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../../base-command.js';

export default class DataPrepare extends EagletCommand {
  static override description =
    `Turn jsonl conversations into Arrow shards the engine trains on, with manifest.json and rejects.jsonl.
Audio is decoded to 16 kHz mono PCM; the target's chat template renders, tokenizes and masks each record.
Every record is either written or listed in rejects.jsonl with its reason. Interrupted runs resume when rerun.`;
  static override examples = [
    '<%= config.bin %> data prepare --model ./my-target-model --data train.jsonl --out prepared/',
    '<%= config.bin %> data prepare --model ./model --data a.jsonl --data b.jsonl --out prepared/ --long-audio-policy reject --json',
  ];
  static override flags = {
    target: Flags.string({
      description:
        "target plugin id (see `eaglet plugins`; default: the one that claims the model's architecture)",
    }),
    model: Flags.string({
      description: 'model folder (tokenizer files, config.json) or Hugging Face Hub id (org/name[@revision])',
      required: true,
    }),
    data: Flags.string({
      description: 'input jsonl file, folder of them, or Hub dataset id (repeat for several)',
      required: true,
      multiple: true,
    }),
    out: Flags.string({ description: 'output folder', required: true }),
    format: Flags.string({ description: 'data format, or auto to detect per file', default: 'auto' }),
    'chat-template': Flags.string({ description: "chat template id (default: the target's own)" }),
    'max-length': Flags.integer({ description: 'maximum tokens per record', default: 4096 }),
    'max-length-policy': Flags.string({ options: ['reject', 'truncate'], default: 'reject' }),
    'long-audio-policy': Flags.string({
      description:
        'audio longer than the encoder window: reject the record, truncate it, or segment it at pauses',
      options: ['reject', 'truncate', 'segment'],
      default: 'segment',
    }),
    'shard-size': Flags.integer({ description: 'records per Arrow shard', default: 1000 }),
    concurrency: Flags.integer({ description: 'parallel audio decodes (0: one per core)', default: 0 }),
    overwrite: Flags.boolean({
      description: 'replace an earlier or unfinished run in --out',
      default: false,
    }),
  };

  async run(): Promise<PrepareResult> {
    const { flags } = await this.parse(DataPrepare);
    const { registry } = await this.eaglet(flags.config);
    const result = await prepareData(
      registry,
      {
        target: flags.target,
        model: flags.model,
        data: flags.data,
        out: flags.out,
        format: flags.format,
        ...(flags['chat-template'] ? { chatTemplate: flags['chat-template'] } : {}),
        maxLength: flags['max-length'],
        maxLengthPolicy: flags['max-length-policy'] as 'reject' | 'truncate',
        longAudioPolicy: flags['long-audio-policy'] as 'reject' | 'truncate' | 'segment',
        shardSize: flags['shard-size'],
        concurrency: flags.concurrency,
        overwrite: flags.overwrite,
      },
      { events: this.events(), signal: this.stopSignal() },
    );
    if (!this.jsonEnabled()) {
      const m = result.manifest;
      this.log(
        `${result.alreadyDone ? 'already prepared' : 'prepared'}: ${m.counts.written} of ${m.counts.records} records written, ` +
          `${m.counts.rejected} rejected${m.counts.rejected ? ' (reasons in rejects.jsonl)' : ''}, ` +
          `${m.counts.truncated} truncated; ${m.shards.length} shards, ${m.stats.tokens} tokens ` +
          `(${m.stats.lossTokens} trained), ${m.stats.audioSeconds.toFixed(1)} s audio in ${m.stats.audioClips} clips`,
      );
      for (const a of m.audioActions)
        this.log(
          `  ${a.file}:${a.line} [id ${a.id}] audio ${a.part + 1} (${a.seconds.toFixed(1)} s) ${a.action}${a.segments ? ` into ${a.segments.length}` : ''}`,
        );
      const h = m.stats.lengthHistogram;
      const most = Math.max(1, ...h.counts);
      this.log('record lengths (tokens):');
      h.counts.forEach((c, i) => {
        const from = i === 0 ? 0 : h.edges[i - 1]! + 1;
        this.log(`  ${`${from}-${h.edges[i]}`.padStart(11)} ${'█'.repeat(Math.ceil((30 * c) / most))} ${c}`);
      });
      if (result.resumedAt > 0 && !result.alreadyDone) this.log(`resumed after ${result.resumedAt} records`);
      this.log(`output: ${result.out}`);
    }
    return result;
  }
}
