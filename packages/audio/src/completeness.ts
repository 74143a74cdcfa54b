import { EagletError } from '@eaglet/core';

/**
 * How far a decode may fall short of the container's duration before the file counts as
 * truncated: 0.2 s or 2 % of the container's duration, whichever is larger. Containers state
 * durations a little loosely (an mp3's includes the encoder's delay and padding: 7.20 s for 7.10 s
 * of samples, measured), so an exact match would refuse good files; a file cut by a copy or a
 * download loses far more.
 */
export const TRUNCATION_TOLERANCE = { seconds: 0.2, fraction: 0.02 } as const;

/** What ffmpeg's log says about one of its inputs. */
export interface InputReport {
  /**
   * The container's own duration (the `Duration:` line), when it states one and it is the
   * audio's: with a video track it may be the video's, which can run longer.
   */
  containerSeconds?: number;
  /** Decode errors ffmpeg reported for this input's streams. */
  errors: string[];
}

/**
 * Reads ffmpeg's stderr (log level info, the default) for each of `inputs` inputs: the
 * `Duration:` under `Input #i, …`, whether a `Stream #i:k` is a moving picture, and the decode
 * errors it reports per stream (`Error while decoding stream #i:0: …` up to ffmpeg 6,
 * `[aist#i:0/flac @ …] … decoding error…` from ffmpeg 7).
 */
export function readInputReports(stderr: string, inputs: number): InputReport[] {
  const found = Array.from({ length: inputs }, () => ({
    duration: undefined as number | undefined,
    video: false,
    errors: [] as string[],
  }));
  let current: (typeof found)[number] | undefined;
  for (const line of stderr.split('\n')) {
    const input = /^Input #(\d+), /.exec(line);
    if (input) {
      current = found[Number(input[1])];
      continue;
    }
    const duration = /^\s+Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(line);
    if (duration && current) {
      current.duration ??= Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]);
      continue;
    }
    // A cover picture (an mp3's album art) has no duration of its own; a video track does.
    const video = /^\s+Stream #(\d+):\d+.*: Video: /.exec(line);
    if (video && !line.includes('(attached pic)')) {
      const f = found[Number(video[1])];
      if (f) f.video = true;
      continue;
    }
    const error =
      /Error while decoding stream #(\d+):\d+: (.*)$/.exec(line) ??
      /\[aist#(\d+):\d+\/[^\]]*\] .*(?:[Dd]ecoding error|packet to decoder)[^:]*: (.*)$/.exec(line);
    if (error) found[Number(error[1])]?.errors.push(error[2]!.trim());
  }
  return found.map((f) => ({
    ...(f.duration !== undefined && !f.video ? { containerSeconds: f.duration } : {}),
    errors: f.errors,
  }));
}

/**
 * The error for a decode that is not the whole file, or undefined: ffmpeg reported decode errors,
 * or the samples fall short of the container's duration by more than TRUNCATION_TOLERANCE. The
 * message names both durations, so a user sees how much is missing.
 */
export function incompleteDecode(
  path: string,
  report: InputReport,
  decodedSeconds: number,
): EagletError | undefined {
  const stated = report.containerSeconds;
  const durations = `the container says ${stated === undefined ? 'nothing of its duration' : `${stated.toFixed(2)} s`}, ffmpeg decoded ${decodedSeconds.toFixed(2)} s`;
  const errors = [...new Set(report.errors)];
  const hint =
    'the file is damaged or cut short (an interrupted copy or download?): fetch it again or drop the record';
  if (stated !== undefined) {
    const tolerance = Math.max(TRUNCATION_TOLERANCE.seconds, TRUNCATION_TOLERANCE.fraction * stated);
    if (stated - decodedSeconds > tolerance) {
      return new EagletError(
        'EAGLET_AUDIO_TRUNCATED',
        `${path} is truncated: ${durations}${errors.length ? ` (decode errors: ${errors.join('; ')})` : ''}`,
        { hint },
      );
    }
  }
  if (errors.length) {
    return new EagletError(
      'EAGLET_AUDIO_CORRUPT',
      `${path} has decode errors (${errors.join('; ')}); ${durations}`,
      { hint },
    );
  }
  return undefined;
}
