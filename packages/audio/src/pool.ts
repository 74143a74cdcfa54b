import { availableParallelism } from 'node:os';
import type { AudioDecoder, DecodedAudio, DecodeOptions } from './decode.js';

/**
 * A decoder that runs at most `concurrency` decodes at once (default: one per core; each ffmpeg
 * process uses about one core). Callers may queue any number of decodes; they start in call
 * order as slots free up.
 */
export class DecodePool implements AudioDecoder {
  readonly concurrency: number;
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(
    private readonly decoder: AudioDecoder,
    concurrency = 0,
  ) {
    this.concurrency = concurrency > 0 ? concurrency : availableParallelism();
  }

  /** Decodes queued + running. */
  get pending(): number {
    return this.active + this.queue.length;
  }

  async decode(ref: string, options?: DecodeOptions): Promise<DecodedAudio> {
    if (this.active >= this.concurrency) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await this.decoder.decode(ref, options);
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}
