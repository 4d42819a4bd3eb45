/**
 * Test support: a minimal PNG reader for the screenshots Chromium takes (8-bit RGB or RGBA, not
 * interlaced), so that a browser test can check what was drawn by its pixels.
 */
import { inflateSync } from 'node:zlib';

export interface DecodedPng {
  width: number;
  height: number;
  pixel(x: number, y: number): [number, number, number];
}

class PngError extends Error {}

function check(ok: boolean, what: string): void {
  if (!ok) throw new PngError(`not a PNG this reader takes: ${what}`);
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's screenshots are) to RGBA rows. */
export function decodePng(png: Buffer): DecodedPng {
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      check(data[8] === 8, 'bit depth 8');
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      check(channels > 0, 'RGB or RGBA');
      check(data[12] === 0, 'not interlaced');
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= channels ? out[y * stride + i - channels]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + i]! : 0;
      const c = i >= channels && y > 0 ? out[(y - 1) * stride + i - channels]! : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter]!;
      out[y * stride + i] = (x + predictor) & 0xff;
    }
  }
  return { width, height, pixel: (x, y) => [out[y * stride + x * channels]!, out[y * stride + x * channels + 1]!, out[y * stride + x * channels + 2]!] };
}


/** Pixels within `tolerance` of an RGB colour, counting every `step`-th pixel each way. */
export function countNear(img: DecodedPng, rgb: [number, number, number], o: { tolerance?: number; step?: number; box?: { x: number; y: number; w: number; h: number } } = {}): number {
  const tolerance = o.tolerance ?? 24;
  const step = o.step ?? 2;
  const box = o.box ?? { x: 0, y: 0, w: img.width, h: img.height };
  let n = 0;
  for (let y = box.y; y < Math.min(img.height, box.y + box.h); y += step) {
    for (let x = box.x; x < Math.min(img.width, box.x + box.w); x += step) {
      const px = img.pixel(x, y);
      if (px.every((v, i) => Math.abs(v - rgb[i]!) < tolerance)) n++;
    }
  }
  return n;
}
