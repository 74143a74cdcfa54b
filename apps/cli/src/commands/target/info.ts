import { describeTarget, type TargetDescription } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../../base-command.js';

export default class TargetInfo extends EagletCommand {
  static override description =
    'Show what a target plugin reads from a model folder (layers, taps, vocab) and the draft config it implies.';
  static override examples = [
    '<%= config.bin %> target info --target qwen2-audio --model ./Qwen2-Audio-7B-Instruct',
  ];
  static override flags = {
    target: Flags.string({ description: 'target plugin id (see `eaglet plugins`)', required: true }),
    model: Flags.string({ description: 'local model folder', required: true }),
  };

  async run(): Promise<TargetDescription> {
    const { flags } = await this.parse(TargetInfo);
    const { registry } = await this.eaglet(flags.config);
    const d = await describeTarget(registry, { target: flags.target, model: flags.model });
    if (!this.jsonEnabled()) {
      this.log(
        `${d.target}: ${d.info.architecture}, ${d.info.numLayers} layers, hidden ${d.info.hiddenSize}, vocab ${d.info.vocabSize}`,
      );
      this.log(`taps (layer outputs): ${d.info.tapLayers.join(', ')}; embedding key: ${d.info.embeddingKey}`);
      this.log('draft config:');
      this.log(JSON.stringify(d.draft, null, 2));
    }
    return d;
  }
}
