// The stage-2 experiments as markdown tables, mean ± sd over seeds:
//   1. UL latents against KL-VAE latents at a matched rate, the same stage-2 base model on each;
//   2. one stage (the prior trained with the encoder) against two (a base model on the frozen latents).
// Usage: node stage2-table.mjs RUNS "C:K ..." "SEEDS"   (each C:K pairs UL's loss factor C with the VAE's kl_weight K
// chosen to match its rate; runs as scripts/experiments.sh names them)
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fmtMeanSd, readJson, stage1Row } from "./runs.mjs";

const [runs, pairsArg, seedsArg] = process.argv.slice(2);
const pairs = pairsArg.trim().split(/\s+/).map((p) => p.split(":"));
const seeds = seedsArg.trim().split(/\s+/);
/** A stage-2 run's sample FD, or undefined until measured. */
const stage2Fd = (name) => { const p = join(runs, "stage2", name, "eval.json"); return existsSync(p) ? readJson(p).frechet?.distance : undefined; };
/** `f(seed)` over the seeds where every value is measured; the cell, with the seed count when some are missing. */
function cell(f, digits) {
  const xs = seeds.map(f).filter((v) => v !== undefined && v.every((x) => x !== undefined)).map((v) => v.reduce((a, b) => a - b));
  if (xs.length === 0) return "not measured";
  return fmtMeanSd(xs, digits) + (xs.length < seeds.length ? ` (${xs.length} seeds)` : "");
}
const ul = (c, s) => stage1Row(join(runs, "lf", `c${c}-s${s}`));
const vae = (k, s) => stage1Row(join(runs, "vae", `k${k}-s${s}`));

console.log("| latents | rate (nats/image) | bits/pixel | PSNR, 1,000 images (dB) | reconstructions in their original's class (%) | reconstruction FD | stage-2 sample FD |");
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const [c, k] of pairs) {
  for (const [label, row, base] of [[`UL, c = ${c}`, (s) => ul(c, s), (s) => `ul-c${c}-s${s}`], [`VAE, kl_weight = ${k}`, (s) => vae(k, s), (s) => `vae-k${k}-s${s}`]]) {
    const col = (key, d) => cell((s) => [row(s)?.[key]], d);
    console.log(`| ${label} | ${col("prior", 2)} | ${col("bpp", 4)} | ${col("rpsnr", 2)} | ${col("racc", 1)} | ${col("rfd", 2)} | ${cell((s) => [stage2Fd(base(s))], 2)} |`);
  }
  console.log(`| VAE − UL, paired by seed | ${cell((s) => [vae(k, s)?.prior, ul(c, s)?.prior], 2)} | | ${cell((s) => [vae(k, s)?.rpsnr, ul(c, s)?.rpsnr], 2)} | ${cell((s) => [vae(k, s)?.racc, ul(c, s)?.racc], 1)} | ${cell((s) => [vae(k, s)?.rfd, ul(c, s)?.rfd], 2)} | ${cell((s) => [stage2Fd(`vae-k${k}-s${s}`), stage2Fd(`ul-c${c}-s${s}`)], 2)} |`);
}
console.log("\n| UL latents | one stage: the prior's samples | two stages: a base model of the prior's size | two stages: the larger base model | prior's size − one stage | larger − one stage |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const [c] of pairs) {
  const one = (s) => ul(c, s)?.sfd, small = (s) => stage2Fd(`ul-c${c}-s${s}-prior-size`), large = (s) => stage2Fd(`ul-c${c}-s${s}`);
  console.log(`| c = ${c} | ${cell((s) => [one(s)], 2)} | ${cell((s) => [small(s)], 2)} | ${cell((s) => [large(s)], 2)} | ${cell((s) => [small(s), one(s)], 2)} | ${cell((s) => [large(s), one(s)], 2)} |`);
}
