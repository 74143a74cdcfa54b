import { deflateSync, inflateSync } from 'node:zlib';
import { FONT_ATLAS } from './font-atlas.js';

/** An RGB colour as `#rrggbb`. */
export type Color = `#${string}`;

const rgb = (c: Color): [number, number, number] => [
  Number.parseInt(c.slice(1, 3), 16),
  Number.parseInt(c.slice(3, 5), 16),
  Number.parseInt(c.slice(5, 7), 16),
];

let coverage: Buffer | undefined;
const glyphCoverage = () => (coverage ??= inflateSync(Buffer.from(FONT_ATLAS.coverage, 'base64')));

/**
 * A small RGB raster for report figures: filled rectangles, lines and anti-aliased text in one
 * font (font-atlas.ts), written as PNG. Enough for bar charts, and deterministic (same figure,
 * same bytes), with no plotting library and no Python process.
 */
export class Raster {
  private readonly pixels: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Color = '#ffffff',
  ) {
    this.pixels = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  /** Line height of the text, in pixels. */
  static readonly lineHeight = FONT_ATLAS.height;

  /** Fills the rectangle with corner (x, y) and size w x h (rounded to whole pixels, clipped). */
  fillRect(x: number, y: number, w: number, h: number, color: Color): void {
    const [r, g, b] = rgb(color);
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++)
      for (let xx = x0; xx < x1; xx++) {
        const i = (yy * this.width + xx) * 3;
        this.pixels[i] = r;
        this.pixels[i + 1] = g;
        this.pixels[i + 2] = b;
      }
  }

  /** A one-pixel horizontal or vertical line. */
  line(x0: number, y0: number, x1: number, y1: number, color: Color): void {
    if (Math.round(y0) === Math.round(y1))
      this.fillRect(Math.min(x0, x1), y0, Math.abs(x1 - x0) + 1, 1, color);
    else this.fillRect(x0, Math.min(y0, y1), 1, Math.abs(y1 - y0) + 1, color);
  }

  /** Width of `text` in pixels. */
  static textWidth(text: string): number {
    let w = 0;
    for (const ch of text) w += (FONT_ATLAS.glyphs[ch] ?? FONT_ATLAS.glyphs['?']!)[0];
    return w;
  }

  /**
   * Draws one line of text whose top is at `y`; `align` says whether `x` is its left end, centre
   * or right end. Characters outside printable ASCII are drawn as `?`.
   */
  text(
    x: number,
    y: number,
    text: string,
    options: { color?: Color; align?: 'left' | 'center' | 'right' } = {},
  ): void {
    const [r, g, b] = rgb(options.color ?? '#000000');
    const width = Raster.textWidth(text);
    let pen = Math.round(
      options.align === 'center' ? x - width / 2 : options.align === 'right' ? x - width : x,
    );
    const top = Math.round(y);
    const cov = glyphCoverage();
    for (const ch of text) {
      const [advance, left, w, offset] = FONT_ATLAS.glyphs[ch] ?? FONT_ATLAS.glyphs['?']!;
      for (let gy = 0; gy < FONT_ATLAS.height; gy++) {
        const py = top + gy;
        if (py < 0 || py >= this.height) continue;
        for (let gx = 0; gx < w; gx++) {
          const px = pen + left + gx;
          const a = cov[offset + gy * w + gx]!;
          if (!a || px < 0 || px >= this.width) continue;
          const i = (py * this.width + px) * 3;
          // Coverage blends the text colour over what is there.
          this.pixels[i] = Math.round((r * a + this.pixels[i]! * (255 - a)) / 255);
          this.pixels[i + 1] = Math.round((g * a + this.pixels[i + 1]! * (255 - a)) / 255);
          this.pixels[i + 2] = Math.round((b * a + this.pixels[i + 2]! * (255 - a)) / 255);
        }
      }
      pen += advance;
    }
  }

  /** The colour of one pixel (for tests). */
  pixel(x: number, y: number): Color {
    const i = (y * this.width + x) * 3;
    const hex = (v: number) => v.toString(16).padStart(2, '0');
    return `#${hex(this.pixels[i]!)}${hex(this.pixels[i + 1]!)}${hex(this.pixels[i + 2]!)}`;
  }

  /** The raster as a PNG file (8-bit RGB, no interlace). */
  png(): Buffer {
    const stride = this.width * 3;
    const rows = Buffer.alloc((stride + 1) * this.height);
    for (let y = 0; y < this.height; y++) {
      rows[y * (stride + 1)] = 0; // filter: none
      rows.set(this.pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
    }
    const header = Buffer.alloc(13);
    header.writeUInt32BE(this.width, 0);
    header.writeUInt32BE(this.height, 4);
    header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type RGB, deflate, adaptive filters, no interlace
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', header),
      chunk('IDAT', deflateSync(rows, { level: 9 })),
      chunk('IEND', Buffer.alloc(0)),
    ]);
  }
}

/** One PNG chunk: length, type, data, CRC-32 of type and data. */
function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
