// Box editor on the Intent Parse node: draw, select, label and delete reference boxes on the
// reference images; it writes the node's `reference_boxes` widget (JSON), which stays the one
// source of truth (saved with the workflow, editable by hand). Images come from Load Image
// nodes connected to reference_1..4 (live), or else from the node's last run.
import { app } from "../../../scripts/app.js";
import * as logic from "./box_logic.js";

const NODE_TYPE = "IntentTunerIntentParse";
const INPUTS = ["reference_1", "reference_2", "reference_3", "reference_4"];
const CANVAS_HEIGHT = 300;
const FONT = "12px sans-serif";
const LINE_HEIGHT = 15; // px per status line
// toolbar + gaps + canvas + the status line's reserved lines: all of it visible at the
// default node size (see logic.DEFAULT_NODE_WIDTH)
const EDITOR_HEIGHT = 26 + 8 + CANVAS_HEIGHT + logic.STATUS_LINES * LINE_HEIGHT + 4;
const COLOURS = ["#f5a623", "#4a90e2", "#7ed321", "#e8384f", "#bd10e0", "#50e3c2", "#f8e71c"];

class BoxEditor {
  constructor(node) {
    this.node = node;
    this.widget = node.widgets.find((w) => w.name === "reference_boxes");
    this.executed = []; // image descriptors the node sent back after its last run
    this.images = []; // [{url, img}] in reference order
    this.current = 0;
    this.selected = -1;
    this.drag = null;
    this.status = "";
    this.build();
    this.timer = setInterval(() => this.refresh(), 1000); // follows Load Image changes
  }

  build() {
    const root = document.createElement("div");
    root.className = "intenttuner-box-editor";
    root.style.cssText = `display:flex;flex-direction:column;gap:4px;width:100%;font:${FONT}`;
    const bar = document.createElement("div");
    bar.style.cssText = "display:flex;gap:4px;align-items:center";
    this.chooser = Object.assign(document.createElement("select"), { title: "Reference image" });
    this.label = Object.assign(document.createElement("input"), {
      placeholder: "label (optional)", title: "Label of the selected / next box" });
    this.label.style.cssText = "flex:1;min-width:40px";
    this.remove = Object.assign(document.createElement("button"), { textContent: "Delete box" });
    this.statusLine = document.createElement("div");
    // Wrapped by logic.fitLines (measured in this font), never cut off at the node's edge.
    this.statusLine.style.cssText = `opacity:.8;white-space:pre;overflow:hidden;` +
      `line-height:${LINE_HEIGHT}px;height:${logic.STATUS_LINES * LINE_HEIGHT}px`;
    this.measurer = document.createElement("canvas").getContext("2d");
    this.measurer.font = FONT;
    this.canvas = Object.assign(document.createElement("canvas"), { tabIndex: 0 });
    this.canvas.style.cssText = `width:100%;height:${CANVAS_HEIGHT}px;background:#111;cursor:crosshair`;
    bar.append(this.chooser, this.label, this.remove);
    root.append(bar, this.canvas, this.statusLine);
    this.root = root;
    this.domWidget = this.node.addDOMWidget("box_editor", "intenttuner.box_editor", root, {
      serialize: false,
      getMinHeight: () => EDITOR_HEIGHT,
      getMaxHeight: () => EDITOR_HEIGHT,
    });
    this.domWidget.serialize = false;
    this.listen();
  }

  listen() {
    const stop = (e) => e.stopPropagation(); // keep the graph canvas from dragging the node
    for (const type of ["pointerdown", "pointermove", "pointerup", "wheel", "keydown"]) {
      this.root.addEventListener(type, stop);
    }
    this.canvas.addEventListener("pointerdown", (e) => this.onDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.onMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.onUp(e));
    this.canvas.addEventListener("keydown", (e) => {
      if (e.key !== "Delete" && e.key !== "Backspace") return;
      e.preventDefault(); // the key is for the box, not for the graph's selected nodes
      this.deleteSelected();
    });
    this.remove.addEventListener("click", () => this.deleteSelected());
    this.chooser.addEventListener("change", () => {
      this.current = Number(this.chooser.value);
      this.selected = -1;
      this.draw();
    });
    this.label.addEventListener("change", () => {
      if (this.selected >= 0) this.setBoxes(logic.relabel(this.boxes(), this.selected, this.label.value.trim()));
    });
    const original = this.widget.callback;
    this.widget.callback = (...args) => { // the JSON was edited by hand
      original?.apply(this.widget, args);
      this.draw();
    };
  }

  boxes() {
    try {
      return logic.parseBoxes(this.widget.value);
    } catch (error) {
      this.status = `reference_boxes is not valid: ${error.message}`;
      return [];
    }
  }

  setBoxes(boxes) {
    this.widget.value = logic.serializeBoxes(boxes);
    this.node.setDirtyCanvas(true, true);
    this.draw();
  }

  // -- image sources ----------------------------------------------------------------------
  sourceUrls() {
    const loadImageUrls = [];
    let allLoadImages = true;
    for (const name of INPUTS) {
      const input = this.node.inputs?.find((i) => i.name === name);
      if (!input?.link) continue;
      const link = this.node.graph?.getLink?.(input.link) ?? this.node.graph?.links?.[input.link];
      const origin = link && this.node.graph.getNodeById(link.origin_id);
      const image = origin?.widgets?.find((w) => w.name === "image");
      if (image) loadImageUrls.push(logic.loadImageUrl(image.value));
      else allLoadImages = false;
    }
    return logic.chooseSources(loadImageUrls, this.executed.map(logic.viewUrl), allLoadImages);
  }

  refresh() {
    const urls = this.sourceUrls().filter(Boolean);
    if (urls.join("|") === this.images.map((i) => i.url).join("|")) return;
    this.images = urls.map((url) => {
      const img = new Image();
      img.onload = () => this.draw();
      img.src = url;
      return { url, img };
    });
    this.chooser.replaceChildren(...urls.map((_, i) => new Option(`Image ${i + 1}`, String(i))));
    this.current = Math.min(this.current, Math.max(0, urls.length - 1));
    this.chooser.value = String(this.current);
    this.draw();
  }

  setExecuted(descriptors) {
    this.executed = descriptors ?? [];
    this.refresh();
  }

  // -- geometry ---------------------------------------------------------------------------
  shown() {
    const entry = this.images[this.current];
    return entry?.img.complete && entry.img.naturalWidth ? entry.img : null;
  }

  view() {
    const img = this.shown();
    return img && logic.fitView(img.naturalWidth, img.naturalHeight, this.canvas.width, this.canvas.height);
  }

  point(e) {
    const rect = this.canvas.getBoundingClientRect();
    return [(e.clientX - rect.left) * (this.canvas.width / rect.width),
            (e.clientY - rect.top) * (this.canvas.height / rect.height)];
  }

  // -- interaction ------------------------------------------------------------------------
  onDown(e) {
    const view = this.view();
    if (!view) return;
    this.canvas.focus();
    this.canvas.setPointerCapture?.(e.pointerId);
    const p = this.point(e);
    const hit = logic.hitTest(this.boxes(), this.current, ...logic.toImage(view, ...p));
    if (hit >= 0) {
      this.selected = hit;
      this.label.value = this.boxes()[hit].label;
      this.status = `selected ${logic.boxCaption(this.boxes(), hit)}`;
      this.draw();
      return;
    }
    this.drag = { start: p, end: p };
  }

  onMove(e) {
    if (!this.drag) return;
    this.drag.end = this.point(e);
    this.draw();
  }

  onUp(e) {
    if (!this.drag) return;
    this.drag.end = this.point(e);
    const img = this.shown();
    const box = img && logic.boxFromDrag(this.view(), this.drag.start, this.drag.end,
                                         img.naturalWidth, img.naturalHeight);
    this.drag = null;
    if (!box) {
      this.selected = -1;
      this.draw();
      return;
    }
    const boxes = logic.addBox(this.boxes(), this.current, box, this.label.value.trim());
    this.selected = boxes.length - 1;
    this.status = logic.addedMessage(boxes, this.selected);
    this.setBoxes(boxes);
  }

  deleteSelected() {
    const boxes = this.boxes();
    if (this.selected < 0 || this.selected >= boxes.length) return;
    const index = this.selected;
    const moved = logic.renumbering(boxes.length, index);
    this.status = logic.deletedMessage(index, moved);
    this.selected = -1;
    this.setBoxes(logic.removeBox(boxes, index));
  }

  // -- drawing ----------------------------------------------------------------------------
  draw() {
    const canvas = this.canvas;
    const scale = window.devicePixelRatio || 1;
    canvas.width = Math.max(50, Math.round(canvas.clientWidth * scale));
    canvas.height = Math.round(CANVAS_HEIGHT * scale);
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const img = this.shown();
    const boxes = this.boxes();
    this.showStatus(logic.statusText(boxes.length, this.status));
    if (!img) {
      ctx.fillStyle = "#aaa";
      ctx.font = `${12 * scale}px sans-serif`;
      const lines = logic.wrapText(logic.EMPTY_CANVAS, canvas.width - 16 * scale,
                                   (t) => ctx.measureText(t).width);
      lines.forEach((line, i) => ctx.fillText(line, 8 * scale, (20 + 16 * i) * scale));
      return;
    }
    const view = this.view();
    ctx.drawImage(img, view.ox, view.oy, img.naturalWidth * view.scale, img.naturalHeight * view.scale);
    ctx.font = `bold ${12 * scale}px sans-serif`;
    boxes.forEach((b, i) => {
      if (b.image !== this.current) return;
      const [x1, y1] = logic.toCanvas(view, b.box[0], b.box[1]);
      const [x2, y2] = logic.toCanvas(view, b.box[2], b.box[3]);
      const colour = COLOURS[i % COLOURS.length];
      ctx.strokeStyle = colour;
      ctx.lineWidth = (i === this.selected ? 4 : 2) * scale;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      if (i === this.selected) {
        ctx.fillStyle = `${colour}33`;
        ctx.fillRect(x1, y1, x2 - x1, y2 - y1);
      }
      const caption = logic.boxCaption(boxes, i);
      ctx.fillStyle = colour;
      ctx.fillRect(x1, y1, ctx.measureText(caption).width + 6 * scale, 16 * scale);
      ctx.fillStyle = "#000";
      ctx.fillText(caption, x1 + 3 * scale, y1 + 12 * scale);
    });
    if (this.drag) {
      const [[ax, ay], [bx, by]] = [this.drag.start, this.drag.end];
      ctx.setLineDash([6 * scale, 4 * scale]);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 1.5 * scale;
      ctx.strokeRect(Math.min(ax, bx), Math.min(ay, by), Math.abs(bx - ax), Math.abs(by - ay));
      ctx.setLineDash([]);
    }
  }

  showStatus(text) {
    const fallback = logic.DEFAULT_NODE_WIDTH - 2 * logic.DOM_WIDGET_MARGIN;
    const width = this.statusLine.clientWidth || fallback;
    const lines = logic.fitLines(text, width, logic.STATUS_LINES,
                                 (t) => this.measurer.measureText(t).width);
    this.statusLine.textContent = lines.join("\n");
    this.statusLine.title = text; // the whole text, should it ever not fit
  }

  destroy() {
    clearInterval(this.timer);
  }
}

app.registerExtension({
  name: "intenttuner.boxEditor",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function (...args) {
      const result = created?.apply(this, args);
      this.intenttunerBoxEditor = new BoxEditor(this);
      return result;
    };
    const executed = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message, ...rest) {
      executed?.apply(this, [message, ...rest]);
      this.intenttunerBoxEditor?.setExecuted(message?.intenttuner_references);
    };
    const connections = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function (...args) {
      const result = connections?.apply(this, args);
      this.intenttunerBoxEditor?.refresh();
      return result;
    };
    const removed = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function (...args) {
      this.intenttunerBoxEditor?.destroy();
      return removed?.apply(this, args);
    };
  },
});
