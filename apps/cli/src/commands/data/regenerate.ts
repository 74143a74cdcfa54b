import { loadRunConfig, RegenerateConfig } from '@eaglet/core';
import { type RegenerateReport, regenerate } from '@eaglet/flows';
import { Args, Flags } from '@oclif/core';
import { EagletCommand } from '../../base-command.js';

export default class DataRegenerate extends EagletCommand {
  static override description =
    `Answer the user turns again with the target model through OpenAI-compatible endpoints (vLLM or \`eaglet backend serve\`).
Endpoints are http://HOST:BASE_PORT+i/v1 for i < --num-endpoints (the seed's one server per GPU), or --endpoint URL...
Output keeps each input's format and audio paths (relative ones relative to the output), in shards data_{start}-{end}.jsonl of --shard-size
records, in input order, one set per input (a sub-folder per file when there are several); failures go to rejects.jsonl.
A request to an endpoint that goes down waits for its /health and is retried for --retry-minutes.
Run the same command again to resume: nothing is lost or written twice.`;
  static override examples = [
    '<%= config.bin %> data regenerate train.jsonl --out regen --base-port 6000 --num-endpoints 8',
    '<%= config.bin %> data regenerate a.jsonl --out regen --endpoint http://10.0.0.5:8000/v1 --audio-mode audio_url',
    '<%= config.bin %> data regenerate --run-config regen.json --set temperature.kind=uniform --set temperature.min=0 --set temperature.max=0.8',
  ];
  static override strict = false;
  static override args = {
    data: Args.string({
      description: 'input jsonl files, folders of them, or Hub dataset ids (seed: DATA_NAME_OR_PATH)',
    }),
  };
  static override flags = {
    'run-config': Flags.string({ description: 'JSON file with RegenerateConfig fields (flags override it)' }),
    set: Flags.string({ description: 'override a field: key.path=value', multiple: true }),
    out: Flags.string({ description: 'output folder (seed: OUTPUT_DIR)' }),
    format: Flags.string({ description: 'input format or auto (seed: DATA_FORMAT)' }),
    'shard-size': Flags.integer({
      description: 'records per output shard (seed: DATA_SHARD_SIZE, default 50000)',
    }),
    'base-port': Flags.integer({ description: 'port of the first endpoint (seed: BASE_PORT, default 6000)' }),
    'num-endpoints': Flags.integer({ description: 'endpoints on consecutive ports (default 1)' }),
    host: Flags.string({ description: 'host of the endpoints (default 127.0.0.1)' }),
    endpoint: Flags.string({ description: 'explicit endpoint base URL (…/v1); repeatable', multiple: true }),
    model: Flags.string({ description: 'served model name (default: ask /v1/models)' }),
    'api-key': Flags.string({ description: 'bearer token for the endpoints', env: 'EAGLET_API_KEY' }),
    concurrency: Flags.integer({ description: 'requests in flight (default 256)' }),
    'max-tokens': Flags.integer({ description: 'longest answer per turn (default 2048)' }),
    temperature: Flags.string({
      description: 'a number, or a JSON policy {"kind":"uniform","min":0,"max":0.8}',
    }),
    'top-p': Flags.string({ description: 'nucleus sampling (default 1)' }),
    'audio-mode': Flags.string({ description: 'how audio travels', options: ['input_audio', 'audio_url'] }),
    turns: Flags.string({
      description: 'regenerate every assistant turn or the last one',
      options: ['all', 'last'],
    }),
    'retry-minutes': Flags.string({
      description:
        'how long a failing request is retried, waiting on /health for a down endpoint (default 10)',
    }),
    retries: Flags.integer({
      description: 'at most this many retries per request (default: retry-minutes decides)',
    }),
    'reject-truncated': Flags.boolean({ description: 'send answers cut by max-tokens to rejects.jsonl' }),
    seed: Flags.integer({ description: 'seed of the temperature policy and of sampled requests' }),
  };

  async run(): Promise<RegenerateReport> {
    const { argv, flags } = await this.parse(DataRegenerate);
    const { registry } = await this.eaglet(flags.config);
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    const config = loadRunConfig(RegenerateConfig, {
      ...(flags['run-config'] ? { file: flags['run-config'] } : {}),
      overrides: flags.set ?? [],
      cwd: process.cwd(),
      fields: {
        data: argv.length ? (argv as string[]) : undefined,
        outputDir: flags.out,
        format: flags.format,
        shardSize: flags['shard-size'],
        basePort: flags['base-port'],
        numEndpoints: flags['num-endpoints'],
        host: flags.host,
        endpoints: flags.endpoint,
        model: flags.model,
        apiKey: flags['api-key'],
        concurrency: flags.concurrency,
        maxTokens: flags['max-tokens'],
        temperature: flags.temperature === undefined ? undefined : JSON.parse(flags.temperature),
        topP: num(flags['top-p']),
        audioMode: flags['audio-mode'],
        turns: flags.turns,
        retryMinutes: num(flags['retry-minutes']),
        retries: flags.retries,
        rejectTruncated: flags['reject-truncated'] || undefined,
        seed: flags.seed,
      },
    });
    const report = await regenerate(registry, config, { events: this.events(), signal: this.stopSignal() });
    if (!this.jsonEnabled()) {
      this.log(
        `${report.stopped ? 'stopped' : 'done'}: ${report.written} records written, ${report.rejected} rejected this run` +
          `${report.resumed ? ` (${report.resumed} done before)` : ''}, ${report.total} in all, ${report.seconds.toFixed(1)} s`,
      );
      this.log(`  model ${report.model} via ${report.endpoints.join(', ')}; ${report.retries} retries`);
      for (const s of report.shards) this.log(`  ${s}`);
      if (report.rejected) this.log(`  rejects: ${report.rejectsFile}`);
      if (report.stopped) this.log('run the same command again to continue');
    }
    return report;
  }
}
