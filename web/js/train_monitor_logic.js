// Pure logic of the training monitor panel on LoRA Train: the state the five
// intenttuner.train.* events build, its replay from /intenttuner/train/history, and the texts
// and marks the panel shows. No DOM and no ComfyUI imports, so `node --test tests/web/` can
// test it. The chart series and geometry live in train_monitor_chart.js (re-exported here).
//
// One state shows one run. Which run: a start event of this panel's node switches to its run;
// any other event counts only for the run shown (other nodes' runs are ignored, so two runs at
// once each stay in their own panel). Events may arrive twice (history replay overlapping
// live events after a reload), so every reducer is idempotent.
import { viewUrl } from "./box_logic.js";

export * from "./train_monitor_chart.js";

const PREFIX = "intenttuner.train.";
export const EVENTS = Object.freeze({
  START: `${PREFIX}start`, STEP: `${PREFIX}step`, SAMPLE: `${PREFIX}sample`,
  WARNING: `${PREFIX}warning`, END: `${PREFIX}end`,
});
export const EVENT_NAMES = Object.freeze(Object.values(EVENTS));
export const METRICS = Object.freeze(["stability", "controllability", "leakage"]);
const ENDED = new Set(["finished", "stopped", "cancelled", "failed"]);

/** The empty state of a panel on node `node` (its id as a string; null: owns no node).
 *  `subgraph`: the node sits in a subgraph, whose executions name it "<outer>:...:<id>". */
export function createState(node = null, { subgraph = false } = {}) {
  return {
    node: node == null ? null : String(node), subgraph: Boolean(subgraph),
    run: null, runNode: null, status: "idle", start: null, totalSteps: 0, startStep: 0,
    steps: [], samples: [], warnings: [], end: null, best: null, marks: {},
    selected: null, // step of the point the grid shows; null: the latest
    pinned: false, // the user chose this run: this node's events of other runs do not take over
    missed: null, // a run of this node whose events came without its start: load its history
    error: "", // the last failing route, for the notes line
  };
}

/** Whether an event's `node` is this panel's node. */
export function ownsNode(state, node) {
  if (node == null || state.node == null) return false;
  const id = String(node);
  return id === state.node || (state.subgraph && id.endsWith(`:${state.node}`));
}

/** The state after event `name` with payload `data`. May change `state` in place: always go
 *  on with the state it returns (a start that switches runs returns a new one). */
export function reduce(state, name, data) {
  if (!data || typeof data !== "object" || !EVENT_NAMES.includes(name)) return state;
  if (name === EVENTS.START) {
    return ownsNode(state, data.node) || (state.run !== null && data.run === state.run)
      ? startRun(state, data) : state;
  }
  if (state.run === null || data.run !== state.run) {
    // this node trains a run the panel has not seen start (a browser connected mid-run)
    if (ownsNode(state, data.node) && !state.pinned && data.run) state.missed = data.run;
    return state;
  }
  if (state.runNode !== null && data.node != null && String(data.node) !== state.runNode) {
    return state; // a run of the same name on another node
  }
  if (name === EVENTS.STEP) addStep(state, data);
  else if (name === EVENTS.SAMPLE) addSample(state, data);
  else if (name === EVENTS.WARNING) addWarning(state, data.step, data.message, data.time);
  else endRun(state, data);
  return state;
}

function startRun(state, data) {
  const next = createState(state.node, { subgraph: state.subgraph });
  const startStep = count(data.start_step);
  if (state.run === data.run && startStep > 0) { // resumed: the steps before it stay
    next.steps = state.steps.filter((s) => s.step <= startStep);
    next.samples = state.samples.filter((p) => p.step <= startStep);
    next.warnings = state.warnings.filter((w) => w.step <= startStep);
    next.marks = state.marks;
  } else if (startStep > 0) {
    next.missed = data.run; // its earlier steps are in the history
  }
  const monitor = data.monitor ?? {};
  Object.assign(next, {
    run: data.run ?? null, runNode: data.node == null ? null : String(data.node),
    status: "running", totalSteps: count(data.total_steps), startStep,
    start: {
      time: data.time ?? null, prompt_id: data.prompt_id ?? null, run_dir: data.run_dir ?? "",
      tensorboard: data.tensorboard ?? null,
      monitor: {
        enabled: Boolean(monitor.enabled), sample_every_steps: count(monitor.sample_every_steps),
        images_per_point: count(monitor.images_per_point), formula: monitor.formula ?? "",
        weights: { ...(monitor.weights ?? {}) }, metrics: [...(monitor.metrics ?? [])],
        concepts: { ...(monitor.concepts ?? {}) }, notes: [...(monitor.notes ?? [])],
      },
    },
  });
  return next;
}

function addStep(state, data) {
  const step = count(data.step);
  const last = state.steps.at(-1);
  if (!step || (last && step <= last.step)) return; // seen already
  state.steps.push({
    step, loss: finite(data.loss), lr: finite(data.lr), epoch: data.epoch ?? null,
    images_per_s: finite(data.images_per_s), eta_s: finite(data.eta_s), time: data.time ?? null,
  });
  if (count(data.total_steps)) state.totalSteps = count(data.total_steps);
  if (!ENDED.has(state.status) && state.status !== "stopping") state.status = "running";
}

function addSample(state, data) {
  const point = {
    step: count(data.step), final: Boolean(data.final), checkpoint: data.checkpoint ?? "",
    seconds: finite(data.seconds), overhead: finite(data.overhead), score: finite(data.score),
    scores: data.scores ?? {}, images: [...(data.images ?? [])],
    warnings: [...(data.warnings ?? [])], time: data.time ?? null,
  };
  const at = state.samples.findIndex((p) => p.step >= point.step);
  if (at < 0) state.samples.push(point);
  else state.samples.splice(at, state.samples[at].step === point.step ? 1 : 0, point);
}

function addWarning(state, step, message, time) {
  if (!message) return;
  const same = (w) => w.step === (step ?? null) && w.message === message &&
    w.time === (time ?? null);
  if (!state.warnings.some(same)) {
    state.warnings.push({ step: step ?? null, message: String(message), time: time ?? null });
  }
}

function endRun(state, data) {
  state.end = {
    status: data.status ?? "finished", step: count(data.step), overhead: finite(data.overhead),
    monitor_seconds: finite(data.monitor_seconds), total_seconds: finite(data.total_seconds),
    message: data.message ?? "", time: data.time ?? null,
  };
  state.best = data.best ?? null;
  state.status = state.end.status;
}

/** The state of a /intenttuner/train/history answer {run, status, events, marks}, as a panel
 *  on node `node` that saw every event live would have it (plus the saved marks). */
export function replay(history, node = null, options = {}) {
  let state = createState(node, options);
  state.run = history?.run ?? null;
  for (const { event, data } of history?.events ?? []) state = reduce(state, event, data);
  state.missed = null; // the history holds all of it
  state.marks = { ...(history?.marks ?? {}) };
  const status = history?.status;
  if (!state.end && status && status !== "running") state.status = status; // ended unrecorded
  else if (status === "running" && state.status === "idle") state.status = "running";
  return state;
}

/** After /intenttuner/train/stop answered: the run ends after its current step. */
export function stopping(state) {
  if (state.status === "running") state.status = "stopping";
  return state;
}

/** After a replay: a Stop asked for earlier (by this or another browser) is still pending when
 *  the server's runs entry of the run says `stopping` (`runs`: /intenttuner/train/runs). */
export function stoppingFrom(state, runs) {
  const entry = (runs ?? []).find((r) => r?.run === state.run);
  return entry?.stopping === true ? stopping(state) : state;
}

export function canStop(state) {
  return state.status === "running";
}

// -- re-reading a silent run ------------------------------------------------------------------

/** Silence (ms) before re-reading a running run's history: a slow sample point (SDXL: minutes)
 *  is silent too, so each re-read without news doubles the wait: 30 s, 60 s, 120 s ... 5 min. */
export const QUIET = Object.freeze({ first: 30000, cap: 300000 });

export function quietDelay(rereads) {
  return Math.min(QUIET.cap, QUIET.first * 2 ** Math.max(0, rereads));
}

/** The silence clock {since, rereads}: reset by an event of the run (or a new run shown). */
export const quietReset = (now) => ({ since: now, rereads: 0 });
export const quietReread = (quiet, now) => ({ since: now, rereads: quiet.rereads + 1 });

/** Whether a running (or stopping) run silent since `quiet.since` is due a re-read at `now`;
 *  once it is, go on with `quietReread(quiet, now)`. */
export function rereadDue(state, quiet, now) {
  const running = state.status === "running" || state.status === "stopping";
  return running && now - quiet.since >= quietDelay(quiet.rereads);
}

// -- texts ------------------------------------------------------------------------------------

/** 80 -> "1m 20s", 3725 -> "1h 02m"; "" for no number. */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Seconds left: the trainer's estimate of the last step, else the pace of the last steps. */
export function etaSeconds(state) {
  const last = state.steps.at(-1);
  if (!last) return null;
  if (last.eta_s !== null) return last.eta_s;
  const recent = state.steps.slice(-20).filter((s) => Number.isFinite(s.time));
  if (recent.length < 2 || !state.totalSteps) return null;
  const first = recent[0], end = recent.at(-1);
  const perStep = (end.time - first.time) / (end.step - first.step);
  return perStep >= 0 ? perStep * Math.max(0, state.totalSteps - end.step) : null;
}

/** Share (0..1) of the run's time spent sampling and scoring, or null before any point. */
export function overhead(state) {
  return state.end?.overhead ?? state.samples.at(-1)?.overhead ?? null;
}

export function currentStep(state) {
  return Math.max(state.steps.at(-1)?.step ?? state.startStep, state.end?.step ?? 0);
}

/** "running step 12/400 · ETA 1m 20s · monitoring 23 %", "finished step 400/400 · 12m 3s". */
export function statusText(state) {
  if (state.run === null) return "no run yet: queue the graph to train, or pick a run above";
  const parts = [];
  const steps = `step ${currentStep(state)}/${state.totalSteps || "?"}`;
  if (state.status === "running") {
    parts.push(state.steps.length ? `running ${steps}` : `starting… ${steps}`);
    const eta = formatDuration(etaSeconds(state));
    if (eta) parts.push(`ETA ${eta}`);
  } else if (state.status === "stopping") {
    parts.push(`stopping… ${steps}`);
  } else if (ENDED.has(state.status)) {
    parts.push(`${state.status} ${steps}`);
    const took = formatDuration(state.end?.total_seconds);
    if (took) parts.push(took);
  } else {
    parts.push(`${state.status} ${steps}`, "the run ended without an end record");
  }
  const share = overhead(state);
  if (share !== null) parts.push(`monitoring ${Math.round(share * 100)} %`);
  return parts.join(" · ");
}

/** The best point so far: the highest combined score, the earlier one of equals. */
export function bestPoint(samples) {
  let best = null;
  for (const point of samples) {
    if (point.score !== null && (best === null || point.score > best.score)) best = point;
  }
  return best;
}

const score3 = (value) => (value == null ? "n/a" : Number(value).toFixed(3));

/** The best checkpoint line: the run's choice once ended, the best point so far before. */
export function bestText(state) {
  if (state.run === null) return "";
  const monitored = state.start?.monitor?.enabled ?? state.samples.length > 0;
  if (state.best) {
    const b = state.best;
    return `best: step ${b.step ?? "?"} · score ${score3(b.score)} · ${b.lora_name ?? ""}` +
      (b.reason ? ` (${b.reason})` : "");
  }
  if (!monitored) return "best: none (loss-only run: nothing is scored)";
  const point = bestPoint(state.samples);
  if (state.end) {
    if (!state.samples.length) {
      return `best: none (${state.end.status} before the first sample point)`;
    }
    return "best: none (no sample point could be scored)";
  }
  if (point) return `best so far: step ${point.step} · score ${score3(point.score)}`;
  const every = state.start?.monitor?.sample_every_steps;
  return every ? `best: none yet (samples every ${every} steps)`
    : "best: none yet (samples at the end)";
}

/** The notes line: the monitor's notes, what cannot be measured, warnings, route errors;
 *  each {text, level: "note" | "warning" | "error"}. */
export function notes(state) {
  const out = [];
  const monitor = state.start?.monitor;
  for (const text of monitor?.notes ?? []) out.push({ text, level: "note" });
  if (monitor && !monitor.enabled) {
    out.push({ text: "loss only: this run takes no samples and scores no checkpoint",
               level: "note" });
  } else if (monitor) {
    const missing = METRICS.filter((m) => (monitor.weights[m] ?? 1) > 0 &&
                                          !monitor.metrics.includes(m));
    if (missing.length) out.push({ text: `not measured for this intent: ${missing.join(", ")}`,
                                   level: "note" });
  }
  const warned = new Set();
  const warn = (step, message) => {
    const text = step == null ? message : `step ${step}: ${message}`;
    if (!warned.has(text)) out.push({ text, level: "warning" });
    warned.add(text);
  };
  for (const w of state.warnings) warn(w.step, w.message);
  for (const p of state.samples) for (const message of p.warnings) warn(p.step, message);
  if (state.end && state.end.status !== "finished" && state.end.message) {
    out.push({ text: state.end.message, level: state.end.status === "failed" ? "error" : "note" });
  }
  if (state.error) out.push({ text: state.error, level: "error" });
  return out;
}

/** "runs: Run x is not running" from a failed route answer (body: its JSON, if any). */
export function routeError(route, status, body) {
  const why = body && typeof body === "object" && body.error ? body.error : `HTTP ${status}`;
  return `${route}: ${why}`;
}

// -- the sample grid and its marks ------------------------------------------------------------

/** The point the grid shows: the chosen one, else the latest with images, else the latest. */
export function shownPoint(state) {
  const chosen = state.samples.find((p) => p.step === state.selected);
  if (chosen) return chosen;
  return state.samples.findLast((p) => p.images.length) ?? state.samples.at(-1) ?? null;
}

/** One entry per image of the shown point: its run-relative path (the key of its mark), the
 *  /view path of its temp thumbnail (null when the event had no complete ref) and its mark. */
export function gridItems(state) {
  const point = shownPoint(state);
  return (point?.images ?? []).map((image) => ({
    image: image.path ?? "", item: image.item ?? "", test: image.test ?? "",
    prompt: image.prompt ?? "", seed: image.seed ?? null, step: point.step,
    view: image.filename ? viewUrl({ filename: image.filename, subfolder: image.subfolder ?? "",
                                     type: image.type ?? "temp" }) : null,
    mark: state.marks[image.path] ?? "",
  }));
}

/** "step 40 (final) · score 0.612 · 6 image(s)" over the grid. */
export function gridTitle(state) {
  const point = shownPoint(state);
  if (!point) return state.run === null ? "" : "no samples yet";
  const latest = point === state.samples.at(-1) ? "latest" : "chosen";
  return `samples of step ${point.step} (${point.final ? "final" : latest}) · score ` +
    `${score3(point.score)} · ${point.images.length} image(s)`;
}

/** The mark after clicking `clicked` ("good" | "bad"): the active mark again clears it. */
export function nextMark(current, clicked) {
  return (current || null) === clicked ? null : clicked;
}

/** `marks` with `image` marked `mark` (null: unmarked); the input is not changed. */
export function setMark(marks, image, mark) {
  const next = { ...marks };
  if (mark) next[image] = mark;
  else delete next[image];
  return next;
}

// -- runs of the server -----------------------------------------------------------------------

/** The run a panel opens with: this node's running run, else the one it showed last (if the
 *  server still has it), else this node's newest run, else none. `runs` newest first. */
export function pickRun(runs, state, remembered) {
  const own = (runs ?? []).filter((r) => ownsNode(state, r.node));
  const running = own.find((r) => r.status === "running");
  if (running) return running.run;
  if (remembered && (runs ?? []).some((r) => r.run === remembered)) return remembered;
  return own[0]?.run ?? null;
}

/** The run picker's options: this node's runs first (in server order), then the others; the
 *  shown run is always among them. */
export function runOptions(runs, state) {
  const list = runs ?? [];
  const own = list.filter((r) => ownsNode(state, r.node));
  const others = list.filter((r) => !ownsNode(state, r.node));
  const options = [...own, ...others].map((r) => ({
    value: r.run, own: ownsNode(state, r.node),
    label: `${r.run} · ${r.status} · step ${r.step ?? 0}/${r.total_steps ?? "?"}` +
      (ownsNode(state, r.node) ? "" : ` · node ${r.node ?? "headless"}`),
  }));
  if (state.run !== null && !list.some((r) => r.run === state.run)) {
    options.unshift({ value: state.run, own: true, label: `${state.run} · ${state.status}` });
  }
  return options;
}

function count(value) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}
