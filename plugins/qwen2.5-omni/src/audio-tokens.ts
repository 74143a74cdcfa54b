/**
 * Qwen2.5-Omni's audio token count, exactly as `Qwen2_5OmniProcessor` computes it: its Whisper
 * feature extractor (preprocessor_config.json: 16 kHz, hop 160, a 300 s window, `chunk_length`
 * 300, `nb_max_frames` 30000) pads or truncates to 300 s and marks one mel frame per 160 samples
 * as real (ceil(samples / 160), at most 30000); `_get_feat_extract_output_lengths` then gives
 * `(((L - 1) // 2 + 1) - 2) // 2 + 1` tokens: 25 per second, 7500 for 300 s. The plugin's parity
 * test holds these counts equal to the processor's on real speech; `inspect` refuses a folder whose
 * feature extractor says otherwise.
 */
export const QWEN25_OMNI_SAMPLE_RATE = 16000;
export const QWEN25_OMNI_HOP_LENGTH = 160;
export const QWEN25_OMNI_MAX_SECONDS = 300;
const MAX_FRAMES = (QWEN25_OMNI_MAX_SECONDS * QWEN25_OMNI_SAMPLE_RATE) / QWEN25_OMNI_HOP_LENGTH;
/** The placeholder the processor expands into one token per audio encoder output frame. */
export const QWEN25_OMNI_PLACEHOLDER = '<|AUDIO|>';

/** Python's floor division, which the processor's formula relies on for tiny inputs. */
const floorDiv = (a: number, b: number) => Math.floor(a / b);

export function qwen25OmniTokenCount(samples: number): number {
  if (!Number.isInteger(samples) || samples < 0) throw new RangeError(`bad sample count ${samples}`);
  const frames = Math.min(Math.ceil(samples / QWEN25_OMNI_HOP_LENGTH), MAX_FRAMES);
  return floorDiv(floorDiv(frames - 1, 2) + 1 - 2, 2) + 1;
}
