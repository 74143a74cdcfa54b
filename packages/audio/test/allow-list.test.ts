import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concatList, hlsPlaylist, inlineAudio, librivoxClips, truncatedFlac } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { ffmpegDecoder, probeAudio } from '../src/index.js';

const ffmpeg = (args: string[]) =>
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);

let dir: string;
/** A real clip outside anything a playlist record should reach. */
let secret: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'eaglet-allow-'));
  secret = join(mkdtempSync(join(tmpdir(), 'eaglet-secret-')), 'secret.flac');
  ffmpeg(['-i', librivoxClips()[1]!.path, secret]);
});

describe('the audio allow-list (real ffmpeg and ffprobe)', () => {
  const decoder = ffmpegDecoder();

  it('refuses an HLS playlist, inline or on disk, naming its container, and never opens the file it lists', async () => {
    const inline = inlineAudio(hlsPlaylist(secret));
    const onDisk = join(dir, 'list.m3u8');
    writeFileSync(onDisk, hlsPlaylist(secret));
    for (const ref of [inline, onDisk]) {
      for (const attempt of [probeAudio, decoder.decode, decoder.check]) {
        await expect(attempt(ref)).rejects.toMatchObject({
          code: 'EAGLET_AUDIO_REFUSED',
          message: expect.stringMatching(/container "hls" is not one eaglet decodes \(it names other files/),
        });
      }
    }
    // A concat list (ffmpeg's other way of following references) is refused the same way.
    const concat = join(dir, 'list.txt');
    writeFileSync(concat, concatList(secret));
    await expect(decoder.decode(concat)).rejects.toMatchObject({
      code: 'EAGLET_AUDIO_REFUSED',
      message: expect.stringMatching(/container "concat"/),
    });
  });

  it('refuses a codec outside the list (ADPCM in a wav) and takes every listed one', async () => {
    const source = librivoxClips()[0]!.path;
    ffmpeg(['-i', source, '-c:a', 'adpcm_ms', join(dir, 'adpcm.wav')]);
    for (const attempt of [probeAudio, decoder.decode]) {
      await expect(attempt(join(dir, 'adpcm.wav'))).rejects.toMatchObject({
        code: 'EAGLET_AUDIO_REFUSED',
        message: expect.stringMatching(/audio codec "adpcm_ms" is not one eaglet decodes/),
      });
    }
    const allowed: Record<string, string[]> = {
      'a.wav': [],
      'a.flac': [],
      'a.mp3': [],
      'a.ogg': ['-c:a', 'libvorbis'],
      'a.opus': ['-c:a', 'libopus'],
      'a.webm': ['-c:a', 'libopus'],
      'a.m4a': ['-c:a', 'aac'],
      'a.aac': ['-c:a', 'aac'],
      'alac.m4a': ['-c:a', 'alac'],
    };
    for (const [name, args] of Object.entries(allowed)) {
      ffmpeg(['-i', source, ...args, join(dir, name)]);
      expect((await probeAudio(join(dir, name))).durationSeconds, name).toBeGreaterThan(6.5);
      expect(Math.abs((await decoder.check(join(dir, name))).seconds - 7.1), name).toBeLessThan(0.1);
    }
    // An mp3 with a cover picture (a second, video stream) is still plain audio.
    ffmpeg(['-f', 'lavfi', '-i', 'color=red:s=32x32:d=1', '-frames:v', '1', join(dir, 'cover.png')]);
    ffmpeg([
      ...['-i', join(dir, 'a.mp3'), '-i', join(dir, 'cover.png'), '-map', '0', '-map', '1', '-c', 'copy'],
      ...['-id3v2_version', '3', '-disposition:v', 'attached_pic', join(dir, 'cover.mp3')],
    ]);
    expect((await probeAudio(join(dir, 'cover.mp3'))).codec).toBe('mp3');
    expect((await decoder.decode(join(dir, 'cover.mp3'))).seconds).toBeCloseTo(7.1, 1);
  });

  it('refuses a truncated FLAC, naming what the header claims and what decodes', async () => {
    const cut = join(dir, 'cut.flac');
    const { claimedSeconds } = truncatedFlac(cut);
    expect((await probeAudio(cut)).durationSeconds).toBeCloseTo(claimedSeconds, 2); // headers look fine
    for (const attempt of [decoder.decode, decoder.check]) {
      await expect(attempt(cut)).rejects.toMatchObject({
        code: 'EAGLET_AUDIO_TRUNCATED',
        message: expect.stringMatching(
          /is truncated: the container says 7\.10 s, ffmpeg decoded (0|1)\.\d\d s/,
        ),
      });
    }
    // Batched with good files, it fails alone and they decode.
    const batched = ffmpegDecoder({ processes: 1, batchSize: 4 });
    const results = await Promise.allSettled([
      batched.decode(librivoxClips()[0]!.path),
      batched.decode(cut),
      batched.decode(librivoxClips()[2]!.path),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});
