import { readFileSync } from 'node:fs';
import { QuickstartConfig } from '@eaglet/core';
import { type QuickstartResult, quickstart } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../base-command.js';
import { withDefault } from '../config-flags.js';

export default class Quickstart extends EagletCommand {
  static override description =
    "Run the whole pipeline on CPU in minutes on a target plugin's demo (a small model built offline, real speech), and print the report.";
  static override examples = [
    '<%= config.bin %> quickstart',
    '<%= config.bin %> quickstart --dir ./eaglet-quickstart',
    '<%= config.bin %> quickstart --target ID',
  ];
  static override flags = {
    dir: Flags.string({
      description: 'work folder for everything the quickstart makes',
      default: 'eaglet-quickstart',
    }),
    target: Flags.string({
      description: 'target plugin whose demo runs (default: the first registered target that has one)',
    }),
    'train-steps': Flags.integer({
      description: withDefault(QuickstartConfig, 'trainSteps', 'draft training steps'),
    }),
    'num-spec-tokens': Flags.integer({
      description: withDefault(
        QuickstartConfig,
        'numSpecTokens',
        'draft tokens per verification step in the benchmark',
      ),
    }),
  };

  async run(): Promise<QuickstartResult> {
    const { flags } = await this.parse(Quickstart);
    const { registry } = await this.eaglet(flags.config);
    const result = await quickstart(
      registry,
      {
        dir: flags.dir,
        ...(flags.target ? { target: flags.target } : {}),
        trainSteps: flags['train-steps'],
        numSpecTokens: flags['num-spec-tokens'],
      },
      { events: this.events(), signal: this.stopSignal() },
    );
    if (!this.jsonEnabled()) {
      this.log(`\nquickstart finished in ${result.dir}`);
      this.log(`  dataset: ${result.dataset} (${result.validation.totals.valid} valid records in all)`);
      for (const file of result.trainDatasets) this.log(`  training dataset: ${file}`);
      if (result.heldOutDataset)
        this.log(`  held-out dataset: ${result.heldOutDataset} (eval and benchmark only)`);
      this.log(`  model: ${result.model} (the ${result.target} demo target)`);
      const m = result.prepared.manifest;
      this.log(
        `  prepared: ${result.prepared.out} (${m.counts.written} records, ${m.stats.tokens} tokens, ` +
          `${m.audioActions.length} long recording(s), policy ${m.longAudioPolicy})`,
      );
      this.log(
        `  regenerated: ${result.regenerated.shards.join(', ')} (${result.regenerated.written} answered by the target, ` +
          `${result.regenerated.rejected} rejected: ${result.regenerated.rejectsFile})`,
      );
      this.log(`  prepared (regenerated): ${result.preparedRegenerated.out}`);
      if (result.preparedHeldOut) this.log(`  prepared (held out): ${result.preparedHeldOut.out}`);
      this.log(`  vocab: ${result.vocab.out} (hash ${result.vocab.hash.slice(0, 16)}...)`);
      this.log(`  draft: ${result.draft} (training log, checkpoints and curves beside it)`);
      const ev = result.train.eval;
      if (ev) {
        const accs = Object.keys(ev)
          .filter((k) => /^acc_\d+$/.test(k))
          .map((k) => `${k} ${ev[k]!.toFixed(3)}`);
        const bigram = ev.bigram_acc === undefined ? '' : ` (a bigram table: ${ev.bigram_acc.toFixed(3)})`;
        this.log(
          `  eval on the held-out split after ${result.train.steps} steps: ${accs.join(', ')}${bigram}`,
        );
      }
      this.log(`\n${readFileSync(result.bench.files.markdown, 'utf8')}`);
      this.log(
        [
          'What the numbers mean on CPU:',
          '- mean acceptance length: tokens each target verification step yields. It depends on the draft and the',
          '  target, not on the hardware: this draft reaches about the same on a GPU. The demo target is a small',
          "  model made for the demo, its answers easier to predict than a real model's: the number shows that the",
          '  pipeline trains a working draft, not what a draft of a 7B target will reach.',
          "- lossless: at temperature 0 Eagle3's outputs equal the target's own, token for token.",
          '- speedup: not a result here. The demo target is so small that a draft step costs a large share of a',
          '  target step, and each round takes seconds on a shared machine, where other programs move the rounds',
          '  apart (the interval says how far). Speculative decoding pays when the target is far larger than its',
          '  draft: the bound for the 7B architecture is measured on a GPU by tools/bench/embedded_speedup_bound.py',
          '  (docs/perf/).',
        ].join('\n'),
      );
      this.log(`report: ${result.bench.files.json}`);
      this.log(`        ${result.bench.files.markdown}`);
      if (result.bench.files.plot) this.log(`        ${result.bench.files.plot}`);
    }
    return result;
  }
}
