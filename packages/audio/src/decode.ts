import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EagletError } from '@eaglet/core';
import ffmpeg from 'fluent-ffmpeg';
import { ffmpegInput, ffmpegInputOptions, refusalInLog } from './allow-list.js';
import { type InputReport, incompleteDecode, readInputReports } from './completeness.js';
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

/** The rate `check` decodes at: enough to measure a clip's length to the millisecond. */
const CHECK_RATE = 1000;

export interface FfmpegDecoderOptions {
  /** ffmpeg processes running at once (default: one per core). */
  processes?: number;
  /**
   * Files decoded by one ffmpeg process (default 16). Starting ffmpeg costs about 0.1 CPU-s,
   * more than decoding a typical utterance, so queued files share a process; each still gets its
   * own input, resampler and output, so the samples equal a one-file decode.
   */
  batchSize?: number;
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

/** One decoded input: its samples and what ffmpeg's log says about it. */
interface Decoded {
  pcm: Float32Array;
  report: InputReport;
}

interface Request {
  path: string;
  rate: number;
  signal: AbortSignal | undefined;
  resolve: (decoded: Decoded) => void;
  reject: (e: unknown) => void;
}

/**
 * Decodes with ffmpeg through fluent-ffmpeg: the first audio stream of each file, down-mixed to
 * mono and resampled by ffmpeg to `sampleRate`, as 32-bit float little-endian PCM. These are the
 * arguments of transformers' own `ffmpeg_read` (`-ac 1 -ar 16000 -f f32le`), so the samples equal
 * what the Hugging Face pipeline decodes (the parity test checks it). Errors, per file:
 * EAGLET_AUDIO_MISSING, _EMPTY (0 bytes or no samples), _UNREADABLE (not audio, no audio stream),
 * _REFUSED (a container or codec the allow-list does not name), _TRUNCATED and _CORRUPT (decode
 * errors, or fewer samples than the container states), _REMOTE, and EAGLET_CANCELLED.
 */
export function ffmpegDecoder(options: FfmpegDecoderOptions = {}): AudioDecoder {
  const processes = options.processes && options.processes > 0 ? options.processes : availableParallelism();
  const batchSize = Math.max(1, options.batchSize ?? 16);
  const queue: Request[] = [];
  let running = 0;
  let timer: NodeJS.Timeout | undefined;

  const schedule = () => {
    while (running < processes && queue.length > 0) {
      // Under load, wait for a full batch; when idle (or after a short pause), take what there is.
      if (queue.length < batchSize && running > 0 && !timer) {
        timer = setTimeout(() => {
          timer = undefined;
          if (running < processes && queue.length) start(queue.splice(0, batchSize));
        }, 15);
        return;
      }
      if (queue.length < batchSize && running > 0) return;
      start(queue.splice(0, batchSize));
    }
  };
  const start = (batch: Request[]) => {
    running++;
    decodeBatch(batch).finally(() => {
      running--;
      schedule();
    });
  };

  const decode = (ref: string, opts: DecodeOptions = {}): Promise<DecodedAudio> => {
    const rate = opts.sampleRate ?? 16000;
    const finish =
      (path: string) =>
      ({ pcm, report }: Decoded): DecodedAudio => {
        if (pcm.length === 0) throw new EagletError('EAGLET_AUDIO_EMPTY', `audio has zero length: ${path}`);
        const seconds = pcm.length / rate;
        const incomplete = incompleteDecode(path, report, seconds);
        if (incomplete) throw incomplete;
        return { pcm, sampleRate: rate, seconds };
      };
    if (ref.startsWith('data:')) {
      // A temporary file that lives only while this decode runs: decoded on its own.
      return withLocalFile(ref, async (path) => {
        checkFile(path);
        return finish(path)(await decodeOne(path, rate, opts.signal));
      });
    }
    return withLocalFile(ref, async (path) => {
      checkFile(path);
      if (opts.signal?.aborted) throw new EagletError('EAGLET_CANCELLED', `decoding cancelled: ${path}`);
      const decoded = await new Promise<Decoded>((resolve, reject) => {
        queue.push({ path, rate, signal: opts.signal, resolve, reject });
        schedule();
      });
      return finish(path)(decoded);
    });
  };
  return {
    decode,
    check: async (ref, opts = {}) => {
      const { seconds } = await decode(ref, { ...opts, sampleRate: CHECK_RATE });
      return { seconds };
    },
  };
}

/** One ffmpeg for the batch; if it fails, each file alone, so every file gets its own error. */
async function decodeBatch(batch: Request[]): Promise<void> {
  const live = batch.filter((r) => {
    if (!r.signal?.aborted) return true;
    r.reject(new EagletError('EAGLET_CANCELLED', `decoding cancelled: ${r.path}`));
    return false;
  });
  if (live.length === 0) return;
  if (live.length > 1 && live.every((r) => r.rate === live[0]!.rate)) {
    try {
      const out = await runFfmpeg(
        live.map((r) => r.path),
        live[0]!.rate,
        live.map((r) => r.signal),
      );
      for (const [i, r] of live.entries()) r.resolve(out[i]!);
      return;
    } catch {
      // fall through: find which file is bad
    }
  }
  for (const r of live) {
    try {
      r.resolve(await decodeOne(r.path, r.rate, r.signal));
    } catch (e) {
      r.reject(e);
    }
  }
}

async function decodeOne(path: string, rate: number, signal: AbortSignal | undefined): Promise<Decoded> {
  try {
    return (await runFfmpeg([path], rate, [signal]))[0]!;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    if (signal?.aborted) throw new EagletError('EAGLET_CANCELLED', `decoding cancelled: ${path}`);
    const stderr = err.stderr ?? '';
    const refused = refusalInLog(path, stderr);
    if (refused) throw refused;
    const noStream = /matches no streams|does not contain any stream|Stream map '0:a:0'/.test(stderr);
    throw new EagletError(
      'EAGLET_AUDIO_UNREADABLE',
      noStream
        ? `no audio stream in ${path}`
        : `not a readable audio file: ${path} (${lastLine(stderr) || err.message})`,
      { cause: e },
    );
  }
}

/**
 * Runs one ffmpeg with an input and an f32le output file per path, each input held to the
 * allow-list; returns each output's samples with what the log says about its input.
 */
function runFfmpeg(
  paths: string[],
  rate: number,
  signals: Array<AbortSignal | undefined>,
): Promise<Decoded[]> {
  const dir = mkdtempSync(join(tmpdir(), 'eaglet-decode-'));
  return new Promise<Decoded[]>((resolve, reject) => {
    let command = ffmpeg();
    for (const p of paths) command = command.input(ffmpegInput(p)).inputOptions(ffmpegInputOptions('ffmpeg'));
    paths.forEach((_, i) => {
      command = command
        .output(join(dir, `${i}.f32`))
        .outputOptions(['-map', `${i}:a:0`])
        .noVideo()
        .audioChannels(1)
        .audioFrequency(rate)
        .format('f32le');
    });
    let stderr = '';
    const onAbort = () => command.kill('SIGKILL');
    for (const s of signals) s?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      for (const s of signals) s?.removeEventListener('abort', onAbort);
    };
    command
      .on('stderr', (line: string) => {
        stderr += `${line}\n`;
      })
      .on('error', (err: Error) => {
        done();
        reject(Object.assign(err, { stderr }));
      })
      .on('end', () => {
        done();
        try {
          const reports = readInputReports(stderr, paths.length);
          resolve(
            paths.map((_, i) => {
              const bytes = readFileSync(join(dir, `${i}.f32`));
              const pcm = new Float32Array(bytes.length >> 2);
              new Uint8Array(pcm.buffer).set(bytes.subarray(0, pcm.length * 4));
              return { pcm, report: reports[i]! };
            }),
          );
        } catch (e) {
          reject(e);
        }
      })
      .run();
  }).finally(() => rmSync(dir, { recursive: true, force: true }));
}
