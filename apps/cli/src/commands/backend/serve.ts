import { loadRunConfig, ServeConfig } from '@eaglet/core';
import { serveBackend } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../../base-command.js';
import { backendOptionFlag, backendOptionOverrides, withDefault } from '../../config-flags.js';

export default class BackendServe extends EagletCommand {
  static override description =
    `Serve the target (and an Eagle3 draft) behind an OpenAI-compatible API: /v1/models, /v1/chat/completions
(text, input_audio and audio_url parts; streaming), /health. One replica per --replicas on consecutive ports.
Runs until Ctrl-C / SIGTERM. (\`eaglet serve\` is the HTTP app; this is the model server.)`;
  static override examples = [
    '<%= config.bin %> backend serve --target-model ./my-target-model --port 6000',
    '<%= config.bin %> backend serve --target-model ./my-target-model --draft-model ./eagle3 --num-spec-tokens 4',
    '<%= config.bin %> backend serve --backend vllm --target-model ./my-target-model --replicas 8 --port 6000',
  ];
  static override flags = {
    backend: Flags.string({
      description:
        'backend plugin (torch: embedded; vllm); default: the first registered, the embedded torch backend',
    }),
    target: Flags.string({
      description: "target plugin id (default: the plugin that claims the target model's architecture)",
    }),
    'target-model': Flags.string({
      description: 'target model folder or Hub id (org/name[@revision])',
      required: true,
    }),
    'draft-model': Flags.string({ description: 'Eagle3 draft folder or Hub id (speculative decoding)' }),
    'num-spec-tokens': Flags.integer({
      description: withDefault(ServeConfig, 'numSpecTokens', 'draft chain length'),
    }),
    host: Flags.string({
      description: withDefault(
        ServeConfig,
        'host',
        'address to bind (anything but loopback should set --api-key)',
      ),
    }),
    port: Flags.integer({
      description: withDefault(
        ServeConfig,
        'port',
        'first port (seed: BASE_PORT); replica i listens on port + i',
      ),
    }),
    replicas: Flags.integer({
      description: withDefault(ServeConfig, 'replicas', 'server processes (one per GPU)'),
    }),
    tp: Flags.integer({
      description: withDefault(ServeConfig, 'tp', 'tensor-parallel size per replica (vllm)'),
    }),
    'served-model-name': Flags.string({ description: 'model name clients send (default: the folder name)' }),
    device: Flags.string({
      description: withDefault(ServeConfig, 'device', 'where the model runs'),
      options: ['auto', 'cpu', 'cuda'],
    }),
    dtype: Flags.string({
      description: withDefault(ServeConfig, 'dtype', 'weights and activations'),
      options: ['auto', 'bf16', 'fp16', 'fp32'],
    }),
    'max-model-len': Flags.integer({
      description: withDefault(ServeConfig, 'maxModelLen', 'longest prompt + output'),
    }),
    'allowed-local-media-path': Flags.string({ description: 'folder file:// audio_url parts may read' }),
    'api-key': Flags.string({ description: 'bearer token clients must send', env: 'EAGLET_API_KEY' }),
    'log-dir': Flags.string({ description: 'folder for replica logs' }),
    'no-restart': Flags.boolean({ description: 'do not restart a crashed replica' }),
    'backend-option': backendOptionFlag,
    'cpu-threads': Flags.integer({
      description: 'CPU threads of the embedded engine',
      deprecated: { message: 'use --backend-option cpuThreads=N' },
    }),
    arg: Flags.string({
      description: 'extra `vllm serve` argument passed through, repeatable',
      multiple: true,
      deprecated: { message: 'use --backend-option \'extraArgs=["--flag=value"]\'' },
    }),
  };

  async run(): Promise<{ urls: readonly string[]; model: string }> {
    const { flags } = await this.parse(BackendServe);
    const config = loadRunConfig(ServeConfig, {
      overrides: backendOptionOverrides(flags['backend-option'], {
        cpuThreads: flags['cpu-threads'],
        extraArgs: flags.arg,
      }),
      cwd: process.cwd(),
      fields: {
        backend: flags.backend,
        target: flags.target,
        targetModel: flags['target-model'],
        draftModel: flags['draft-model'],
        numSpecTokens: flags['num-spec-tokens'],
        host: flags.host,
        port: flags.port,
        replicas: flags.replicas,
        tp: flags.tp,
        servedModelName: flags['served-model-name'],
        device: flags.device,
        dtype: flags.dtype,
        maxModelLen: flags['max-model-len'],
        allowedLocalMediaPath: flags['allowed-local-media-path'],
        apiKey: flags['api-key'],
        logDir: flags['log-dir'],
        ...(flags['no-restart'] ? { restartOnCrash: false } : {}),
      },
    });
    if (!['127.0.0.1', 'localhost', '::1'].includes(config.host) && !config.apiKey) {
      this.warn(
        `binding ${config.host} without --api-key: anyone who reaches this address can use the model`,
      );
    }
    const { registry } = await this.eaglet(flags.config);
    const signal = this.stopSignal();
    const handle = await serveBackend(registry, config, { events: this.events(), signal });
    const ready = { urls: handle.urls, model: handle.model };
    // One line on stdout once serving (scripts and tests wait for it), JSON under --json.
    process.stdout.write(`${JSON.stringify({ ready: true, ...ready })}\n`);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await handle.stop();
    return ready;
  }
}
