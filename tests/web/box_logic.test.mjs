// node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  addBox, boxCaption, boxFromDrag, chooseSources, fitView, hitTest, loadImageUrl, parseBoxes,
  relabel, removeBox, renumbering, serializeBoxes, toCanvas, toImage, viewUrl,
} from "../../web/js/box_logic.js";

test("parses the three accepted forms", () => {
  assert.deepEqual(parseBoxes(""), []);
  assert.deepEqual(parseBoxes('[{"image": 1, "box": [1, 2, 3, 4], "label": "hat"}]'),
                   [{ image: 1, box: [1, 2, 3, 4], label: "hat" }]);
  assert.deepEqual(parseBoxes("[[[1, 2, 3, 4]], [[5, 6, 7, 8]]]"),
                   [{ image: 0, box: [1, 2, 3, 4], label: "" },
                    { image: 1, box: [5, 6, 7, 8], label: "" }]);
  assert.deepEqual(parseBoxes("[[1, 2, 3, 4]]"), [{ image: 0, box: [1, 2, 3, 4], label: "" }]);
});

test("rejects what the Python side would reject", () => {
  assert.throws(() => parseBoxes("{"), SyntaxError);
  assert.throws(() => parseBoxes('{"box": [1, 2, 3, 4]}'), /JSON list/);
  assert.throws(() => parseBoxes('[{"image": 0, "box": [1, 2, 3]}]'), /box \[1\]/);
});

test("serialises integer pixels and keeps labels", () => {
  const text = serializeBoxes([{ image: 0, box: [1.4, 2.6, 30.2, 40.9], label: "" },
                               { image: 2, box: [0, 0, 5, 5], label: "jacket" }]);
  assert.equal(text, '[{"image":0,"box":[1,3,30,41]},{"image":2,"box":[0,0,5,5],"label":"jacket"}]');
  assert.deepEqual(parseBoxes(text)[1], { image: 2, box: [0, 0, 5, 5], label: "jacket" });
});

test("letterboxes wide and tall images and maps points both ways", () => {
  const wide = fitView(400, 100, 200, 200); // scale 0.5, centred vertically
  assert.deepEqual(wide, { scale: 0.5, ox: 0, oy: 75 });
  const tall = fitView(100, 400, 200, 200);
  assert.deepEqual(tall, { scale: 0.5, ox: 75, oy: 0 });
  assert.deepEqual(toImage(wide, ...toCanvas(wide, 123, 45)), [123, 45]);
});

test("a drag becomes an image-space box, clamped to the image, in any direction", () => {
  const view = fitView(400, 100, 200, 200); // image spans canvas y 75..125
  assert.deepEqual(boxFromDrag(view, [150, 120], [50, 80], 400, 100), [100, 10, 300, 90]);
  assert.deepEqual(boxFromDrag(view, [-20, 0], [30, 300], 400, 100), [0, 0, 60, 100]);
});

test("a click or a sliver is not a box", () => {
  const view = fitView(100, 100, 100, 100);
  assert.equal(boxFromDrag(view, [10, 10], [11, 12], 100, 100), null);
  assert.equal(boxFromDrag(view, [10, 10], [60, 12], 100, 100), null);
});

test("hit testing picks the top-most box on the shown image only", () => {
  const boxes = [{ image: 0, box: [0, 0, 50, 50] }, { image: 0, box: [10, 10, 20, 20] },
                 { image: 1, box: [0, 0, 100, 100] }];
  assert.equal(hitTest(boxes, 0, 15, 15), 1);
  assert.equal(hitTest(boxes, 0, 40, 40), 0);
  assert.equal(hitTest(boxes, 0, 70, 70), -1);
  assert.equal(hitTest(boxes, 1, 70, 70), 2);
});

test("editing keeps the input unchanged and renumbers after a removal", () => {
  const one = addBox([], 0, [1, 1, 9, 9], "face");
  const two = addBox(one, 1, [2, 2, 8, 8]);
  const three = addBox(two, 1, [3, 3, 7, 7], "hat");
  assert.equal(one.length, 1);
  assert.equal(boxCaption(three, 2), "[3] hat");
  const removed = removeBox(three, 0);
  assert.equal(boxCaption(removed, 1), "[2] hat");
  assert.equal(renumbering(3, 0), "[2]→[1], [3]→[2]");
  assert.equal(renumbering(3, 2), "");
  assert.equal(relabel(three, 1, "scarf")[1].label, "scarf");
  assert.equal(three[1].label, "");
});

test("builds /view URLs for executed images and Load Image values", () => {
  assert.equal(viewUrl({ filename: "a b.png", subfolder: "x", type: "temp" }),
               "/view?filename=a+b.png&subfolder=x&type=temp");
  assert.equal(loadImageUrl("me.png"), "/view?filename=me.png&subfolder=&type=input");
  assert.equal(loadImageUrl("photos/me.png"), "/view?filename=me.png&subfolder=photos&type=input");
  assert.equal(loadImageUrl("out.png [output]"), "/view?filename=out.png&subfolder=&type=output");
  assert.equal(loadImageUrl(""), null);
});

test("shows Load Image files live, else what the last run sent back", () => {
  const live = ["/a", "/b"];
  assert.deepEqual(chooseSources(live, [], true), live); // before any run
  assert.deepEqual(chooseSources(live, ["/t1", "/t2"], true), live); // files may have changed
  assert.deepEqual(chooseSources(live, ["/t1", "/t2", "/t3"], true),
                   ["/t1", "/t2", "/t3"]); // a multi-frame file made a batch
  assert.deepEqual(chooseSources(["/a"], ["/t1"], false), ["/t1"]); // not all Load Image
  assert.deepEqual(chooseSources([], [], true), []);
});
