// A drawing -> the model input, in the browser: what quickdraw_tf/data/preprocess.py does, operation for
// operation, so that the page guesses from the very numbers the server would use.
//
//   strokes  raw strokes [xs, ys, ts] (or simplified ones) -> Google's simplification (data/ink.py
//            simplify) when the run's preprocessing says so -> the delta ink of to_ink (float32
//            [n - 1, 3]) -> the run's truncation (max_points).
//   images   simplified strokes -> the 28x28 numpy_bitmap recipe (data/bitmap.py), drawn by the
//            browser's canvas (anti-aliased, round caps and joins, as the recipe's cairo) at 8x and
//            averaged down.
//
// tests/serve/test_preprocess_js.py runs every function here on every drawing of the embedded sample
// and compares with Python's output.

export const SIMPLIFIED_MAX = 255;
export const RDP_EPSILON = 2.0;
// quickdraw_tf/data/limits.py
export const LIMITS = {
  maxPointsPerStroke: 10000,
  maxPointsPerDrawing: 20000,
  maxAbsCoordinate: 1e6,
  maxResampledPoints: 1 << 18,
};
export const NORMALIZATIONS = ["uniform", "per_axis"];

// preprocess.py's InvalidRecord: `reason` one of its REJECTION_REASONS, the message "reason: why".
export class InvalidDrawing extends Error {
  constructor(reason, message) {
    super(`${reason}: ${message}`);
    this.reason = reason;
  }
}

// ---- checks (preprocess.checked_strokes, limits.check_drawing) ----------------------------------

// [[xs, ys(, ts)], ...] of finite numbers, equal lengths, within the limits, >= 2 points in all; empty
// strokes dropped. Throws InvalidDrawing with the reason Python gives.
export function checkedStrokes(strokes) {
  if (!Array.isArray(strokes) || !strokes.length) throw new InvalidDrawing("empty_drawing", "the drawing has no strokes");
  const out = [];
  let total = 0;
  strokes.forEach((stroke, index) => {
    if (!Array.isArray(stroke) || (stroke.length !== 2 && stroke.length !== 3)) {
      throw new InvalidDrawing("mismatched_lengths", `stroke ${index} is not [xs, ys] or [xs, ys, ts]`);
    }
    const length = stroke[0].length;
    if (stroke.some((values) => values.length !== length)) {
      throw new InvalidDrawing("mismatched_lengths", `stroke ${index}: x, y (and t) differ in length`);
    }
    if (!length) return;
    if (stroke.some((values) => values.some((v) => typeof v !== "number" || !Number.isFinite(v)))) {
      throw new InvalidDrawing("bad_coordinate", `stroke ${index} has a value that is not a finite number`);
    }
    if (length > LIMITS.maxPointsPerStroke) throw new InvalidDrawing("too_large", `stroke ${index} has ${length} points`);
    for (const values of stroke.slice(0, 2)) {
      if (values.some((v) => Math.abs(v) > LIMITS.maxAbsCoordinate)) {
        throw new InvalidDrawing("bad_coordinate", `stroke ${index} has a coordinate beyond ±${LIMITS.maxAbsCoordinate}`);
      }
    }
    total += length;
    out.push(stroke);
  });
  if (total > LIMITS.maxPointsPerDrawing) throw new InvalidDrawing("too_large", `${total} points`);
  if (total < 2) {
    throw new InvalidDrawing(total ? "too_short" : "empty_drawing", `${total} point(s) in all, at least 2 needed`);
  }
  return out;
}

// ---- Google's simplification (ink.simplify) ---------------------------------------------------------

// glibc's hypot (2.35 and later, without FMA), which numpy's np.hypot calls: Math.hypot rounds
// differently, and RDP's ties (which point is farthest, is it beyond epsilon) hang on the last bit.
const HYPOT_EPS = 2 ** -54;
export function hypot(x, y) {
  x = Math.abs(x);
  y = Math.abs(y);
  const ax = x < y ? y : x;
  const ay = x < y ? x : y;
  if (ay <= ax * HYPOT_EPS) return ax + ay;
  let h = Math.sqrt(ax * ax + ay * ay);
  let t1, t2;
  if (h <= 2.0 * ay) {
    const delta = h - ay;
    t1 = ax * (2.0 * delta - ax);
    t2 = (delta - 2.0 * (ax - ay)) * delta;
  } else {
    const delta = h - ax;
    t1 = 2.0 * delta * (ax - 2.0 * ay);
    t2 = (4.0 * delta - ay) * ay + delta * delta;
  }
  h -= (t1 + t2) / (2.0 * h);
  return h;
}

// np.round: half to even.
export function roundHalfEven(value) {
  const rounded = Math.round(value);
  return Math.abs(value % 1) === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

function isInteger255(v) {
  return Number.isInteger(v) && v >= 0 && v <= SIMPLIFIED_MAX;
}

// ink.is_simplified: [xs, ys] strokes of integers in 0..255.
export function isSimplified(strokes) {
  if (!strokes.length || strokes.some((s) => s.length !== 2 || s[0].length !== s[1].length)) return false;
  let any = false;
  for (const [xs, ys] of strokes) {
    for (let i = 0; i < xs.length; i++) {
      if (!isInteger255(xs[i]) || !isInteger255(ys[i])) return false;
      any = true;
    }
  }
  return any;
}

// preprocess.is_raw: times, or coordinates that are not integers in 0..255.
export function isRaw(strokes) {
  return strokes.some((s) => s.length >= 3) || !isSimplified(strokes);
}

// Google's simplification of a raw drawing: [[xs, ys], ...] of integers in 0..255 (see ink.simplify).
export function simplify(strokes, epsilon = RDP_EPSILON, maxResampled = LIMITS.maxResampledPoints) {
  strokes = strokes.filter((s) => s[0].length);
  if (!strokes.length) return [];
  // 1-2: subtract each axis' minimum, then x * 255 / extent (multiply first, as Google).
  let minX = Infinity, minY = Infinity;
  for (const [xs, ys] of strokes) {
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] < minX) minX = xs[i];
      if (ys[i] < minY) minY = ys[i];
    }
  }
  const shifted = strokes.map(([xs, ys]) => [xs.map((x) => x - minX), ys.map((y) => y - minY)]);
  let extent = 0;
  for (const [xs, ys] of shifted) for (let i = 0; i < xs.length; i++) extent = Math.max(extent, xs[i], ys[i]);
  const scaled = extent === 0 ? shifted : shifted.map(([xs, ys]) => [
    xs.map((x) => (x * SIMPLIFIED_MAX) / extent), ys.map((y) => (y * SIMPLIFIED_MAX) / extent)]);
  let estimate = 0;
  for (const [xs, ys] of scaled) {
    for (let i = 1; i < xs.length; i++) estimate += hypot(xs[i] - xs[i - 1], ys[i] - ys[i - 1]);
    estimate += 2;
  }
  if (estimate > maxResampled) {
    throw new InvalidDrawing("too_large", `${Math.round(estimate)} px of ink to resample, more than ${maxResampled}`);
  }
  return scaled.map(([xs, ys]) => {
    const [rx, ry] = resampleEveryPixel(xs, ys);
    const keep = rdpKeep(rx, ry, epsilon);
    const outX = [], outY = [];
    for (let i = 0; i < rx.length; i++) {
      if (keep[i]) {
        outX.push(roundHalfEven(rx[i]));
        outY.push(roundHalfEven(ry[i]));
      }
    }
    return [outX, outY];
  });
}

// 3: the first point, a point at every whole arc length 1, 2, ... strictly before the end, the last
// point. Arc lengths are summed left to right, segment lengths are sqrt(dx * dx + dy * dy), and a new
// point is a * (1 - t) + b * t: Google's arithmetic (ink._resample_every_pixel).
function resampleEveryPixel(xs, ys) {
  const outX = [xs[0]], outY = [ys[0]];
  let atEnd = 0;
  for (let i = 0; i + 1 < xs.length; i++) {
    const dx = xs[i + 1] - xs[i], dy = ys[i + 1] - ys[i];
    const length = Math.sqrt(dx * dx + dy * dy);
    const atStart = atEnd;
    atEnd = i === 0 ? length : atEnd + length;
    const firstK = Math.max(Math.ceil(atStart), 1);
    const count = Math.max(Math.ceil(atEnd) - firstK, 0);
    for (let r = 0; r < count; r++) {
      const t = (firstK + r - atStart) / length;
      outX.push(xs[i] * (1 - t) + xs[i + 1] * t);
      outY.push(ys[i] * (1 - t) + ys[i + 1] * t);
    }
  }
  outX.push(xs[xs.length - 1]);
  outY.push(ys[ys.length - 1]);
  return [outX, outY];
}

// 4: Ramer-Douglas-Peucker: split at the first point farthest from the infinite line through the
// interval's ends (|cross| / hypot; the distance to the start when the ends coincide) while that
// distance exceeds epsilon.
function rdpKeep(xs, ys, epsilon) {
  const keep = new Uint8Array(xs.length);
  keep[0] = keep[xs.length - 1] = 1;
  const intervals = [[0, xs.length - 1]];
  while (intervals.length) {
    const [start, end] = intervals.pop();
    if (end - start < 2) continue;
    const dx = xs[end] - xs[start], dy = ys[end] - ys[start];
    const length = hypot(dx, dy);
    let farthest = -Infinity, split = -1;
    for (let i = start + 1; i < end; i++) {
      const px = xs[i] - xs[start], py = ys[i] - ys[start];
      const distance = length !== 0 ? Math.abs(dx * py - dy * px) / length : hypot(px, py);
      if (distance > farthest) {
        farthest = distance;
        split = i;
      }
    }
    if (farthest > epsilon) {
      keep[split] = 1;
      intervals.push([start, split], [split, end]);
    }
  }
  return keep;
}

// preprocess.simplified_strokes: Google's simplification for raw strokes (when `simplify`).
export function simplifiedStrokes(strokes, simplifyRaw = true) {
  return simplifyRaw && isRaw(strokes) ? simplify(strokes) : strokes;
}

// ---- the delta ink (ink.to_ink), in float32 arithmetic --------------------------------------------

const f32 = Math.fround;

// Float32Array [(n - 1) * 3] of (dx, dy, end_of_stroke) rows, as ink.to_ink computes them in float32.
export function toInk(strokes, normalize = "uniform") {
  if (!NORMALIZATIONS.includes(normalize)) throw new Error(`normalize must be one of ${NORMALIZATIONS}`);
  const total = strokes.reduce((n, s) => n + s[0].length, 0);
  const points = new Float32Array(total * 3);
  let row = 0;
  for (const [xs, ys] of strokes) {
    for (let i = 0; i < xs.length; i++, row++) {
      points[row * 3] = xs[i];
      points[row * 3 + 1] = ys[i];
    }
    points[(row - 1) * 3 + 2] = 1;
  }
  const lower = [Infinity, Infinity], upper = [-Infinity, -Infinity];
  for (let r = 0; r < total; r++) {
    for (let axis = 0; axis < 2; axis++) {
      const v = points[r * 3 + axis];
      if (v < lower[axis]) lower[axis] = v;
      if (v > upper[axis]) upper[axis] = v;
    }
  }
  let scale = [f32(upper[0] - lower[0]), f32(upper[1] - lower[1])];
  if (normalize === "uniform") scale = [Math.max(...scale), Math.max(...scale)];
  scale = scale.map((s) => (s === 0 ? 1 : s));
  for (let r = 0; r < total; r++) {
    for (let axis = 0; axis < 2; axis++) {
      points[r * 3 + axis] = f32(f32(points[r * 3 + axis] - lower[axis]) / scale[axis]);
    }
  }
  const ink = new Float32Array((total - 1) * 3);
  for (let r = 1; r < total; r++) {
    ink[(r - 1) * 3] = f32(points[r * 3] - points[(r - 1) * 3]);
    ink[(r - 1) * 3 + 1] = f32(points[r * 3 + 1] - points[(r - 1) * 3 + 1]);
    ink[(r - 1) * 3 + 2] = points[r * 3 + 2];
  }
  return ink;
}

// ---- the 28x28 bitmap (bitmap.google_bitmap's recipe) -------------------------------------------

export const SIDE = 28;
const ORIGINAL_SIDE = 256.0;
const LINE_DIAMETER = 16.0;
const PADDING = 16.0;

// Drawn at 8x and averaged down, as bitmap.py does at 19x: the canvas' own anti-aliasing of a line
// 1.5 px wide at 28x28 is coarser than cairo's (tests/serve/test_preprocess_js.py compares both).
const SUPERSAMPLE = 8;
let bitmapCanvas = null;

// Uint8Array [28 * 28]: white strokes on black, the numpy_bitmap recipe (centred on the maximum, a
// 16-unit round line, 16 units of padding, 304 units to 28 pixels). `strokes` simplified (0..255).
export function googleBitmap(strokes, side = SIDE, supersample = SUPERSAMPLE) {
  const big = side * supersample;
  if (!bitmapCanvas || bitmapCanvas.width !== big) bitmapCanvas = new OffscreenCanvas(big, big);
  const ctx = bitmapCanvas.getContext("2d", {willReadFrequently: true});
  let maxX = -Infinity, maxY = -Infinity;
  for (const [xs, ys] of strokes) {
    for (let i = 0; i < xs.length; i++) {
      maxX = Math.max(maxX, xs[i]);
      maxY = Math.max(maxY, ys[i]);
    }
  }
  const totalPadding = PADDING * 2.0 + LINE_DIAMETER;
  const scale = (side / (ORIGINAL_SIDE + totalPadding)) * supersample;
  const offsetX = (ORIGINAL_SIDE - maxX) / 2.0 + totalPadding / 2.0;
  const offsetY = (ORIGINAL_SIDE - maxY) / 2.0 + totalPadding / 2.0;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, big, big);
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = LINE_DIAMETER * scale;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const [xs, ys] of strokes) {
    ctx.beginPath();
    ctx.moveTo((xs[0] + offsetX) * scale, (ys[0] + offsetY) * scale);
    for (let i = 1; i < xs.length; i++) ctx.lineTo((xs[i] + offsetX) * scale, (ys[i] + offsetY) * scale);
    if (xs.length === 1) ctx.lineTo((xs[0] + offsetX) * scale, (ys[0] + offsetY) * scale);
    ctx.stroke();
  }
  const rgba = ctx.getImageData(0, 0, big, big).data;
  const sums = new Float64Array(side * side);
  for (let y = 0; y < big; y++) {
    const row = ((y / supersample) | 0) * side;
    for (let x = 0; x < big; x++) sums[row + ((x / supersample) | 0)] += rgba[(y * big + x) * 4];
  }
  const pixels = new Uint8Array(side * side);
  const area = supersample * supersample;
  for (let i = 0; i < pixels.length; i++) pixels[i] = roundHalfEven(sums[i] / area);
  return pixels;
}

// ---- a drawing -> the model input (preprocess.model_input) ----------------------------------------

// prep: the run's preprocessing.json {kind, normalize, simplify, max_points}. Returns {ink: Float32Array
// [n * 3], length: n} for stroke models, {image: Uint8Array [28 * 28]} for image models; throws
// InvalidDrawing for a drawing that cannot be used.
export function modelInput(strokes, prep) {
  const checked = checkedStrokes(strokes);
  if (prep.kind === "images") return {image: googleBitmap(simplifiedStrokes(checked, true))};
  let ink = toInk(simplifiedStrokes(checked, prep.simplify), prep.normalize);
  if (prep.max_points && ink.length > prep.max_points * 3) ink = ink.slice(0, prep.max_points * 3);
  return {ink, length: ink.length / 3};
}
