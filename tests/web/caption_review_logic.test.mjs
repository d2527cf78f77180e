// node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  cleanCaption, discardEdit, headline, panelRows, parseEdits, rowLabel, rowState,
  serializeEdits, setEdit, shortKey,
} from "../../web/js/caption_review_logic.js";

const SHA = "a".repeat(64);
const ENTRIES = [
  { key: SHA, image: "1_original/a_full_0001.png", group: "original", concept: null,
    caption: "ohwx, man", caption_source: "placeholder" },
  { key: "2_face/b_face_0002.png", image: "2_face/b_face_0002.png", group: "face",
    concept: "face", caption: "ohwx, man, face", caption_source: "user" },
];

test("parses what the node reads and refuses what it refuses", () => {
  assert.deepEqual(parseEdits(""), {});
  assert.deepEqual(parseEdits("  \n"), {});
  assert.deepEqual(parseEdits(`{"${SHA}": "Amélie, 写真"}`), { [SHA]: "Amélie, 写真" });
  assert.throws(() => parseEdits("{"), SyntaxError);
  assert.throws(() => parseEdits("[]"), /JSON object/);
  assert.throws(() => parseEdits('{"k": 3}'), /not a caption text/);
});

test("no edits serialise to the widget's default; edits round-trip with non-ASCII kept", () => {
  assert.equal(serializeEdits({}), "");
  const edits = { [SHA]: "Amélie, 写真" };
  assert.ok(serializeEdits(edits).includes("Amélie, 写真")); // not \\u-escaped
  assert.deepEqual(parseEdits(serializeEdits(edits)), edits);
});

test("typing sets an edit; typing the same caption with no edit pending sets none", () => {
  const none = {};
  assert.equal(setEdit(none, SHA, "ohwx, man", "ohwx, man"), none);
  const one = setEdit(none, SHA, "ohwx, man, smiling", "ohwx, man");
  assert.deepEqual(one, { [SHA]: "ohwx, man, smiling" });
  assert.deepEqual(none, {}); // not changed in place
  // An applied edit typed back to what it shows stays: removing it would undo it next run.
  assert.deepEqual(setEdit({ [SHA]: "x" }, SHA, "ohwx, man", "ohwx, man"), { [SHA]: "ohwx, man" });
  assert.deepEqual(discardEdit(one, SHA), {});
  assert.deepEqual(one, { [SHA]: "ohwx, man, smiling" });
});

test("rows show pending edits over the new captions, in entry order with thumbnails", () => {
  const thumbs = [{ filename: "t_00001_.png", subfolder: "intenttuner", type: "temp" }];
  const edits = { [SHA]: "ohwx,   man,\nsmiling", gone: "old caption" };
  const { rows, unmatched } = panelRows(ENTRIES, edits, thumbs);
  assert.deepEqual(rows.map((r) => [r.key, r.text, r.edited, r.pending]), [
    [SHA, "ohwx,   man,\nsmiling", true, true],
    ["2_face/b_face_0002.png", "ohwx, man, face", false, false],
  ]);
  assert.equal(rows[0].thumbnail, "/view?filename=t_00001_.png&subfolder=intenttuner&type=temp");
  assert.equal(rows[1].thumbnail, null); // past the thumbnails the node sent
  assert.deepEqual(unmatched, [{ key: "gone", text: "old caption" }]);
  assert.equal(headline(rows, unmatched, edits),
               "2 image(s) · 2 edit(s), 1 not applied yet · 1 for images not in the set");
});

test("an edit equal to the caption after cleaning is applied, not pending", () => {
  const { rows } = panelRows(ENTRIES, { [SHA]: "  ohwx,\n man " });
  assert.equal(cleanCaption("  ohwx,\n man "), "ohwx, man");
  assert.equal(rows[0].pending, false);
  assert.equal(rowState(rows[0]), "your edit (applied)");
});

test("states tell what the next queue does", () => {
  const { rows } = panelRows(ENTRIES, { [SHA]: "  " });
  assert.equal(rows[0].blank, true);
  assert.match(rowState(rows[0]), /refuses it; discard the edit/);
  assert.equal(rowState(rows[1]), "edited earlier (on disk)");
  assert.equal(rowState(panelRows(ENTRIES, { [SHA]: "new" }).rows[0]),
               "edited: applied on the next queue");
  assert.equal(rowState({ ...rows[0], blank: false, edited: false, pending: false,
                          source: "placeholder" }), "");
});

test("without a run yet every saved edit is listed, none lost", () => {
  const { rows, unmatched } = panelRows([], { [SHA]: "x", b: "y" });
  assert.deepEqual(rows, []);
  assert.deepEqual(unmatched.map((u) => u.key), [SHA, "b"]);
  assert.equal(headline(rows, unmatched, { [SHA]: "x", b: "y" }),
               "queue the graph to see the captions · 2 edit(s)");
});

test("labels and keys a person can read", () => {
  assert.equal(rowLabel(ENTRIES[0]), "original · 1_original/a_full_0001.png · placeholder");
  assert.equal(rowLabel({ ...ENTRIES[1], group: "jacket", concept: "jacket" }),
               "jacket · 2_face/b_face_0002.png · user");
  assert.equal(rowLabel({ ...ENTRIES[1], group: "g", concept: "jacket" }),
               "g: jacket · 2_face/b_face_0002.png · user");
  assert.equal(shortKey(SHA), "sha256 aaaaaaaaaaaa…");
  assert.equal(shortKey("1_x/a.png"), "1_x/a.png");
});
