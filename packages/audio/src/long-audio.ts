import { VAD_FRAME } from './vad.js';

export type LongAudioPolicy = 'reject' | 'truncate' | 'segment';

/** A clip window in samples, [start, end). */
export interface Segment {
  start: number;
  end: number;
}

export interface SegmentOptions {
  /** Longest segment in samples (the encoder window: 30 s = 480000 at 16 kHz). */
  maxSamples: number;
  /** Probability below which a frame is a pause (Silero's negative threshold; default 0.35). */
  pauseThreshold?: number;
}

/**
 * Cuts a recording into contiguous segments no longer than `maxSamples`, cutting in pauses.
 * `probs` are per-frame speech probabilities (512-sample frames). Segments cover every sample, so
 * nothing is lost. Each cut goes in the middle of the longest run of pause frames inside the
 * allowed window (from half a balanced segment length to the maximum), ties going to the run
 * nearest the balanced length; where the window has no pause at all, the cut is at the maximum
 * length and is reported as `hard`.
 */
export function segmentAtPauses(
  totalSamples: number,
  probs: Float32Array,
  options: SegmentOptions,
): { segments: Segment[]; hardCuts: number } {
  const max = options.maxSamples;
  const threshold = options.pauseThreshold ?? 0.35;
  const segments: Segment[] = [];
  let hardCuts = 0;
  let start = 0;
  while (totalSamples - start > max) {
    const remaining = totalSamples - start;
    const target = remaining / Math.ceil(remaining / max); // balanced segment length
    const lo = Math.ceil((start + target / 2) / VAD_FRAME);
    const hi = Math.floor((start + max) / VAD_FRAME); // frame hi starts at or before start + max
    let best: { mid: number; len: number; dist: number } | undefined;
    for (let f = lo; f < hi; ) {
      if (probs[f]! >= threshold) {
        f++;
        continue;
      }
      let g = f;
      while (g < hi && probs[g]! < threshold) g++;
      const mid = Math.round(((f + g) / 2) * VAD_FRAME);
      const cand = { mid, len: g - f, dist: Math.abs(mid - (start + target)) };
      if (!best || cand.len > best.len || (cand.len === best.len && cand.dist < best.dist)) best = cand;
      f = g;
    }
    let cut = best ? Math.min(best.mid, start + max) : start + max;
    if (!best) hardCuts++;
    if (cut <= start) cut = start + max;
    segments.push({ start, end: cut });
    start = cut;
  }
  segments.push({ start, end: totalSamples });
  return { segments, hardCuts };
}
