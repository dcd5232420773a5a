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
