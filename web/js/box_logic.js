// Pure logic of the IntentParse box editor: box lists, coordinate mapping, hit testing, URLs.
// No DOM and no ComfyUI imports, so `node --test tests/web/` can test it.
//
// Boxes are {image, box: [x1, y1, x2, y2], label}: `image` is the 0-based reference image,
// `box` is XYXY in pixels of that image. Box i (0-based) is what descriptions call [i + 1].

export const MIN_SIDE = 4; // pixels (image space); smaller drags are clicks, not boxes

/** Parse the reference_boxes widget text. Accepts the same three forms as the Python side. */
export function parseBoxes(text) {
  if (!text || !text.trim()) return [];
  const data = JSON.parse(text);
  if (!Array.isArray(data)) throw new Error("reference_boxes must be a JSON list");
  const isBox = (b) => Array.isArray(b) && b.length === 4 && b.every((v) => typeof v === "number");
  if (data.every(isBox)) return data.map((box) => ({ image: 0, box: [...box], label: "" }));
  if (data.every((item) => Array.isArray(item) && item.every(isBox))) {
    return data.flatMap((boxes, image) => boxes.map((box) => ({ image, box: [...box], label: "" })));
  }
  return data.map((item, i) => {
    if (!item || !isBox(item.box)) throw new Error(`box [${i + 1}] needs "box": [x1, y1, x2, y2]`);
    return { image: Number.isInteger(item.image) ? item.image : 0, box: [...item.box],
             label: item.label ? String(item.label) : "" };
  });
}

/** The widget text for `boxes`: one object per box, integer pixel coordinates. */
export function serializeBoxes(boxes) {
  return JSON.stringify(boxes.map(({ image, box, label }) => {
    const out = { image, box: box.map((v) => Math.round(v)) };
    if (label) out.label = label;
    return out;
  }));
}

/** Letterbox an image of imgW x imgH into a canvas of canW x canH: {scale, ox, oy}. */
export function fitView(imgW, imgH, canW, canH) {
  const scale = Math.min(canW / imgW, canH / imgH);
  return { scale, ox: (canW - imgW * scale) / 2, oy: (canH - imgH * scale) / 2 };
}

export function toImage(view, x, y) {
  return [(x - view.ox) / view.scale, (y - view.oy) / view.scale];
}

export function toCanvas(view, x, y) {
  return [x * view.scale + view.ox, y * view.scale + view.oy];
}

/** The image-space box spanned by a drag between two canvas points, clamped to the image
 *  and rounded; null when it is thinner than MIN_SIDE (a click). */
export function boxFromDrag(view, start, end, imgW, imgH) {
  const [ax, ay] = toImage(view, ...start);
  const [bx, by] = toImage(view, ...end);
  const clampX = (v) => Math.round(Math.min(Math.max(v, 0), imgW));
  const clampY = (v) => Math.round(Math.min(Math.max(v, 0), imgH));
  const box = [clampX(Math.min(ax, bx)), clampY(Math.min(ay, by)),
               clampX(Math.max(ax, bx)), clampY(Math.max(ay, by))];
  return box[2] - box[0] < MIN_SIDE || box[3] - box[1] < MIN_SIDE ? null : box;
}

/** Index of the top-most box on `image` containing image point (x, y), or -1. Later boxes are
 *  drawn on top, so they win. */
export function hitTest(boxes, image, x, y) {
  for (let i = boxes.length - 1; i >= 0; i--) {
    const { image: im, box: [x1, y1, x2, y2] } = boxes[i];
    if (im === image && x >= x1 && x <= x2 && y >= y1 && y <= y2) return i;
  }
  return -1;
}

export function addBox(boxes, image, box, label = "") {
  return [...boxes, { image, box, label }];
}

/** Remove box `index`; boxes after it move up one number ([3] becomes [2]). */
export function removeBox(boxes, index) {
  return boxes.filter((_, i) => i !== index);
}

export function relabel(boxes, index, label) {
  return boxes.map((b, i) => (i === index ? { ...b, label } : b));
}

/** How a removal renumbers the boxes after it, for the message shown to the user; more than
 *  two moves are summed up as a range ("[3]–[9]→[2]–[8]") so the message stays short. */
export function renumbering(count, removedIndex) {
  const first = removedIndex + 2; // the number of the first box that moves
  if (first > count) return "";
  if (count - first >= 2) return `[${first}]–[${count}]→[${first - 1}]–[${count - 1}]`;
  const moves = [];
  for (let n = first; n <= count; n++) moves.push(`[${n}]→[${n - 1}]`);
  return moves.join(", ");
}

/** The caption drawn next to box `index`. */
export function boxCaption(boxes, index) {
  const label = boxes[index].label;
  return label ? `[${index + 1}] ${label}` : `[${index + 1}]`;
}

/** ComfyUI's /view URL for a file descriptor {filename, subfolder, type}. */
export function viewUrl({ filename, subfolder = "", type = "input" }) {
  const params = new URLSearchParams({ filename, subfolder, type });
  return `/view?${params.toString()}`;
}

/** The /view URL for a Load Image widget value such as "photos/me.png" or "me.png [output]". */
export function loadImageUrl(value) {
  if (!value) return null;
  const match = /^(.*?)(?: \[(input|output|temp)\])?$/.exec(String(value));
  const path = match[1];
  const type = match[2] ?? "input";
  const slash = path.lastIndexOf("/");
  return viewUrl({ filename: path.slice(slash + 1), subfolder: slash < 0 ? "" : path.slice(0, slash),
                   type });
}

/** Which images the editor shows: the connected Load Image files (live: they follow widget
 *  changes) when every reference input is one, unless the last run reported a different
 *  number of images (a multi-frame GIF/TIFF loads as a batch); otherwise the images the node
 *  sent back after its last run. */
export function chooseSources(loadImageUrls, executedUrls, allLoadImages) {
  if (!allLoadImages || !loadImageUrls.length) return executedUrls;
  if (executedUrls.length && executedUrls.length !== loadImageUrls.length) return executedUrls;
  return loadImageUrls;
}

// -- the status line --------------------------------------------------------------------------
// ComfyUI gives a node with a multiline text widget a minimum size of 400 x 200, and Intent Parse
// has two, so 400 px is the node's default width; a DOM widget is drawn 10 px in from each side.
export const DEFAULT_NODE_WIDTH = 400;
export const DOM_WIDGET_MARGIN = 10;
export const STATUS_LINES = 2; // the status line's reserved height, in lines
export const HINT = "drag: new box · click: select · Del: delete";
export const EMPTY_CANVAS = "Connect Load Image nodes to reference_1..4, or run once, to draw boxes.";

/** The status line: the last action's message, else the box count and the hint. */
export function statusText(count, status = "") {
  if (status) return status;
  return `${count === 0 ? "no boxes yet" : count === 1 ? "1 box" : `${count} boxes`} · ${HINT}`;
}

export function addedMessage(boxes, index) {
  return `added ${boxCaption(boxes, index)}: write it after its concept`;
}

export function deletedMessage(index, moved) {
  return `deleted [${index + 1}]` + (moved ? `; renumbered ${moved}: update the description` : "");
}

/** Break `text` into lines no wider than `maxWidth`, at spaces (a word wider than a line is
 *  cut). `measure(text)` returns a width in the same unit, e.g. a canvas's measureText. */
export function wrapText(text, maxWidth, measure) {
  const lines = [];
  let line = "";
  for (const word of String(text).split(/\s+/).filter(Boolean)) {
    const joined = line ? `${line} ${word}` : word;
    if (measure(joined) <= maxWidth) {
      line = joined;
      continue;
    }
    if (line) lines.push(line);
    line = word;
    while (measure(line) > maxWidth && line.length > 1) { // a word wider than the line
      let cut = line.length - 1;
      while (cut > 1 && measure(line.slice(0, cut)) > maxWidth) cut--;
      lines.push(line.slice(0, cut));
      line = line.slice(cut);
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** `wrapText` limited to `maxLines`; if the text needs more, the last line ends in "…" (the
 *  full text goes in the element's title). */
export function fitLines(text, maxWidth, maxLines, measure) {
  const lines = wrapText(text, maxWidth, measure);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  let last = kept[maxLines - 1];
  while (last && measure(`${last}…`) > maxWidth) last = last.slice(0, -1);
  kept[maxLines - 1] = `${last.trimEnd()}…`;
  return kept;
}
