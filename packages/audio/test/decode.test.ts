import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Clip, librivoxClips, longRecording } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { ffmpegDecoder, SileroVad, segmentAtPauses } from '../src/index.js';

const ffmpeg = (args: string[]) =>
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

/** The 16-bit samples of a 16 kHz mono wav, as floats (what any correct decoder must return). */
function wavSamples(path: string): Float32Array {
  const buf = readFileSync(path);
  const data = buf.indexOf('data');
  const n = buf.readUInt32LE(data + 4) / 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = buf.readInt16LE(data + 8 + 2 * i) / 32768;
  return out;
}

let dir: string;
let clip: Clip;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'eaglet-decode-'));
  clip = librivoxClips()[0]!;
});

describe('ffmpegDecoder (real ffmpeg)', () => {
  const decoder = ffmpegDecoder();

  it('decodes a 16 kHz wav to exactly its samples', async () => {
    const out = await decoder.decode(clip.path);
    const want = wavSamples(clip.path);
    expect(out.sampleRate).toBe(16000);
    expect(out.pcm.length).toBe(want.length);
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out.pcm[i]! - want[i]!));
    expect(maxDiff).toBeLessThan(1e-6);
    expect(out.seconds).toBeCloseTo(7.1, 1);
  });

  it('reads flac, mp3, ogg/opus, m4a and a video audio track, resampled to 16 kHz mono', async () => {
    const stereo44 = join(dir, 'stereo44.wav');
    ffmpeg(['-i', clip.path, '-ac', '2', '-ar', '44100', stereo44]);
    const files = {
      'a.flac': ['-i', stereo44],
      'a.mp3': ['-i', stereo44],
      'a.opus': ['-i', stereo44, '-c:a', 'libopus'],
      'a.m4a': ['-i', stereo44, '-c:a', 'aac'],
      'a.mp4': [
        '-f',
        'lavfi',
        '-i',
        'testsrc=size=64x64:rate=5',
        '-i',
        stereo44,
        '-shortest',
        '-c:v',
        'mpeg4',
        '-c:a',
        'aac',
      ],
    };
    for (const [name, args] of Object.entries(files)) {
      ffmpeg([...args, join(dir, name)]);
      const out = await decoder.decode(join(dir, name));
      expect(out.sampleRate, name).toBe(16000);
      expect(Math.abs(out.seconds - 7.1), name).toBeLessThan(0.1);
      expect(Math.max(...out.pcm.subarray(16000, 32000).map(Math.abs)), name).toBeGreaterThan(0.01);
    }
  });

  it('decodes a data: URI', async () => {
    const uri = `data:audio/wav;base64,${readFileSync(clip.path).toString('base64')}`;
    expect((await decoder.decode(uri)).pcm.length).toBe(wavSamples(clip.path).length);
  });

  it('gives coded errors for missing, empty, zero-length, folder, non-audio, silent-video and remote inputs', async () => {
    writeFileSync(join(dir, 'empty.wav'), '');
    writeFileSync(join(dir, 'text.flac'), 'not audio\n'.repeat(100));
    mkdirSync(join(dir, 'folder.wav'));
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=64x64:rate=5:duration=1',
      '-c:v',
      'mpeg4',
      join(dir, 'silent.mp4'),
    ]);
    expect(await code(decoder.decode(join(dir, 'missing.wav')))).toBe('EAGLET_AUDIO_MISSING');
    expect(await code(decoder.decode(join(dir, 'empty.wav')))).toBe('EAGLET_AUDIO_EMPTY');
    // A valid wav header with no samples: zero-length audio.
    ffmpeg(['-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '0', join(dir, 'zero.wav')]);
    await expect(decoder.decode(join(dir, 'zero.wav'))).rejects.toMatchObject({
      code: 'EAGLET_AUDIO_EMPTY',
      message: expect.stringMatching(/zero length/),
    });
    expect(await code(decoder.decode(join(dir, 'text.flac')))).toBe('EAGLET_AUDIO_UNREADABLE');
    expect(await code(decoder.decode(join(dir, 'folder.wav')))).toBe('EAGLET_AUDIO_UNREADABLE');
    await expect(decoder.decode(join(dir, 'silent.mp4'))).rejects.toThrow(/no audio stream/);
    expect(await code(decoder.decode('https://example.com/a.wav'))).toBe('EAGLET_AUDIO_REMOTE');
  });

  it('batches queued files into one ffmpeg with the same samples, and a bad file only fails itself', async () => {
    const clips = librivoxClips();
    const single = await Promise.all(clips.map((c) => ffmpegDecoder({ batchSize: 1 }).decode(c.path)));
    writeFileSync(join(dir, 'bad.wav'), 'not audio at all\n'.repeat(50));
    const batched = ffmpegDecoder({ processes: 1, batchSize: 8 });
    const results = await Promise.allSettled([
      ...clips.map((c) => batched.decode(c.path)),
      batched.decode(join(dir, 'bad.wav')),
    ]);
    results.slice(0, clips.length).forEach((r, i) => {
      expect(r.status).toBe('fulfilled');
      const pcm = (r as PromiseFulfilledResult<{ pcm: Float32Array }>).value.pcm;
      expect(Buffer.from(pcm.buffer).equals(Buffer.from(single[i]!.pcm.buffer))).toBe(true);
    });
    expect(results.at(-1)).toMatchObject({ status: 'rejected', reason: { code: 'EAGLET_AUDIO_UNREADABLE' } });
  });

  it('cancels a decode through its signal', async () => {
    const c = new AbortController();
    const p = decoder.decode(clip.path, { signal: c.signal });
    c.abort();
    expect(await code(p)).toMatch(/EAGLET_CANCELLED|ok/); // a decode may finish before the kill lands
  });
});

describe('VAD segmentation of real speech (Silero VAD on onnxruntime-node)', () => {
  it('cuts a 70 s recording inside the pauses between utterances, covering every sample', async () => {
    const clips = librivoxClips();
    const path = join(dir, 'long.flac');
    const gap = 0.8;
    const rec = longRecording(clips, path, 70, gap);
    const pcm = (await ffmpegDecoder().decode(path)).pcm;
    const vad = await SileroVad.load();
    const probs = await vad.probabilities(pcm);
    await vad.release();
    // Speech is detected in the clips and not in the gaps.
    const speechFrames = probs.filter((p) => p > 0.5).length;
    expect(speechFrames / probs.length).toBeGreaterThan(0.5);

    const { segments, hardCuts } = segmentAtPauses(pcm.length, probs, { maxSamples: 30 * 16000 });
    expect(hardCuts).toBe(0);
    expect(segments.length).toBe(3);
    expect(segments[0]!.start).toBe(0);
    expect(segments.at(-1)!.end).toBe(pcm.length);
    for (let i = 1; i < segments.length; i++) expect(segments[i]!.start).toBe(segments[i - 1]!.end);
    for (const s of segments) expect(s.end - s.start).toBeLessThanOrEqual(30 * 16000);

    // Where the gaps are: after each clip, `gap` seconds of silence.
    const gaps: Array<[number, number]> = [];
    let t = 0;
    for (let i = 0; gaps.length < 20 && t < rec.seconds; i++) {
      const c = clips[i % clips.length]!;
      t += Number(execFileSync('soxi', ['-D', c.path], { encoding: 'utf8' }));
      gaps.push([t, t + gap]);
      t += gap;
    }
    for (const s of segments.slice(1)) {
      const at = s.start / 16000;
      expect(
        gaps.some(([a, b]) => at > a - 0.05 && at < b + 0.05),
        `cut at ${at}s`,
      ).toBe(true);
    }
  });

  it('falls back to a hard cut where there is no pause', () => {
    const probs = new Float32Array(2000).fill(0.9);
    const total = 2000 * 512;
    const { segments, hardCuts } = segmentAtPauses(total, probs, { maxSamples: 480000 });
    expect(hardCuts).toBe(2);
    expect(segments.map((s) => s.end - s.start)).toEqual([480000, 480000, total - 960000]);
  });
});
