import { type QuickstartResult, quickstart } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../base-command.js';

export default class Quickstart extends EagletCommand {
  static override description =
    'Run the whole pipeline on CPU in minutes on real speech and a tiny random model, and print the report.';
  static override examples = [
    '<%= config.bin %> quickstart',
    '<%= config.bin %> quickstart --dir ./eaglet-quickstart',
  ];
  static override flags = {
    dir: Flags.string({
      description: 'work folder for everything the quickstart makes',
      default: 'eaglet-quickstart',
    }),
  };

  async run(): Promise<QuickstartResult> {
    const { flags } = await this.parse(Quickstart);
    const { registry } = await this.eaglet(flags.config);
    const result = await quickstart(
      registry,
      { dir: flags.dir },
      { events: this.events(), signal: this.stopSignal() },
    );
    if (!this.jsonEnabled()) {
      this.log(`\nquickstart finished in ${result.dir}`);
      this.log(`  dataset: ${result.dataset} (${result.validation.totals.valid} valid records)`);
      this.log(`  model: ${result.model}`);
      const m = result.prepared.manifest;
      this.log(
        `  prepared: ${result.prepared.out} (${m.counts.written} records, ${m.stats.tokens} tokens, ` +
          `${m.audioActions.length} long recording(s), policy ${m.longAudioPolicy})`,
      );
      this.log(`  vocab: ${result.vocab.out} (hash ${result.vocab.hash.slice(0, 16)}...)`);
    }
    return result;
  }
}
