// The typed bindings `ulc build --target wgsl --emit ts` writes (backends/ts/bindings.ts on runtime/webgpu/model.ts).
// Types: tsc accepts an application using ul_tiny's bindings as documented and rejects wrong shapes, unknown
// hyperparameters and tensors for scalars (each marked @ts-expect-error, which tsc reports if it is not an
// error); awkward names (an entry called `dispose`, an input called `new`, a tuple result) still make valid code.
// Behaviour, on WebGPU in Node: the generated class does what a WebGpuSession does on the same model compiled
// in memory, bit for bit; checkpoints round-trip; sampling batches past the bound batch size.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bindingsStem, emitBindings } from "../backends/ts/bindings.js";
import type { ProgramManifest } from "../runtime/webgpu/program.js";
import { lowerProgram } from "../compiler/lower.js";
import { randomUniform } from "../runtime/random.js";
import { sampleImages } from "../runtime/sampler.js";
import type { WebGpu } from "../runtime/webgpu/device.js";
import { tensor, type Tensor } from "../runtime/webgpu/model.js";
import { sessionFromProgram } from "../runtime/webgpu/compile.js";
import { ulc } from "./support/cli.js";
import { tsc } from "./support/tsc.js";
import { testDevice } from "./support/webgpu.js";

const td = await testDevice();
/** ul_tiny with a batch of 2 and small widths (generics of the model): the bindings do not depend on them. */
const BINDINGS = { B: 2, Width: 64, PriorWidth: 32 };

/** An application of the bindings, with the mistakes the types must catch. */
const CONSUMER = `
import { tensor, type Tensor } from "ulc/runtime";
import { UlTiny, type UlTinyFitResult } from "./model/ul_tiny.js";

export async function use(device: GPUDevice): Promise<number> {
  const model = await UlTiny.create(device, { seed: 1, hypers: { loss_factor: 2 }, optimizer: { lr: 1e-3 } });
  const x = tensor(UlTiny.inputs.fit.x);
  const metrics: UlTinyFitResult = await model.fit(x);
  const z0: Tensor<readonly [2, 16]> = await model.noiseLatent(await model.encode(x), 7);
  const next = await model.priorStep(z0, 1, 0.5);
  const images: Tensor<readonly [number, 1, 28, 28]> = await model.sample(3, { steps: 2, sampler: "ddim" });
  // @ts-expect-error: the batch is bound to 2
  await model.encode(tensor([3, 1, 28, 28]));
  // @ts-expect-error: ul_tiny has no such hyperparameter
  await UlTiny.create(device, { hypers: { loss_factr: 2 } });
  // @ts-expect-error: t is a scalar
  await model.priorStep(next, tensor([2]), 0.5);
  return metrics.loss + metrics.bpp + images.shape[0];
}
`;

describe("typed bindings of a built model", () => {
  let dir: string;
  let manifest: ProgramManifest;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ulc-bindings-"));
    const binds = Object.entries(BINDINGS).flatMap(([k, v]) => ["--bind", `${k}=${v}`]);
    const built = await ulc(["build", "models/ul_tiny.ul", "--target", "wgsl", "--emit", "ts", ...binds, "-o", path.join(dir, "model")]);
    expect(built.code, built.stderr).toBe(0);
    manifest = (JSON.parse(readFileSync(path.join(dir, "model", "ul_tiny.program.json"), "utf8")) as { manifest: ProgramManifest }).manifest;
  }, 120_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the build writes the Program in one file and its bindings, which import the runtime by the package's name", () => {
    expect(bindingsStem("UlTiny")).toBe("ul_tiny");
    expect(bindingsStem("HTTPModel2D")).toBe("http_model2_d");
    const source = readFileSync(path.join(dir, "model", "ul_tiny.ts"), "utf8");
    expect(source).toContain('import { BoundModel, type ModelOptions, type SampleOptions, type Tensor } from "ulc/runtime";');
    expect(source).toContain('new URL("./ul_tiny.program.json", import.meta.url)');
    expect(source).toContain("async fit(x: Tensor<readonly [2, 1, 28, 28]>): Promise<UlTinyFitResult>");
    expect(source).toContain("async priorStep(z: Tensor<readonly [2, 16]>, t: number, s: number, step?: number): Promise<Tensor<readonly [2, 16]>>");
    expect(source).toContain("`decoder_step(x_t: f32[2, 1, 28, 28], z0: f32[2, 16], t: f32, s: f32) -> f32[2, 1, 28, 28]`");
    // Generated code is reproducible: the same build gives the same text.
    expect(emitBindings(manifest, { source: "ul_tiny.ul", programFile: "ul_tiny.program.json" })).toBe(source);
  });

  test("--emit ts goes with --target wgsl and -o DIR", async () => {
    const alone = await ulc(["build", "models/ul_tiny.ul", "--emit", "ts", "--bind", "B=2"]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain("give exactly one of --emit ir (print the graphs) and --target wgsl");
    const nowhere = await ulc(["build", "models/ul_tiny.ul", "--target", "wgsl", "--emit", "ts", "--bind", "B=2"]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toContain("give it with -o DIR");
  });

  test("tsc accepts the documented uses and rejects wrong shapes, names and kinds; awkward names stay valid", async () => {
    // An entry named like a member of the base class; inputs named by a reserved word and like the method's own
    // names; a tuple result.
    const encode = manifest.entries.find((e) => e.name === "encode")!;
    const noise = manifest.entries.find((e) => e.name === "noise_latent")!.inputs[0]!;
    const out = encode.outputs[0]!.buffer;
    const awkward = {
      ...manifest,
      model: "Awkward",
      entries: [
        {
          ...encode,
          name: "dispose",
          inputs: [{ ...encode.inputs[0]!, name: "new" }, { ...noise, name: "out" }, { ...noise, name: "step" }],
          results: ["result.0", "result.1"],
          outputs: [{ name: "result.0", buffer: out }, { name: "result.1", buffer: out }],
        },
      ],
    };
    const edge = emitBindings(awkward, { source: "awkward.ul", programFile: "awkward.program.json" });
    expect(edge).toContain(
      "async disposeEntry(new_: Tensor<readonly [2, 1, 28, 28]>, out: Tensor<readonly [2, 16]>, step: Tensor<readonly [2, 16]>, step_?: number): Promise<[Tensor<readonly [2, 16]>, Tensor<readonly [2, 16]>]>",
    );
    expect(edge).toContain('const out_ = await this.run("dispose", { new: new_, out, step }, step_);');
    expect(edge).not.toContain("sample(");
    writeFileSync(path.join(dir, "model", "awkward.ts"), edge);
    writeFileSync(path.join(dir, "consumer.ts"), CONSUMER);
    // An application's package is an ES module package (the bindings locate their Program with import.meta.url).
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: path.resolve("tsconfig.json"),
        // `ulc/runtime` is this checkout's runtime (an installed package's: test/package.test.ts).
        compilerOptions: { noEmit: true, rootDir: path.parse(dir).root, typeRoots: [path.resolve("node_modules/@types"), path.resolve("node_modules")], paths: { "ulc/runtime": [path.resolve("runtime/index.ts")] } },
        include: [path.join(dir, "*.ts"), path.join(dir, "model", "*.ts")],
      }),
    );
    const { status, output } = await tsc(path.join(dir, "tsconfig.json"));
    expect(output).toBe("");
    expect(status).toBe(0);
  }, 60_000);

  describe.skipIf(td.skip !== undefined)("on WebGPU in Node", () => {
    const gpu = td.gpu as WebGpu;
    type Model = {
      step: number;
      fit(x: Tensor): Promise<Record<string, number>>;
      encode(x: Tensor): Promise<Tensor>;
      sample(n: number, options: object): Promise<Tensor>;
      saveCheckpoint(): Promise<Uint8Array>;
      loadCheckpoint(bytes: Uint8Array): Promise<{ ema: boolean }>;
      dispose(): void;
    };
    let UlTiny: { create(device: GPUDevice, options?: object): Promise<Model> };

    beforeAll(async () => {
      ({ UlTiny } = await import(path.join(dir, "model", "ul_tiny.ts")));
    });

    test("the generated class equals a WebGpuSession of the model compiled in memory; checkpoints round-trip; sampling goes past the batch", async () => {
      const x = tensor([2, 1, 28, 28], [...randomUniform(11, 0, 0, 2 * 784)].map((v) => 2 * v - 1));
      const model = await UlTiny.create(gpu.device, { seed: 3 });
      const session = await sessionFromProgram(gpu.device, lowerProgram("models/ul_tiny.ul", { bindings: BINDINGS }), { seed: 3 });
      try {
        expect(await model.fit(x)).toEqual(Object.fromEntries(await session.trainStep("fit", new Map([["x", { dtype: "f32", ...x }]]))));

        const restored = await UlTiny.create(gpu.device, { seed: 9 });
        expect(await restored.loadCheckpoint(await model.saveCheckpoint())).toMatchObject({ ema: false });
        expect(restored.step).toBe(1);
        expect((await restored.encode(x)).data).toEqual((await model.encode(x)).data);
        restored.dispose();

        const progress: [number, number][] = [];
        const images = await model.sample(3, { steps: 2, seed: 5, onProgress: (done: number, total: number) => progress.push([done, total]) });
        expect(images.shape).toEqual([3, 1, 28, 28]);
        expect(progress).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, 10]));
        // The first batch is what the sampler gives for the seed; the next has noise of its own.
        const first = await sampleImages(session, session.program.entries, { steps: 2, sampler: "ddpm", seed: 5 });
        expect(images.data.subarray(0, 2 * 784)).toEqual(first.images.data);
        expect(images.data.subarray(2 * 784)).not.toEqual(images.data.subarray(0, 784));

        // A wrong shape that got past the types (a cast) is named, not run.
        await expect(model.encode(tensor([3, 1, 28, 28]))).rejects.toThrow("encode: 'x' must be f32[2, 1, 28, 28] (1568 values), got shape [3, 1, 28, 28] with 2352 values");
      } finally {
        model.dispose();
        session.dispose();
      }
    }, 240_000);
  });
});
