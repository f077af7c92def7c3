// Where sampling's noise comes from: every random draw of a Program has a key of its own, and the batches of
// one sampling call (`ulc eval`'s samples and reconstructions, a bound model's `sample(n)`) draw noise of their
// own while staying a function of the seed. Run on the reference interpreter.
import path from "node:path";
import { describe, expect, test } from "vitest";
import type { Graph } from "../compiler/ir.js";
import { lowerProgram, type Program } from "../compiler/lower.js";
import { diskHost } from "../dsl/loader.js";
import { ReferenceSession } from "../runtime/reference.js";
import { sampleCalls, sampleImages } from "../runtime/sampler.js";
import type { HostTensor, InputTensor, Session } from "../runtime/session.js";
import { tensorOf } from "../runtime/tensor.js";
import { inputLayout } from "../train/batches.js";
import type { ImageSet } from "../train/data.js";
import { reconstructions, samples } from "../train/evaluate.js";

/** The reference interpreter behind the one Session method sampling calls. */
function runner(program: Program, seed: number): Pick<Session, "run"> {
  const reference = new ReferenceSession(program, { precision: "f64", seed });
  return {
    async run(entry: string, inputs: ReadonlyMap<string, InputTensor>, step?: number): Promise<Map<string, HostTensor>> {
      const out = reference.run(entry, new Map([...inputs].map(([k, t]) => [k, tensorOf(t.dtype, t.shape, t.data)])), step);
      return new Map([...out].map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: Float32Array.from(t.data) }]));
    },
  };
}

/** Pearson correlation of two equally long samples. */
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) (ma += a[i]! / n), (mb += b[i]! / n);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma, db = b[i]! - mb;
    (ab += da * db), (aa += da * da), (bb += db * db);
  }
  return ab / Math.sqrt(aa * bb);
}

function randomKeys(g: Graph): number[] {
  return g.nodes.flatMap((n) => (n.op.kind === "random" ? [n.op.key] : []));
}

describe("random keys", () => {
  test.each(["ul_tiny.ul", "ul_small.ul", "ul_tiny_base.ul", "vae_tiny.ul", "classifier.ul"])("no two graphs of %s share a key", (file) => {
    const program = lowerProgram(path.join("models", file), { bindings: { B: 2 } });
    const owner = new Map<number, string>();
    for (const [name, graph] of [["init", program.init] as const, ...program.entries.map((e) => [e.name, e.graph] as const)]) {
      for (const key of new Set(randomKeys(graph))) {
        expect(owner.get(key), `key ${key} of ${name}`).toBeUndefined();
        owner.set(key, name);
      }
    }
    expect(owner.size).toBeGreaterThan(0);
  });

  test("reconstruction's noise_latent and the decoder's fresh noise at the same step are different draws", async () => {
    // At initialisation the decoder's x̂ is 0 for x_t = 0, so decoder_step(0) is σ·fresh and noise_latent(0) is σ0·ε.
    const program = lowerProgram("models/ul_tiny.ul", { bindings: { B: 2 } });
    const session = runner(program, 7);
    const step = 2;
    const zero = (shape: number[]) => ({ dtype: "f32" as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    const eps = (await session.run("noise_latent", new Map([["z_clean", zero([2, 16])]]), step)).get("result")!.data;
    const scalar = (v: number) => ({ dtype: "f32" as const, shape: [], data: [v] });
    const inputs = new Map<string, InputTensor>([["x_t", zero([2, 1, 28, 28])], ["z0", zero([2, 16])], ["t", scalar(0.5)], ["s", scalar(0.4)]]);
    const fresh = (await session.run("decoder_step", inputs, step)).get("result")!.data;
    expect(Math.abs(correlation(eps, fresh.subarray(0, eps.length)))).toBeLessThan(0.6);
  }, 60_000);
});

// A model whose every sampling entry returns fresh noise: its samples and reconstructions are pure noise, so
// two batches agree exactly when they reuse each other's noise.
const TOY = path.resolve("models/_noise_toy.ul");
const TOY_SOURCE = `
model NoiseToy {
  entry encode<B>(x: f32[B, 1, 16, 16]) -> f32[B, 4] {
    slice(reshape(x, [B, 256]), 1, 0, 4)
  }
  entry noise_latent<B>(z_clean: f32[B, 4]) -> f32[B, 4] {
    z_clean + randn([B, 4])
  }
  entry prior_step<B>(z: f32[B, 4], t: f32, s: f32) -> f32[B, 4] {
    z + randn([B, 4])
  }
  entry decoder_step<B>(x_t: f32[B, 1, 16, 16], z0: f32[B, 4], t: f32, s: f32) -> f32[B, 1, 16, 16] {
    0.0 * x_t + randn([B, 1, 16, 16])
  }
  entry decoder_x_hat<B>(x_t: f32[B, 1, 16, 16], z0: f32[B, 4], t: f32) -> f32[B, 1, 16, 16] {
    x_t
  }
}
`;
const host = { readFile: (p: string) => (p === TOY ? TOY_SOURCE : diskHost.readFile(p)) };

describe("the batches of one sampling call", () => {
  const program = lowerProgram(TOY, { bindings: { B: 2 }, host });
  const options = { steps: 3, sampler: "ddpm" as const, seed: 4 };
  const half = 2 * 256;

  test("samples: each batch draws noise of its own, and the same seed gives the same samples", async () => {
    const draw = () => samples(4, 2, sampleCalls(options.steps), async (firstCall) => (await sampleImages(runner(program, options.seed), program.entries, options, firstCall)).images);
    const images = (await draw()).data;
    expect(Math.abs(correlation(images.subarray(0, half), images.subarray(half)))).toBeLessThan(0.3);
    expect((await draw()).data).toEqual(images);
  });

  test("reconstructions: each batch draws noise of its own, and the same seed gives the same images", async () => {
    const set: ImageSet = { source: "zeros", count: 4, channels: 1, height: 16, width: 16, pixels: new Uint8Array(4 * 256) };
    const layout = inputLayout(program.entries.find((e) => e.name === "encode")!, set);
    const reconstruct = () => reconstructions(runner(program, options.seed), program.entries, set, layout, 4, options);
    const { fake } = await reconstruct();
    expect(Math.abs(correlation(fake.subarray(0, half), fake.subarray(half)))).toBeLessThan(0.3);
    expect((await reconstruct()).fake).toEqual(fake);
  });
});
