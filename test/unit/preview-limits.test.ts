/**
 * The preview's size and quality bounds are declared once (lib/preview/
 * limits.ts); the CLI's flags, the renderer and the encoder must agree on them
 * exactly, or a size the CLI accepts could fail every file in a worker.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Command } from "commander";

import {
  addPreviewOptions,
  type PreviewFlags,
  previewPoolOptions,
} from "../../cli/commands/worker/preview-options.js";
import { checkQuality } from "../../lib/preview/jpeg.js";
import { PREVIEW_QUALITY, PREVIEW_SIZE } from "../../lib/preview/limits.js";
import { RENDER_DEFAULTS, renderSettings } from "../../lib/preview/render.js";

const { min, max } = PREVIEW_SIZE;

function flags(overrides: Partial<PreviewFlags> = {}): PreviewFlags {
  const defaults = addPreviewOptions(new Command()).opts<PreviewFlags>();
  return { ...defaults, ...overrides };
}

describe("preview limits", () => {
  it("the flags' defaults are the renderer's and the encoder's", () => {
    const options = previewPoolOptions(flags());
    assert.equal(options.width, RENDER_DEFAULTS.width);
    assert.equal(options.height, RENDER_DEFAULTS.height);
    assert.equal(options.quality, PREVIEW_QUALITY.default);
  });

  it("the flags and the renderer accept and refuse the same sizes", () => {
    for (const side of [min, max]) {
      assert.doesNotThrow(() => renderSettings({ width: side, height: side }));
      assert.doesNotThrow(() =>
        previewPoolOptions(flags({ previewSize: `${side}x${side}` })),
      );
    }
    for (const side of [min - 1, max + 1]) {
      assert.throws(() => renderSettings({ width: side }), /preview width/);
      assert.throws(() => renderSettings({ height: side }), /preview height/);
      assert.throws(
        () => previewPoolOptions(flags({ previewSize: `${side}x${min}` })),
        /--preview-size/,
      );
      assert.throws(
        () => previewPoolOptions(flags({ previewSize: `${min}x${side}` })),
        /--preview-size/,
      );
    }
  });

  it("the flags and the encoder accept and refuse the same qualities", () => {
    for (const quality of [PREVIEW_QUALITY.min, PREVIEW_QUALITY.max]) {
      assert.equal(checkQuality(quality), quality);
      assert.equal(
        previewPoolOptions(flags({ previewQuality: String(quality) })).quality,
        quality,
      );
    }
    for (const quality of [PREVIEW_QUALITY.min - 1, PREVIEW_QUALITY.max + 1]) {
      assert.throws(() => checkQuality(quality), /JPEG quality/);
      assert.throws(
        () => previewPoolOptions(flags({ previewQuality: String(quality) })),
        /--preview-quality/,
      );
    }
  });
});
