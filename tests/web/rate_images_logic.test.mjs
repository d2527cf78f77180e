// node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  BUTTONS, ROUTES, changes, counts, fromExecuted, fromSet, headline, markBody, markLabel,
  marksOf, routeError, setMark, setUrl, toItem,
} from "../../web/js/rate_images_logic.js";

const A = "images/00112233aabbccdd.png";
const B = "images/ffeeddccbbaa9988.png";
const C = "images/0123456789abcdef.png";
const ref = (image) => ({ filename: image.slice(7), subfolder: "intenttuner/feedback/mine/images",
                          type: "output" });
const ENTRIES = [
  { image: A, prompt: "a red box", mark: "good", seed: 3, ...ref(A) },
  { image: B, prompt: "two cats", mark: null, seed: null, ...ref(B) },
];

test("the routes and the set URL, with the name escaped", () => {
  assert.equal(ROUTES.mark, "/intenttuner/feedback/mark");
  assert.equal(setUrl("my ratings&x"), "/intenttuner/feedback/set?name=my+ratings%26x");
});

test("Good, Bad and Skip send good, bad and null; a repeated click sends nothing", () => {
  assert.deepEqual(BUTTONS.map((b) => b.label), ["Good", "Bad", "Skip"]);
  assert.deepEqual(markBody("mine", A, "good"), { set: "mine", image: A, mark: "good" });
  assert.deepEqual(markBody("mine", A, "skip"), { set: "mine", image: A, mark: null });
  assert.throws(() => markBody("mine", A, "great"), /unknown button/);
  assert.equal(changes("good", markBody("mine", A, "good")), false);
  assert.equal(changes(undefined, markBody("mine", A, "skip")), false);
  assert.equal(changes("good", markBody("mine", A, "bad")), true);
  assert.equal(changes("bad", markBody("mine", A, "skip")), true);
});

test("a run's gallery: its items with /view URLs and their marks", () => {
  const shown = fromExecuted({ it_rate: ENTRIES, it_rate_set: ["mine"], text: ["..."] });
  assert.equal(shown.set, "mine");
  assert.deepEqual(shown.marks, { [A]: "good" });
  assert.deepEqual(shown.items[0], {
    image: A, prompt: "a red box", seed: 3,
    view: "/view?filename=00112233aabbccdd.png&subfolder=intenttuner%2Ffeedback%2Fmine%2Fimages" +
      "&type=output" });
  assert.equal(fromExecuted({ text: ["no gallery"] }), null);
  assert.equal(toItem({ image: "samples/step000010/s0.png", prompt: "p" }).view, null);
});

test("after a reload: the images shown last, else the whole set", () => {
  const body = { name: "mine", kind: "rating", exists: true,
                 images: [...ENTRIES, { image: C, prompt: "p", mark: "bad", ...ref(C) }] };
  const all = fromSet(body);
  assert.deepEqual(all.items.map((i) => i.image), [A, B, C]);
  assert.deepEqual(all.marks, { [A]: "good", [C]: "bad" });
  assert.equal(all.total, 3);
  const last = fromSet(body, { set: "mine", images: [C, A] });
  assert.deepEqual(last.items.map((i) => i.image), [A, C]); // in the set's order
  assert.deepEqual(fromSet(body, { set: "other", images: [C] }).items.length, 3);
  assert.deepEqual(fromSet(body, { set: "mine", images: ["images/gone.png"] }).items.length, 3);
  const empty = fromSet({ name: "new", exists: false, images: [] });
  assert.deepEqual([empty.set, empty.items, empty.total], ["new", [], 0]);
});

test("marks change without touching the input; counts and texts", () => {
  const marks = marksOf(ENTRIES);
  const next = setMark(marks, B, "bad");
  assert.deepEqual(marks, { [A]: "good" });
  assert.deepEqual(setMark(next, A, null), { [B]: "bad" });
  const items = ENTRIES.map(toItem);
  assert.deepEqual(counts(items, next), { good: 1, bad: 1, unmarked: 0 });
  assert.equal(headline("mine", items, marks), "'mine': 2 image(s) · 1 good · 0 bad · 1 unmarked");
  assert.equal(headline("mine", items, marks, 5),
               "'mine': 2 image(s) (of 5 in the set) · 1 good · 0 bad · 1 unmarked");
  assert.match(headline("mine", [], {}), /no images yet/);
  assert.equal(headline(null, [], {}), "queue the graph to rate its images");
  assert.deepEqual([markLabel("good"), markLabel("bad"), markLabel(undefined)],
                   ["marked good", "marked bad", "not marked"]);
  assert.equal(routeError("mark", 400, { error: "mark must be 'good'" }),
               "mark: mark must be 'good'");
  assert.equal(routeError("set", 500, null), "set: HTTP 500");
});
