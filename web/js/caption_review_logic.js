// Pure logic of the Caption Review panel: the `edits` widget's JSON and the rows the panel
// shows. No DOM and no ComfyUI imports, so `node --test tests/web/` can test it.
//
// Edits are {key: caption}: `key` is an item's edit key (its image's sha256, or its path for
// sets made elsewhere), as the node sends it in `it_captions`. Python's parse_edits reads the
// same text (intenttuner/captions/review.py).
import { viewUrl } from "./box_logic.js";

/** Parse the edits widget text; blank is no edits. Throws on what parse_edits refuses. */
export function parseEdits(text) {
  if (!text || !String(text).trim()) return {};
  const data = JSON.parse(text);
  if (!data || typeof data !== "object" || Array.isArray(data)) {
    throw new Error("edits must be a JSON object {key: caption}");
  }
  for (const [key, value] of Object.entries(data)) {
    if (typeof value !== "string") throw new Error(`the edit for ${key} is not a caption text`);
  }
  return { ...data };
}

/** The widget text for `edits`: "" when there are none (the widget's default). */
export function serializeEdits(edits) {
  return Object.keys(edits).length ? JSON.stringify(edits) : "";
}

/** `edits` after typing `text` for `key`, whose caption from the last run is `caption`:
 *  text equal to that caption with no edit pending changes nothing (an applied edit stays,
 *  or the next run would undo it). The input object is not changed. */
export function setEdit(edits, key, text, caption) {
  if (!(key in edits) && text === caption) return edits;
  return { ...edits, [key]: text };
}

export function discardEdit(edits, key) {
  const rest = { ...edits };
  delete rest[key];
  return rest;
}

/** Whitespace-only or empty: the node refuses it (a caption cannot be empty). */
export function isBlank(text) {
  return !String(text ?? "").trim();
}

/** One line a trainer reads, as the node cleans it (clean_caption: runs of whitespace become
 *  one space), so a pending edit that only differs in spacing is not shown as a change. */
export function cleanCaption(text) {
  return String(text ?? "").replace(/\s+/g, " ").trim();
}

/** What the panel shows: one row per entry of the last run (in order), with its thumbnail URL
 *  (null past the thumbnails sent) and the pending edit over the new caption; and the edits
 *  that match no entry (for an image no longer in the set), so they can be discarded. */
export function panelRows(entries, edits, thumbnails = []) {
  const known = new Set();
  const rows = (entries ?? []).map((entry, i) => {
    known.add(entry.key);
    const edited = entry.key in edits;
    const text = edited ? edits[entry.key] : entry.caption;
    return {
      key: entry.key, image: entry.image, label: rowLabel(entry),
      caption: entry.caption, source: entry.caption_source, text, edited,
      pending: edited && cleanCaption(text) !== entry.caption, blank: edited && isBlank(text),
      thumbnail: thumbnails[i] ? viewUrl(thumbnails[i]) : null,
    };
  });
  const unmatched = Object.entries(edits).filter(([key]) => !known.has(key))
    .map(([key, text]) => ({ key, text }));
  return { rows, unmatched };
}

/** "face · 2_face/x_0001.png · refined": what the item is and who wrote its caption. */
export function rowLabel(entry) {
  const what = entry.concept && entry.concept !== entry.group
    ? `${entry.group}: ${entry.concept}` : entry.group;
  return [what, entry.image, entry.caption_source].filter(Boolean).join(" · ");
}

/** The marker beside a caption: what will happen on the next queue. */
export function rowState(row) {
  if (row.blank) return "empty: the node refuses it; discard the edit";
  if (row.pending) return "edited: applied on the next queue";
  if (row.edited) return "your edit (applied)";
  return row.source === "user" ? "edited earlier (on disk)" : "";
}

/** The panel's header line. */
export function headline(rows, unmatched, edits) {
  const pending = rows.filter((r) => r.pending).length;
  const count = Object.keys(edits).length;
  const parts = [rows.length ? `${rows.length} image(s)` : "queue the graph to see the captions"];
  parts.push(`${count} edit(s)${pending ? `, ${pending} not applied yet` : ""}`);
  // before any run every edit is "unmatched": that says nothing about the set yet
  if (rows.length && unmatched.length) parts.push(`${unmatched.length} for images not in the set`);
  return parts.join(" · ");
}

/** The key as a person can tell it apart: a sha256 shortened, a path as is. */
export function shortKey(key) {
  return /^[0-9a-f]{64}$/.test(key) ? `sha256 ${key.slice(0, 12)}…` : key;
}
