import { closeSync, fsyncSync, openSync, readSync, renameSync, writeSync } from 'node:fs';

export interface SafetensorsTensor {
  dtype: 'I64' | 'BOOL' | 'I32' | 'F32' | 'U8';
  shape: number[];
  /** Little-endian bytes, row-major. */
  data: Uint8Array;
}

const ITEM_BYTES = { I64: 8, BOOL: 1, I32: 4, F32: 4, U8: 1 } as const;

/**
 * Writes a safetensors file: an 8-byte little-endian header length, a JSON header (tensor dtype,
 * shape, data offsets, and string `__metadata__`) padded with spaces to a multiple of 8 bytes,
 * then the tensors' bytes in header order. Written to `<path>.tmp` and renamed.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, SafetensorsTensor>,
  metadata: Record<string, string> = {},
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * ITEM_BYTES[t.dtype];
    if (t.data.byteLength !== expected)
      throw new Error(`tensor ${name}: ${t.data.byteLength} bytes for shape [${t.shape}] ${t.dtype}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = openSync(`${path}.tmp`, 'w');
  try {
    writeSync(fd, head);
    writeSync(fd, json);
    for (const t of Object.values(tensors)) writeSync(fd, t.data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(`${path}.tmp`, path);
}

/** A safetensors header: each tensor's dtype, shape and data offsets, and the string metadata. */
export type SafetensorsHeader = Record<string, { dtype?: string; shape?: number[] } | undefined> & {
  __metadata__?: Record<string, string>;
};

/**
 * Reads the JSON header of an open safetensors file (no tensor is read). Throws an Error saying
 * what is wrong when the file has no valid header.
 */
export function readSafetensorsHeader(fd: number): SafetensorsHeader {
  const len = Buffer.alloc(8);
  readSync(fd, len, 0, 8, 0);
  const n = Number(len.readBigUInt64LE());
  if (n <= 0 || n > 1 << 24) throw new Error('bad header length');
  const header = Buffer.alloc(n);
  readSync(fd, header, 0, n, 8);
  return JSON.parse(header.toString('utf8')) as SafetensorsHeader;
}
