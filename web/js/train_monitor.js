// Training monitor panel on LoRA Train: loss and learning rate, the intent metrics per
// concept over the sample steps, the latest sample grid (each image markable good or bad),
// step / ETA, the best checkpoint so far, and "Stop and keep best". It follows the run of its
// node from the intenttuner.train.* websocket events; on creation, on workflow load and after a
// reconnect it replays the run's history from the server, so a reload mid-run or a finished
// run shows the same. All numbers come from train_monitor_logic.js; route errors go to the
// notes line (never alerts: a training run should not be interrupted by a dialog).
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import * as logic from "./train_monitor_logic.js";
import { drawLoss, drawMetrics } from "./train_monitor_draw.js";

const NODE_TYPE = "IntentTunerLoRATrain";
const PANEL_HEIGHT = 420; // px: bar, three text lines, the charts, notes and a scrolling grid
const CHART_HEIGHT = 140;
const MIN_WIDTH = 560; // px: two charts side by side
const THUMB = 96;
const FONT = "12px sans-serif";
const CHECK_MS = 5000; // how often to look whether a silent run is due a re-read (no request)
const ROUTES = { runs: "/intenttuner/train/runs", history: "/intenttuner/train/history",
                 stop: "/intenttuner/train/stop", feedback: "/intenttuner/train/feedback" };

function element(tag, className = "", css = "", props = {}) {
  const el = Object.assign(document.createElement(tag), props);
  if (className) el.className = className;
  return styled(el, css);
}

function styled(el, css) {
  if (css) el.style.cssText = css;
  return el;
}

class TrainMonitorPanel {
  constructor(node) {
    this.node = node;
    this.state = logic.createState(null);
    this.runs = [];
    this.error = ""; // the last failed route, shown in the notes line
    this.loading = false; // a history request is out: live events wait in `buffer`
    this.buffer = [];
    this.loadToken = 0;
    this.openToken = 0;
    this.quiet = logic.quietReset(Date.now()); // silence of the shown run: re-read it backed off
    this.gridKey = "";
    this.runsKey = "";
    this.build();
    this.listen();
  }

  build() {
    const root = element("div", "intenttuner-train-monitor",
      `display:flex;flex-direction:column;gap:4px;width:100%;height:${PANEL_HEIGHT}px;` +
      `font:${FONT};box-sizing:border-box;overflow:hidden`);
    const bar = element("div", "", "display:flex;gap:4px;align-items:center;flex:none");
    this.picker = element("select", "it-monitor-runs", "flex:1;min-width:0",
                          { title: "Runs of the server: this node's first" });
    this.reload = element("button", "it-monitor-reload", "", {
      textContent: "↻", title: "Read the runs and this run's history again" });
    this.stopButton = element("button", "it-monitor-stop", "", {
      textContent: "Stop and keep best", disabled: true,
      title: "End the run after its current step: the LoRA so far is saved and the best " +
        "checkpoint is kept (its LoRA is <run>_best)" });
    bar.append(this.picker, this.reload, this.stopButton);
    const line = "flex:none;white-space:nowrap;overflow:hidden;text-overflow:ellipsis";
    this.status = element("div", "it-monitor-status", line);
    this.best = element("div", "it-monitor-best", `${line};opacity:.85`);
    const charts = element("div", "", `display:flex;gap:4px;flex:none;height:${CHART_HEIGHT}px`);
    const canvasCss = "flex:1;min-width:0;height:100%;background:#111;border-radius:2px";
    this.lossCanvas = element("canvas", "it-monitor-loss", canvasCss);
    this.metricsCanvas = element("canvas", "it-monitor-metrics", `${canvasCss};cursor:pointer`,
      { title: "Click a sample step to see its images below" });
    this.lossCanvas.dataset.points = "0";
    this.metricsCanvas.dataset.points = "0";
    charts.append(this.lossCanvas, this.metricsCanvas);
    this.notes = element("div", "it-monitor-notes",
      "flex:none;max-height:44px;overflow:auto;white-space:pre-wrap;opacity:.9");
    this.gridTitle = element("div", "it-monitor-grid-title", `${line};opacity:.7`);
    this.grid = element("div", "it-monitor-grid",
      "flex:1;min-height:0;overflow:auto;display:flex;flex-wrap:wrap;gap:6px;align-content:start");
    root.append(bar, this.status, this.best, charts, this.notes, this.gridTitle, this.grid);
    this.root = root;
    this.domWidget = this.node.addDOMWidget("train_monitor", "intenttuner.train_monitor", root, {
      serialize: false,
      getMinHeight: () => PANEL_HEIGHT,
      getMaxHeight: () => PANEL_HEIGHT,
    });
    this.domWidget.serialize = false;
  }

  listen() {
    const stop = (e) => e.stopPropagation(); // clicks and scrolling are for the panel
    for (const type of ["pointerdown", "wheel", "keydown", "keyup"]) {
      this.root.addEventListener(type, stop);
    }
    this.picker.addEventListener("change", () => this.choose(this.picker.value));
    this.reload.addEventListener("click", () => this.open());
    this.stopButton.addEventListener("click", () => this.stop());
    this.metricsCanvas.addEventListener("click", (e) => this.pickPoint(e));
    this.handlers = logic.EVENT_NAMES.map((name) => [name, (e) => this.onEvent(name, e.detail)]);
    this.handlers.push(["reconnected", () => this.open()]); // events were missed
    for (const [name, handler] of this.handlers) api.addEventListener(name, handler);
    this.poll = setInterval(() => this.reread(), CHECK_MS);
    this.resize = new ResizeObserver(() => this.schedule());
    this.resize.observe(this.lossCanvas);
  }

  destroy() {
    for (const [name, handler] of this.handlers) api.removeEventListener(name, handler);
    clearInterval(this.poll);
    this.resize.disconnect();
  }

  /** The node's id as the server's events name it (it is only known once in a graph). */
  syncNode() {
    const root = app.rootGraph ?? app.graph;
    this.state.node = this.node.id == null || this.node.id === -1 ? null : String(this.node.id);
    this.state.subgraph = Boolean(root && this.node.graph && this.node.graph !== root);
    return this.state;
  }

  /** A running run silent for a while (this browser may miss its events, or a sample point is
   *  slow): read the runs and its history again, each time waiting longer (logic.quietDelay). */
  reread() {
    const now = Date.now();
    if (this.loading || !logic.rereadDue(this.state, this.quiet, now)) return;
    this.quiet = logic.quietReread(this.quiet, now);
    const { run, pinned } = this.state;
    this.refreshRuns().then(() => {
      // not when the run spoke meanwhile (its clock was reset) or another load is out
      if (this.state.run === run && this.quiet.rereads && !this.loading) this.load(run, pinned);
    });
  }

  onEvent(name, data) {
    if (this.loading) { this.buffer.push([name, data]); return; }
    this.apply(name, data);
    this.schedule();
  }

  apply(name, data) {
    const before = this.state.run;
    this.state = logic.reduce(this.syncNode(), name, data);
    if (this.state.run !== before) this.remember();
    if (data?.run === this.state.run) this.quiet = logic.quietReset(Date.now());
    if (name === logic.EVENTS.START || name === logic.EVENTS.END) this.refreshRuns();
    if (this.state.missed) {
      const run = this.state.missed;
      this.state.missed = null;
      this.load(run, false);
    }
  }

  remember() {
    this.node.properties ??= {};
    if (this.state.run !== null) this.node.properties.intenttuner_run = this.state.run;
  }

  // -- routes -----------------------------------------------------------------------------
  async request(what, path, options) {
    try {
      const response = await api.fetchApi(path, options);
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new Error(logic.routeError(what, response.status, body));
      if (this.error.startsWith(`${what}:`)) this.error = "";
      return body;
    } catch (error) {
      const text = error.message;
      this.error = text.startsWith(`${what}:`) ? text : `${what}: ${text}`;
      this.schedule();
      return null;
    }
  }

  post(what, path, body) {
    return this.request(what, path, { method: "POST", body: JSON.stringify(body),
                                      headers: { "Content-Type": "application/json" } });
  }

  async refreshRuns() {
    const body = await this.request("runs", ROUTES.runs);
    if (body) this.runs = Array.isArray(body.runs) ? body.runs : [];
    this.schedule();
    return body ? this.runs : null;
  }

  /** On creation, workflow load, reconnect and ↻: the runs, then the run to show (the one
   *  the user chose, else this node's running run or the one it showed last) and its history. */
  async open() {
    const token = ++this.openToken;
    const runs = await this.refreshRuns();
    if (token !== this.openToken) return;
    const { run, pinned } = this.state;
    const chosen = pinned && run !== null ? run
      : logic.pickRun(runs ?? [], this.syncNode(), this.node.properties?.intenttuner_run) ?? run;
    if (chosen) await this.load(chosen, chosen === run && pinned);
    this.schedule();
  }

  async load(run, pinned) {
    const token = ++this.loadToken;
    this.loading = true;
    const body = await this.request("history",
      `${ROUTES.history}?run=${encodeURIComponent(run)}`);
    if (token !== this.loadToken) return; // a later load wins
    this.loading = false;
    if (body) {
      const before = this.state;
      this.state = logic.replay(body, this.syncNode().node, { subgraph: before.subgraph });
      this.state.pinned = pinned;
      logic.stoppingFrom(this.state, this.runs); // a Stop still pending on the server
      if (before.run === this.state.run) { // a re-read: what only this panel knew stays
        this.state.selected = before.selected;
        if (before.status === "stopping") logic.stopping(this.state);
      } else {
        this.quiet = logic.quietReset(Date.now()); // another run: its silence counts anew
      }
      this.remember();
    }
    for (const [name, data] of this.buffer.splice(0)) this.apply(name, data);
    this.schedule();
  }

  choose(run) {
    if (!run || run === this.state.run) return;
    const own = this.runs.find((r) => r.run === run);
    const live = own && own.status === "running" && logic.ownsNode(this.syncNode(), own.node);
    this.load(run, !live); // the user's choice stays until this node starts another run
  }

  async stop() {
    const run = this.state.run;
    if (!logic.canStop(this.state)) return;
    this.stopButton.disabled = true;
    const answer = await this.post("stop", ROUTES.stop, { run });
    if (answer && this.state.run === run) logic.stopping(this.state);
    this.schedule();
  }

  async mark(item, clicked) {
    const run = this.state.run;
    const before = this.state.marks[item.image] ?? null;
    const mark = logic.nextMark(before, clicked);
    this.state.marks = logic.setMark(this.state.marks, item.image, mark); // shown at once
    this.schedule();
    const answer = await this.post("feedback", ROUTES.feedback, { run, image: item.image, mark });
    if (this.state.run !== run) return;
    this.state.marks = answer?.marks && typeof answer.marks === "object"
      ? { ...answer.marks } : logic.setMark(this.state.marks, item.image, before);
    this.schedule();
  }

  pickPoint(event) {
    const geometry = this.metricsCanvas.itGeometry;
    if (!geometry || !this.state.samples.length) return;
    const rect = this.metricsCanvas.getBoundingClientRect(); // scaled by the graph's zoom
    const x = (event.clientX - rect.left) * (this.metricsCanvas.clientWidth / rect.width);
    const steps = this.state.samples.map((p) => p.step);
    const step = logic.nearestStep(steps, geometry.box, geometry.domain, x);
    this.state.selected = step === steps.at(-1) ? null : step;
    this.schedule();
  }

  // -- rendering --------------------------------------------------------------------------
  /** Events can come many times a second: one render per frame (or 200 ms when the page
   *  draws no frames, e.g. in a background tab). */
  schedule() {
    if (this.pending) return;
    const run = () => {
      cancelAnimationFrame(this.pending.frame);
      clearTimeout(this.pending.timer);
      this.pending = null;
      this.render();
    };
    this.pending = { frame: requestAnimationFrame(run), timer: setTimeout(run, 200) };
  }

  render() {
    const state = this.state;
    state.error = this.error;
    this.renderRuns();
    this.status.textContent = logic.statusText(state);
    this.status.title = this.status.textContent;
    this.best.textContent = logic.bestText(state);
    this.best.title = this.best.textContent;
    this.stopButton.disabled = !logic.canStop(state);
    this.notes.replaceChildren(...logic.notes(state).map(({ text, level }) => styled(
      Object.assign(document.createElement("span"), { textContent: `${text}\n` }),
      level === "note" ? "opacity:.8" : `color:${level === "error" ? "#e8384f" : "#f5a623"}`)));
    drawLoss(this.lossCanvas, state);
    drawMetrics(this.metricsCanvas, state);
    this.renderGrid();
  }

  renderRuns() {
    const options = logic.runOptions(this.runs, this.state);
    const key = JSON.stringify([options, this.state.run]);
    if (key === this.runsKey) return; // rebuilding would close an open drop-down
    this.runsKey = key;
    const none = options.length ? [] : [new Option("no runs on the server yet", "")];
    this.picker.replaceChildren(...none, ...options.map((o) => new Option(o.label, o.value)));
    this.picker.value = this.state.run ?? "";
  }

  renderGrid() {
    const items = logic.gridItems(this.state);
    this.gridTitle.textContent = logic.gridTitle(this.state);
    const key = JSON.stringify([this.state.run, items]);
    if (key === this.gridKey) return; // keeps the images (and the scroll position) as they are
    this.gridKey = key;
    this.grid.replaceChildren(...items.map((item) => this.sampleElement(item)));
  }

  sampleElement(item) {
    const box = element("div", "it-monitor-sample",
      `display:flex;flex-direction:column;gap:2px;width:${THUMB + 8}px`);
    box.dataset.image = item.image;
    box.dataset.mark = item.mark;
    const border = { good: "#7ed321", bad: "#e8384f" }[item.mark] ?? "transparent";
    const img = element("img", "",
      `width:${THUMB}px;height:${THUMB}px;object-fit:contain;background:#111;` +
      `border:2px solid ${border}`, { alt: item.prompt, title: `${item.prompt}\n${item.image}` });
    if (item.view) img.src = api.apiURL(item.view);
    const prompt = element("div", "it-monitor-prompt",
      "font-size:10px;line-height:12px;height:24px;overflow:hidden;opacity:.85",
      { textContent: item.prompt, title: `${item.test}: ${item.prompt} (seed ${item.seed})` });
    const buttons = element("div", "", "display:flex;gap:2px");
    for (const [mark, label] of [["good", "good"], ["bad", "bad"]]) {
      const active = item.mark === mark;
      const button = element("button", `it-mark-${mark}`,
        `flex:1;font-size:10px;padding:0 2px;${active ? `background:${border};color:#000` : ""}`,
        { textContent: label, title: active ? "Clear this mark" : `Mark this sample ${mark}` });
      button.setAttribute("aria-pressed", String(active));
      button.addEventListener("click", () => this.mark(item, mark));
      buttons.append(button);
    }
    box.append(img, prompt, buttons);
    return box;
  }
}

app.registerExtension({
  name: "intenttuner.trainMonitor",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function (...args) {
      const result = created?.apply(this, args);
      this.intenttunerMonitor = new TrainMonitorPanel(this);
      this.setSize([Math.max(this.size[0], MIN_WIDTH), this.computeSize()[1]]);
      setTimeout(() => this.intenttunerMonitor?.open(), 0); // once the node has its id
      return result;
    };
    const configured = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function (...args) { // a workflow loaded: its last run
      const result = configured?.apply(this, args);
      this.intenttunerMonitor?.open();
      return result;
    };
    const removed = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function (...args) {
      this.intenttunerMonitor?.destroy();
      return removed?.apply(this, args);
    };
  },
});
