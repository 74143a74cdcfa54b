import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { librivoxClips } from '@eaglet/fixtures';
import { describe, expect, it } from 'vitest';
import { probeAudio } from '../src/index.js';

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('probeAudio (real ffprobe)', () => {
  const clip = librivoxClips()[0]!;

  it('reads duration, rate and channels of a LibriVox clip', async () => {
    const info = await probeAudio(clip.path);
    expect(info).toMatchObject({ sampleRate: 16000, channels: 1, codec: 'pcm_s16le' });
    expect(info.durationSeconds).toBeCloseTo(7.1, 2);
  });

  it('reads a data: URI', async () => {
    const uri = `data:audio/wav;base64,${readFileSync(clip.path).toString('base64')}`;
    expect((await probeAudio(uri)).durationSeconds).toBeCloseTo(7.1, 2);
  });

  it('gives coded errors for missing, empty, folder, non-audio and remote inputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-probe-'));
    writeFileSync(join(dir, 'empty.wav'), '');
    writeFileSync(join(dir, 'text.flac'), 'not audio\n'.repeat(100));
    mkdirSync(join(dir, 'folder.wav'));
    expect(await code(probeAudio(join(dir, 'missing.wav')))).toBe('EAGLET_AUDIO_MISSING');
    expect(await code(probeAudio(join(dir, 'empty.wav')))).toBe('EAGLET_AUDIO_EMPTY');
    expect(await code(probeAudio(join(dir, 'text.flac')))).toBe('EAGLET_AUDIO_UNREADABLE');
    expect(await code(probeAudio(join(dir, 'folder.wav')))).toBe('EAGLET_AUDIO_UNREADABLE');
    expect(await code(probeAudio('https://example.com/a.wav'))).toBe('EAGLET_AUDIO_REMOTE');
  });
});
