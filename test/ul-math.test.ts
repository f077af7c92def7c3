// The Unified Latents prior and decoder losses computed by the interpreter, against their closed forms.
//
// ul_tiny's prior predicts v with a read-out layer initialised to zero, so at initialisation v̂ = 0 and
// ε̂ = σ·z_t. Then ε − ε̂ = α·(α·ε − σ·z), whose squared norm has expectation α²·(α²·D + σ²·‖z‖²) over ε. With
// the linear schedule λ(t) = λ0 + (λmin − λ0)·t the weight ½·(−dλ/dt) turns the expectation over t into an
// integral over λ, and with α² = s(λ), σ² = s(−λ) (s the logistic sigmoid):
//   ∫ s(λ)² dλ = softplus(λ) − s(λ),   ∫ s(λ)·s(−λ) dλ = s(λ),
// so E[prior ELBO term] = ½·[D·(softplus(λ) − s(λ)) + ‖z‖²·s(λ)] from λmin to λ0. The terminal KL is exact.
//
// ul_tiny's decoder predicts x, with a read-out initialised to zero: x̂ = 0, so ε − ε̂ = −(α/σ)·x and its weighted
// term is ½·(−dλ/dt)·s(b − λ)·e^λ·‖x‖² whatever ε. With s(b − λ)·e^λ = e^b·s(λ − b) and ∫ s = softplus, the
// expectation over t is ½·‖x‖²·e^b·[softplus(λ − b)] from λmin to λmax.
import path from "node:path";
import { describe, expect, test } from "vitest";
import { lowerProgram } from "../compiler/lower.js";
import { diskHost } from "../dsl/loader.js";
import { ReferenceSession } from "../runtime/reference.js";
import type { Tensor } from "../runtime/tensor.js";

const LAMBDA0 = 5;
const LAMBDA_MIN = -10;
const D = 16;
const B = 1024;
const RUNS = 12;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

function expectedPriorElbo(zNorm2: number): number {
  const antiderivative = (l: number) => 0.5 * (D * (softplus(l) - sigmoid(l)) + zNorm2 * sigmoid(l));
  return antiderivative(LAMBDA0) - antiderivative(LAMBDA_MIN);
}

function expectedKl(z: readonly number[]): number {
  const a2 = sigmoid(LAMBDA_MIN);
  const s2 = sigmoid(-LAMBDA_MIN);
  return 0.5 * z.reduce((acc, zi) => acc + a2 * zi * zi + s2 - Math.log(s2) - 1, 0);
}

// A model that exposes ul_tiny's prior per example, imported from the real model file.
const PROBE = path.resolve("models/_prior_probe.ul");
const PROBE_SOURCE = `
from "./ul_tiny.ul" import LatentPrior, latent, lambda0
from std.diffusion import terminal_kl

model PriorProbe {
  hyper lambda_min = ${LAMBDA_MIN}.0
  prior: LatentPrior<latent, 64, 2>

  entry terms<B>(z: f32[B, latent]) -> { elbo: f32[B], kl: f32[B] } {
    { elbo: prior.loss(z, rand([1]), randn([B, latent]), lambda_min), kl: terminal_kl(z, lambda_min) }
  }
}
`;
const host = { readFile: (p: string) => (p === PROBE ? PROBE_SOURCE : diskHost.readFile(p)) };

describe("UL prior ELBO against its closed form", () => {
  const program = lowerProgram(PROBE, { bindings: { B }, host });
  const session = new ReferenceSession(program, { precision: "f64", seed: 11 });

  test.each([
    ["a small latent", 0.3],
    ["a unit-scale latent", 1],
    ["a large latent", 3],
  ])("%s: the Monte Carlo estimate is within 4 standard errors of the exact expectation", (_what, scale) => {
    // The same z in every row: rows differ only in t (low-discrepancy over the batch) and ε. Because t is
    // stratified, rows are not independent; the standard error comes from RUNS independent batch means.
    const z = Array.from({ length: D }, (_, i) => scale * Math.cos(1.7 * i + 0.3));
    const batch: Tensor = { dtype: "f32", shape: [B, D], data: Float64Array.from({ length: B * D }, (_, k) => z[k % D]!) };
    const means: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const out = session.run("terms", new Map([["z", batch]]), r);
      means.push([...out.get("elbo")!.data].reduce((a, b) => a + b, 0) / B);
      // The KL term has no randomness: it must match to rounding.
      if (r === 0) for (const kl of out.get("kl")!.data) expect(kl).toBeCloseTo(expectedKl(z), 9);
    }
    const mean = means.reduce((a, b) => a + b, 0) / RUNS;
    const se = Math.sqrt(means.reduce((a, b) => a + (b - mean) ** 2, 0) / (RUNS - 1) / RUNS);
    const exact = expectedPriorElbo(z.reduce((a, b) => a + b * b, 0));
    expect(Math.abs(mean - exact)).toBeLessThan(4 * se);
    // Power: the estimate is tight enough to notice a latent dimension too many or too few (≈ 2 nats).
    expect(4 * se).toBeLessThan(1);
  });
});

// ul_tiny's decoder, and the x-space ELBO term beside the ε-space one it stands for.
const DECODER_PROBE = path.resolve("models/_decoder_probe.ul");
const BIAS = 1.5;
const LAMBDA_MAX = 10;
const DECODER_PROBE_SOURCE = `
from "./ul_tiny.ul" import PixelDecoder, latent
from std.diffusion import noise, eps_from_x, elbo_term, elbo_term_x

model DecoderProbe {
  decoder: PixelDecoder<latent, 32, 1>

  entry loss<B>(x: f32[B, 1, 28, 28], z0: f32[B, latent]) -> f32[B] {
    decoder.loss(x, z0, rand([1]), randn([B, 1, 28, 28]), ${LAMBDA_MAX}.0, ${LAMBDA_MIN}.0, ${BIAS})
  }

  entry terms<B>(x: f32[B, 8], x_hat: f32[B, 8], l: f32[B], w: f32[B]) -> { in_x: f32[B], in_eps: f32[B] } {
    let eps = randn([B, 8])
    { in_x: elbo_term_x(x, x_hat, l, w), in_eps: elbo_term(eps, eps_from_x(noise(x, l, eps), x_hat, l), w) }
  }
}
`;
const decoderHost = { readFile: (p: string) => (p === DECODER_PROBE ? DECODER_PROBE_SOURCE : diskHost.readFile(p)) };

describe("the decoder's x-prediction ELBO", () => {
  const program = lowerProgram(DECODER_PROBE, { bindings: { B }, host: decoderHost });
  const session = new ReferenceSession(program, { precision: "f64", seed: 12 });

  test("at initialisation (x̂ = 0) its estimate is within 4 standard errors of the closed form", () => {
    // Rows differ only in t, stratified over the batch by one u; the batch means of RUNS draws of u are independent.
    const x = Array.from({ length: 784 }, (_, i) => Math.sin(0.37 * i));
    const norm2 = x.reduce((a, b) => a + b * b, 0);
    const inputs = new Map<string, Tensor>([
      ["x", { dtype: "f32", shape: [B, 1, 28, 28], data: Float64Array.from({ length: B * 784 }, (_, k) => x[k % 784]!) }],
      ["z0", { dtype: "f32", shape: [B, D], data: new Float64Array(B * D) }],
    ]);
    const means = Array.from({ length: RUNS }, (_, r) => [...session.run("loss", inputs, r).get("result")!.data].reduce((a, b) => a + b, 0) / B);
    const mean = means.reduce((a, b) => a + b, 0) / RUNS;
    const se = Math.sqrt(means.reduce((a, b) => a + (b - mean) ** 2, 0) / (RUNS - 1) / RUNS);
    const exact = 0.5 * norm2 * Math.exp(BIAS) * (softplus(LAMBDA_MAX - BIAS) - softplus(LAMBDA_MIN - BIAS));
    expect(Math.abs(mean - exact)).toBeLessThan(4 * se);
    // Power: a weight of e^(λ ± 0.05) in place of e^λ (5% off) would fail.
    expect(4 * se).toBeLessThan(0.05 * exact);
  });

  test("in x it is the ε-space term ½·w·‖ε − ε̂‖² with ε̂ = (z_t − α·x̂)/σ, λ from −10 to 10", () => {
    const n = 8;
    const values = (f: (k: number) => number, count: number) => Float64Array.from({ length: count }, (_, k) => f(k));
    const out = session.run(
      "terms",
      new Map<string, Tensor>([
        ["x", { dtype: "f32", shape: [B, n], data: values((k) => Math.cos(k), B * n) }],
        ["x_hat", { dtype: "f32", shape: [B, n], data: values((k) => Math.cos(k) + 0.3 * Math.sin(2.1 * k), B * n) }],
        ["l", { dtype: "f32", shape: [B], data: values((k) => -10 + (20 * k) / (B - 1), B) }],
        ["w", { dtype: "f32", shape: [B], data: values((k) => 1 + (k % 3), B) }],
      ]),
      0,
    );
    const inX = out.get("in_x")!.data, inEps = out.get("in_eps")!.data;
    for (let i = 0; i < B; i++) expect(inX[i]! / inEps[i]!).toBeCloseTo(1, 8);
  });
});
