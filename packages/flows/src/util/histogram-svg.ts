/**
 * A bar chart of the record-length histogram as a standalone SVG (no plotting library; the
 * output is deterministic, so prepared folders stay byte-identical across runs).
 */
export function lengthHistogramSvg(edges: number[], counts: number[], title: string): string {
  const width = 640;
  const height = 320;
  const left = 56;
  const bottom = 48;
  const top = 36;
  const plotW = width - left - 16;
  const plotH = height - top - bottom;
  const max = Math.max(1, ...counts);
  const barW = plotW / Math.max(1, counts.length);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = counts
    .map((c, i) => {
      const h = (c / max) * plotH;
      const x = left + i * barW;
      const label = `${i === 0 ? 0 : edges[i - 1]! + 1}-${edges[i]}`;
      return [
        `<rect x="${(x + 2).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="#4c78a8"><title>${label} tokens: ${c}</title></rect>`,
        `<text x="${(x + barW / 2).toFixed(1)}" y="${top + plotH + 16}" font-size="10" text-anchor="middle">${edges[i]}</text>`,
        c
          ? `<text x="${(x + barW / 2).toFixed(1)}" y="${(top + plotH - h - 4).toFixed(1)}" font-size="10" text-anchor="middle">${c}</text>`
          : '',
      ].join('');
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="20" font-size="14" text-anchor="middle">${esc(title)}</text>
<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="black"/>
<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="black"/>
<text x="${left - 6}" y="${top + 4}" font-size="10" text-anchor="end">${max}</text>
<text x="${left - 6}" y="${top + plotH}" font-size="10" text-anchor="end">0</text>
<text x="${left + plotW / 2}" y="${height - 10}" font-size="12" text-anchor="middle">tokens per record (upper bin edge)</text>
<text x="14" y="${top + plotH / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${top + plotH / 2})">records</text>
${bars}
</svg>
`;
}
