// Pure logic of the training monitor's two charts: the series drawn from a panel state
// (train_monitor_logic.js) and the geometry (scales, ticks) the canvas code draws them with.
// No DOM, so `node --test tests/web/` can test it; the numbers match the PIL charts of the
// run report (intenttuner/training/report.py), so the panel and the report agree.

export const SMOOTHING = 0.9; // weight of the past in the moving average (report.SMOOTHING)
export const TICKS = 5;

/** Exponential moving average, debiased at the start (no pull towards 0): report.smooth. */
export function smooth(values, weight = SMOOTHING) {
  const out = [];
  let average = 0;
  let total = 0;
  for (const value of values) {
    average = weight * average + (1 - weight) * value;
    total = weight * total + (1 - weight);
    out.push(average / total);
  }
  return out;
}

/** The loss chart's lines, as [step, value] pairs: the finite raw losses, their moving
 *  average, and the learning rate. */
export function lossSeries(state) {
  const raw = state.steps.filter((s) => s.loss !== null).map((s) => [s.step, s.loss]);
  const trend = smooth(raw.map(([, v]) => v)).map((v, i) => [raw[i][0], v]);
  const lr = state.steps.filter((s) => s.lr !== null).map((s) => [s.step, s.lr]);
  return { raw, smooth: trend, lr };
}

/** The metrics chart's lines: the combined score, then per metric its score and one line per
 *  concept, each {key, metric, concept, label, points: [[step, value]], applicable}. Metrics and
 *  concepts come from the start event (what the plan measures) and from the samples (what was
 *  scored); a metric never applicable is kept with no points, for the legend's "n/a". */
export function metricSeries(state) {
  const monitor = state.start?.monitor;
  const metrics = [...(monitor?.metrics ?? [])];
  const concepts = new Map(metrics.map((m) => [m, [...(monitor?.concepts?.[m] ?? [])]]));
  for (const point of state.samples) {
    for (const [metric, entry] of Object.entries(point.scores ?? {})) {
      if (!concepts.has(metric)) { metrics.push(metric); concepts.set(metric, []); }
      for (const name of Object.keys(entry?.concepts ?? {})) {
        if (!concepts.get(metric).includes(name)) concepts.get(metric).push(name);
      }
    }
  }
  const series = [{
    key: "score", metric: null, concept: null, label: "score",
    points: state.samples.filter((p) => p.score !== null).map((p) => [p.step, p.score]),
    applicable: true,
  }];
  for (const metric of metrics) {
    const entries = state.samples.map((p) => [p.step, p.scores?.[metric]]);
    const applicable = entries.some(([, e]) => e?.applicable) ||
      (!entries.some(([, e]) => e) && (monitor?.metrics ?? []).includes(metric));
    const label = metric === "leakage" ? "leakage ↓" : metric; // ↓: lower is better
    series.push({ key: metric, metric, concept: null, label, applicable,
                  points: pairs(entries, (e) => (e?.applicable ? e.score : null)) });
    for (const concept of concepts.get(metric)) {
      series.push({ key: `${metric}/${concept}`, metric, concept, label: `${metric} · ${concept}`,
                    applicable, points: pairs(entries, (e) => e?.concepts?.[concept]) });
    }
  }
  return series;
}

function pairs(entries, value) {
  return entries.map(([step, e]) => [step, value(e)])
    .filter(([, v]) => typeof v === "number" && Number.isFinite(v));
}

/** Number of distinct steps with something drawn: the canvas's data-points. */
export function pointCount(lines) {
  return new Set(lines.flatMap((points) => points.map(([step]) => step))).size;
}

/** The x axis of both charts: the run's whole span, so it does not rescale as steps come. It
 *  starts at the run's start step, or before the first step the state holds (a resumed run
 *  keeps its earlier steps: from 0 when they are all there), so every point is on the plot. */
export function stepDomain(state) {
  const last = Math.max(state.totalSteps, state.steps.at(-1)?.step ?? 0,
                        state.samples.at(-1)?.step ?? 0);
  const held = Math.min(state.steps[0]?.step ?? Infinity, state.samples[0]?.step ?? Infinity);
  const first = Math.max(0, Math.min(state.startStep, held - 1, last));
  return [first, Math.max(last, first + 1)];
}

/** A round tick distance (1, 2 or 5 times a power of ten) giving about `ticks` ticks. */
export function niceStep(span, ticks = TICKS) {
  if (!(span > 0)) return 1;
  const raw = span / ticks;
  const exponent = Math.floor(Math.log10(raw));
  // 10 ** -5 is 9.999999999999999e-6 in JavaScript (Python's is 1e-05): divide instead
  const power = exponent >= 0 ? 10 ** exponent : 1 / 10 ** -exponent;
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= raw);
}

/** The y axis of `values`: padded by 5 % of their span and at least 1 % of their size, so
 *  equal values still get a range (report._value_range); [0, 1] with no values. */
export function valueRange(values) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (!finite.length) return [0, 1];
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  const pad = Math.max((high - low) * 0.05, Math.max(Math.abs(low), Math.abs(high)) * 0.01, 1e-6);
  return [low - pad, high + pad];
}

/** Tick values inside [low, high] with their labels; integer tick indices, since adding a
 *  float step can stall. `integer`: whole numbers only (steps); `exponent`: labels as 1.05e-4
 *  with just the digits that tell the ticks apart (learning rates). */
export function ticks(low, high, { count = TICKS, integer = false, exponent = false } = {}) {
  let step = niceStep(high - low, count);
  if (integer) step = Math.max(1, Math.round(step));
  const decimals = integer ? 0 : Math.max(0, -Math.floor(Math.log10(step)));
  const magnitude = Math.floor(Math.log10(Math.max(Math.abs(low), Math.abs(high)) || 1));
  const digits = Math.min(20, Math.max(0, magnitude - Math.floor(Math.log10(step))));
  const out = [];
  for (let i = Math.ceil(low / step - 1e-9); i <= Math.floor(high / step + 1e-9); i += 1) {
    const value = i * step || 0; // not -0
    const label = !exponent ? value.toFixed(decimals) : value ? value.toExponential(digits) : "0";
    out.push({ value, label });
  }
  return out;
}

/** Maps [d0, d1] linearly onto [r0, r1] (a zero-width domain maps to the range's middle). */
export function linearScale(d0, d1, r0, r1) {
  const span = d1 - d0;
  const map = (v) => (span ? r0 + ((v - d0) / span) * (r1 - r0) : (r0 + r1) / 2);
  map.invert = (p) => (r1 !== r0 ? d0 + ((p - r0) / (r1 - r0)) * span : d0);
  return map;
}

export const MARGIN = Object.freeze({ left: 44, right: 10, top: 18, bottom: 18 });

/** The plot area of a width x height chart: {left, top, right, bottom} in canvas pixels. */
export function plotBox(width, height, margin = MARGIN) {
  return { left: margin.left, top: margin.top,
           right: Math.max(margin.left + 1, width - margin.right),
           bottom: Math.max(margin.top + 1, height - margin.bottom) };
}

/** The sample step nearest to canvas x (a click on the metrics chart), or null. */
export function nearestStep(steps, box, domain, x) {
  if (!steps.length) return null;
  const scale = linearScale(domain[0], domain[1], box.left, box.right);
  return steps.reduce((best, s) => (Math.abs(scale(s) - x) < Math.abs(scale(best) - x) ? s : best));
}
