// node --test tests/web/
// The box editor's status line must be readable in full at Intent Parse's default size.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DEFAULT_NODE_WIDTH, DOM_WIDGET_MARGIN, EMPTY_CANVAS, HINT, STATUS_LINES, addBox,
  addedMessage, deletedMessage, fitLines, renumbering, statusText, wrapText,
} from "../../web/js/box_logic.js";

// A pessimistic stand-in for canvas measureText at 12px sans-serif: real glyphs average about
// 6 px (spaces 3 px); 7 px for every character over-estimates every line.
const measure = (text) => 7 * text.length;
const WIDTH = DEFAULT_NODE_WIDTH - 2 * DOM_WIDGET_MARGIN;

test("wraps at spaces, never wider than the line, losing no word", () => {
  const text = "one two three four five six seven eight nine ten eleven twelve";
  const lines = wrapText(text, 70, measure); // 10 characters a line
  assert.ok(lines.length > 1);
  for (const line of lines) assert.ok(measure(line) <= 70, line);
  assert.equal(lines.join(" "), text);
});

test("a word wider than the line is cut, not overflowing", () => {
  const lines = wrapText("reference_boxes_without_any_spaces_at_all", 70, measure);
  for (const line of lines) assert.ok(measure(line) <= 70, line);
  assert.equal(lines.join(""), "reference_boxes_without_any_spaces_at_all");
});

test("text too long for the reserved lines ends in an ellipsis that fits", () => {
  const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
  const lines = fitLines(long, 140, 2, measure);
  assert.equal(lines.length, 2);
  assert.ok(lines[1].endsWith("…"));
  for (const line of lines) assert.ok(measure(line) <= 140, line);
  assert.deepEqual(fitLines("short", 140, 2, measure), ["short"]);
});

test("the hint and every editor message fit whole at the default node size", () => {
  const boxes = Array.from({ length: 30 }, (_, i) => ({ image: 0, box: [0, 0, 9, 9],
                                                        label: i === 11 ? "leather jacket" : "" }));
  const messages = [
    ...[0, 1, 7, 30, 999].map((n) => statusText(n)),
    addedMessage(boxes, 11),
    addedMessage(addBox(boxes, 1, [0, 0, 5, 5], "striped wool scarf"), 30),
    deletedMessage(0, renumbering(30, 0)),
    deletedMessage(27, renumbering(30, 27)),
    deletedMessage(29, renumbering(30, 29)),
  ];
  for (const message of messages) {
    const lines = fitLines(message, WIDTH, STATUS_LINES, measure);
    assert.equal(lines.join(" "), message, `cut off: ${message}`);
  }
  assert.ok(statusText(3).endsWith(HINT));
  assert.equal(statusText(3, "selected [2]"), "selected [2]");
});

test("the empty canvas's instruction wraps inside the canvas", () => {
  const lines = wrapText(EMPTY_CANVAS, WIDTH - 16, measure);
  assert.ok(lines.length <= 3, lines.join(" | "));
  for (const line of lines) assert.ok(measure(line) <= WIDTH - 16, line);
});

test("long renumberings are summed up as a range", () => {
  assert.equal(renumbering(2, 0), "[2]→[1]");
  assert.equal(renumbering(3, 0), "[2]→[1], [3]→[2]");
  assert.equal(renumbering(9, 1), "[3]–[9]→[2]–[8]");
  assert.equal(renumbering(5, 4), "");
});
