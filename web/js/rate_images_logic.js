// Pure logic of the Rate Images gallery: which images it shows, their marks, what a click
// sends. No DOM and no ComfyUI imports, so `node --test tests/web/` can test it.
//
// The server is the one source of truth for marks (the set's feedback.jsonl, written by
// intenttuner/reward/feedback_set.py): a click shows its mark at once and then takes the
// marks the server answers, so two tabs, or a reload, agree with what is on disk.
import { viewUrl } from "./box_logic.js";

export const ROUTES = Object.freeze({
  sets: "/intenttuner/feedback/sets",
  set: "/intenttuner/feedback/set",
  mark: "/intenttuner/feedback/mark",
});
export const BUTTONS = Object.freeze([
  { name: "good", label: "Good", mark: "good", title: "A good image for its prompt" },
  { name: "bad", label: "Bad", mark: "bad", title: "A bad image for its prompt" },
  { name: "skip", label: "Skip", mark: null,
    title: "No verdict: the image is left out of training (clears a mark)" },
]);

export function setUrl(name) {
  return `${ROUTES.set}?${new URLSearchParams({ name: String(name ?? "") }).toString()}`;
}

/** The body of a mark request: the button's mark (Skip: null) for `image` of set `set`. */
export function markBody(set, image, button) {
  const found = BUTTONS.find((b) => b.name === button);
  if (!found) throw new Error(`unknown button ${button}`);
  return { set, image, mark: found.mark };
}

/** Whether a click changes anything (a second click on the active button does not). */
export function changes(current, body) {
  return (current ?? null) !== body.mark;
}

/** One gallery item from a node's `it_rate` entry or a set route's image. */
export function toItem(entry) {
  const hasRef = entry && typeof entry.filename === "string" && entry.filename;
  return {
    image: String(entry?.image ?? ""), prompt: entry?.prompt ?? null,
    seed: entry?.seed ?? null,
    view: hasRef ? viewUrl({ filename: entry.filename, subfolder: entry.subfolder ?? "",
                             type: entry.type ?? "output" }) : null,
  };
}

/** The marks of `entries` as {image: mark}, unmarked ones left out. */
export function marksOf(entries) {
  const marks = {};
  for (const entry of entries ?? []) if (entry?.mark) marks[entry.image] = entry.mark;
  return marks;
}

/** What a node's run sent: {set, items, marks}; null when it sent no gallery. */
export function fromExecuted(message) {
  if (!message || !Array.isArray(message.it_rate)) return null;
  return { set: message.it_rate_set?.[0] ?? null, items: message.it_rate.map(toItem),
           marks: marksOf(message.it_rate) };
}

/** What the set route answered, shown as the gallery: the images this node showed last
 *  (`remembered`, saved in the workflow) when the set still has some of them, else all. */
export function fromSet(body, remembered = null) {
  const images = Array.isArray(body?.images) ? body.images : [];
  let shown = images;
  if (remembered && remembered.set === body?.name && remembered.images?.length) {
    const wanted = new Set(remembered.images);
    const kept = images.filter((i) => wanted.has(i.image));
    if (kept.length) shown = kept;
  }
  return { set: body?.name ?? null, items: shown.map(toItem), marks: marksOf(images),
           total: images.length };
}

/** `marks` with `image` marked `mark` (null: unmarked); the input is not changed. */
export function setMark(marks, image, mark) {
  const next = { ...marks };
  if (mark) next[image] = mark;
  else delete next[image];
  return next;
}

export function counts(items, marks) {
  const out = { good: 0, bad: 0, unmarked: 0 };
  for (const item of items) out[marks[item.image] ?? "unmarked"] += 1;
  return out;
}

/** The line above the gallery. */
export function headline(set, items, marks, total = null) {
  if (!items.length) {
    return set ? `feedback set '${set}': no images yet · queue the graph to rate its images`
      : "queue the graph to rate its images";
  }
  const c = counts(items, marks);
  const of = total && total > items.length ? ` (of ${total} in the set)` : "";
  return `'${set}': ${items.length} image(s)${of} · ${c.good} good · ${c.bad} bad · ` +
    `${c.unmarked} unmarked`;
}

/** The marker under an image. */
export function markLabel(mark) {
  return { good: "marked good", bad: "marked bad" }[mark] ?? "not marked";
}

/** A failed request as one line, with the server's own message when it sent one. */
export function routeError(what, status, body) {
  const reason = body && typeof body.error === "string" ? body.error : `HTTP ${status}`;
  return `${what}: ${reason}`;
}
