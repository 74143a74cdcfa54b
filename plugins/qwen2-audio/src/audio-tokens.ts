/**
 * Qwen2-Audio's audio token count, exactly as `Qwen2AudioProcessor` computes it: the Whisper
 * feature extractor pads or truncates to 30 s (480000 samples at 16 kHz) and marks one mel frame
 * per 160 samples as real (`attention_mask[::hop_length]`, i.e. ceil(samples / 160), at most
 * 3000); the encoder's stride-2 convolution and its stride-2 pooling then give
 * `(((L - 1) // 2 + 1) - 2) // 2 + 1` tokens. A 30 s clip gives 750. (The engine's adapter uses
 * transformers' own `_get_feat_extract_output_lengths`; flows' prepare parity test holds the counts
 * equal to the real processor's.)
 */
export const QWEN2_AUDIO_SAMPLE_RATE = 16000;
export const QWEN2_AUDIO_HOP_LENGTH = 160;
export const QWEN2_AUDIO_MAX_SECONDS = 30;
export const QWEN2_AUDIO_MAX_FRAMES =
  (QWEN2_AUDIO_MAX_SECONDS * QWEN2_AUDIO_SAMPLE_RATE) / QWEN2_AUDIO_HOP_LENGTH;
/** The placeholder the processor expands into one token per encoder frame. */
export const QWEN2_AUDIO_PLACEHOLDER = '<|AUDIO|>';

/** Python's floor division, which the processor's formula relies on for tiny inputs. */
const floorDiv = (a: number, b: number) => Math.floor(a / b);

export function qwen2AudioTokenCount(samples: number): number {
  if (!Number.isInteger(samples) || samples < 0) throw new RangeError(`bad sample count ${samples}`);
  const frames = Math.min(Math.ceil(samples / QWEN2_AUDIO_HOP_LENGTH), QWEN2_AUDIO_MAX_FRAMES);
  return floorDiv(floorDiv(frames - 1, 2) + 1 - 2, 2) + 1;
}
