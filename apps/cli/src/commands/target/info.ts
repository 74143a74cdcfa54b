import { describeTarget, type TargetDescription } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../../base-command.js';

export default class TargetInfo extends EagletCommand {
  static override description =
    'Show the one declaration of a target for a model folder, as the engine will use it: aux layers (vLLM numbering), the embedding key the checkpoint holds, every eos id, the resolved draft config, what the target reads from the folder.';
  static override examples = [
    '<%= config.bin %> target info --model ./my-target-model',
    '<%= config.bin %> target info --target ID --model ./my-target-model --json',
  ];
  static override flags = {
    target: Flags.string({
      description:
        "target plugin id (see `eaglet plugins`; default: the one that claims the model's architecture)",
    }),
    model: Flags.string({
      description: 'model folder or Hugging Face Hub id (org/name[@revision])',
      required: true,
    }),
  };

  async run(): Promise<TargetDescription> {
    const { flags } = await this.parse(TargetInfo);
    const { registry } = await this.eaglet(flags.config);
    const d = await describeTarget(registry, {
      ...(flags.target ? { target: flags.target } : {}),
      model: flags.model,
    });
    if (!this.jsonEnabled()) {
      const { info } = d;
      this.log(
        `${d.target}: ${info.architecture}, ${info.numLayers} layers, hidden ${info.hiddenSize}, vocab ${info.vocabSize}`,
      );
      this.log(
        `aux layer ids (vLLM numbering: the hidden state after k decoder layers, 0 = embeddings): ${info.auxLayerIds.join(', ')}`,
      );
      this.log(`embedding key (in the checkpoint): ${info.embeddingKey}`);
      this.log(
        `eos token ids: ${info.eosTokenIds.join(', ') || '(none)'}${info.bosTokenId === undefined ? '' : `; bos token id: ${info.bosTokenId}`}${info.audioTokenId === undefined ? '' : `; audio token id: ${info.audioTokenId}`}`,
      );
      if (info.reads?.length) {
        this.log('reads from the model folder:');
        for (const line of info.reads) this.log(`  ${line}`);
      }
      for (const note of info.notes ?? []) this.log(`note: ${note}`);
      this.log('draft config (before your draftConfig and vocab mapping):');
      this.log(JSON.stringify(d.draft, null, 2));
    }
    return d;
  }
}
