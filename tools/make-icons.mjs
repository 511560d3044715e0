// Draws Passage's toolbar and store icons (a doorway in a rounded square) into
// extension/public/icons/: one colour per state the toolbar shows. Run with `node tools/make-icons.mjs`;
// the PNGs are committed, so a build needs nothing but this repository.
import { deflateSync } from 'node:zlib';
import { writeFileSync, mkdirSync } from 'node:fs';

const STATES = { passage: [35, 87, 217], tunnel: [23, 138, 62], direct: [110, 118, 135], failing: [190, 40, 30], off: [160, 165, 175] };
const SIZES = [16, 32, 48, 128];

function crc32(buf) {
  let c, crc = 0xffffffff;
  for (const b of buf) {
    c = (crc ^ b) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function png(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0); ihdr.writeUInt32BE(size, 4); ihdr[8] = 8; ihdr[9] = 6;
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) rgba.copy(raw, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
// Shapes in a unit square: inside the rounded square, and inside the doorway (an arch).
const inSquare = (x, y) => {
  const r = 0.22, m = 0.04;
  const cx = Math.min(Math.max(x, m + r), 1 - m - r), cy = Math.min(Math.max(y, m + r), 1 - m - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r && x >= m && x <= 1 - m && y >= m && y <= 1 - m;
};
const inDoor = (x, y) => {
  const left = 0.32, right = 0.68, top = 0.42, bottom = 0.84, cx = 0.5, r = (right - left) / 2;
  if (x < left || x > right || y > bottom) return false;
  return y >= top || (x - cx) ** 2 + (y - top) ** 2 <= r * r;
};
mkdirSync(new URL('../extension/public/icons/', import.meta.url), { recursive: true });
for (const [state, [R, G, B]] of Object.entries(STATES)) {
  for (const size of SIZES) {
    const px = Buffer.alloc(size * size * 4);
    const S = 4; // 4×4 samples a pixel
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      let sq = 0, door = 0;
      for (let j = 0; j < S; j++) for (let i = 0; i < S; i++) {
        const u = (x + (i + 0.5) / S) / size, v = (y + (j + 0.5) / S) / size;
        if (inSquare(u, v)) (inDoor(u, v) ? door++ : sq++);
      }
      const a = (sq + door) / (S * S), w = door / Math.max(1, sq + door);
      const o = (y * size + x) * 4;
      px[o] = Math.round(R + (255 - R) * w); px[o + 1] = Math.round(G + (255 - G) * w); px[o + 2] = Math.round(B + (255 - B) * w); px[o + 3] = Math.round(255 * a);
    }
    writeFileSync(new URL(`../extension/public/icons/${state}-${size}.png`, import.meta.url), png(size, px));
  }
}
