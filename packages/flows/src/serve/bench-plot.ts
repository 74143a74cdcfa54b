import { type BenchReport, type BenchRun, losslessCheck, speedupVerdict } from '@eaglet/core';
import { type Color, Raster } from '../util/raster/raster.js';

/**
 * The benchmark report as a figure (PNG), drawn here in TS from the report itself, so no backend
 * and no second Python process is needed for it. The top row: throughput of each run, request
 * latency (mean, p50, p90), and the Eagle3 acceptance rate per draft position (with the mean
 * acceptance length, +1 stated; only where Eagle3 ran). The bottom row: the verdict in words (the
 * speedup with its interval, or "not trustworthy" and why) and the lossless check, beside each
 * round's speedup (its throughput when one mode ran) against the acceptance-length bound.
 */
export function benchPlotPng(report: BenchReport): Buffer {
  const runs = [report.baseline, report.eagle3].filter((r): r is BenchRun => !!r);
  const spec = report.eagle3?.spec;
  const panels: Panel[] = [
    {
      title: ['throughput (output tok/s)', ...(report.speedup !== undefined ? [speedupTitle(report)] : [])],
      groups: runs.map((r) => ({
        label: r.mode,
        bars: [{ value: r.throughput, color: COLORS[r.mode], label: r.throughput.toFixed(1) }],
      })),
    },
    {
      title: ['request latency (s)'],
      groups: (['mean', 'p50', 'p90'] as const).map((stat) => ({
        label: stat,
        bars: runs.map((r) => ({ value: r.latency[stat], color: COLORS[r.mode] })),
      })),
      legend: runs.map((r) => ({ label: r.mode, color: COLORS[r.mode] })),
    },
  ];
  if (spec) {
    panels.push({
      title: [
        'acceptance per draft position',
        `mean acceptance length ${spec.meanAcceptanceLength.toFixed(2)}`,
        '(= 1 + accepted / drafts)',
      ],
      groups: spec.acceptanceRatePerPosition.map((rate, i) => ({
        label: String(i),
        bars: [{ value: rate, color: COLORS.eagle3 }],
      })),
      yMax: 1,
      xLabel: 'draft position',
    });
  }
  // The top row: 13 x 3.8 (two panels: 9 x 3.8) inches at 120 dpi.
  const raster = new Raster(spec ? 1560 : 1080, TOP_ROW + BOTTOM_ROW);
  const line = Raster.lineHeight;
  raster.text(
    raster.width / 2,
    8,
    `${report.target} on ${report.backend} (${report.machine.device}), ` +
      `${report.config.numSpecTokens} spec tokens, temperature ${report.config.temperature}`,
    { align: 'center' },
  );
  const titleTop = 8 + line + 8;
  const plotTop = titleTop + Math.max(...panels.map((p) => p.title.length)) * line + 8;
  const panelWidth = raster.width / panels.length;
  for (const [i, panel] of panels.entries()) {
    // Room on the left for the value ticks, below for the group labels and an axis label.
    const box = { x: i * panelWidth + 70, y: plotTop, w: panelWidth - 94, h: TOP_ROW - 52 - plotTop };
    for (const [k, text] of panel.title.entries())
      raster.text(box.x + box.w / 2, titleTop + k * line, text, { align: 'center' });
    drawBars(raster, box, panel);
  }
  drawBottomRow(raster, report);
  return raster.png();
}

const TOP_ROW = 456;
const BOTTOM_ROW = 300;

const COLORS: Record<BenchRun['mode'], Color> = { baseline: '#7f8c8d', eagle3: '#2e86de' };
/** Per-round bars: green where a round agrees with the others; red there and for "not trustworthy". */
const ROUND_COLOR: Color = '#27ae60';
const BAD: Color = '#c0392b';

function speedupTitle(report: BenchReport): string {
  return report.trustworthy === false
    ? `speedup NOT TRUSTWORTHY (measured ${report.speedup!.toFixed(2)}x)`
    : `speedup ${report.speedup!.toFixed(2)}x`;
}

/** The bottom row: the verdict and the lossless check in words (left), the rounds (right). */
function drawBottomRow(raster: Raster, report: BenchReport): void {
  const line = Raster.lineHeight;
  const half = raster.width / 2;
  const top = TOP_ROW + 8;
  // The Markdown report's own sentences, without its bold marks.
  const verdict = speedupVerdict(report)
    .filter((text) => text)
    .map((text) => ({
      text: text.replaceAll('**', ''),
      ...(report.trustworthy === false ? { color: BAD } : {}),
    }));
  const lines = [...verdict, { text: losslessCheck(report) }].flatMap((w) =>
    wrap(w.text, half - 48).map((text) => ({ ...w, text })),
  );
  for (const [i, w] of lines.entries())
    raster.text(24, top + 8 + i * line, w.text, w.color ? { color: w.color } : {});

  const bySpeedup = report.speedup !== undefined;
  const mode = report.baseline ? 'baseline' : 'eagle3';
  const value = (r: BenchReport['rounds'][number]) => (bySpeedup ? r.speedup : r[mode]?.throughput) ?? 0;
  const title = bySpeedup
    ? [
        'speedup per round',
        ...(report.speedupBound !== undefined
          ? [`dashed: the bound, mean acceptance length ${report.speedupBound.toFixed(2)}`]
          : []),
      ]
    : [`${mode} throughput per round (tok/s)`];
  const titleHeight = (title.length + 1) * line;
  const box = { x: half + 70, y: top + titleHeight, w: half - 94, h: BOTTOM_ROW - 60 - titleHeight };
  for (const [k, text] of title.entries())
    raster.text(box.x + box.w / 2, top + k * line, text, { align: 'center' });
  drawBars(raster, box, {
    title,
    groups: report.rounds.map((r) => ({
      label: `${r.round}`,
      bars: [
        {
          value: value(r),
          color: r.disagrees ? BAD : ROUND_COLOR,
          label: bySpeedup ? `${value(r).toFixed(2)}x` : value(r).toFixed(1),
        },
      ],
    })),
    ...(bySpeedup && report.speedupBound !== undefined ? { mark: report.speedupBound } : {}),
    xLabel: 'round',
  });
}

/** Splits text into lines no wider than `width` pixels, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(' ')) {
    const next = current ? `${current} ${word}` : word;
    if (current && Raster.textWidth(next) > width) {
      lines.push(current);
      current = `  ${word}`;
    } else current = next;
  }
  if (current) lines.push(current);
  return lines;
}

interface Panel {
  title: string[];
  groups: Array<{ label: string; bars: Array<{ value: number; color: Color; label?: string }> }>;
  legend?: Array<{ label: string; color: Color }>;
  /** Top of the value axis; absent: a round number above the tallest bar (and the mark). */
  yMax?: number;
  /** A value drawn as a horizontal line across the plot (the speedup bound). */
  mark?: number;
  xLabel?: string;
}

/** A bar chart in `box` (the plot area): axes, value ticks, grouped bars, labels, legend. */
function drawBars(raster: Raster, box: { x: number; y: number; w: number; h: number }, panel: Panel): void {
  const line = Raster.lineHeight;
  const tallest = Math.max(0, panel.mark ?? 0, ...panel.groups.flatMap((g) => g.bars.map((b) => b.value)));
  const legendHeight = panel.legend?.length ? panel.legend.length * line + 16 : 0;
  // Headroom above the tallest bar for its value label, and for the legend, which must not hide bars.
  const headroom = Math.max(1.1, box.h / (box.h - legendHeight - 4));
  const ticks = valueTicks(panel.yMax ?? (tallest > 0 ? tallest * headroom : 1));
  const top = panel.yMax ?? ticks.at(-1)!;
  const yOf = (v: number) => box.y + box.h - (v / top) * box.h;
  const black: Color = '#000000';
  for (const t of ticks) {
    raster.line(box.x - 4, yOf(t), box.x - 1, yOf(t), black);
    raster.text(box.x - 7, yOf(t) - line / 2, formatTick(t, ticks[1]! - ticks[0]!), { align: 'right' });
  }
  const slot = box.w / Math.max(1, panel.groups.length);
  for (const [g, group] of panel.groups.entries()) {
    const centre = box.x + (g + 0.5) * slot;
    const width = (slot * (group.bars.length === 1 ? 0.8 : 0.76)) / Math.max(1, group.bars.length);
    for (const [b, bar] of group.bars.entries()) {
      const left = centre + (b - group.bars.length / 2) * width;
      raster.fillRect(left, yOf(bar.value), width, box.y + box.h - yOf(bar.value), bar.color);
      if (bar.label) raster.text(left + width / 2, yOf(bar.value) - line - 1, bar.label, { align: 'center' });
    }
    raster.line(centre, box.y + box.h + 1, centre, box.y + box.h + 4, black);
    raster.text(centre, box.y + box.h + 6, group.label, { align: 'center' });
  }
  if (panel.xLabel)
    raster.text(box.x + box.w / 2, box.y + box.h + 6 + line, panel.xLabel, { align: 'center' });
  if (panel.mark !== undefined)
    for (let x = box.x; x < box.x + box.w; x += 8)
      raster.line(x, yOf(panel.mark), x + 4, yOf(panel.mark), black);
  // The frame last, over the bars' edges.
  raster.line(box.x, box.y, box.x + box.w, box.y, black);
  raster.line(box.x, box.y + box.h, box.x + box.w, box.y + box.h, black);
  raster.line(box.x, box.y, box.x, box.y + box.h, black);
  raster.line(box.x + box.w, box.y, box.x + box.w, box.y + box.h, black);
  if (panel.legend?.length) {
    const width = 44 + Math.max(...panel.legend.map((l) => Raster.textWidth(l.label)));
    const left = box.x + box.w - width - 8;
    raster.fillRect(left, box.y + 8, width, panel.legend.length * line + 8, '#cccccc');
    raster.fillRect(left + 1, box.y + 9, width - 2, panel.legend.length * line + 6, '#ffffff');
    for (const [i, item] of panel.legend.entries()) {
      const y = box.y + 12 + i * line;
      raster.fillRect(left + 8, y + 5, 24, 9, item.color);
      raster.text(left + 38, y, item.label);
    }
  }
}

/** Round tick values from 0 up to at least `max` (steps of 1, 2, 2.5 or 5 times a power of ten). */
export function valueTicks(max: number): number[] {
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let i = 0; ticks.at(-1) === undefined || ticks.at(-1)! < max - 1e-9; i++) ticks.push(i * step);
  return ticks;
}

/** A tick label with as many decimals as the step between ticks needs. */
function formatTick(value: number, step: number): string {
  let decimals = 0;
  while (decimals < 6 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-9)
    decimals++;
  return value.toFixed(decimals);
}
