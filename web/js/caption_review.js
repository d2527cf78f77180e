// Caption Review panel: after a run, every item's thumbnail with its caption in a text box.
// Typing writes the node's `edits` widget (JSON {key: caption}), which stays the one source of
// truth: saved with the workflow, applied by the node on the next queue. The raw widget is
// hidden ("Show JSON" shows it). Re-rendering after a run shows pending edits over the new
// captions, so nothing typed is lost.
import { app } from "../../../scripts/app.js";
import * as logic from "./caption_review_logic.js";

const NODE_TYPE = "IntentTunerCaptionReview";
const PANEL_HEIGHT = 480; // px: toolbar, summary and a scrolling list of rows
const THUMB = 96; // px, the thumbnail's box in a row
const FONT = "12px sans-serif";

class CaptionPanel {
  constructor(node) {
    this.node = node;
    this.widget = node.widgets.find((w) => w.name === "edits");
    this.entries = []; // it_captions of the last run
    this.thumbnails = []; // it_thumbnails of the last run, same order
    this.summary = "";
    this.showJson(false);
    this.build();
    this.render();
  }

  build() {
    const root = document.createElement("div");
    root.className = "intenttuner-caption-review";
    root.style.cssText = `display:flex;flex-direction:column;gap:4px;width:100%;` +
      `height:${PANEL_HEIGHT}px;font:${FONT};box-sizing:border-box`;
    const bar = document.createElement("div");
    bar.style.cssText = "display:flex;gap:4px;align-items:center";
    this.headline = document.createElement("span");
    this.headline.className = "intenttuner-caption-headline";
    this.headline.style.cssText = "flex:1;opacity:.85;overflow:hidden;text-overflow:ellipsis;" +
      "white-space:nowrap";
    this.discardAll = Object.assign(document.createElement("button"), {
      textContent: "Discard all edits", className: "intenttuner-discard-all",
      title: "Remove every edit: the next queue writes back the captions that came in" });
    this.jsonToggle = Object.assign(document.createElement("button"), {
      textContent: "Show JSON", title: "Show or hide the raw edits widget" });
    bar.append(this.headline, this.discardAll, this.jsonToggle);
    this.summaryLine = document.createElement("div");
    this.summaryLine.className = "intenttuner-caption-summary";
    this.summaryLine.style.cssText = "white-space:pre-wrap;opacity:.7;max-height:48px;" +
      "overflow:auto";
    this.list = document.createElement("div");
    this.list.className = "intenttuner-caption-list";
    this.list.style.cssText = "flex:1;overflow:auto;display:flex;flex-direction:column;gap:6px";
    root.append(bar, this.summaryLine, this.list);
    this.root = root;
    this.domWidget = this.node.addDOMWidget("caption_review", "intenttuner.caption_review", root, {
      serialize: false,
      getMinHeight: () => PANEL_HEIGHT,
      getMaxHeight: () => PANEL_HEIGHT,
    });
    this.domWidget.serialize = false;
    const stop = (e) => e.stopPropagation(); // typing and scrolling are for the panel
    for (const type of ["pointerdown", "wheel", "keydown", "keyup"]) root.addEventListener(type, stop);
    this.discardAll.addEventListener("click", () => this.setEdits({}, true));
    this.jsonToggle.addEventListener("click", () => this.showJson(this.widget.hidden));
    const original = this.widget.callback;
    this.widget.callback = (...args) => { // the JSON was edited by hand
      original?.apply(this.widget, args);
      this.render();
    };
  }

  showJson(visible) {
    this.widget.hidden = !visible;
    this.widget.options ??= {};
    this.widget.options.hidden = !visible;
    if (this.jsonToggle) this.jsonToggle.textContent = visible ? "Hide JSON" : "Show JSON";
    this.node.setSize?.([this.node.size[0], this.node.computeSize()[1]]);
    this.node.setDirtyCanvas?.(true, true);
  }

  /** The widget's edits, or null (with the reason shown) when its text is not valid JSON. */
  edits() {
    try {
      this.error = "";
      return logic.parseEdits(this.widget.value);
    } catch (error) {
      this.error = `edits is not valid JSON (${error.message}): fix it under Show JSON, or ` +
        "Discard all edits";
      return null;
    }
  }

  setEdits(edits, rerender = false) {
    this.widget.value = logic.serializeEdits(edits);
    this.node.setDirtyCanvas?.(true, true);
    if (rerender) this.render();
    else this.refreshStates(edits);
  }

  setExecuted(message) {
    this.entries = message?.it_captions ?? [];
    this.thumbnails = message?.it_thumbnails ?? [];
    this.summary = (message?.text ?? []).join("\n");
    this.render();
  }

  // -- rendering --------------------------------------------------------------------------
  render() {
    const edits = this.edits();
    const { rows, unmatched } = logic.panelRows(this.entries, edits ?? {}, this.thumbnails);
    this.rows = new Map();
    this.list.replaceChildren(...rows.map((row) => this.rowElement(row, edits === null)));
    if (unmatched.length) this.list.append(this.unmatchedElement(unmatched));
    this.summaryLine.textContent = this.summary;
    this.headline.textContent = this.error || logic.headline(rows, unmatched, edits ?? {});
    this.headline.title = this.headline.textContent;
  }

  rowElement(row, readOnly) {
    const element = document.createElement("div");
    element.className = "intenttuner-caption-row";
    element.dataset.key = row.key;
    element.style.cssText = "display:flex;gap:6px;align-items:flex-start";
    const img = document.createElement("img");
    img.style.cssText = `width:${THUMB}px;height:${THUMB}px;object-fit:contain;` +
      "background:#111;flex:none";
    if (row.thumbnail) img.src = row.thumbnail;
    img.alt = row.image;
    img.title = row.image;
    const column = document.createElement("div");
    column.style.cssText = "flex:1;display:flex;flex-direction:column;gap:2px;min-width:0";
    const label = document.createElement("div");
    label.textContent = row.label;
    label.style.cssText = "opacity:.7;overflow:hidden;text-overflow:ellipsis;white-space:nowrap";
    label.title = row.label;
    const text = Object.assign(document.createElement("textarea"), {
      value: row.text, rows: 3, readOnly, spellcheck: true });
    text.style.cssText = "width:100%;box-sizing:border-box;resize:vertical;font:inherit";
    const foot = document.createElement("div");
    foot.style.cssText = "display:flex;gap:6px;align-items:center";
    const state = document.createElement("span");
    state.className = "intenttuner-caption-state";
    state.style.cssText = "flex:1";
    const discard = Object.assign(document.createElement("button"), {
      textContent: "Discard edit", className: "intenttuner-discard-edit",
      title: "Remove this edit: the next queue writes back the caption that came in" });
    foot.append(state, discard);
    column.append(label, text, foot);
    element.append(img, column);
    text.addEventListener("input", () => {
      const edits = this.edits();
      if (edits) this.setEdits(logic.setEdit(edits, row.key, text.value, row.caption));
    });
    discard.addEventListener("click", () => {
      const edits = this.edits();
      if (edits) this.setEdits(logic.discardEdit(edits, row.key), true);
    });
    const parts = { row, element, text, state, discard };
    if (!this.rows.has(row.key)) this.rows.set(row.key, []);
    this.rows.get(row.key).push(parts); // items showing the same image share one edit
    this.showState(parts, row);
    return element;
  }

  unmatchedElement(unmatched) {
    const box = document.createElement("div");
    box.className = "intenttuner-caption-unmatched";
    const title = document.createElement("div");
    title.textContent = this.entries.length
      ? "Edits for images no longer in the set (kept, not applied):"
      : "Edits saved in this workflow (queue the graph to see their images):";
    title.style.cssText = "opacity:.85;margin-top:4px";
    box.append(title);
    for (const { key, text } of unmatched) {
      const line = document.createElement("div");
      line.style.cssText = "display:flex;gap:6px;align-items:center";
      const what = document.createElement("span");
      what.style.cssText = "flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap";
      what.textContent = `${logic.shortKey(key)}: ${text}`;
      what.title = `${key}: ${text}`;
      const discard = Object.assign(document.createElement("button"), {
        textContent: "Discard edit", className: "intenttuner-discard-edit" });
      discard.addEventListener("click", () => {
        const edits = this.edits();
        if (edits) this.setEdits(logic.discardEdit(edits, key), true);
      });
      line.append(what, discard);
      box.append(line);
    }
    return box;
  }

  /** After typing: every row's marker (and twin rows' text) follows the edits, no re-render,
   *  so the text box being typed in keeps its focus and cursor. */
  refreshStates(edits) {
    const { rows, unmatched } = logic.panelRows(this.entries, edits, this.thumbnails);
    rows.forEach((row) => {
      for (const parts of this.rows.get(row.key) ?? []) {
        if (parts.text.value !== row.text && document.activeElement !== parts.text) {
          parts.text.value = row.text;
        }
        this.showState(parts, row);
      }
    });
    this.headline.textContent = logic.headline(rows, unmatched, edits);
  }

  showState(parts, row) {
    parts.state.textContent = logic.rowState(row);
    parts.state.style.color = row.blank ? "#e8384f" : row.pending ? "#f5a623" : "#7ed321";
    parts.discard.disabled = !row.edited;
    parts.text.style.borderColor = row.edited ? "#f5a623" : "";
  }
}

app.registerExtension({
  name: "intenttuner.captionReview",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function (...args) {
      const result = created?.apply(this, args);
      this.intenttunerCaptionPanel = new CaptionPanel(this);
      this.setSize([Math.max(this.size[0], 520), this.computeSize()[1]]);
      return result;
    };
    const executed = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message, ...rest) {
      executed?.apply(this, [message, ...rest]);
      this.intenttunerCaptionPanel?.setExecuted(message);
    };
    const configured = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function (...args) { // a workflow loaded: its edits
      const result = configured?.apply(this, args);
      this.intenttunerCaptionPanel?.render();
      return result;
    };
  },
});
