import { startServer } from '@eaglet/server';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../base-command.js';

export default class Serve extends EagletCommand {
  static override description =
    `Start the HTTP app: a job API over the same flows as these commands (validate, prepare, vocab, train, regenerate, bench), live progress over Server-Sent Events, and a dashboard page.
Listens on 127.0.0.1 unless told otherwise; any other address needs --token. Job paths must lie inside the --root folders. Ctrl-C stops running jobs at a safe point (they are marked interrupted) and exits.`;
  static override examples = [
    '<%= config.bin %> serve',
    '<%= config.bin %> serve --port 9000 --root ./data --root /models',
    'EAGLET_SERVER_TOKEN=$(openssl rand -hex 24) <%= config.bin %> serve --host 0.0.0.0',
  ];
  static override flags = {
    host: Flags.string({
      description: 'address to listen on (beyond loopback requires --token)',
      default: '127.0.0.1',
    }),
    port: Flags.integer({ description: 'port (0 picks a free one)', default: 8765, min: 0, max: 65535 }),
    token: Flags.string({
      description: 'API token, at least 16 characters (clients send "Authorization: Bearer TOKEN")',
      env: 'EAGLET_SERVER_TOKEN',
    }),
    root: Flags.string({
      description:
        'folder jobs may read and write (repeatable; relative job paths resolve against the first)',
      multiple: true,
    }),
    'state-dir': Flags.string({ description: 'where job records live (default: FIRST_ROOT/.eaglet/server)' }),
    'remote-audio': Flags.boolean({
      description:
        'let jobs fetch http(s) audio named in their data (local audio files are always confined to the roots)',
      default: false,
    }),
    hub: Flags.boolean({
      description: 'let jobs name models and datasets by Hugging Face Hub id (downloaded into HF_HOME)',
      default: false,
    }),
    'heavy-jobs': Flags.integer({
      description: 'heavy jobs (train, prepare, bench: engine, GPUs) running at once',
      default: 1,
      min: 1,
    }),
    'light-jobs': Flags.integer({
      description: 'light jobs (validation) running at once',
      default: 4,
      min: 1,
    }),
  };

  async run(): Promise<{ url: string; stopped: true }> {
    const { flags } = await this.parse(Serve);
    const { registry } = await this.eaglet(flags.config);
    const stop = this.stopSignal();
    // One job's stray promise must not take the server and every other job down: report it, keep serving.
    process.on('unhandledRejection', (reason) => {
      this.logToStderr(
        `eaglet serve: unhandled rejection (a bug, please report it): ${(reason as Error)?.stack ?? reason}`,
      );
    });
    const { server, url } = await startServer(
      {
        host: flags.host,
        port: flags.port,
        roots: flags.root ?? [process.cwd()],
        heavyJobs: flags['heavy-jobs'],
        lightJobs: flags['light-jobs'],
        remoteAudio: flags['remote-audio'],
        hub: flags.hub,
        ...(flags.token ? { token: flags.token } : {}),
        ...(flags['state-dir'] ? { stateDir: flags['state-dir'] } : {}),
      },
      { registry },
    );
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ url })}\n`);
    else {
      this.log(`eaglet is serving on ${url}/  (dashboard; API description at ${url}/api/openapi.json)`);
      this.log(`roots: ${server.options.roots.join(', ')}; jobs in ${server.stateDir}`);
      if (server.interrupted.length)
        this.log(
          `marked ${server.interrupted.length} job(s) interrupted: the previous server stopped while they ran`,
        );
      if (flags.token) this.log('clients need the token: open the dashboard with ?token=TOKEN');
      this.log('Ctrl-C to stop');
    }
    await new Promise<void>((resolve) => {
      if (stop.aborted) resolve();
      else stop.addEventListener('abort', () => resolve(), { once: true });
    });
    await server.close();
    return { url, stopped: true };
  }
}
