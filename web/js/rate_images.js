// Rate Images gallery: each image of the node's last run with its prompt and Good / Bad / Skip
// buttons. A click POSTs the mark at once (/intenttuner/feedback/mark): marks reach the set's
// feedback.jsonl without queueing, and the next queue re-runs what learns from them (the node's
// IS_CHANGED follows the marks). On a page or workflow load the gallery asks the server for
// the set named by the feedback_set widget, so images and marks survive reloads; which images
// the node showed last is kept in its properties (saved with the workflow).
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import * as logic from "./rate_images_logic.js";

const NODE_TYPE = "IntentTunerRateImages";
const PANEL_HEIGHT = 440; // px: header and a scrolling grid of cards
const CARD = 168; // px, a card's width; the image is square inside it
const FONT = "12px sans-serif";
const COLOURS = { good: "#7ed321", bad: "#e8384f" };

function element(tag, className, props = {}) {
  return Object.assign(document.createElement(tag), { className, ...props });
}

class RatePanel {
  constructor(node) {
    this.node = node;
    this.set = null; // the set the gallery shows
    this.items = [];
    this.marks = {};
    this.total = null;
    this.error = "";
    this.openToken = 0;
    this.build();
    this.render();
  }

  build() {
    const root = element("div", "intenttuner-rate");
    root.style.cssText = "display:flex;flex-direction:column;gap:4px;width:100%;" +
      `height:${PANEL_HEIGHT}px;font:${FONT};box-sizing:border-box`;
    const bar = element("div", "");
    bar.style.cssText = "display:flex;gap:4px;align-items:center";
    this.headline = element("span", "intenttuner-rate-headline");
    this.headline.style.cssText = "flex:1;opacity:.85;overflow:hidden;text-overflow:ellipsis;" +
      "white-space:nowrap";
    const refresh = element("button", "intenttuner-rate-refresh", {
      textContent: "↻", title: "Read the set's images and marks from the server again" });
    refresh.addEventListener("click", () => this.open());
    bar.append(this.headline, refresh);
    this.errorLine = element("div", "intenttuner-rate-error");
    this.errorLine.style.cssText = "color:#e8384f;white-space:pre-wrap";
    this.grid = element("div", "intenttuner-rate-grid");
    this.grid.style.cssText = "flex:1;overflow:auto;display:grid;gap:6px;align-content:start;" +
      `grid-template-columns:repeat(auto-fill,minmax(${CARD}px,1fr))`;
    root.append(bar, this.errorLine, this.grid);
    this.root = root;
    const widget = this.node.addDOMWidget("rate_images", "intenttuner.rate_images", root, {
      serialize: false, getMinHeight: () => PANEL_HEIGHT, getMaxHeight: () => PANEL_HEIGHT,
    });
    widget.serialize = false;
    const stop = (e) => e.stopPropagation(); // clicks and scrolling are for the gallery
    for (const type of ["pointerdown", "wheel"]) root.addEventListener(type, stop);
    const name = this.nameWidget();
    if (name) {
      const original = name.callback;
      name.callback = (...args) => { // another set typed in: show that one
        original?.apply(name, args);
        this.open();
      };
    }
  }

  nameWidget() {
    return this.node.widgets?.find((w) => w.name === "feedback_set");
  }

  /** The set to read: the widget's (unless converted to an input), else the one shown last. */
  setName() {
    const widget = this.nameWidget();
    const value = widget && !widget.disabled ? String(widget.value ?? "").trim() : "";
    return value || this.node.properties?.intenttuner_rate?.set || this.set;
  }

  setExecuted(message) {
    const shown = logic.fromExecuted(message);
    if (!shown) return;
    this.openToken += 1; // a run's answer wins over a read still on its way
    Object.assign(this, { set: shown.set, items: shown.items, marks: shown.marks,
                          total: null, error: "" });
    this.node.properties ??= {};
    this.node.properties.intenttuner_rate = { set: shown.set,
                                              images: shown.items.map((i) => i.image) };
    this.render();
  }

  async request(what, path, options) {
    try {
      const response = await api.fetchApi(path, options);
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new Error(logic.routeError(what, response.status, body));
      return body;
    } catch (error) {
      this.error = error.message.startsWith(`${what}:`) ? error.message
        : `${what}: ${error.message}`;
      this.render();
      return null;
    }
  }

  /** On creation, workflow load, a new set name and ↻: the set's images and marks. */
  async open() {
    const name = this.setName();
    if (!name) return;
    const token = ++this.openToken;
    const body = await this.request("set", logic.setUrl(name));
    if (!body || token !== this.openToken) return;
    const shown = logic.fromSet(body, this.node.properties?.intenttuner_rate);
    Object.assign(this, { set: shown.set, items: shown.items, marks: shown.marks,
                          total: shown.total, error: "" });
    this.render();
  }

  async mark(item, button) {
    const set = this.set;
    const body = logic.markBody(set, item.image, button);
    const before = this.marks[item.image] ?? null;
    if (!logic.changes(before, body)) return;
    this.marks = logic.setMark(this.marks, item.image, body.mark); // shown at once
    this.render();
    const answer = await this.request("mark", logic.ROUTES.mark, {
      method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" } });
    if (this.set !== set) return;
    if (answer) this.error = "";
    this.marks = answer?.marks && typeof answer.marks === "object"
      ? { ...answer.marks } : logic.setMark(this.marks, item.image, before);
    this.render();
  }

  // -- rendering --------------------------------------------------------------------------
  render() {
    this.headline.textContent = logic.headline(this.set, this.items, this.marks, this.total);
    this.headline.title = this.headline.textContent;
    this.errorLine.textContent = this.error;
    const cards = new Map([...this.grid.children].map((c) => [c.dataset.image, c]));
    this.grid.replaceChildren(...this.items.map((item) => {
      const card = cards.get(item.image) ?? this.card(item); // keeps loaded images
      this.showMark(card, this.marks[item.image] ?? null);
      return card;
    }));
  }

  card(item) {
    const card = element("div", "intenttuner-rate-card");
    card.dataset.image = item.image;
    card.style.cssText = "display:flex;flex-direction:column;gap:3px;padding:3px;" +
      "border:2px solid transparent;border-radius:4px;min-width:0";
    const img = element("img", "", { alt: item.prompt ?? item.image, title: item.image,
                                      loading: "lazy" });
    img.style.cssText = "width:100%;aspect-ratio:1;object-fit:contain;background:#111";
    if (item.view) img.src = api.apiURL(item.view);
    const prompt = element("div", "intenttuner-rate-prompt",
                           { textContent: item.prompt ?? "(no prompt)", title: item.prompt ?? "" });
    prompt.style.cssText = "max-height:3.6em;overflow:hidden;opacity:.85";
    const state = element("span", "intenttuner-rate-state");
    state.style.cssText = "opacity:.7";
    const buttons = element("div", "");
    buttons.style.cssText = "display:flex;gap:3px";
    for (const { name, label, title } of logic.BUTTONS) {
      const button = element("button", `intenttuner-rate-${name}`, { textContent: label, title });
      button.style.cssText = "flex:1;padding:1px 2px";
      button.addEventListener("click", () => this.mark(item, name));
      buttons.append(button);
    }
    card.append(img, prompt, buttons, state);
    return card;
  }

  showMark(card, mark) {
    card.dataset.mark = mark ?? "";
    card.style.borderColor = COLOURS[mark] ?? "transparent";
    card.querySelector(".intenttuner-rate-state").textContent = logic.markLabel(mark);
    for (const { name, mark: value } of logic.BUTTONS) {
      const button = card.querySelector(`.intenttuner-rate-${name}`);
      const active = (mark ?? null) === value;
      button.style.fontWeight = active ? "bold" : "";
      button.style.outline = active ? `1px solid ${COLOURS[value] ?? "#aaa"}` : "";
    }
  }
}

app.registerExtension({
  name: "intenttuner.rateImages",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function (...args) {
      const result = created?.apply(this, args);
      this.intenttunerRatePanel = new RatePanel(this);
      this.setSize([Math.max(this.size[0], 560), this.computeSize()[1]]);
      // after a workflow load has set the widget (onConfigure asks again; the last answer wins)
      setTimeout(() => this.intenttunerRatePanel?.open(), 0);
      return result;
    };
    const executed = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message, ...rest) {
      executed?.apply(this, [message, ...rest]);
      this.intenttunerRatePanel?.setExecuted(message);
    };
    const configured = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function (...args) {
      const result = configured?.apply(this, args);
      this.intenttunerRatePanel?.open();
      return result;
    };
  },
});
