import { existsSync, statSync } from 'node:fs';
import { EagletError } from '@eaglet/core';
import ffmpeg from 'fluent-ffmpeg';
import { withLocalFile } from './source.js';

/** What ffprobe says about an audio file's first audio stream. */
export interface AudioProbe {
  durationSeconds: number;
  sampleRate: number;
  channels: number;
  codec: string;
}

/**
 * Probes an audio reference (path or data: URI) with ffprobe. Errors are coded so callers can
 * report them per record: EAGLET_AUDIO_MISSING, EAGLET_AUDIO_EMPTY, EAGLET_AUDIO_UNREADABLE.
 */
export async function probeAudio(ref: string): Promise<AudioProbe> {
  return withLocalFile(ref, async (path) => {
    if (!existsSync(path)) throw new EagletError('EAGLET_AUDIO_MISSING', `audio file not found: ${path}`);
    if (statSync(path).isDirectory())
      throw new EagletError('EAGLET_AUDIO_UNREADABLE', `audio path is a folder: ${path}`);
    if (statSync(path).size === 0)
      throw new EagletError('EAGLET_AUDIO_EMPTY', `audio file is empty (0 bytes): ${path}`);
    const data = await new Promise<ffmpeg.FfprobeData>((resolve, reject) =>
      ffmpeg.ffprobe(path, (err, d) => (err ? reject(err) : resolve(d))),
    ).catch((e: Error) => {
      const reason = e.message.split('\n').filter(Boolean).at(-1) ?? e.message;
      throw new EagletError(
        'EAGLET_AUDIO_UNREADABLE',
        `not a readable audio file: ${path} (${reason.trim()})`,
        { cause: e },
      );
    });
    const stream = data.streams.find((s) => s.codec_type === 'audio');
    if (!stream) throw new EagletError('EAGLET_AUDIO_UNREADABLE', `no audio stream in ${path}`);
    const duration = Number(stream.duration ?? data.format.duration ?? Number.NaN);
    if (Number.isNaN(duration)) {
      throw new EagletError(
        'EAGLET_AUDIO_UNREADABLE',
        `not a readable audio file: ${path} (ffprobe finds no duration)`,
      );
    }
    if (duration <= 0) throw new EagletError('EAGLET_AUDIO_EMPTY', `audio has zero length: ${path}`);
    return {
      durationSeconds: duration,
      sampleRate: Number(stream.sample_rate),
      channels: stream.channels ?? 1,
      codec: stream.codec_name ?? 'unknown',
    };
  });
}
