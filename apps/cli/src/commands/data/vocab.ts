import { buildVocab, type VocabResult } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../../base-command.js';

export default class DataVocab extends EagletCommand {
  static override description =
    `Build the draft vocabulary: the most frequent loss-masked tokens of prepared data -> d2t / t2d (safetensors).
The file's metadata holds the mapping hash that training and warm starts check.`;
  static override examples = [
    '<%= config.bin %> data vocab --data prepared/ --out vocab.safetensors',
    '<%= config.bin %> data vocab --data a/ --data b/ --out vocab.safetensors --draft-vocab-size 32000 --json',
  ];
  static override flags = {
    data: Flags.string({
      description: 'prepared folder (repeat for several)',
      required: true,
      multiple: true,
    }),
    out: Flags.string({ description: 'output safetensors file', required: true }),
    'draft-vocab-size': Flags.integer({ description: 'draft vocabulary size', default: 32000 }),
  };

  async run(): Promise<VocabResult> {
    const { flags } = await this.parse(DataVocab);
    const result = await buildVocab(
      { data: flags.data, out: flags.out, draftVocabSize: flags['draft-vocab-size'] },
      { events: this.events(), signal: this.stopSignal() },
    );
    if (!this.jsonEnabled()) {
      this.log(
        `draft vocabulary: ${result.draftVocabSize} of ${result.vocabSize} ids; ${result.distinctTokens} distinct tokens in ` +
          `${result.lossTokens} trained tokens, coverage ${(100 * result.coverage).toFixed(2)}%` +
          (result.filled ? `; ${result.filled} slots filled with unseen ids` : ''),
      );
      this.log(`mapping hash ${result.hash}`);
      this.log(`output: ${result.out}`);
    }
    return result;
  }
}
