// The training monitor's two canvases, drawn from a panel state: loss (raw faint, moving
// average on top) with the learning rate on a second axis; the intent metrics per sample step,
// one line per metric and thinner dashed ones per concept, the best point ringed. The numbers
// (series, scales, ticks) come from train_monitor_chart.js; this file only paints them.
import * as chart from "./train_monitor_chart.js";

const FONT = "10px sans-serif";
const AXES = "#999";
const GRID = "rgba(255,255,255,.08)";
const RAW = "rgba(120,160,230,.45)";
const TREND = "#4a90e2";
const LR = "#f5a623";
const COLOURS = { score: "#eeeeee", stability: "#4a90e2", controllability: "#7ed321",
                  leakage: "#e8384f" };
const EXTRA = ["#bd10e0", "#50e3c2", "#f8e71c", "#9b9b9b"]; // metrics not known here
const DASHES = [[4, 3], [1, 3], [6, 2, 1, 2], [2, 2]];

/** Sizes the canvas to its box (device pixels) and returns its context and CSS size, or null
 *  while it is not laid out (a collapsed node). */
function prepare(canvas) {
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return null;
  const ratio = globalThis.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = FONT;
  return { ctx, width, height };
}

function frame(ctx, box, xScale, yTicks, yScale, domain, right = null) {
  ctx.strokeStyle = GRID;
  ctx.fillStyle = AXES;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const { value, label } of yTicks) {
    const y = yScale(value);
    ctx.beginPath(); ctx.moveTo(box.left, y); ctx.lineTo(box.right, y); ctx.stroke();
    ctx.fillText(label, box.left - 3, y);
  }
  if (right) { // a second axis on the right, its labels inside the plot
    ctx.textAlign = "right";
    ctx.fillStyle = right.colour;
    for (const { value, label } of right.ticks) {
      ctx.fillText(label, box.right - 2, right.scale(value));
    }
  }
  ctx.fillStyle = AXES;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const { value, label } of chart.ticks(domain[0], domain[1], { integer: true })) {
    ctx.fillText(label, xScale(value), box.bottom + 3);
  }
  ctx.strokeStyle = AXES;
  ctx.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
}

function line(ctx, points, xScale, yScale, colour, width = 1, dash = []) {
  if (!points.length) return;
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = width;
  ctx.setLineDash(dash);
  if (points.length === 1) {
    const [s, v] = points[0];
    ctx.beginPath(); ctx.arc(xScale(s), yScale(v), 2.5, 0, 2 * Math.PI); ctx.fill();
  } else {
    ctx.beginPath();
    points.forEach(([s, v], i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, xScale(s), yScale(v)));
    ctx.stroke();
  }
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
}

/** Paints `draw()` inside the plot box only: nothing spills over the axis labels (a step
 *  outside the domain) or the legend. `slack` px above and below keep lines at 0 or 1 whole. */
function clipped(ctx, box, draw, slack = 0) {
  ctx.save();
  ctx.beginPath();
  ctx.rect(box.left, box.top - slack, box.right - box.left, box.bottom - box.top + 2 * slack);
  ctx.clip();
  draw();
  ctx.restore();
}

function legend(ctx, box, entries) {
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  let x = box.left;
  for (const { text, colour } of entries) {
    ctx.fillStyle = colour;
    ctx.fillText(text, x, 3);
    x += ctx.measureText(text).width + 10;
  }
}

function message(ctx, box, text) {
  ctx.fillStyle = AXES;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, (box.left + box.right) / 2, (box.top + box.bottom) / 2);
}

/** The loss chart; returns the number of loss points drawn (data-points). */
export function drawLoss(canvas, state) {
  const { raw, smooth, lr } = chart.lossSeries(state);
  canvas.dataset.points = String(raw.length);
  const view = prepare(canvas);
  if (!view) return raw.length;
  const { ctx, width, height } = view;
  const box = chart.plotBox(width, height);
  const domain = chart.stepDomain(state);
  const x = chart.linearScale(domain[0], domain[1], box.left, box.right);
  const [low, high] = chart.valueRange(raw.map(([, v]) => v));
  const y = chart.linearScale(low, high, box.bottom, box.top);
  const lrRange = chart.valueRange(lr.map(([, v]) => v));
  const lrScale = chart.linearScale(lrRange[0], lrRange[1], box.bottom, box.top);
  const lrTicks = chart.ticks(...lrRange, { count: 3, exponent: true });
  frame(ctx, box, x, chart.ticks(low, high), y, domain,
        lr.length ? { ticks: lrTicks, scale: lrScale, colour: LR } : null);
  if (!raw.length) message(ctx, box, state.run === null ? "no run" : "no finished step yet");
  clipped(ctx, box, () => {
    line(ctx, raw, x, y, RAW);
    line(ctx, smooth, x, y, TREND, 2);
    line(ctx, lr, x, lrScale, LR, 1, [3, 3]);
  });
  const last = raw.at(-1);
  legend(ctx, box, [
    { text: `loss${last ? ` ${last[1].toPrecision(4)}` : ""}`, colour: RAW },
    { text: `smoothed${smooth.length ? ` ${smooth.at(-1)[1].toPrecision(4)}` : ""}`,
      colour: TREND },
    { text: `lr${lr.length ? ` ${lr.at(-1)[1].toExponential(2)}` : ""}`, colour: LR },
  ]);
  return raw.length;
}

function colourOf(metric, known) {
  if (!metric) return COLOURS.score;
  if (COLOURS[metric]) return COLOURS[metric];
  if (!known.has(metric)) known.set(metric, EXTRA[known.size % EXTRA.length]);
  return known.get(metric);
}

/** The metrics chart; returns the number of sample steps drawn (data-points). Its geometry
 *  is kept on the canvas for clicks (choosing the point the grid shows). */
export function drawMetrics(canvas, state) {
  const series = chart.metricSeries(state);
  const count = chart.pointCount(series.map((s) => s.points));
  canvas.dataset.points = String(count);
  const view = prepare(canvas);
  if (!view) return count;
  const { ctx, width, height } = view;
  const box = chart.plotBox(width, height);
  const domain = chart.stepDomain(state);
  canvas.itGeometry = { box, domain };
  const x = chart.linearScale(domain[0], domain[1], box.left, box.right);
  const y = chart.linearScale(0, 1, box.bottom, box.top); // every score is in 0..1
  frame(ctx, box, x, chart.ticks(0, 1), y, domain);
  const extra = new Map();
  const dashes = new Map();
  const names = []; // the concepts' names at their last points: the legend would not hold them
  clipped(ctx, box, () => {
    for (const s of series) {
      const colour = colourOf(s.metric, extra);
      if (s.concept === null) { line(ctx, s.points, x, y, colour, s.metric ? 1.5 : 2.5); continue; }
      const n = dashes.get(s.metric) ?? 0;
      dashes.set(s.metric, n + 1);
      line(ctx, s.points, x, y, colour, 1, DASHES[n % DASHES.length]);
      const end = s.points.at(-1);
      if (end && x(end[0]) >= box.left) names.push([s.concept, colour, end]);
    }
    const bestStep = state.best?.step ?? null;
    const ringed = state.samples.find((p) => p.step === bestStep && p.score !== null);
    if (ringed) {
      ctx.strokeStyle = COLOURS.score;
      ctx.beginPath(); ctx.arc(x(ringed.step), y(ringed.score), 5, 0, 2 * Math.PI); ctx.stroke();
    }
    const shown = state.samples.find((p) => p.step === state.selected);
    if (shown) { // the point the grid shows, when chosen
      ctx.strokeStyle = "rgba(255,255,255,.35)";
      ctx.beginPath(); ctx.moveTo(x(shown.step), box.top); ctx.lineTo(x(shown.step), box.bottom);
      ctx.stroke();
    }
  }, 6);
  ctx.textAlign = "right"; // outside the clip: a name over a line at 1.0 sits above the box
  ctx.textBaseline = "bottom";
  for (const [concept, colour, end] of names) {
    ctx.fillStyle = colour;
    ctx.fillText(concept, Math.min(x(end[0]), box.right - 2), y(end[1]) - 1);
  }
  if (!count) {
    const monitored = state.start?.monitor?.enabled ?? false;
    message(ctx, box, state.run === null ? "no run" : monitored ? "no sample point yet"
      : "loss only: no samples in this run");
  }
  legend(ctx, box, series.filter((s) => s.concept === null).map((s) => ({
    text: s.applicable ? s.label : `${s.label}: n/a`,
    colour: colourOf(s.metric, extra),
  })));
  return count;
}
