import { readFileSync, writeFileSync } from 'node:fs';

/** 16-bit PCM WAV: the format the demo data ships in (no decoder needed to splice it). */
export interface Pcm16 {
  sampleRate: number;
  channels: number;
  samples: Int16Array;
}

/** Reads a 16-bit PCM WAV file (RIFF/WAVE, `fmt ` chunk with format 1, then `data`). */
export function readWav(path: string): Pcm16 {
  const b = readFileSync(path);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE')
    throw new Error(`${path} is not a RIFF/WAVE file`);
  let sampleRate = 0;
  let channels = 0;
  for (let at = 12; at + 8 <= b.length; ) {
    const id = b.toString('ascii', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ') {
      if (b.readUInt16LE(body) !== 1 || b.readUInt16LE(body + 14) !== 16)
        throw new Error(`${path}: only 16-bit PCM WAV is read here`);
      channels = b.readUInt16LE(body + 2);
      sampleRate = b.readUInt32LE(body + 4);
    } else if (id === 'data') {
      if (!sampleRate) throw new Error(`${path}: data before fmt`);
      const bytes = b.subarray(body, body + size);
      const samples = new Int16Array(bytes.length / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
      return { sampleRate, channels, samples };
    }
    at = body + size + (size % 2);
  }
  throw new Error(`${path}: no data chunk`);
}

/** Writes mono or interleaved 16-bit PCM as a canonical 44-byte-header WAV file. */
export function writeWav(path: string, pcm: Pcm16): void {
  const data = Buffer.alloc(pcm.samples.length * 2);
  for (let i = 0; i < pcm.samples.length; i++) data.writeInt16LE(pcm.samples[i]!, i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(pcm.channels, 22);
  h.writeUInt32LE(pcm.sampleRate, 24);
  h.writeUInt32LE(pcm.sampleRate * pcm.channels * 2, 28);
  h.writeUInt16LE(pcm.channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([h, data]));
}

/**
 * Real recordings strung together with `gapSeconds` of silence between them, repeated until at
 * least `minSeconds` long: a long recording with real pauses (for the long-audio policy).
 */
export function spliceWavs(
  inputs: readonly string[],
  minSeconds: number,
  gapSeconds: number,
): Pcm16 & { seconds: number; order: number[] } {
  const clips = inputs.map(readWav);
  const first = clips[0];
  if (!first) throw new Error('no recordings to splice');
  for (const [i, c] of clips.entries())
    if (c.sampleRate !== first.sampleRate || c.channels !== 1)
      throw new Error(`${inputs[i]}: every recording must be mono at ${first.sampleRate} Hz`);
  const gap = new Int16Array(Math.round(gapSeconds * first.sampleRate));
  const parts: Int16Array[] = [];
  const order: number[] = [];
  let length = 0;
  for (let i = 0; length < minSeconds * first.sampleRate; i++) {
    const k = i % clips.length;
    parts.push(clips[k]!.samples, gap);
    order.push(k);
    length += clips[k]!.samples.length + gap.length;
  }
  const samples = new Int16Array(length);
  let at = 0;
  for (const p of parts) {
    samples.set(p, at);
    at += p.length;
  }
  return { sampleRate: first.sampleRate, channels: 1, samples, seconds: length / first.sampleRate, order };
}
