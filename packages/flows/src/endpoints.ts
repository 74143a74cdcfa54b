/**
 * The OpenAI-compatible endpoints a regenerate run talks to, round-robin over those that are up.
 * An endpoint that stops answering (connection refused or reset, timeout, 502/503/504) is marked
 * down and its `/health` polled until it answers again; requests wait for an endpoint to come
 * back instead of spending their retries against a server that is restarting (a vLLM restart
 * takes minutes).
 *
 * Every wait of the pool (a retry's pause, a wait for an endpoint, a health poll's interval) ends
 * early when the run's signal aborts, through one abort listener for all of them: hundreds of
 * requests waiting at once add no listener each (and leave none behind).
 */
export class EndpointPool {
  private turn = 0;
  /** Endpoints marked down -> their health poll, which settles once the endpoint answers. */
  private readonly down = new Map<string, Promise<void>>();
  /** Ends every pending wait (on abort, or when an endpoint comes back for the up-waiters). */
  private readonly waits = new Set<() => void>();
  private readonly upWaits = new Set<() => void>();

  constructor(
    readonly urls: readonly string[],
    private readonly options: { signal: AbortSignal; apiKey?: string; pollMs?: number },
  ) {
    options.signal.addEventListener('abort', () => {
      for (const end of [...this.waits]) end();
    });
  }

  /** The next endpoint in turn that is up (or in turn, when none is). */
  next(): string {
    for (let i = 0; i < this.urls.length; i++) {
      const url = this.urls[this.turn++ % this.urls.length]!;
      if (!this.down.has(url)) return url;
    }
    return this.urls[this.turn++ % this.urls.length]!;
  }

  /** Marks an endpoint down and starts polling its /health (once per endpoint). */
  markDown(url: string): void {
    if (this.down.has(url)) return;
    this.down.set(
      url,
      this.pollHealth(url).finally(() => {
        this.down.delete(url);
        for (const end of [...this.upWaits]) end();
      }),
    );
  }

  /** Resolves true once an endpoint is up, false at `deadline` (ms since the epoch) or on abort. */
  async waitForUp(deadline: number): Promise<boolean> {
    while (this.down.size >= this.urls.length) {
      const left = deadline - Date.now();
      if (left <= 0 || this.options.signal.aborted) return false;
      await this.wait(left, this.upWaits);
    }
    return true;
  }

  /** Waits `ms`, or less if the run stops. */
  sleep(ms: number): Promise<void> {
    return this.wait(ms);
  }

  private wait(ms: number, also?: Set<() => void>): Promise<void> {
    return new Promise((resolve) => {
      if (this.options.signal.aborted) return resolve();
      const end = () => {
        clearTimeout(timer);
        this.waits.delete(end);
        also?.delete(end);
        resolve();
      };
      const timer = setTimeout(end, ms);
      this.waits.add(end);
      also?.add(end);
    });
  }

  /** Polls `/health` until the server answers (any status below 500: a server without the route is up too). */
  private async pollHealth(url: string): Promise<void> {
    const { signal, apiKey, pollMs = 1000 } = this.options;
    while (!signal.aborted) {
      try {
        const res = await fetch(healthUrl(url), {
          signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
          ...(apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : {}),
        });
        await res.body?.cancel();
        if (res.status < 500) return;
      } catch {
        // still down
      }
      await this.sleep(pollMs);
    }
  }
}

/** `http://host:port/v1` -> `http://host:port/health` (where vLLM and eaglet's backend answer). */
export function healthUrl(base: string): string {
  return `${base.replace(/\/+$/, '').replace(/\/v1$/, '')}/health`;
}
