/** PCM of one clip: mono float32 samples at `sampleRate`. */
export interface DecodedAudio {
  pcm: Float32Array;
  sampleRate: number;
  /** pcm.length / sampleRate. */
  seconds: number;
}

export interface DecodeOptions {
  /** Output rate in Hz (default 16000). */
  sampleRate?: number;
  signal?: AbortSignal;
}

/**
 * eaglet's decoder interface: any allowed audio reference in, mono float PCM at the requested rate
 * out. Both methods refuse what the allow-list does not name and a file whose samples stop short
 * of its stated length, so a truncated clip never reaches a shard or a model.
 */
export interface AudioDecoder {
  decode(ref: string, options?: DecodeOptions): Promise<DecodedAudio>;
  /**
   * Decodes a clip to the end without keeping its samples (at a low rate, cheaply): proves it is
   * allowed, readable and complete, with the same errors as `decode`. Resolves with its duration.
   */
  check(ref: string, options?: { signal?: AbortSignal }): Promise<{ seconds: number }>;
}

/** How a flow sizes the decoder it asks for. */
export interface AudioDecoderOptions {
  /** Decoding processes running at once (default: one per core). */
  processes?: number;
  /**
   * Files decoded by one process (default 16). Starting a decoder process costs more than
   * decoding a typical utterance, so queued files share one.
   */
  batchSize?: number;
}

/**
 * What the composition root registers under `TOKENS.AudioDecoder` (`createEaglet` registers
 * @eaglet/audio's ffmpeg decoder): each flow makes the decoder it needs, sized to its work.
 */
export type AudioDecoderFactory = (options?: AudioDecoderOptions) => AudioDecoder;
