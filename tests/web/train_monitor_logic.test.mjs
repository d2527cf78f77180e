// node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  EVENTS, bestText, canStop, createState, etaSeconds, formatDuration, gridItems, gridTitle,
  linearScale, lossSeries, metricSeries, nearestStep, nextMark, niceStep, notes, ownsNode,
  pickRun, plotBox, pointCount, quietDelay, quietReread, quietReset, reduce, replay, rereadDue,
  routeError, runOptions, setMark, smooth, statusText, stepDomain, stopping, stoppingFrom, ticks,
  valueRange,
} from "../../web/js/train_monitor_logic.js";

const MONITOR = {
  enabled: true, sample_every_steps: 10, images_per_point: 2,
  formula: "best = (1*stability + 1*controllability + 1*(1 - leakage)) / 3",
  weights: { stability: 1, controllability: 1, leakage: 1 },
  metrics: ["stability", "controllability", "leakage"],
  concepts: { stability: ["face"], controllability: ["hat"], leakage: ["jacket"] }, notes: [],
};
const start = (over = {}) => ({ run: "r1", node: "5", time: 100, prompt_id: "p1", total_steps: 20,
  start_step: 0, run_dir: "/m/loras/r1", monitor: MONITOR, tensorboard: null, ...over });
const step = (n, over = {}) => ({ run: "r1", node: "5", time: 100 + n, step: n, total_steps: 20,
  loss: 1 / n, lr: 1e-4, epoch: 0, images_per_s: 2, eta_s: (20 - n) * 1.0, ...over });
const image = (s, item, prompt) => ({ filename: `it_${s}_${item}.png`, subfolder: "intenttuner",
  type: "temp", path: `samples/step${String(s).padStart(6, "0")}/${item}.png`, item,
  test: "stability", prompt, seed: 1 });
const scores = (stab, face, hat) => ({
  stability: { applicable: true, score: stab, concepts: { face } },
  controllability: { applicable: true, score: hat, concepts: { hat } },
  leakage: { applicable: true, score: 0.1, concepts: { jacket: 0.1 } },
});
const sample = (s, score, over = {}) => ({ run: "r1", node: "5", time: 100 + s, step: s,
  final: false, checkpoint: `r1_step${s}.safetensors`, seconds: 3, overhead: 0.23, score,
  scores: scores(score, score, 0.5),
  images: [image(s, "a", "ohwx man"), image(s, "b", "ohwx, hat")],
  warnings: [], ...over });
const end = (over = {}) => ({ run: "r1", node: "5", time: 200, status: "finished", step: 20,
  best: { step: 10, score: 0.8, lora_name: "r1_best.safetensors",
          path: "/m/loras/r1_best.safetensors",
          reason: "highest combined score" },
  overhead: 0.25, monitor_seconds: 25, total_seconds: 100, message: "finished 20 steps", ...over });

/** The events of a whole run, in order, as the server sends them. */
function runEvents() {
  const out = [[EVENTS.START, start()]];
  for (let n = 1; n <= 20; n += 1) {
    out.push([EVENTS.STEP, step(n)]);
    if (n === 10) out.push([EVENTS.SAMPLE, sample(10, 0.8)]);
    if (n === 15) out.push([EVENTS.WARNING, { run: "r1", node: "5", time: 115, step: 15,
                                              message: "sampling failed: out of memory" }]);
    if (n === 20) out.push([EVENTS.SAMPLE, sample(20, 0.8, { final: true })]);
  }
  out.push([EVENTS.END, end()]);
  return out;
}

const live = (events, node = "5", state = createState(node)) =>
  events.reduce((s, [name, data]) => reduce(s, name, data), state);

test("a start of this node switches the panel to its run; other nodes' events are ignored", () => {
  let state = createState("5");
  state = reduce(state, EVENTS.START, start({ run: "other", node: "7" }));
  assert.equal(state.run, null);
  state = reduce(state, EVENTS.START, start());
  assert.deepEqual([state.run, state.status], ["r1", "running"]);
  state = reduce(state, EVENTS.STEP, step(1, { run: "other", node: "7" }));
  state = reduce(state, EVENTS.SAMPLE, sample(10, 0.9, { run: "other", node: "7" }));
  state = reduce(state, EVENTS.END, end({ run: "other", node: "7" }));
  assert.deepEqual([state.steps.length, state.samples.length, state.end], [0, 0, null]);
  state = reduce(state, EVENTS.STEP, step(1));
  state = reduce(state, EVENTS.STEP, step(1)); // twice (replay overlapping live): once
  assert.equal(state.steps.length, 1);
  state = reduce(state, "intenttuner.train.unknown", step(2));
  state = reduce(state, EVENTS.STEP, null);
  assert.equal(state.steps.length, 1);
  // a second run of this node takes the panel over
  const next = reduce(state, EVENTS.START, start({ run: "r2" }));
  assert.deepEqual([next.run, next.steps.length], ["r2", 0]);
});

test("two panels each keep their own node's run", () => {
  const events = [...runEvents(), [EVENTS.START, start({ run: "r9", node: "8" })],
                  [EVENTS.STEP, step(1, { run: "r9", node: "8", loss: 5 })]];
  const [five, eight] = [live(events, "5"), live(events, "8")];
  assert.deepEqual([five.run, five.steps.length], ["r1", 20]);
  assert.deepEqual([eight.run, eight.steps.map((s) => s.loss)], ["r9", [5]]);
});

test("a node inside a subgraph owns its execution ids only when flagged", () => {
  const [inner, plain] = [createState("4", { subgraph: true }), createState("4")];
  assert.deepEqual([ownsNode(inner, "12:4"), ownsNode(plain, "12:4"), ownsNode(inner, "14"),
                    ownsNode(plain, null)], [true, false, false, false]);
});

test("a whole run: status, best, metric series per concept, warnings in the notes", () => {
  const state = live(runEvents());
  assert.equal(state.status, "finished");
  assert.equal(statusText(state), "finished step 20/20 · 1m 40s · monitoring 25 %");
  assert.equal(bestText(state),
               "best: step 10 · score 0.800 · r1_best.safetensors (highest combined score)");
  assert.ok(!canStop(state));
  const series = metricSeries(state);
  assert.deepEqual(series.map((s) => s.key), ["score", "stability", "stability/face",
    "controllability", "controllability/hat", "leakage", "leakage/jacket"]);
  assert.deepEqual(series.find((s) => s.key === "controllability/hat").points,
                   [[10, 0.5], [20, 0.5]]);
  assert.equal(pointCount(series.map((s) => s.points)), 2);
  assert.deepEqual(notes(state),
                   [{ text: "step 15: sampling failed: out of memory", level: "warning" }]);
  assert.equal(gridTitle(state), "samples of step 20 (final) · score 0.800 · 2 image(s)");
});

test("a failed sampling point: a warning, no score, training goes on", () => {
  let state = live(runEvents().slice(0, 12)); // start, steps 1..10 with the sample at 10
  state = reduce(state, EVENTS.SAMPLE, sample(20, null, { images: [], scores: {},
    warnings: ["sampling failed at step 20: CUDA out of memory"] }));
  state = reduce(state, EVENTS.STEP, step(11));
  assert.equal(state.status, "running");
  assert.equal(state.steps.at(-1).step, 11);
  assert.deepEqual(notes(state).map((n) => n.level), ["warning"]);
  assert.match(notes(state)[0].text, /^step 20: sampling failed/);
  assert.equal(gridTitle(state), "samples of step 10 (chosen) · score 0.800 · 2 image(s)");
  assert.equal(bestText(state), "best so far: step 10 · score 0.800");
});

test("a loss-only run shows its loss and notes why nothing is scored", () => {
  const why = "Loss only: the intent has no kept or modified concept to test.";
  let state = reduce(createState("5"), EVENTS.START, start({ monitor: {
    enabled: false, sample_every_steps: 0, images_per_point: 0, formula: "", weights: {},
    metrics: [], concepts: {}, notes: [why] } }));
  state = reduce(state, EVENTS.STEP, step(1));
  state = reduce(state, EVENTS.STEP, step(2, { loss: null })); // not finite
  assert.deepEqual(lossSeries(state).raw, [[1, 1]]);
  assert.deepEqual(notes(state).map((n) => n.text),
                   [why, "loss only: this run takes no samples and scores no checkpoint"]);
  assert.equal(bestText(state), "best: none (loss-only run: nothing is scored)");
  assert.deepEqual(metricSeries(state).map((s) => [s.key, s.points.length]), [["score", 0]]);
  assert.equal(statusText(state), "running step 2/20 · ETA 18s");
});

test("an intent without modified concepts: what cannot be measured is noted", () => {
  const monitor = { ...MONITOR, metrics: ["stability", "leakage"],
                    concepts: { stability: ["face"], leakage: ["jacket"] } };
  let state = reduce(createState("5"), EVENTS.START, start({ monitor }));
  const point = sample(10, 0.7);
  point.scores.controllability = { applicable: false, score: null, concepts: {} };
  state = reduce(state, EVENTS.SAMPLE, point);
  assert.deepEqual(notes(state), [{ text: "not measured for this intent: controllability",
                                    level: "note" }]);
  const series = metricSeries(state);
  const control = series.find((s) => s.key === "controllability");
  assert.deepEqual([control.applicable, control.points], [false, []]);
});

test("Stop before the first sample point: stopping…, then no best with the reason", () => {
  let state = live([[EVENTS.START, start()], [EVENTS.STEP, step(1)], [EVENTS.STEP, step(2)],
                    [EVENTS.STEP, step(3)]]);
  assert.ok(canStop(state));
  state = stopping(state);
  assert.equal(statusText(state), "stopping… step 3/20");
  assert.ok(!canStop(state));
  state = reduce(state, EVENTS.STEP, step(4)); // the step under way when Stop came
  assert.equal(state.status, "stopping");
  state = reduce(state, EVENTS.END, end({ status: "stopped", step: 4, best: null, overhead: 0,
                                          message: "stopped at step 4 by the user" }));
  assert.equal(state.status, "stopped");
  assert.equal(bestText(state), "best: none (stopped before the first sample point)");
  assert.equal(statusText(state), "stopped step 4/20 · 1m 40s · monitoring 0 %");
  assert.deepEqual(notes(state), [{ text: "stopped at step 4 by the user", level: "note" }]);
  assert.equal(stopping(state).status, "stopped"); // a late answer changes nothing
});

test("a failed run says why in red; cancelled is a note", () => {
  const failed = live([[EVENTS.START, start()], [EVENTS.END, end({ status: "failed", best: null,
    step: 0, message: "CUDA out of memory" })]]);
  assert.deepEqual(notes(failed), [{ text: "CUDA out of memory", level: "error" }]);
  const state = createState("5");
  state.error = routeError("stop", 400, { error: "Run r1 is not running." });
  assert.deepEqual(notes(state), [{ text: "stop: Run r1 is not running.", level: "error" }]);
  assert.equal(routeError("runs", 500, null), "runs: HTTP 500");
});

test("smoothing is the report's debiased moving average (numbers from Python)", () => {
  // intenttuner.training.report.smooth([1.0, 0.5, 0.8, 0.2, 0.4])
  const python = [1.0, 0.7368421052631579, 0.7601476014760149, 0.5972666472811865,
                  0.5490952601890065];
  smooth([1.0, 0.5, 0.8, 0.2, 0.4]).forEach((v, i) => assert.ok(Math.abs(v - python[i]) < 1e-12));
  assert.deepEqual(smooth([2]), [2]);
  assert.deepEqual(smooth([]), []);
  let state = live([[EVENTS.START, start()], ...[1, 0.5, 0.8, 0.2, 0.4].map((loss, i) =>
    [EVENTS.STEP, step(i + 1, { loss })])]);
  state = reduce(state, EVENTS.STEP, step(6, { loss: null }));
  const { raw, smooth: trend, lr } = lossSeries(state);
  assert.deepEqual(raw.map(([s]) => s), [1, 2, 3, 4, 5]);
  assert.ok(Math.abs(trend.at(-1)[1] - python.at(-1)) < 1e-12);
  assert.equal(lr.length, 6);
});

test("replaying the history gives the state of a panel that saw every event live", () => {
  const events = runEvents();
  const history = { run: "r1", status: "finished", marks: {},
                    events: events.map(([event, data]) => ({ event, data })) };
  assert.deepEqual(replay(history, "5"), live(events));
  // mid-run, with events of other runs interleaved live (the history holds its run only)
  const half = events.slice(0, 15);
  const noisy = [...half.slice(0, 5), [EVENTS.STEP, step(3, { run: "x", node: "7" })],
                 ...half.slice(5)];
  assert.deepEqual(replay({ ...history, status: "running",
                            events: half.map(([event, data]) => ({ event, data })) }, "5"),
                   live(noisy));
  // a run chosen from another node's list replays fully too
  const other = replay(history, "9");
  assert.equal(other.steps.length, 20);
  assert.equal(other.runNode, "5");
});

test("replay: saved marks, a run that ended unrecorded, live events overlapping it", () => {
  const events = runEvents().slice(0, 8);
  const history = { run: "r1", status: "unknown", marks: { "samples/step000010/a.png": "good" },
                    events: events.map(([event, data]) => ({ event, data })) };
  const state = replay(history, "5");
  assert.equal(state.status, "unknown");
  assert.equal(statusText(state),
               "unknown step 7/20 · the run ended without an end record");
  assert.deepEqual(state.marks, history.marks);
  // a reload mid-run: events that came while the history was read are applied after it
  const running = replay({ ...history, status: "running" }, "5");
  const after = live(runEvents().slice(6, 12), "5", running);
  assert.deepEqual(after.steps.map((s) => s.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(after.samples.length, 1);
  assert.deepEqual(replay({ run: "r1", status: "running", events: [], marks: {} }, "5").status,
                   "running");
});

test("events of this node's unseen run ask for its history, unless the user chose a run", () => {
  const state = reduce(createState("5"), EVENTS.STEP, step(7));
  assert.equal(state.missed, "r1");
  assert.equal(state.steps.length, 0);
  const chosen = replay({ run: "old", status: "finished", events: [], marks: {} }, "5");
  chosen.pinned = true;
  assert.equal(reduce(chosen, EVENTS.STEP, step(7)).missed, null);
  // a resumed run: the steps before its start stay; a start seen first asks for the history
  const first = live(runEvents().slice(0, 15)); // up to step 13
  const resumed = reduce(first, EVENTS.START, start({ start_step: 10 }));
  assert.deepEqual([resumed.steps.length, resumed.samples.length, resumed.missed], [10, 1, null]);
  assert.equal(reduce(createState("5"), EVENTS.START, start({ start_step: 10 })).missed, "r1");
});

test("ETA: the trainer's estimate, else the pace of the last steps", () => {
  assert.equal(formatDuration(45), "45s");
  assert.equal(formatDuration(80), "1m 20s");
  assert.equal(formatDuration(3725), "1h 02m");
  assert.equal(formatDuration(null), "");
  let state = live([[EVENTS.START, start({ total_steps: 400 })],
                    [EVENTS.STEP, step(12, { total_steps: 400, eta_s: 80 })]]);
  assert.equal(statusText(state), "running step 12/400 · ETA 1m 20s");
  state = reduce(state, EVENTS.SAMPLE, sample(12, 0.5, { overhead: 0.234 }));
  assert.equal(statusText(state), "running step 12/400 · ETA 1m 20s · monitoring 23 %");
  const paced = live([[EVENTS.START, start()], [EVENTS.STEP, step(1, { eta_s: null, time: 10 })],
                      [EVENTS.STEP, step(2, { eta_s: null, time: 12 })]]);
  assert.equal(etaSeconds(paced), 36); // 2 s a step, 18 to go
  assert.equal(statusText(live([[EVENTS.START, start()]])), "starting… step 0/20");
  assert.equal(statusText(createState("5")),
               "no run yet: queue the graph to train, or pick a run above");
});

test("marks: clicking the active mark again clears it; the grid shows them", () => {
  assert.equal(nextMark("", "good"), "good");
  assert.equal(nextMark(null, "bad"), "bad");
  assert.equal(nextMark("good", "bad"), "bad");
  assert.equal(nextMark("good", "good"), null);
  const marks = setMark({}, "samples/step000020/a.png", "good");
  assert.deepEqual(setMark(marks, "samples/step000020/a.png", null), {});
  assert.deepEqual(marks, { "samples/step000020/a.png": "good" }); // not changed in place
  const state = live(runEvents());
  state.marks = marks;
  const items = gridItems(state);
  assert.deepEqual(items.map((i) => [i.image, i.mark, i.prompt, i.step]), [
    ["samples/step000020/a.png", "good", "ohwx man", 20],
    ["samples/step000020/b.png", "", "ohwx, hat", 20]]);
  assert.equal(items[0].view, "/view?filename=it_20_a.png&subfolder=intenttuner&type=temp");
  state.selected = 10; // a point chosen on the chart
  assert.equal(gridItems(state)[0].image, "samples/step000010/a.png");
  const headless = sample(10, 0.5, { images: [{ path: "samples/step000010/a.png", prompt: "p" }] });
  assert.equal(gridItems(reduce(live([[EVENTS.START, start()]]), EVENTS.SAMPLE, headless))[0].view,
               null);
});

test("the run picker: this node's running run, else the last shown, this node's runs first", () => {
  const runs = [
    { run: "b", status: "running", node: "7", step: 3, total_steps: 10 },
    { run: "a", status: "finished", node: "5", step: 10, total_steps: 10 },
    { run: "c", status: "running", node: "5", step: 2, total_steps: 10 },
  ];
  const state = createState("5");
  assert.equal(pickRun(runs, state, "a"), "c");
  assert.equal(pickRun(runs.slice(0, 2), state, "b"), "b");
  assert.equal(pickRun(runs.slice(0, 2), state, "gone"), "a");
  assert.equal(pickRun([], state, "a"), null);
  assert.deepEqual(runOptions(runs, state).map((o) => [o.value, o.own]),
                   [["a", true], ["c", true], ["b", false]]);
  assert.equal(runOptions(runs, state)[2].label, "b · running · step 3/10 · node 7");
  state.run = "new";
  assert.equal(runOptions([], state)[0].value, "new");
});

test("chart geometry: round ticks, padded ranges, scales and clicks", () => {
  assert.equal(niceStep(0.37), 0.1); // report.nice_step
  assert.equal(niceStep(399), 100);
  assert.equal(niceStep(0), 1);
  assert.deepEqual(valueRange([0.2, 0.8]).map((v) => +v.toFixed(12)), [0.17, 0.83]);
  assert.deepEqual(valueRange([1, 1]).map((v) => +v.toFixed(12)), [0.99, 1.01]);
  assert.deepEqual(valueRange([]), [0, 1]);
  assert.deepEqual(ticks(0, 1).map((t) => t.label), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
  assert.deepEqual(ticks(0, 20, { integer: true }).map((t) => t.value), [0, 5, 10, 15, 20]);
  assert.deepEqual(ticks(0, 3, { integer: true }).map((t) => t.value), [0, 1, 2, 3]);
  // a constant learning rate's padded range: labels that tell the ticks apart
  assert.deepEqual(ticks(...valueRange([1e-4]), { count: 3, exponent: true }).map((t) => t.label),
                   ["9.90e-5", "1.00e-4", "1.01e-4"]);
  assert.deepEqual(ticks(0, 1e-4, { count: 2, exponent: true }).map((t) => t.label),
                   ["0", "5.0e-5", "1.0e-4"]);
  const x = linearScale(0, 20, 44, 244);
  assert.equal(x(10), 144);
  assert.equal(x.invert(144), 10);
  assert.equal(linearScale(5, 5, 0, 100)(5), 50);
  const box = plotBox(300, 140);
  assert.deepEqual(box, { left: 44, top: 18, right: 290, bottom: 122 });
  assert.equal(nearestStep([10, 20], box, [0, 20], 200), 10);
  assert.equal(nearestStep([10, 20], box, [0, 20], 280), 20);
  assert.equal(nearestStep([], box, [0, 20], 280), null);
});

/** A run's events as /intenttuner/train/history rebuilds them: step records have no time and
 *  no eta_s (metrics.jsonl holds the trainer's StepInfo fields only). */
const bare = ({ time, eta_s, ...record }) => record; // eslint-disable-line no-unused-vars
const historyOf = (events, status = "running") => ({ run: "r1", status, marks: {},
  events: events.map(([e, data]) => ({ event: e, data: e === EVENTS.STEP ? bare(data) : data })) });
const START_10 = [EVENTS.START, start({ start_step: 10, total_steps: 30 })];

test("a silent running run is re-read backed off: 30 s, 60 s ... 5 min, reset by events", () => {
  assert.deepEqual([0, 1, 2, 3, 40].map(quietDelay), [30000, 60000, 120000, 240000, 300000]);
  const [running, ended] = [live(runEvents().slice(0, 5)), live(runEvents())];
  let quiet = quietReset(1000);
  for (const wait of [30000, 60000, 120000, 240000, 300000, 300000]) { // a slow sample point
    const due = quiet.since + wait;
    assert.deepEqual([rereadDue(running, quiet, due - 1), rereadDue(running, quiet, due)],
                     [false, true]);
    quiet = quietReread(quiet, due); // it found nothing new: the next wait is longer
  }
  quiet = quietReset(quiet.since + 1); // an event of the run
  assert.equal(rereadDue(stopping(running), quiet, quiet.since + 30000), true); // not stopped yet
  assert.deepEqual([ended, createState("5")].map((s) => rereadDue(s, quiet, 1e12)), [false, false]);
});

test("a reload while a Stop is pending: the runs entry's stopping keeps the panel stopping", () => {
  const state = replay(historyOf(runEvents().slice(0, 8)), "5");
  const runs = [{ run: "other", status: "running", stopping: true },
                { run: "r1", status: "running", stopping: false, step: 7, total_steps: 20 }];
  assert.deepEqual([stoppingFrom(state, runs).status, canStop(state)], ["running", true]);
  runs[1].stopping = true;
  assert.deepEqual([stoppingFrom(state, runs) === state, state.status, canStop(state)],
                   [true, "stopping", false]);
  assert.equal(statusText(state), "stopping… step 7/20");
  assert.equal(reduce(state, EVENTS.STEP, step(8)).status, "stopping"); // until its end record
  assert.equal(reduce(state, EVENTS.END, end({ status: "stopped", step: 8 })).status, "stopped");
  const ended = replay(historyOf(runEvents(), "finished"), "5"); // a stale list: stays ended
  const fresh = replay(historyOf([]), "5");
  assert.deepEqual([stoppingFrom(ended, runs), stoppingFrom(fresh, null)].map((s) => s.status),
                   ["finished", "running"]);
});

test("the step axis starts at the first step held: a resumed run's earlier steps are on it", () => {
  const resumed = reduce(live(runEvents().slice(0, 15)), ...START_10); // kept: steps 1..10
  const replayed = replay(historyOf([...runEvents().slice(0, 12), START_10, // after a reload
                                     [EVENTS.STEP, step(11, { total_steps: 30 })]]), "5");
  assert.deepEqual([resumed, replayed].map((s) => [s.steps[0].step, ...stepDomain(s)]),
                   [[1, 0, 30], [1, 0, 30]]);
  const unread = live([START_10, [EVENTS.STEP, step(11, { total_steps: 30 })]]); // no history
  const pruned = { ...replay(historyOf([START_10]), "5"), steps: [{ step: 6 }] }; // 1..5 lost
  assert.deepEqual([unread, pruned, live(runEvents()), createState()].map((s) => stepDomain(s)),
                   [[10, 30], [5, 30], [0, 20], [0, 1]]);
});

test("after a reload the status shows step N/T without an ETA until a live step tells it", () => {
  let state = replay(historyOf(runEvents().slice(0, 14)), "5"); // up to step 12, a sample at 10
  assert.deepEqual([etaSeconds(state), statusText(state)],
                   [null, "running step 12/20 · monitoring 23 %"]);
  state = reduce(state, EVENTS.STEP, step(13)); // the next live step carries the estimate
  assert.equal(statusText(state), "running step 13/20 · ETA 7s · monitoring 23 %");
  const one = replay(historyOf(runEvents().slice(0, 5)), "5"); // then a step, the only timed
  assert.equal(statusText(reduce(one, EVENTS.STEP, step(5, { eta_s: null }))), "running step 5/20");
  const old = replay({ run: "r1", status: "running", marks: {}, events: [ // before the monitor
    { event: EVENTS.STEP, data: { run: "r1", node: null, step: 3, loss: 0.5, lr: 1e-4 } }] });
  assert.equal(statusText(old), "running step 3/?");
  const finished = replay(historyOf(runEvents(), "finished"), "5");
  const texts = [old, finished, replay(historyOf(runEvents().slice(0, 3), "unknown"), "5")]
    .flatMap((s) => [statusText(s), bestText(s), ...notes(s).map((n) => n.text)]);
  texts.push(bestText({ ...finished, best: { score: null } }));
  for (const text of texts) assert.doesNotMatch(text, /NaN|undefined|null|Infinity/);
});
