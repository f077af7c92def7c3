// Sampling a Unified Latents model with any Session: the prior (or a stage-2 base model) runs from N(0, I) at
// t = 1 (λ_min) down to t = 0 (λ0), which is a sample of z0; the decoder then runs from noise at t = 1 to t = 0
// conditioned on z0 and finishes with its x̂ at t = 0. Sampler entries compute one step (t → s) and the loop is
// here, over the uniform grid t_i = 1 − i/N. Entries are called by position:
//   prior:   <prefix>_step(z, t, s) or <prefix>_ddim_step(z, t, s)
//   decoder: decoder_step(x_t, z0, t, s) or decoder_ddim_step(...), then decoder_x_hat(x_t, z0, t)
// Each call gets its own step number, so the entries' fresh noise differs from call to call; the starting
// noise is drawn on the host from the same Philox streams, at the step of the stage's first call. A batch's
// randomness is therefore a function of (seed, its first call): the batches of one sampling call take
// consecutive ranges of calls (`batchFirstCall`), so each draws noise of its own. Nothing here needs Node.
import { randomNormal } from "./random.js";
import type { HostTensor, InputTensor, Session } from "./session.js";

export type Sampler = "ddpm" | "ddim";

export interface SampleOptions {
  readonly steps: number;
  readonly sampler: Sampler;
  /** Keys the starting noise; the session's own seed keys the entries' noise. Both also depend on the calls' numbers. */
  readonly seed: number;
  /** Reports progress: calls done of total. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** The entry signatures the sampler relies on, as a Program or manifest lists them. */
export interface EntrySignature {
  readonly name: string;
  readonly inputs: readonly { readonly name: string; readonly shape: readonly number[] }[];
}

/** Host noise streams, far from the small keys graph nodes use. */
const PRIOR_NOISE_KEY = 0x4e5a_0000;
const DECODER_NOISE_KEY = 0x4e58_0000;

function scalar(v: number): InputTensor {
  return { dtype: "f32", shape: [], data: Float32Array.of(v) };
}

function signature(entries: readonly EntrySignature[], name: string): EntrySignature {
  const e = entries.find((x) => x.name === name);
  if (!e) throw new Error(`the model has no entry '${name}', which sampling needs (it has ${entries.map((x) => x.name).join(", ")})`);
  return e;
}

function noise(shape: readonly number[], seed: number, call: number, key: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: "f32", shape, data: Float32Array.from(randomNormal(seed, call, key, n)) };
}

/** The entry calls one batch of `sampleImages` makes: the prior's steps, the decoder's steps and its x̂. */
export function sampleCalls(steps: number): number {
  return 2 * steps + 1;
}

/** The first call of batch `k` (from 0) of a sampling call whose batches make `calls` entry calls each. */
export function batchFirstCall(k: number, calls: number): number {
  return 1 + k * calls;
}

/** The name of a stage's step entry for `sampler`: `prior_step`, `decoder_ddim_step`, ... */
export function stepEntry<P extends string>(prefix: P, sampler: Sampler): `${P}_step` | `${P}_ddim_step` {
  return sampler === "ddpm" ? `${prefix}_step` : `${prefix}_ddim_step`;
}

/** The diffusion loop of one stage: state ← entry(state, ...condition, t_i, t_{i+1}) for i = 0..N−1. */
async function diffuse(session: Pick<Session, "run">, entry: EntrySignature, start: HostTensor, condition: readonly HostTensor[], options: SampleOptions, firstCall: number, total: number): Promise<HostTensor> {
  let state = start;
  for (let i = 0; i < options.steps; i++) {
    const values = [state, ...condition, scalar(1 - i / options.steps), scalar(1 - (i + 1) / options.steps)];
    const inputs = new Map(entry.inputs.map((spec, k) => [spec.name, values[k]!]));
    state = (await session.run(entry.name, inputs, firstCall + i)).get("result")!;
    options.onProgress?.(firstCall + i, total);
  }
  return state;
}

/** Samples z0 from the prior entries `<prefix>_step` (`prior`, or a stage-2 model's). */
export async function samplePrior(session: Pick<Session, "run">, entries: readonly EntrySignature[], options: SampleOptions, prefix = "prior", firstCall = 1, total = options.steps): Promise<HostTensor> {
  const entry = signature(entries, stepEntry(prefix, options.sampler));
  return diffuse(session, entry, noise(entry.inputs[0]!.shape, options.seed, firstCall, PRIOR_NOISE_KEY), [], options, firstCall, total);
}

/** Decodes z0 to images in [-1, 1] (unclamped). */
export async function decode(session: Pick<Session, "run">, entries: readonly EntrySignature[], z0: HostTensor, options: SampleOptions, firstCall = 1, total = options.steps + 1): Promise<HostTensor> {
  const entry = signature(entries, stepEntry("decoder", options.sampler));
  const xT = noise(entry.inputs[0]!.shape, options.seed, firstCall, DECODER_NOISE_KEY);
  const x = await diffuse(session, entry, xT, [z0], options, firstCall, total);
  const finish = signature(entries, "decoder_x_hat");
  const inputs = new Map(finish.inputs.map((spec, k) => [spec.name, [x, z0, scalar(0)][k]!]));
  const image = (await session.run(finish.name, inputs, firstCall + options.steps)).get("result")!;
  options.onProgress?.(firstCall + options.steps, total);
  return image;
}

/** Prior then decoder: images from noise, in `sampleCalls(steps)` entry calls from `firstCall`. */
export async function sampleImages(session: Pick<Session, "run">, entries: readonly EntrySignature[], options: SampleOptions, firstCall = 1, total = sampleCalls(options.steps)): Promise<{ z0: HostTensor; images: HostTensor }> {
  const z0 = await samplePrior(session, entries, options, "prior", firstCall, total);
  const images = await decode(session, entries, z0, options, firstCall + options.steps, total);
  return { z0, images };
}
