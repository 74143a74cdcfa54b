// Charts for the dashboard: training curves on uPlot (zoom, cursor, legend), and the benchmark's
// bar charts as plain SVG. Everything is built from events and reports the server sent.
import uPlot from '/vendor/uPlot.esm.js';

const PALETTE = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#9333ea',
  '#ea580c',
  '#0891b2',
  '#be185d',
  '#4d7c0f',
  '#a16207',
  '#475569',
];
const color = (i) => PALETTE[i % PALETTE.length];

/**
 * Metrics events, kept per split (train/eval) and per value name, keyed by step. Which chart a
 * value goes on comes from its name: `*loss*` on the loss chart, `acc*` on the accuracy chart,
 * anything else (lr, tokens/s, ...) on a chart of its own.
 */
export class MetricsStore {
  constructor() {
    /** @type {Map<string, Map<number, number>>} series key `${split}:${name}` -> step -> value */
    this.series = new Map();
    this.count = 0;
  }

  /** @param {{split: string, step: number, values: Record<string, number>}} event */
  add(event) {
    if (event.split === 'bench') return;
    for (const [name, value] of Object.entries(event.values)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      const key = `${event.split}:${name}`;
      const s = this.series.get(key) ?? new Map();
      this.series.set(key, s);
      s.set(event.step, value);
    }
    this.count++;
  }

  /** Series keys for a chart group: `loss`, `acc`, or a single value name. */
  keys(group) {
    const all = [...this.series.keys()].sort(byPosition);
    if (group === 'loss') return all.filter((k) => /loss/i.test(name(k)));
    if (group === 'acc') return all.filter((k) => /^acc/i.test(name(k)));
    return all.filter((k) => name(k) === group);
  }

  /** Value names that are neither loss nor accuracy (each gets its own chart). */
  extraNames() {
    const names = new Set([...this.series.keys()].map(name));
    return [...names].filter((n) => !/loss/i.test(n) && !/^acc/i.test(n)).sort();
  }

  /** uPlot's aligned data for some series: [steps, ...values with null where a series has no point]. */
  aligned(keys) {
    const steps = new Set();
    for (const k of keys) for (const step of this.series.get(k)?.keys() ?? []) steps.add(step);
    const xs = [...steps].sort((a, b) => a - b);
    return [xs, ...keys.map((k) => xs.map((x) => this.series.get(k)?.get(x) ?? null))];
  }
}

const name = (key) => key.slice(key.indexOf(':') + 1);
// acc_0, acc_1, ..., acc_10 in numeric order; train before eval.
const byPosition = (a, b) => {
  const na = /(\d+)$/.exec(a);
  const nb = /(\d+)$/.exec(b);
  const sa = a.split(':')[0];
  const sb = b.split(':')[0];
  if (sa !== sb) return sa === 'train' ? -1 : 1;
  const pa = a.replace(/\d+$/, '');
  const pb = b.replace(/\d+$/, '');
  if (pa !== pb) return pa < pb ? -1 : 1;
  return (na ? Number(na[1]) : -1) - (nb ? Number(nb[1]) : -1);
};

/**
 * A live line chart of some metrics series. `update()` redraws from the store; the element's
 * `data-points` attribute says how many points are drawn (the end-to-end test watches it).
 */
export class CurveChart {
  /** @param {HTMLElement} el @param {string} title @param {() => string[]} keysOf */
  constructor(el, title, keysOf, options = {}) {
    this.el = el;
    this.title = title;
    this.keysOf = keysOf;
    this.log = options.log ?? false;
    this.plot = undefined;
    this.keys = [];
  }

  /** @param {MetricsStore} store */
  update(store) {
    const keys = this.keysOf();
    if (keys.length === 0) return;
    const data = store.aligned(keys);
    const width = Math.max(280, this.el.clientWidth || 480);
    const names = [...new Set(keys.map(name))];
    if (!this.plot || keys.join() !== this.keys.join()) {
      this.plot?.destroy();
      this.el.replaceChildren();
      this.keys = keys;
      this.plot = new uPlot(
        {
          title: this.title,
          width,
          height: 260,
          scales: { x: { time: false }, y: this.log ? { distr: 3 } : {} },
          axes: [{ label: 'step' }, {}],
          series: [
            { label: 'step' },
            ...keys.map((k) => ({
              label: k.startsWith('train:') ? name(k) : k.replace(':', ' '),
              // train and eval of one value share a colour; eval is dashed
              stroke: color(names.indexOf(name(k))),
              width: 1.5,
              dash: k.startsWith('eval:') ? [6, 4] : undefined,
              spanGaps: true,
              points: { show: data[0].length < 60 },
            })),
          ],
        },
        data,
        this.el,
      );
    } else {
      this.plot.setData(data);
      if (Math.abs(this.plot.width - width) > 8) this.plot.setSize({ width, height: 260 });
    }
    const points = data.slice(1).reduce((n, ys) => n + ys.filter((y) => y !== null).length, 0);
    this.el.dataset.points = String(points);
  }
}

const SVG = 'http://www.w3.org/2000/svg';
const svgEl = (tag, attrs = {}, text) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};

/**
 * A bar chart in SVG: groups of bars with value labels.
 * @param {HTMLElement} el
 * @param {{title: string, unit?: string, max?: number, format?: (v: number) => string,
 *          groups: {label: string, bars: {name: string, value: number}[]}[]}} spec
 */
export function barChart(el, spec) {
  const fmt = spec.format ?? ((v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3)));
  const names = [...new Set(spec.groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const W = 480;
  const H = 260;
  const pad = { l: 48, r: 12, t: 34, b: 48 };
  const max = spec.max ?? Math.max(1e-9, ...spec.groups.flatMap((g) => g.bars.map((b) => b.value))) * 1.15;
  const innerW = W - pad.l - pad.r;
  const innerH = H - pad.t - pad.b;
  const gw = innerW / Math.max(1, spec.groups.length);
  const bw = Math.min(48, (gw * 0.8) / Math.max(1, names.length));
  const y = (v) => pad.t + innerH - (v / max) * innerH;

  const svg = svgEl('svg', {
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': spec.title,
    class: 'bars',
  });
  svg.append(svgEl('text', { x: W / 2, y: 18, 'text-anchor': 'middle', class: 'title' }, spec.title));
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(svgEl('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(svgEl('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v)));
  }
  spec.groups.forEach((g, gi) => {
    const x0 = pad.l + gi * gw + (gw - bw * g.bars.length) / 2;
    g.bars.forEach((b, bi) => {
      const ci = names.indexOf(b.name);
      const x = x0 + bi * bw;
      const rect = svgEl('rect', {
        x: x + 2,
        y: y(b.value),
        width: bw - 4,
        height: Math.max(0, pad.t + innerH - y(b.value)),
        fill: color(ci),
        'data-name': b.name,
        'data-value': b.value,
      });
      rect.append(
        svgEl('title', {}, `${g.label} ${b.name}: ${fmt(b.value)}${spec.unit ? ` ${spec.unit}` : ''}`),
      );
      svg.append(rect);
      svg.append(
        svgEl(
          'text',
          { x: x + bw / 2, y: y(b.value) - 4, 'text-anchor': 'middle', class: 'value' },
          fmt(b.value),
        ),
      );
    });
    svg.append(
      svgEl(
        'text',
        { x: pad.l + gi * gw + gw / 2, y: H - pad.b + 16, 'text-anchor': 'middle', class: 'tick' },
        g.label,
      ),
    );
  });
  if (names.length > 1) {
    names.forEach((n, i) => {
      const lx = pad.l + i * 110;
      svg.append(svgEl('rect', { x: lx, y: H - 18, width: 10, height: 10, fill: color(i) }));
      svg.append(svgEl('text', { x: lx + 14, y: H - 9, class: 'tick' }, n));
    });
  }
  if (spec.unit) svg.append(svgEl('text', { x: 4, y: pad.t - 8, class: 'tick' }, spec.unit));
  el.replaceChildren(svg);
  el.dataset.bars = String(spec.groups.reduce((n, g) => n + g.bars.length, 0));
}
