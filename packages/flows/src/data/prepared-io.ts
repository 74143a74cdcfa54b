import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { PREPARED_COLUMNS as C } from '@eaglet/core';
import {
  type Data,
  Field,
  Float32,
  Int32,
  List,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchReader,
  Schema,
  Struct,
  Uint8,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';

/** One prepared conversation: a row of a shard. */
export interface PreparedRow {
  id: string;
  sourceFile: string;
  sourceLine: number;
  inputIds: Int32Array;
  lossMask: Uint8Array;
  audio: Float32Array[];
  audioTokenCounts: number[];
}

type NumberArray = Int32Array | Uint8Array | Float32Array;
type ArrowNumber = Int32 | Uint8 | Float32;

const listType = (item: ArrowNumber | List) => new List(new Field('item', item, false));

/** A list column from typed arrays, built from one concatenated buffer (no per-element copies). */
function listData<T extends ArrowNumber>(type: T, arrays: NumberArray[]): Data<List<T>> {
  const offsets = new Int32Array(arrays.length + 1);
  let n = 0;
  arrays.forEach((a, i) => {
    n += a.length;
    offsets[i + 1] = n;
  });
  const values = new (type.ArrayType as new (n: number) => NumberArray)(n);
  let o = 0;
  for (const a of arrays) {
    values.set(a as never, o);
    o += a.length;
  }
  // biome-ignore lint/suspicious/noExplicitAny: makeData's overloads do not follow a generic type
  const make = makeData as (props: any) => Data<any>;
  const child = make({ type, length: n, nullCount: 0, data: values });
  return make({ type: listType(type), length: arrays.length, nullCount: 0, valueOffsets: offsets, child });
}

/** The Arrow schema of PREPARED_COLUMNS (the contract in @eaglet/core). */
export const PREPARED_SCHEMA = new Schema([
  new Field(C.id, new Utf8(), false),
  new Field(C.sourceFile, new Utf8(), false),
  new Field(C.sourceLine, new Int32(), false),
  new Field(C.inputIds, listType(new Int32()), false),
  new Field(C.lossMask, listType(new Uint8()), false),
  new Field(C.numTokens, new Int32(), false),
  new Field(C.audio, listType(listType(new Float32())), false),
  new Field(C.audioTokenCounts, listType(new Int32()), false),
]);

function toBatch(rows: PreparedRow[]): RecordBatch {
  const clips = rows.flatMap((r) => r.audio);
  const audioInner = listData(new Float32(), clips);
  const audioOffsets = new Int32Array(rows.length + 1);
  rows.forEach((r, i) => {
    audioOffsets[i + 1] = audioOffsets[i]! + r.audio.length;
  });
  const audio = makeData({
    type: listType(audioInner.type),
    length: rows.length,
    nullCount: 0,
    valueOffsets: audioOffsets,
    child: audioInner,
  });
  const children = [
    vectorFromArray(
      rows.map((r) => r.id),
      new Utf8(),
    ).data[0]!,
    vectorFromArray(
      rows.map((r) => r.sourceFile),
      new Utf8(),
    ).data[0]!,
    makeData({
      type: new Int32(),
      length: rows.length,
      nullCount: 0,
      data: Int32Array.from(rows, (r) => r.sourceLine),
    }),
    listData(
      new Int32(),
      rows.map((r) => r.inputIds),
    ),
    listData(
      new Uint8(),
      rows.map((r) => r.lossMask),
    ),
    makeData({
      type: new Int32(),
      length: rows.length,
      nullCount: 0,
      data: Int32Array.from(rows, (r) => r.inputIds.length),
    }),
    audio,
    listData(
      new Int32(),
      rows.map((r) => Int32Array.from(r.audioTokenCounts)),
    ),
  ];
  const struct = makeData({
    type: new Struct(PREPARED_SCHEMA.fields),
    length: rows.length,
    nullCount: 0,
    children,
  });
  return new RecordBatch(PREPARED_SCHEMA, struct as never);
}

const rowBytes = (r: PreparedRow) =>
  r.inputIds.byteLength + r.lossMask.byteLength + r.audio.reduce((n, a) => n + a.byteLength, 0) + 64;

/**
 * Writes one shard: rows are buffered into record batches of at most `batchBytes` (so memory stays
 * bounded however long the audio) and streamed into `<path>.tmp`; `close()` syncs the file, renames
 * it to `path` and returns its sha256. Identical rows give identical bytes.
 */
export class ShardWriter {
  records = 0;
  private rows: PreparedRow[] = [];
  private bytes = 0;
  private readonly writer = new RecordBatchFileWriter();
  private readonly fd: number;
  private readonly hash = createHash('sha256');
  private readonly pump: Promise<void>;
  readonly path: string;
  private readonly batchBytes: number;

  constructor(path: string, batchBytes = 32 << 20) {
    this.path = path;
    this.batchBytes = batchBytes;
    const fd = openSync(`${path}.tmp`, 'w');
    this.fd = fd;
    const hash = this.hash;
    const writer = this.writer;
    // Drain the writer's output into the file as it is produced.
    this.pump = (async () => {
      for await (const chunk of writer as AsyncIterable<Uint8Array>) {
        writeSync(fd, chunk);
        hash.update(chunk);
      }
    })();
  }

  add(row: PreparedRow): void {
    this.rows.push(row);
    this.records++;
    this.bytes += rowBytes(row);
    if (this.bytes >= this.batchBytes) this.flush();
  }

  private flush(): void {
    if (this.rows.length === 0) return;
    this.writer.write(toBatch(this.rows));
    this.rows = [];
    this.bytes = 0;
  }

  async close(): Promise<{ records: number; sha256: string }> {
    this.flush();
    if (this.records === 0) this.writer.reset(undefined, PREPARED_SCHEMA);
    this.writer.finish();
    await this.pump;
    fsyncSync(this.fd);
    closeSync(this.fd);
    renameSync(`${this.path}.tmp`, this.path);
    return { records: this.records, sha256: this.hash.digest('hex') };
  }

  /** Stops without renaming (the .tmp stays; a resumed run deletes it). */
  abort(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

/** Streams the record batches of a shard, one at a time. */
export async function* readShardBatches(path: string): AsyncGenerator<RecordBatch> {
  const reader = await RecordBatchReader.from(createReadStream(path));
  for await (const batch of reader) yield batch;
}
