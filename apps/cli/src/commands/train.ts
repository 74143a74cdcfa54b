import { type TrainResult, train } from '@eaglet/flows';
import { Args, Flags } from '@oclif/core';
import { EagletCommand } from '../base-command.js';

export default class Train extends EagletCommand {
  static override description =
    `Train an Eagle3 draft with the training-time test: online when trainData/evalData are prepared folders (the frozen
target runs inside the job), offline when they are capture folders (\`eaglet data capture\`: the target is not loaded).
The train config (JSON) holds every parameter of the original training script: targetModel, draftConfig, trainData, evalData,
outputDir, maxLength, chatTemplate, plus optimizer, schedule, batching and checkpointing. KEY=VALUE arguments override fields.
Shows step, loss, acc_0..acc_k, tokens/s and ETA; writes metrics.jsonl, curves.png, checkpoints and the exported draft (vLLM format)
to outputDir. Ctrl-C stops after the current step with a checkpoint; --resume continues from it.
An outputDir that holds an earlier run is refused unless --resume (continue it) or --overwrite (delete it first) says what to do.`;
  static override examples = [
    '<%= config.bin %> train --config train.json',
    '<%= config.bin %> train --config train.json optimizer.lr=5e-5 maxSteps=1000 ttt.steps=7',
    '<%= config.bin %> train --config train.json --nproc 8',
    '<%= config.bin %> train --config train.json --resume',
    '<%= config.bin %> train --config train.json --overwrite',
    '<%= config.bin %> train --config train.json --nproc 8 --nnodes 4 --node-rank $SLURM_NODEID --rdzv-endpoint node0:29500',
  ];
  static override strict = false;
  static override args = {
    overrides: Args.string({ description: 'KEY.PATH=VALUE overrides of the train config (any number)' }),
  };
  static override flags = {
    // Here --config is the train config (as the original script's parameters); the eaglet config
    // (plugins) is searched from the working folder or given with --eaglet-config.
    config: Flags.string({ description: 'train config file (JSON)', required: true }),
    'eaglet-config': Flags.string({ description: 'eaglet config file (plugins); default: searched upwards' }),
    resume: Flags.boolean({
      description: 'continue from the newest checkpoint in outputDir',
      default: false,
      exclusive: ['overwrite'],
    }),
    overwrite: Flags.boolean({
      description: 'delete an earlier run in outputDir (checkpoints, metrics, draft) and start again',
      default: false,
    }),
    nproc: Flags.integer({
      description: 'GPUs on this node (more than 1 runs torchrun; default: the config)',
    }),
    output: Flags.string({ description: 'outputDir (overrides the config)' }),
    nnodes: Flags.integer({
      description: 'machines in the run; every node runs the same command (docs/multi-node.md)',
    }),
    'node-rank': Flags.integer({
      description: "this machine's index, 0..nnodes-1 (node 0 is at --rdzv-endpoint)",
    }),
    'rdzv-endpoint': Flags.string({
      description: "HOST:PORT of the rendezvous: node 0's address and a free port",
    }),
    'rdzv-id': Flags.string({ description: 'id shared by the nodes of one run' }),
  };

  async run(): Promise<TrainResult> {
    const { flags, argv } = await this.parse(Train);
    const overrides = (argv as string[]).filter((a) => a !== '');
    const { registry } = await this.eaglet(flags['eaglet-config']);
    const result = await train(
      registry,
      {
        file: flags.config,
        overrides,
        fields: {
          ...(flags.nproc ? { nprocPerNode: flags.nproc } : {}),
          ...(flags.output ? { outputDir: flags.output } : {}),
          ...(flags.nnodes ? { nnodes: flags.nnodes } : {}),
          ...(flags['node-rank'] !== undefined ? { nodeRank: flags['node-rank'] } : {}),
          ...(flags['rdzv-endpoint'] ? { rdzvEndpoint: flags['rdzv-endpoint'] } : {}),
          ...(flags['rdzv-id'] ? { rdzvId: flags['rdzv-id'] } : {}),
        },
        resume: flags.resume,
        overwrite: flags.overwrite,
      },
      { events: this.events(), signal: this.stopSignal() },
    );
    if (!this.jsonEnabled()) {
      this.log(
        result.stopped
          ? `\nstopped at step ${result.steps} of ${result.totalSteps}; continue with --resume`
          : `\ntrained ${result.steps} steps`,
      );
      if (result.draftOrigin) this.log(`  draft ${result.draftOrigin}`);
      if (result.precision) this.log(`  ${result.precision}`);
      if (result.eval) {
        const accs = Object.entries(result.eval)
          .filter(([k]) => k.startsWith('acc_'))
          .map(([k, v]) => `${k} ${v.toFixed(3)}`);
        const bigram = result.eval.bigram_acc;
        this.log(
          `  eval: ${accs.join(', ')}${bigram === undefined ? '' : ` (a bigram table predicts the target with ${bigram.toFixed(3)}; acc_0 must beat it)`}`,
        );
      }
      for (const [fmt, folder] of Object.entries(result.draft ?? {})) this.log(`  draft (${fmt}): ${folder}`);
      this.log(`  metrics: ${result.metrics}`);
      if (result.plot) this.log(`  curves: ${result.plot}`);
      this.log(`  checkpoints: ${result.outputDir}/checkpoints`);
    }
    return result;
  }
}
