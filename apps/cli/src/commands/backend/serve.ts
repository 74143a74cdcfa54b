import { serveBackend } from '@eaglet/flows';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../../base-command.js';

export default class BackendServe extends EagletCommand {
  static override description =
    `Serve the target (and an Eagle3 draft) behind an OpenAI-compatible API: /v1/models, /v1/chat/completions
(text, input_audio and audio_url parts; streaming), /health. One replica per --replicas on consecutive ports.
Runs until Ctrl-C / SIGTERM. (\`eaglet serve\` is the HTTP app; this is the model server.)`;
  static override examples = [
    '<%= config.bin %> backend serve --target-model ./Qwen2-Audio-7B-Instruct --port 6000',
    '<%= config.bin %> backend serve --target-model ./Qwen2-Audio-7B-Instruct --draft-model ./eagle3 --num-spec-tokens 4',
    '<%= config.bin %> backend serve --backend vllm --target-model ./Qwen2-Audio-7B-Instruct --replicas 8 --port 6000',
  ];
  static override flags = {
    backend: Flags.string({ description: 'backend plugin (torch: embedded; vllm)', default: 'torch' }),
    target: Flags.string({
      description: "target plugin id (default: the one that claims the model's architecture)",
    }),
    'target-model': Flags.string({ description: 'target model folder', required: true }),
    'draft-model': Flags.string({ description: 'Eagle3 draft folder (speculative decoding)' }),
    'num-spec-tokens': Flags.integer({ description: 'draft chain length', default: 2 }),
    host: Flags.string({
      description: 'address to bind (anything but loopback should set --api-key)',
      default: '127.0.0.1',
    }),
    port: Flags.integer({
      description: 'first port (seed: BASE_PORT); replica i listens on port + i',
      default: 6000,
    }),
    replicas: Flags.integer({ description: 'server processes (one per GPU)', default: 1 }),
    tp: Flags.integer({ description: 'tensor-parallel size per replica (vllm)', default: 1 }),
    'served-model-name': Flags.string({ description: 'model name clients send (default: the folder name)' }),
    device: Flags.string({
      description: 'embedded backend device',
      options: ['auto', 'cpu', 'cuda'],
      default: 'auto',
    }),
    dtype: Flags.string({
      description: 'embedded backend dtype',
      options: ['auto', 'bf16', 'fp16', 'fp32'],
      default: 'auto',
    }),
    'max-model-len': Flags.integer({ description: 'longest prompt + output', default: 16384 }),
    'cpu-threads': Flags.integer({
      description: 'CPU threads of the embedded engine (0: torch default)',
      default: 0,
    }),
    'allowed-local-media-path': Flags.string({ description: 'folder file:// audio_url parts may read' }),
    'api-key': Flags.string({ description: 'bearer token clients must send', env: 'EAGLET_API_KEY' }),
    'log-dir': Flags.string({ description: 'folder for replica logs' }),
    'no-restart': Flags.boolean({ description: 'do not restart a crashed replica', default: false }),
    arg: Flags.string({
      description: 'extra engine argument passed through (vllm), repeatable',
      multiple: true,
    }),
  };

  async run(): Promise<{ urls: readonly string[]; model: string }> {
    const { flags } = await this.parse(BackendServe);
    if (
      flags.host !== '127.0.0.1' &&
      flags.host !== 'localhost' &&
      flags.host !== '::1' &&
      !flags['api-key']
    ) {
      this.warn(`binding ${flags.host} without --api-key: anyone who reaches this address can use the model`);
    }
    const { registry } = await this.eaglet(flags.config);
    const signal = this.stopSignal();
    const handle = await serveBackend(
      registry,
      {
        backend: flags.backend,
        target: flags.target,
        targetModel: flags['target-model'],
        ...(flags['draft-model'] ? { draftModel: flags['draft-model'] } : {}),
        numSpecTokens: flags['num-spec-tokens'],
        host: flags.host,
        port: flags.port,
        replicas: flags.replicas,
        tp: flags.tp,
        ...(flags['served-model-name'] ? { servedModelName: flags['served-model-name'] } : {}),
        device: flags.device as 'auto' | 'cpu' | 'cuda',
        dtype: flags.dtype as 'auto' | 'bf16' | 'fp16' | 'fp32',
        maxModelLen: flags['max-model-len'],
        cpuThreads: flags['cpu-threads'],
        ...(flags['allowed-local-media-path']
          ? { allowedLocalMediaPath: flags['allowed-local-media-path'] }
          : {}),
        ...(flags['api-key'] ? { apiKey: flags['api-key'] } : {}),
        ...(flags['log-dir'] ? { logDir: flags['log-dir'] } : {}),
        restartOnCrash: !flags['no-restart'],
        ...(flags.arg ? { extraArgs: flags.arg } : {}),
      },
      { events: this.events(), signal },
    );
    const ready = { urls: handle.urls, model: handle.model };
    // One line on stdout once serving (scripts and tests wait for it), JSON under --json.
    process.stdout.write(`${JSON.stringify({ ready: true, ...ready })}\n`);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await handle.stop();
    return ready;
  }
}
