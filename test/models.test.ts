// The shipped models and the standard library check clean, and expose the entries the runtime relies on.
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { checkFiles } from "../dsl/check.js";
import type { CheckedEntry } from "../dsl/checker.js";
import { renderDiagnostic } from "../dsl/diagnostics.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MODELS = path.join(ROOT, "models");
const UL_MODELS = ["ul_tiny.ul", "ul_small.ul"];
const ALL_MODELS = [...UL_MODELS, "classifier.ul", "ul_tiny_base.ul", "vae_tiny.ul"];
const STD = readdirSync(path.join(MODELS, "std"))
  .filter((f) => f.endsWith(".ul"))
  .sort();

function clean(paths: string[]): CheckedEntry[] {
  const r = checkFiles(paths);
  expect(r.usageErrors).toEqual([]);
  expect(r.diagnostics.map((d) => renderDiagnostic(d)).join("\n\n")).toBe("");
  return r.entries;
}

/** Field names of a record type as the checker prints it: `{ loss: f32, bpp: f32 }`. */
function recordFields(type: string): Map<string, string> {
  const m = /^\{\s*(.*?)\s*\}$/.exec(type);
  if (!m) return new Map();
  return new Map(
    m[1]!
      .split(/,\s*(?=\w+:)/)
      .filter(Boolean)
      .map((f) => {
        const i = f.indexOf(":");
        return [f.slice(0, i).trim(), f.slice(i + 1).trim()] as [string, string];
      }),
  );
}

describe("models", () => {
  test("the standard library has the expected files", () => {
    expect(STD).toEqual(expect.arrayContaining(["diffusion.ul", "layers.ul", "optim.ul"]));
  });

  test.each(STD)("std/%s checks clean", (f) => {
    clean([path.join(MODELS, "std", f)]);
  });

  test.each(ALL_MODELS)("%s checks clean and has a training entry minimising an f32 loss", (f) => {
    const entries = clean([path.join(MODELS, f)]);
    expect(entries.length).toBeGreaterThan(0);
    const training = entries.filter((e) => e.training);
    expect(training.length, `${f} has a train entry`).toBeGreaterThan(0);
    for (const e of training) {
      const fields = recordFields(e.output);
      expect(fields.get("loss"), `${e.model}.${e.name} -> ${e.output}`).toBe("f32");
      expect(e.inputs.length).toBeGreaterThan(0);
    }
  });

  test.each(UL_MODELS)("%s: a training entry reports loss and bpp as f32 scalars", (f) => {
    const entries = clean([path.join(MODELS, f)]);
    const ok = entries.filter((e) => {
      const fields = recordFields(e.output);
      return e.training && fields.get("loss") === "f32" && fields.get("bpp") === "f32";
    });
    expect(ok.map((e) => e.name), JSON.stringify(entries, null, 1)).not.toEqual([]);
  });

  test.each(UL_MODELS)("%s: the sampler's step entries exist", (f) => {
    const names = clean([path.join(MODELS, f)]).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(["encode", "prior_step", "decoder_step", "decoder_x_hat"]));
  });

  test("all the models check together in one run", () => {
    const entries = clean(ALL_MODELS.map((f) => path.join(MODELS, f)));
    const models = new Set(entries.map((e) => e.model));
    expect(models.size).toBe(ALL_MODELS.length);
  });

  test("every models/*.ul is in this suite", () => {
    expect(readdirSync(MODELS).filter((f) => f.endsWith(".ul")).sort()).toEqual([...ALL_MODELS].sort());
  });

  test("the stage-2 base model and the VAE expose what sampling and eval call", () => {
    const names = (f: string) => clean([path.join(MODELS, f)]).map((e) => e.name);
    expect(names("ul_tiny_base.ul")).toEqual(expect.arrayContaining(["fit", "prior_step", "prior_ddim_step"]));
    expect(names("vae_tiny.ul")).toEqual(expect.arrayContaining(["fit", "evaluate", "encode", "decoder_step", "decoder_ddim_step", "decoder_x_hat"]));
  });

  test("binding the batch dim keeps the models clean", () => {
    for (const f of ALL_MODELS) {
      const r = checkFiles([path.join(MODELS, f)], { bindings: { B: 8 } });
      expect(r.usageErrors, f).toEqual([]);
      expect(r.diagnostics.map((d) => renderDiagnostic(d)).join("\n\n"), f).toBe("");
    }
  });
});
