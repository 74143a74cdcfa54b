import { existsSync, statSync } from 'node:fs';
import { EagletError } from '@eaglet/core';
import ffmpeg from 'fluent-ffmpeg';
import { ffmpegInput, ffmpegInputOptions, refusal, refusalInLog } from './allow-list.js';
import { withLocalFile } from './source.js';

/** What ffprobe says about an audio file's container and first audio stream. */
export interface AudioProbe {
  /** ffprobe's format_name (the demuxer), e.g. `flac` or `mov,mp4,m4a,3gp,3g2,mj2`. */
  container: string;
  durationSeconds: number;
  sampleRate: number;
  channels: number;
  codec: string;
}

/**
 * Probes an audio reference (path or data: URI) with ffprobe, held to the allow-list: a container
 * or codec it does not name is refused (EAGLET_AUDIO_REFUSED, naming it) before any stream is
 * read. Other errors are coded so callers can report them per record: EAGLET_AUDIO_MISSING,
 * EAGLET_AUDIO_EMPTY, EAGLET_AUDIO_UNREADABLE. A probe reads headers only: `AudioDecoder.check`
 * is what proves a file complete.
 */
export async function probeAudio(ref: string): Promise<AudioProbe> {
  return withLocalFile(ref, async (path) => {
    if (!existsSync(path)) throw new EagletError('EAGLET_AUDIO_MISSING', `audio file not found: ${path}`);
    if (statSync(path).isDirectory())
      throw new EagletError('EAGLET_AUDIO_UNREADABLE', `audio path is a folder: ${path}`);
    if (statSync(path).size === 0)
      throw new EagletError('EAGLET_AUDIO_EMPTY', `audio file is empty (0 bytes): ${path}`);
    const data = await new Promise<ffmpeg.FfprobeData>((resolve, reject) =>
      ffmpeg.ffprobe(ffmpegInput(path), ffmpegInputOptions('ffprobe'), (err, d) =>
        err ? reject(err) : resolve(d),
      ),
    ).catch((e: Error) => {
      const refused = refusalInLog(path, e.message);
      if (refused) throw refused;
      const reason = e.message.split('\n').filter(Boolean).at(-1) ?? e.message;
      throw new EagletError(
        'EAGLET_AUDIO_UNREADABLE',
        `not a readable audio file: ${path} (${reason.trim()})`,
        { cause: e },
      );
    });
    const container = data.format.format_name ?? 'unknown';
    const stream = data.streams.find((s) => s.codec_type === 'audio');
    const refused = refusal(path, container, stream?.codec_name);
    if (refused) throw refused;
    if (!stream) throw new EagletError('EAGLET_AUDIO_UNREADABLE', `no audio stream in ${path}`);
    // webm states no stream duration (ffprobe says "N/A"): the container's is the audio's then.
    const duration = [stream.duration, data.format.duration].map(Number).find(Number.isFinite) ?? Number.NaN;
    if (Number.isNaN(duration)) {
      throw new EagletError(
        'EAGLET_AUDIO_UNREADABLE',
        `not a readable audio file: ${path} (ffprobe finds no duration)`,
      );
    }
    if (duration <= 0) throw new EagletError('EAGLET_AUDIO_EMPTY', `audio has zero length: ${path}`);
    return {
      container,
      durationSeconds: duration,
      sampleRate: Number(stream.sample_rate),
      channels: stream.channels ?? 1,
      codec: stream.codec_name ?? 'unknown',
    };
  });
}
