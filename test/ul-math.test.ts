// The Unified Latents prior loss computed by the interpreter, against its closed form.
//
// ul_tiny's prior predicts v with a read-out layer initialised to zero, so at initialisation v̂ = 0 and
// ε̂ = σ·z_t. Then ε − ε̂ = α·(α·ε − σ·z), whose squared norm has expectation α²·(α²·D + σ²·‖z‖²) over ε. With
// the linear schedule λ(t) = λ0 + (λmin − λ0)·t the weight ½·(−dλ/dt) turns the expectation over t into an
// integral over λ, and with α² = s(λ), σ² = s(−λ) (s the logistic sigmoid):
//   ∫ s(λ)² dλ = softplus(λ) − s(λ),   ∫ s(λ)·s(−λ) dλ = s(λ),
// so E[prior ELBO term] = ½·[D·(softplus(λ) − s(λ)) + ‖z‖²·s(λ)] from λmin to λ0. The terminal KL is exact.
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
