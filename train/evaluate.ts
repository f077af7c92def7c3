// The measurements of a trained Unified Latents run, each through a Session: held-out bits/pixel (the
// `evaluate` entry, which reports the prior bound), reconstruction PSNR (encode → z0 at λ0 → decoder
// sampling, or an autoencoder's `reconstruct`), a classifier's accuracy and features, and the Fréchet
// distance between real and sampled images in that classifier's feature space.
import type { EntrySignature, SampleOptions } from "../runtime/sampler.js";
import { batchFirstCall, decode } from "../runtime/sampler.js";
import type { HostTensor, InputTensor, Session } from "../runtime/session.js";
import { batchOf, type InputLayout } from "./batches.js";
import type { ImageSet } from "./data.js";
import { fitGaussian, frechetDistance } from "./frechet.js";

/** Calls `fn` on consecutive batches of the first `n` examples; the last batch is padded by repeating. */
async function forBatches(n: number, batch: number, fn: (indices: number[], first: number) => Promise<void>): Promise<void> {
  for (let first = 0; first < n; first += batch) {
    const indices = Array.from({ length: Math.min(batch, n - first) }, (_, i) => first + i);
    await fn(indices, first);
  }
}

/** The mean of a metrics entry's results over the first `n` examples, each batch weighted by its real size. */
export async function meanMetrics(session: Session, entry: string, set: ImageSet, layout: InputLayout, n: number, step: number, onBatch?: () => void): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  await forBatches(n, layout.batch, async (indices, first) => {
    if (indices.length < layout.batch) return; // a padded batch would weight repeated examples
    const out = await session.run(entry, batchOf(set, layout, indices), step + first);
    for (const [k, t] of out) sums[k] = (sums[k] ?? 0) + t.data[0]! * indices.length;
    onBatch?.();
  });
  const counted = Math.floor(n / layout.batch) * layout.batch;
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / counted]));
}

/** The result of a one-output entry for each of the first `n` examples, concatenated. */
export async function entryOutputs(session: Session, entry: string, inputs: (indices: number[]) => Map<string, InputTensor>, n: number, batch: number, step: number): Promise<Float32Array> {
  let out: Float32Array | undefined;
  await forBatches(n, batch, async (indices, first) => {
    const r = (await session.run(entry, inputs(indices), step + first)).get("result")!;
    const per = r.data.length / batch;
    out ??= new Float32Array(n * per);
    out.set(r.data.subarray(0, indices.length * per), first * per);
  });
  return out!;
}

/** PSNR in dB of images in [-1, 1] as pixels in [0, 1], per image, then averaged. */
export function meanPsnr(real: ArrayLike<number>, fake: ArrayLike<number>, count: number): number {
  const per = real.length / count;
  let sum = 0;
  for (let i = 0; i < count; i++) {
    let mse = 0;
    for (let j = 0; j < per; j++) {
      const a = (Math.min(1, Math.max(-1, real[i * per + j]!)) + 1) / 2;
      const b = (Math.min(1, Math.max(-1, fake[i * per + j]!)) + 1) / 2;
      mse += (a - b) ** 2 / per;
    }
    sum += 10 * Math.log10(1 / Math.max(mse, 1e-10));
  }
  return sum / count;
}

/**
 * The first `n` examples and their reconstructions, both as images; `reconstruct(x, k)` makes batch `k`'s (from
 * 0) from its images `x`.
 */
async function pairs(set: ImageSet, layout: InputLayout, n: number, reconstruct: (x: InputTensor, k: number) => Promise<HostTensor>): Promise<{ real: Float32Array; fake: Float32Array }> {
  const per = layout.image.shape.slice(1).reduce((a, b) => a * b, 1);
  const real = new Float32Array(n * per), fake = new Float32Array(n * per);
  await forBatches(n, layout.batch, async (indices, first) => {
    const x = batchOf(set, layout, indices).get(layout.image.name)!;
    const image = await reconstruct(x, first / layout.batch);
    real.set((x.data as Float32Array).subarray(0, indices.length * per), first * per);
    fake.set(image.data.subarray(0, indices.length * per), first * per);
  });
  return { real, fake };
}

/**
 * Reconstructions of the first `n` examples: encode, noise to z0 at λ0 (UL), decode by sampling. Returns both.
 * Each batch numbers its entry calls after the batches before it, so no two batches share any noise.
 */
export function reconstructions(session: Pick<Session, "run">, entries: readonly EntrySignature[], set: ImageSet, layout: InputLayout, n: number, options: SampleOptions): Promise<{ real: Float32Array; fake: Float32Array }> {
  const calls = options.steps + 3; // encode, noise_latent, the decoder's steps and its x̂
  return pairs(set, layout, n, async (x, k) => {
    const call = batchFirstCall(k, calls);
    const zClean = (await session.run("encode", new Map([[layout.image.name, x]]), call)).get("result")!;
    // UL's z0 is the encoding noised to λ0; a model without that entry (a VAE) decodes its encoding as it is.
    const noiseEntry = entries.find((e) => e.name === "noise_latent");
    const z0 = noiseEntry ? (await session.run(noiseEntry.name, new Map([[noiseEntry.inputs[0]!.name, zClean]]), call + 1)).get("result")! : zClean;
    return decode(session, entries, z0, options, call + 2);
  });
}

/** An autoencoder's reconstructions of the first `n` examples, by its `reconstruct` entry (one call a batch). Returns both. */
export function autoencoded(session: Pick<Session, "run">, set: ImageSet, layout: InputLayout, n: number): Promise<{ real: Float32Array; fake: Float32Array }> {
  return pairs(set, layout, n, async (x, k) => (await session.run("reconstruct", new Map([[layout.image.name, x]]), batchFirstCall(k, 1))).get("result")!);
}

/**
 * `n` samples in batches; `sampleBatch(firstCall)` makes one batch (prior then decoder, or stage 2's pair) in
 * `calls` entry calls numbered from `firstCall`: each batch's calls follow the batch before, so its noise is its own.
 */
export async function samples(n: number, batch: number, calls: number, sampleBatch: (firstCall: number) => Promise<HostTensor>): Promise<HostTensor> {
  let out: Float32Array | undefined;
  let shape: readonly number[] = [];
  await forBatches(n, batch, async (indices, first) => {
    const images = await sampleBatch(batchFirstCall(first / batch, calls));
    const per = images.data.length / batch;
    out ??= new Float32Array(n * per);
    shape = [n, ...images.shape.slice(1)];
    out.set(images.data.subarray(0, indices.length * per), first * per);
  });
  return { dtype: "f32", shape, data: out! };
}

/** The Fréchet distance between two feature sets of `dim` features each. */
export function featureDistance(a: Float32Array, b: Float32Array, dim: number): number {
  return frechetDistance(fitGaussian(a, a.length / dim, dim), fitGaussian(b, b.length / dim, dim));
}
