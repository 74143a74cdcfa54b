import { existsSync, statSync } from 'node:fs';
import { EagletError } from '@eaglet/core';
import ffmpeg from 'fluent-ffmpeg';
import { withLocalFile } from './source.js';

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

/** eaglet's decoder interface: any audio reference in, mono float PCM at the requested rate out. */
export interface AudioDecoder {
  decode(ref: string, options?: DecodeOptions): Promise<DecodedAudio>;
}

const lastLine = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1) ?? '';

/** Checks that fail before ffmpeg runs, with the same codes as probeAudio. */
function checkFile(path: string): void {
  if (!existsSync(path)) throw new EagletError('EAGLET_AUDIO_MISSING', `audio file not found: ${path}`);
  const st = statSync(path);
  if (st.isDirectory()) throw new EagletError('EAGLET_AUDIO_UNREADABLE', `audio path is a folder: ${path}`);
  if (st.size === 0) throw new EagletError('EAGLET_AUDIO_EMPTY', `audio file is empty (0 bytes): ${path}`);
}

/**
 * Decodes with ffmpeg through fluent-ffmpeg: the first audio stream, down-mixed to mono and
 * resampled by ffmpeg to `sampleRate`, as 32-bit float little-endian PCM. These are the arguments
 * of transformers' own `ffmpeg_read` (`-ac 1 -ar 16000 -f f32le`), so the samples equal what the
 * Hugging Face pipeline decodes. Errors: EAGLET_AUDIO_MISSING, _EMPTY (0 bytes or no samples),
 * _UNREADABLE (not audio, corrupt, no audio stream), EAGLET_CANCELLED.
 */
export function ffmpegDecoder(): AudioDecoder {
  return {
    decode: (ref, options = {}) =>
      withLocalFile(ref, async (path) => {
        checkFile(path);
        const rate = options.sampleRate ?? 16000;
        const pcm = await runFfmpeg(path, rate, options.signal);
        if (pcm.length === 0) throw new EagletError('EAGLET_AUDIO_EMPTY', `audio has zero length: ${path}`);
        return { pcm, sampleRate: rate, seconds: pcm.length / rate };
      }),
  };
}

function runFfmpeg(path: string, rate: number, signal: AbortSignal | undefined): Promise<Float32Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let stderr = '';
    const command = ffmpeg(path)
      .noVideo()
      .audioChannels(1)
      .audioFrequency(rate)
      .format('f32le')
      .outputOptions(['-map', '0:a:0'])
      .on('stderr', (line: string) => {
        stderr += `${line}\n`;
      })
      .on('error', (err: Error) => {
        signal?.removeEventListener('abort', onAbort);
        if (signal?.aborted)
          return reject(new EagletError('EAGLET_CANCELLED', `decoding cancelled: ${path}`));
        const why = lastLine(stderr) || err.message;
        const noStream = /matches no streams|does not contain any stream|Stream map '0:a:0'/.test(stderr);
        reject(
          new EagletError(
            'EAGLET_AUDIO_UNREADABLE',
            noStream ? `no audio stream in ${path}` : `not a readable audio file: ${path} (${why})`,
            { cause: err },
          ),
        );
      })
      .on('end', () => {
        signal?.removeEventListener('abort', onAbort);
        const all = Buffer.concat(chunks);
        // Copy into an aligned buffer: Buffer.concat may return a slice of Node's pool.
        const pcm = new Float32Array(all.length >> 2);
        new Uint8Array(pcm.buffer).set(all.subarray(0, pcm.length * 4));
        resolve(pcm);
      });
    const onAbort = () => command.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    const out = command.pipe();
    out.on('data', (c: Buffer) => chunks.push(c));
  });
}
