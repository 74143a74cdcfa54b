import { inflateSync } from 'node:zlib';
import { BenchConfig, buildBenchReport, type MeasuredRound, type TimedPass } from '@eaglet/core';
import { describe, expect, it } from 'vitest';
import { benchPlotPng, valueTicks } from '../src/serve/bench-plot.js';

const BLUE = '2e86de';
const GREY = '7f8c8d';
const GREEN = '27ae60';
const RED = 'c0392b';

/** Reads an 8-bit RGB PNG back (checking every chunk's CRC): its size and a pixel reader. */
function decodePng(png: Buffer) {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = table[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    expect(png.readUInt32BE(at + 8 + length), `${type} CRC`).toBe(crc(png.subarray(at + 4, at + 8 + length)));
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([...data.subarray(8)]).toEqual([8, 2, 0, 0, 0]);
    }
    if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  const rows = inflateSync(Buffer.concat(idat));
  expect(rows.length).toBe((width * 3 + 1) * height);
  const pixel = (x: number, y: number) => {
    const i = y * (width * 3 + 1) + 1 + x * 3;
    return rows.subarray(i, i + 3).toString('hex');
  };
  return { width, height, pixel };
}

/** Height in pixels of each bar of `color` in the columns [x0, x1): one entry per bar, left to right. */
function barHeights(img: ReturnType<typeof decodePng>, color: string, x0: number, x1: number): number[] {
  const columns: number[] = [];
  for (let x = x0; x < x1; x++) {
    // The longest vertical run of the colour in this column (a legend swatch is a separate run).
    let longest = 0;
    for (let y = 0, run = 0; y < img.height; y++) {
      run = img.pixel(x, y) === color ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    columns.push(longest);
  }
  const bars: number[] = [];
  for (let i = 0; i < columns.length; i++) {
    // A bar is a run of columns with the colour; its height is the run's tallest column.
    if (columns[i]! > 0 && (i === 0 || columns[i - 1] === 0)) bars.push(0);
    if (columns[i]! > 0) bars[bars.length - 1] = Math.max(bars.at(-1)!, columns[i]!);
  }
  return bars;
}

describe('the bench plot, drawn in TS', () => {
  const config = {
    ...BenchConfig.parse({
      targetModel: '/m',
      draftModel: '/d',
      outputFile: '/o.json',
      testDataPath: '/t',
      numSpecTokens: 3,
    }),
    backend: 'torch',
    target: 'some-target',
  };
  const req = (id: string, tokens: number, latency: number) => ({
    id,
    promptTokens: 10,
    outputTokens: tokens,
    latency,
  });
  const outputs = [
    { id: 'a', ids: [1, 2] },
    { id: 'b', ids: [3] },
  ];
  const baseline: TimedPass = { requests: [req('a', 100, 2), req('b', 100, 2)], outputs, wallSeconds: 4 };
  const eagle3: TimedPass = {
    requests: [req('a', 100, 1), req('b', 100, 1)],
    outputs,
    wallSeconds: 2,
    counters: {
      numDrafts: 80,
      numDraftTokens: 240,
      numAcceptedTokens: 150,
      acceptedPerPosition: [70, 50, 30],
    },
  };
  /** Three rounds of these passes, the order alternating. */
  const rounds = (b = baseline, e = eagle3): MeasuredRound[] =>
    [0, 1, 2].map((i) => ({
      order: i % 2 ? ['eagle3', 'baseline'] : ['baseline', 'eagle3'],
      ...(b ? { baseline: b } : {}),
      ...(e ? { eagle3: e } : {}),
    }));
  /** Dark pixels (text) in a region. */
  const dark = (img: ReturnType<typeof decodePng>, x0: number, x1: number, y0: number, y1: number) => {
    let n = 0;
    for (let x = x0; x < x1; x++) for (let y = y0; y < y1; y++) if (img.pixel(x, y) === '000000') n++;
    return n;
  };

  it('shows throughput, latency and acceptance per position as bars of the right heights', () => {
    const png = benchPlotPng(buildBenchReport({ config, device: 'cpu', rounds: rounds() }));
    const img = decodePng(png);
    expect([img.width, img.height]).toEqual([1560, 456 + 300]);
    const third = img.width / 3;
    // Throughput: eagle3 runs at twice the baseline's rate.
    const [grey] = barHeights(img, GREY, 0, third);
    const [blue] = barHeights(img, BLUE, 0, third);
    expect(blue! / grey!).toBeCloseTo(2, 1);
    // Latency: mean, p50, p90 of each run side by side (baseline 2 s, eagle3 1 s); the legend's swatches are short.
    const latencyGrey = barHeights(img, GREY, third, 2 * third).filter((h) => h > 20);
    const latencyBlue = barHeights(img, BLUE, third, 2 * third).filter((h) => h > 20);
    expect(latencyGrey).toHaveLength(3);
    expect(latencyBlue).toHaveLength(3);
    for (let i = 0; i < 3; i++) expect(latencyGrey[i]! / latencyBlue[i]!).toBeCloseTo(2, 1);
    // Acceptance per position 70/80, 50/80, 30/80 on a 0..1 axis.
    const acceptance = barHeights(img, BLUE, 2 * third, img.width);
    expect(acceptance).toHaveLength(3);
    expect(acceptance[1]! / acceptance[0]!).toBeCloseTo(50 / 70, 1);
    expect(acceptance[2]! / acceptance[0]!).toBeCloseTo(30 / 70, 1);
    // Text (titles, ticks) is drawn: dark pixels in the title band above each panel.
    for (const [x0, x1] of [
      [0, third],
      [third, 2 * third],
      [2 * third, img.width],
    ]) {
      let dark = 0;
      for (let x = x0!; x < x1!; x++) for (let y = 30; y < 60; y++) if (img.pixel(x, y) === '000000') dark++;
      expect(dark, `title pixels in columns ${x0}..${x1}`).toBeGreaterThan(20);
    }
    // The bottom row: the verdict and the lossless check in words, each round's speedup as a bar.
    expect(dark(img, 0, img.width / 2, 456, img.height), 'verdict and lossless text').toBeGreaterThan(200);
    const perRound = barHeights(img, GREEN, img.width / 2, img.width);
    expect(perRound).toHaveLength(3);
    expect(new Set(perRound).size).toBe(1); // three rounds of speedup 2
    expect(barHeights(img, RED, 0, img.width)).toEqual([]);
    // The same report draws the same bytes.
    expect(benchPlotPng(buildBenchReport({ config, device: 'cpu', rounds: rounds() }))).toEqual(png);
  });

  it('draws a disagreeing round in red, beside the others in green', () => {
    const slowed = rounds();
    slowed[1]!.baseline = { ...baseline, wallSeconds: 16 }; // round 2's baseline 4x slower: speedup 8
    const report = buildBenchReport({ config, device: 'cpu', rounds: slowed });
    expect(report.trustworthy).toBe(false);
    const img = decodePng(benchPlotPng(report));
    const bottom = (color: string) => barHeights(img, color, img.width / 2, img.width);
    expect(bottom(GREEN)).toHaveLength(2);
    expect(bottom(RED)).toHaveLength(1);
    // Speedup 8 against 2, to a pixel of the shorter bar's height.
    expect(Math.abs(bottom(RED)[0]! / bottom(GREEN)[0]! - 8 / 2)).toBeLessThan(
      8 / 2 / bottom(GREEN)[0]! + 0.01,
    );
    // The reasons are written in red on the left.
    let red = 0;
    for (let x = 0; x < img.width / 2; x++)
      for (let y = 456; y < img.height; y++) if (img.pixel(x, y) === RED) red++;
    expect(red).toBeGreaterThan(50);
  });

  it('has two panels when no Eagle3 run measured acceptance', () => {
    const img = decodePng(
      benchPlotPng(
        buildBenchReport({
          config: { ...config, useEagle: false },
          device: 'cpu',
          rounds: rounds(baseline, undefined as unknown as TimedPass).map(({ eagle3: _e, ...r }) => ({
            ...r,
            order: ['baseline'],
          })),
        }),
      ),
    );
    expect([img.width, img.height]).toEqual([1080, 456 + 300]);
    expect(barHeights(img, BLUE, 0, img.width)).toEqual([]);
    expect(barHeights(img, GREY, 0, img.width / 2)).toHaveLength(1);
  });

  it('puts value ticks at round steps from 0 up to the top', () => {
    expect(valueTicks(1)).toEqual([0, 0.2, 0.4, 0.6000000000000001, 0.8, 1]);
    expect(valueTicks(110)).toEqual([0, 25, 50, 75, 100, 125]);
    expect(valueTicks(2.2)).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
  });
});
