// Pure pixel and tensor helpers for the page: no DOM, no onnxruntime, so every
// formula here mirrors the Python side (cin_style/infer/finish.py, cin_style/blend/weights.py).

// ITU-R BT.601 RGB -> YCbCr (full range, offsets dropped: they cancel out), as infer/finish.py.
const RGB_TO_YCC = [
  [0.299, 0.587, 0.114],
  [-0.168736, -0.331264, 0.5],
  [0.5, -0.418688, -0.081312],
];
const YCC_TO_RGB = invert3(RGB_TO_YCC);

function invert3(m) {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}

/** RGBA bytes (canvas ImageData) -> float32 [3, H, W] in [0, 1], the graph's `image` layout. */
export function rgbaToPlanes(rgba, width, height) {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    out[p] = rgba[4 * p] / 255;
    out[plane + p] = rgba[4 * p + 1] / 255;
    out[2 * plane + p] = rgba[4 * p + 2] / 255;
  }
  return out;
}

// The grain (cin_style/infer/grain.py): a fixed faint pattern of +-amplitude levels on the
// network's input, a hash of each pixel's position and channel, so flat regions get texture.
// The same 32-bit integer arithmetic as the Python side, so both feed the same pixels.
const GRAIN_X = 0x9E3779B1, GRAIN_Y = 0x85EBCA77, GRAIN_C = 0xC2B2AE3D;
const GRAIN_M1 = 0x7FEB352D, GRAIN_M2 = 0x846CA68B;

/** The grain at (x, y, channel): an integer in [-amplitude, amplitude]. */
export function grainLevel(x, y, c, amplitude) {
  let h = (Math.imul(x, GRAIN_X) ^ Math.imul(y, GRAIN_Y) ^ Math.imul(c, GRAIN_C)) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, GRAIN_M1) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  h = Math.imul(h, GRAIN_M2) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  const spread = (h & 255) + ((h >>> 8) & 255);  // two bytes: most values near 0
  return Math.floor((spread * (2 * amplitude + 1)) / 511) - amplitude;
}

/** float32 [3, H, W] photo planes (8-bit values) with the grain added and clipped; as they are at 0. */
export function grainPlanes(planes, width, height, amplitude) {
  if (!amplitude) return planes;
  const plane = width * height;
  const out = new Float32Array(planes.length);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const p = c * plane + y * width + x;
        const level = Math.round(planes[p] * 255) + grainLevel(x, y, c, amplitude);
        out[p] = Math.min(255, Math.max(0, level)) / 255;
      }
    }
  }
  return out;
}

/** float32 [3, H, W] in [0, 1] -> opaque RGBA bytes (rounded, clipped). */
export function planesToRgba(planes, width, height) {
  const plane = width * height;
  const out = new Uint8ClampedArray(4 * plane);
  for (let p = 0; p < plane; p++) {
    out[4 * p] = Math.round(planes[p] * 255);
    out[4 * p + 1] = Math.round(planes[plane + p] * 255);
    out[4 * p + 2] = Math.round(planes[2 * plane + p] * 255);
    out[4 * p + 3] = 255;
  }
  return out;
}

/** strength 1 keeps the stylization, 0 gives back the photo (postprocess.mix_strength). */
export function mixStrength(stylized, content, strength) {
  if (strength >= 1) return stylized;
  const out = new Float32Array(stylized.length);
  for (let k = 0; k < out.length; k++) out[k] = strength * stylized[k] + (1 - strength) * content[k];
  return out;
}

/** Luminance from the stylization, chroma from the photo (postprocess.preserve_color). */
export function preserveColor(stylized, content, plane) {
  const out = new Float32Array(stylized.length);
  const [y0, y1, y2] = RGB_TO_YCC[0];
  for (let p = 0; p < plane; p++) {
    const r = content[p], g = content[plane + p], b = content[2 * plane + p];
    const y = y0 * stylized[p] + y1 * stylized[plane + p] + y2 * stylized[2 * plane + p];
    const cb = RGB_TO_YCC[1][0] * r + RGB_TO_YCC[1][1] * g + RGB_TO_YCC[1][2] * b;
    const cr = RGB_TO_YCC[2][0] * r + RGB_TO_YCC[2][1] * g + RGB_TO_YCC[2][2] * b;
    for (let c = 0; c < 3; c++) {
      const v = YCC_TO_RGB[c][0] * y + YCC_TO_RGB[c][1] * cb + YCC_TO_RGB[c][2] * cr;
      out[c * plane + p] = Math.min(1, Math.max(0, v));
    }
  }
  return out;
}

/** Slider values -> a blend that sums to 1, or null when every weight is 0 (blend.blend_weights). */
export function normalizeWeights(values) {
  const total = values.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return null;
  return Float32Array.from(values, (v) => v / total);
}

/** The size to draw a photo at: its own, or scaled so the longer side is maxSide. */
export function fitSize(width, height, maxSide) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/** A deterministic textured test image (flat images amplify instance-norm rounding). */
export function texturedRgba(width, height) {
  const out = new Uint8ClampedArray(4 * width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = 4 * (y * width + x);
      out[p] = (x * 7 + y * 3) % 256;
      out[p + 1] = Math.round(127.5 + 127.5 * Math.sin(x / 5) * Math.cos(y / 7));
      out[p + 2] = ((x ^ y) * 5) % 256;
      out[p + 3] = 255;
    }
  }
  return out;
}

// Style scale (cin_style/infer/scale.py, mirrored): the network runs on the photo shrunk
// by S, and joint bilateral upsampling guided by the photo's luminance brings it back.
export const MAX_STYLE_SCALE = 16;
const SIGMA = 0.1;
const RANGE_FLOOR = 1e-3;
const LUMA = [0.299, 0.587, 0.114];

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The network's input size at scale s (infer/scale.small_size). */
export function smallSize(width, height, s) {
  return [Math.max(1, roundHalfEven(width / s)), Math.max(1, roundHalfEven(height / s))];
}

// One pass of Pillow's BOX resampling along an axis (input pixel centres inside the box,
// weights normalised, rounded to 8 bits after the pass), as Image.resize(BOX) does.
function boxWeights(inSize, outSize) {
  const scale = inSize / outSize;
  const support = 0.5 * scale;
  const rows = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const ks = [];
    let total = 0;
    for (let x = lo; x < hi; x++) {
      const t = (x - center + 0.5) / scale;
      const w = t > -0.5 && t <= 0.5 ? 1 : 0;
      ks.push(w);
      total += w;
    }
    rows.push({ lo, ks: ks.map((w) => (total ? w / total : 0)) });
  }
  return rows;
}

/** float32 [3, H, W] photo planes (8-bit values) -> [3, h, w] shrunk by area averaging. */
export function shrinkPlanes(planes, width, height, sw, sh) {
  const xs = boxWeights(width, sw), ys = boxWeights(height, sh);
  const out = new Float32Array(3 * sw * sh);
  const row = new Float64Array(sw * height);
  for (let c = 0; c < 3; c++) {
    const src = planes.subarray(c * width * height, (c + 1) * width * height);
    for (let y = 0; y < height; y++) {
      for (let i = 0; i < sw; i++) {
        const { lo, ks } = xs[i];
        let v = 0;
        for (let k = 0; k < ks.length; k++) v += ks[k] * src[y * width + lo + k] * 255;
        row[y * sw + i] = Math.min(255, Math.max(0, Math.floor(v + 0.5)));
      }
    }
    for (let j = 0; j < sh; j++) {
      const { lo, ks } = ys[j];
      for (let i = 0; i < sw; i++) {
        let v = 0;
        for (let k = 0; k < ks.length; k++) v += ks[k] * row[(lo + k) * sw + i];
        out[c * sw * sh + j * sw + i] = Math.min(255, Math.max(0, Math.floor(v + 0.5))) / 255;
      }
    }
  }
  return out;
}

/** BT.601 luminance [H*W] of float32 [3, H, W] planes. */
export function luminancePlane(planes, plane) {
  const out = new Float32Array(plane);
  for (let p = 0; p < plane; p++) {
    out[p] = LUMA[0] * planes[p] + LUMA[1] * planes[plane + p] + LUMA[2] * planes[2 * plane + p];
  }
  return out;
}

function bilinearAxis(full, small) {
  const lo = new Int32Array(full), hi = new Int32Array(full), t = new Float32Array(full);
  for (let i = 0; i < full; i++) {
    const p = Math.min(small - 1, Math.max(0, (i + 0.5) * small / full - 0.5));
    lo[i] = Math.floor(p);
    hi[i] = Math.min(lo[i] + 1, small - 1);
    t[i] = p - lo[i];
  }
  return { lo, hi, t };
}

/** The network's output at [3, sh, sw] + the photo's planes [3, H, W] and the shrunk photo's
 *  luminance [sh*sw] -> the stylized image at [3, H, W]: bilinear weights times how close each
 *  sample's luminance is to the pixel's (infer/scale.joint_bilateral_upsample). */
export function jointBilateralUpsample(small, sw, sh, photo, width, height, guideSmall) {
  const n = sw * sh;
  const gain = -0.5 / (SIGMA * SIGMA);
  const guide = luminancePlane(photo, width * height);
  const ys = bilinearAxis(height, sh), xs = bilinearAxis(width, sw);
  const out = new Float32Array(3 * width * height);
  const idx = [0, 0, 0, 0], wts = [0, 0, 0, 0];
  for (let y = 0; y < height; y++) {
    const rows = [ys.lo[y] * sw, ys.hi[y] * sw], wy = [1 - ys.t[y], ys.t[y]];
    for (let x = 0; x < width; x++) {
      const cols = [xs.lo[x], xs.hi[x]], wx = [1 - xs.t[x], xs.t[x]];
      const g = guide[y * width + x];
      let total = 0;
      for (let k = 0; k < 4; k++) {
        const q = rows[k >> 1] + cols[k & 1];
        const d = g - guideSmall[q];
        idx[k] = q;
        wts[k] = wy[k >> 1] * wx[k & 1] * (Math.exp(gain * d * d) + RANGE_FLOOR);
        total += wts[k];
      }
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let k = 0; k < 4; k++) v += wts[k] * small[c * n + idx[k]];
        out[c * width * height + y * width + x] = Math.min(1, Math.max(0, v / total));
      }
    }
  }
  return out;
}
