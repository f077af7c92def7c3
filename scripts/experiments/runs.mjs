// What the experiment tables and plots share: a sweep's run directories read into rows, and mean ± sd over seeds.
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

export const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));

/** Mean and sample standard deviation (n − 1; NaN for a single value). */
export function meanSd(xs) {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : NaN;
  return [m, sd];
}

/** `x ± sd` with `digits` decimals (digits 4: three significant digits, for bits/pixel). */
export const fmt = (x, digits) => (digits === 4 ? x.toPrecision(3) : x.toFixed(digits));
export const fmtMeanSd = (xs, digits) => meanSd(xs).map((v) => fmt(v, digits)).join(" ± ");

/** The measured columns of a stage-1 run (eval.json and fd.json), with their headings and decimals. */
export const STAGE1_COLUMNS = [["bpp", "bits/pixel", 4], ["prior", "prior loss (nats/image)", 2], ["dec", "decoder loss (nats/image)", 1],
  ["psnr", "PSNR, 256 images (dB)", 2], ["rpsnr", "PSNR, 1,000 images (dB)", 2], ["rfd", "reconstruction FD", 2],
  ["racc", "reconstructions classified as their original (%)", 1], ["sfd", "sample FD", 2]];

/** A stage-1 run's measurements, or undefined until both eval.json and fd.json exist. */
export function stage1Row(dir) {
  if (!existsSync(join(dir, "eval.json")) || !existsSync(join(dir, "fd.json"))) return undefined;
  const ev = readJson(join(dir, "eval.json")), fd = readJson(join(dir, "fd.json"));
  return { step: ev.step, bpp: ev.heldOut.bpp, prior: ev.heldOut.prior_loss ?? ev.heldOut.kl, dec: ev.heldOut.decoder_loss, psnr: ev.psnr,
    rpsnr: fd.reconPsnr, rfd: fd.reconFd, racc: fd.reconAccuracy * 100, sfd: fd.sampleFd, floor: fd.realVsReal };
}

/** The measured runs of a sweep: directories named `${prefix}${x}-s${seed}` under `dir`, sorted by x then seed. */
export function sweepRuns(dir, prefix) {
  const pattern = new RegExp(`^${prefix}([\\d.]+)-s(\\d+)$`);
  const rows = [];
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    const m = pattern.exec(name);
    const row = m && stage1Row(join(dir, name));
    if (row) rows.push({ x: Number(m[1]), seed: Number(m[2]), ...row });
  }
  return rows.sort((a, b) => a.x - b.x || a.seed - b.seed);
}
