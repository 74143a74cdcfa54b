import { EagletError, type EventSink, toEagletError } from '@eaglet/core';
import { createEaglet, type Eaglet } from '@eaglet/flows';
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { terminalRenderer } from './render.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof EagletCommand)['baseFlags'] & T['flags']
>;

/**
 * Shared behaviour of every eaglet command: `--json` (quiet, one JSON document on stdout),
 * `--config` (the eaglet config file), coded errors with hints, terminal progress, and Ctrl-C
 * as a cooperative stop (a second Ctrl-C exits at once).
 */
export abstract class EagletCommand extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    config: Flags.string({
      description:
        'eaglet config file (default: eaglet.config.json or package.json "eaglet", searched upwards)',
      helpGroup: 'GLOBAL',
    }),
  };

  private renderer: ReturnType<typeof terminalRenderer> | undefined;
  private readonly abortController = new AbortController();

  protected async eaglet(configFile: string | undefined): Promise<Eaglet> {
    return createEaglet({ ...(configFile ? { configFile } : {}) });
  }

  /** Where flows send events: a terminal renderer, or nothing under --json. */
  protected events(): EventSink {
    if (this.jsonEnabled()) return () => {};
    this.renderer ??= terminalRenderer();
    return this.renderer.sink;
  }

  /** Aborted on the first Ctrl-C/SIGTERM; the flow stops at a safe point. */
  protected stopSignal(): AbortSignal {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) process.exit(130);
      this.logToStderr(`\n${sig}: stopping at the next safe point (again to exit now)`);
      this.abortController.abort();
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    return this.abortController.signal;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    this.renderer?.close();
    return super.finally(err);
  }

  /**
   * Every failure ends as one coded error: `error [CODE]: message` and its hint on stderr, or
   * `{"error": {"code", "message", "hint"}}` under --json. Errors that are not eaglet's own (a file
   * system errno, a bug) are described by toEagletError, so none loses its message. oclif's own
   * (a bad flag, --help) keep oclif's rendering on a terminal and exit code 2.
   */
  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    this.renderer?.close();
    if (err instanceof Errors.CLIError) {
      if (err instanceof Errors.ExitError || !this.jsonEnabled()) return super.catch(err);
      const usage = new EagletError('EAGLET_USAGE', err.message, {
        hint: `\`eaglet ${this.id?.replaceAll(':', ' ') ?? ''} --help\` lists the arguments and flags`,
      });
      this.logJson({ error: usage.toJSON() });
      process.exitCode = err.oclif.exit ?? 2;
      return;
    }
    const error = toEagletError(err);
    if (this.jsonEnabled()) this.logJson({ error: error.toJSON() });
    else this.logToStderr(`error [${error.code}]: ${error.format()}`);
    process.exitCode = 1;
  }
}
