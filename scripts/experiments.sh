#!/usr/bin/env bash
# The experiments of docs/results.md, end to end: every run, evaluation and picture. Each step skips what an
# earlier invocation finished (a run's checkpoint at its final step, an eval.json or fd.json measured at that
# step), so a stopped invocation resumes where it was. Step counts are environment variables, e.g.
#   STEPS_C=1000 SEEDS="0 1" bash scripts/experiments.sh
#   PARTS=legacy STEPS_TINY=3000 STEPS_SWEEP=2000 STEPS_VAE=2000 STEPS_BASE=2000 bash scripts/experiments.sh
# SKIP_BUILD=1 uses the dist/ already built.
# Runs go to runs/exp/ (not committed); pictures and eval.json files are copied to docs/results/.
#
# PARTS picks the sections (default: the ones measured with today's models, "classifier small sweep"):
#   classifier  the classifier whose features the Fréchet distances use
#   small       4. ul_small (the convolutional model) against ul_tiny at 4,000 steps
#   sweep       5. the loss-factor sweep on ul_tiny, SEEDS per loss factor
#   legacy      sections 1-3 (measured with the v-predicting decoder, which the models no longer have)
#   PARTS="small" STEPS_SMALL=7000 bash scripts/experiments.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${STEPS_TINY:=3000}" "${STEPS_SWEEP:=2000}" "${STEPS_VAE:=2000}" "${STEPS_BASE:=2000}" "${STEPS_CLASSIFIER:=1500}"
: "${SWEEP:=1.5 3 6}" "${BIASES:=4}" "${KL_WEIGHT:=0.01}" "${SWEEP_WIDTH:=256}"
: "${PARTS:=classifier small sweep}"
: "${STEPS_SMALL:=7000}" "${BATCH_SMALL:=8}" "${STEPS_C:=2000}" "${BATCH_C:=32}" "${CS:=1.3 10 3 1.5 6 2.1}" "${SEEDS:=0 1 2}"
: "${FD_N:=1000}" "${SEEDS_SMALL_MORE:=1}"
RUNS=runs/exp
DOCS=docs/results
ulc() { node bin/ulc.js "$@"; }
mkdir -p "$RUNS" "$DOCS"

# train RUN STEPS ARGS...: trains (or resumes) until STEPS.
train() {
  local run=$1 steps=$2
  shift 2
  if [[ -f $RUNS/$run/run.json ]]; then
    ulc train "${@:1:1}" --steps "$steps" --out "$RUNS/$run" --resume
  else
    ulc train "$@" --steps "$steps" --out "$RUNS/$run"
  fi
}

evaluate() {
  local run=$1
  shift
  measured "$RUNS/$run/eval.json" "$RUNS/$run" || ulc eval "$RUNS/$run" "$@"
  mkdir -p "$DOCS/$run"
  cp "$RUNS/$run/eval.json" "$RUNS/$run/loss.svg" "$DOCS/$run/"
  for f in eval-reconstructions.png eval-samples.png; do [[ -f $RUNS/$run/$f ]] && cp "$RUNS/$run/$f" "$DOCS/$run/"; done
  return 0
}

part() { [[ " $PARTS " == *" $1 "* ]]; }

# measured FILE RUN: FILE exists and measured RUN at the step of its last checkpoint (a longer run is remeasured).
measured() {
  [[ -f $1 ]] && node -e 'const fs = require("fs"); const at = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).step;
    const lines = fs.readFileSync(process.argv[2] + "/metrics.jsonl", "utf8").trim().split("\n");
    process.exit(at === JSON.parse(lines[lines.length - 1]).step ? 0 : 1)' "$1" "$2"
}

cat > "$RUNS/lf-table.mjs" <<'EOF'
// The loss-factor sweep as a markdown table: mean ± sd (sample sd, n-1) over seeds per loss factor, then every run.
// Usage: node lf-table.mjs DIR   (DIR holds cC-sS/ run directories with eval.json and fd.json)
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
const dir = process.argv[2];
const rows = [];
for (const name of readdirSync(dir)) {
  const m = /^c([\d.]+)-s(\d+)$/.exec(name);
  if (!m || !existsSync(join(dir, name, "eval.json")) || !existsSync(join(dir, name, "fd.json"))) continue;
  const ev = JSON.parse(readFileSync(join(dir, name, "eval.json"), "utf8"));
  const fd = JSON.parse(readFileSync(join(dir, name, "fd.json"), "utf8"));
  rows.push({ c: Number(m[1]), seed: Number(m[2]), step: ev.step, bpp: ev.heldOut.bpp, prior: ev.heldOut.prior_loss, dec: ev.heldOut.decoder_loss,
    psnr: ev.psnr, rpsnr: fd.reconPsnr, rfd: fd.reconFd, racc: fd.reconAccuracy * 100, sfd: fd.sampleFd, floor: fd.realVsReal });
}
rows.sort((a, b) => a.c - b.c || a.seed - b.seed);
const keys = [["bpp", "bits/pixel", 4], ["prior", "prior loss (nats/image)", 2], ["dec", "decoder loss (nats/image)", 1], ["psnr", "PSNR, 256 images (dB)", 2],
  ["rpsnr", "PSNR, 1,000 images (dB)", 2], ["rfd", "reconstruction FD", 2], ["racc", "reconstructions classified as their original (%)", 1], ["sfd", "sample FD", 2]];
const fmt = (x, d) => (d === 4 ? x.toPrecision(3) : x.toFixed(d));
const stat = (xs) => { const m = xs.reduce((a, b) => a + b, 0) / xs.length; const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : NaN; return [m, sd]; };
console.log(`| c | seeds | ${keys.map((k) => k[1]).join(" | ")} |`);
console.log(`| --- | --- | ${keys.map(() => "---").join(" | ")} |`);
for (const c of [...new Set(rows.map((r) => r.c))]) {
  const rs = rows.filter((r) => r.c === c);
  console.log(`| ${c} | ${rs.map((r) => r.seed).join(", ")} | ${keys.map(([k, , d]) => { const [m, sd] = stat(rs.map((r) => r[k])); return `${fmt(m, d)} ± ${fmt(sd, d)}`; }).join(" | ")} |`);
}
console.log(`\nEvery run (steps: ${[...new Set(rows.map((r) => r.step))].join(", ")}; the FD floor is test images against other test images, same count):\n`);
console.log(`| c | seed | ${keys.map((k) => k[1]).join(" | ")} | FD floor |`);
console.log(`| --- | --- | ${keys.map(() => "---").join(" | ")} | --- |`);
for (const r of rows) console.log(`| ${r.c} | ${r.seed} | ${keys.map(([k, , d]) => fmt(r[k], d)).join(" | ")} | ${r.floor.toFixed(2)} |`);
EOF

cat > "$RUNS/lf-plot.mjs" <<'EOF'
// The loss-factor sweep as an SVG: one panel per metric against c (log axis), each seed a dot, mean ± sd a bar.
// Usage: node lf-plot.mjs DIR OUT.svg
import { readdirSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
const [dir, out] = process.argv.slice(2);
const rows = [];
for (const name of readdirSync(dir)) {
  const m = /^c([\d.]+)-s(\d+)$/.exec(name);
  if (!m || !existsSync(join(dir, name, "eval.json")) || !existsSync(join(dir, name, "fd.json"))) continue;
  const ev = JSON.parse(readFileSync(join(dir, name, "eval.json"), "utf8")), fd = JSON.parse(readFileSync(join(dir, name, "fd.json"), "utf8"));
  rows.push({ c: Number(m[1]), bpp: ev.heldOut.bpp, psnr: ev.psnr, racc: fd.reconAccuracy * 100, rfd: fd.reconFd, sfd: fd.sampleFd });
}
const panels = [["bpp", "bits/pixel (held out)"], ["psnr", "PSNR (dB, 256 images)"], ["racc", "reconstructions in their original's class (%)"], ["rfd", "reconstruction FD"], ["sfd", "sample FD"]];
const W = 300, H = 220, M = { l: 55, r: 15, t: 28, b: 36 };
const cs = [...new Set(rows.map((r) => r.c))].sort((a, b) => a - b);
const lx0 = Math.log(1.2), lx1 = Math.log(11);
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W * panels.length}" height="${H}" font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n`;
panels.forEach(([k, title], p) => {
  const ox = p * W, vals = rows.map((r) => r[k]);
  let y0 = Math.min(...vals), y1 = Math.max(...vals); const pad = (y1 - y0) * 0.1 || 1; y0 -= pad; y1 += pad;
  const X = (c) => ox + M.l + ((Math.log(c) - lx0) / (lx1 - lx0)) * (W - M.l - M.r);
  const Y = (v) => M.t + (1 - (v - y0) / (y1 - y0)) * (H - M.t - M.b);
  svg += `<text x="${ox + W / 2}" y="16" text-anchor="middle">${title}</text>\n`;
  svg += `<line x1="${ox + M.l}" y1="${H - M.b}" x2="${ox + W - M.r}" y2="${H - M.b}" stroke="black"/><line x1="${ox + M.l}" y1="${M.t}" x2="${ox + M.l}" y2="${H - M.b}" stroke="black"/>\n`;
  for (const c of cs) svg += `<text x="${X(c)}" y="${H - M.b + 14}" text-anchor="middle">${c}</text>\n`;
  svg += `<text x="${ox + W / 2}" y="${H - 4}" text-anchor="middle">loss factor c</text>\n`;
  for (let i = 0; i <= 4; i++) { const v = y0 + ((y1 - y0) * i) / 4; svg += `<text x="${ox + M.l - 4}" y="${Y(v) + 4}" text-anchor="end">${k === "bpp" ? v.toFixed(4) : v.toFixed(1)}</text>\n`; }
  const means = [];
  for (const c of cs) {
    const xs = rows.filter((r) => r.c === c).map((r) => r[k]);
    const m = xs.reduce((a, b) => a + b, 0) / xs.length, sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
    means.push([X(c), Y(m)]);
    for (const x of xs) svg += `<circle cx="${X(c) + 6}" cy="${Y(x)}" r="2" fill="#999"/>\n`;
    svg += `<line x1="${X(c)}" y1="${Y(m - sd)}" x2="${X(c)}" y2="${Y(m + sd)}" stroke="#c33" stroke-width="2"/><circle cx="${X(c)}" cy="${Y(m)}" r="3.5" fill="#c33"/>\n`;
  }
  svg += `<polyline points="${means.map((p) => p.join(",")).join(" ")}" fill="none" stroke="#c33" stroke-opacity="0.5"/>\n`;
});
writeFileSync(out, svg + "</svg>\n");
EOF

# fd RUN: the classifier's label of each reconstruction against its original's, and Fréchet distances of samples and of reconstructions (FD_N each, 50 DDPM steps per stage) against the
# first FD_N test images, and between those and the next FD_N test images (the floor a perfect model would
# score at this sample size), on the classifier's features; writes RUN/fd.json. (`ulc eval` reports no
# reconstruction FD, and fails on ul_small's 32x32 images against the 28x28 classifier: this crops the centre.)
fd() {
  measured "$RUNS/$1/fd.json" "$RUNS/$1" || node "$RUNS/fd.mjs" "$RUNS/$1" "$RUNS/classifier" "$FD_N" 50
}
cat > "$RUNS/fd.mjs" <<'EOF'
// Fréchet distances of a UL run on the classifier's features: samples (prior then decoder) and reconstructions
// (encode -> z0 -> decoder), each against test images; images larger than the classifier's input are
// center-cropped (ul_small's 32x32 canvas has 2 pixels of constant padding per side). Writes RUN/fd.json.
// Usage: node fd.mjs RUN CLASSIFIER N [STEPS]   (run from the repository root)
import { join, resolve } from "node:path";
import { writeFileSync } from "node:fs";
const root = process.cwd();
const imp = (p) => import(resolve(root, p));
const { loadRun, imageSampler } = await imp("dist/cli/sample.js");
const { loadImages } = await imp("dist/train/data.js");
const { inputLayout, batchOf } = await imp("dist/train/batches.js");
const { entryOutputs, featureDistance, reconstructions, samples, meanPsnr } = await imp("dist/train/evaluate.js");
const { sampleCalls } = await imp("dist/runtime/sampler.js");
const [dir, clfDir, nArg, stepsArg] = process.argv.slice(2);
const n = Number(nArg), steps = Number(stepsArg ?? 50), batch = 64, seed = 0;
const io = { stdout: process.stdout, stderr: process.stderr, env: process.env };
const run = await loadRun(dir, { batch, seed, ema: true }, io, "fd");
const clf = await loadRun(clfDir, { batch, seed, ema: true }, io, "fd");
if (typeof run === "number" || typeof clf === "number") process.exit(3);
const set = loadImages(run.config.data, "test");
const fEntry = clf.program.entries.find((e) => e.name === "features");
const spec = fEntry.inputs[0];
const [, C, H, W] = spec.shape;
// crop [count, C, h, w] images to C x H x W (centre)
function crop(data, count, h, w) {
  if (h === H && w === W) return data;
  const out = new Float32Array(count * C * H * W), py = (h - H) / 2, px = (w - W) / 2;
  for (let i = 0; i < count; i++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++)
    out[((i * C + c) * H + y) * W + x] = data[((i * C + c) * h + y + py) * w + x + px];
  return out;
}
async function features(images, count, entry = "features") {
  const per = C * H * W;
  return entryOutputs(clf.opened.session, entry, (indices) => {
    const data = new Float32Array(batch * per);
    indices.forEach((k, i) => data.set(images.subarray(k * per, (k + 1) * per), i * per));
    return new Map([[spec.name, { dtype: "f32", shape: spec.shape, data }]]);
  }, count, batch, 0);
}
const clfLayout = inputLayout(fEntry, set);
const realFeat = (first, count) => entryOutputs(clf.opened.session, "features", (idx) => batchOf(set, clfLayout, idx.map((i) => (i + first) % set.count)), count, clfLayout.batch, 0);
const t0 = Date.now();
const fr = await realFeat(0, n);
const fr2 = await realFeat(n, n); // a disjoint set of test images: the floor
const dim = fr.length / n;
const report = { run: dir, step: run.step, classifier: clfDir, n, steps, realVsReal: featureDistance(fr, fr2, dim) };
// reconstructions
const layout = inputLayout(run.program.entries.find((e) => e.name === "encode"), set);
const [, , h, w] = layout.image.shape;
const rec = await reconstructions(run.opened.session, run.program.entries, set, layout, n, { steps, sampler: "ddpm", seed });
report.reconPsnr = meanPsnr(rec.real, rec.fake, n);
const recCropped = crop(rec.fake, n, h, w);
report.reconFd = featureDistance(fr, await features(recCropped, n), dim);
// The classifier's label for each reconstruction against the test label of its original, and for the originals.
const agree = (logits) => { const k = logits.length / n; let hits = 0; for (let i = 0; i < n; i++) { let best = 0; for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j; if (best === set.labels[i]) hits++; } return hits / n; };
report.reconAccuracy = agree(await features(recCropped, n, "logits"));
report.realAccuracy = agree(await features(crop(rec.real, n, h, w), n, "logits"));
process.stderr.write(`recon done ${(Date.now() - t0) / 1000}s\n`);
// samples
const sampler = await imageSampler(run, batch, { steps, sampler: "ddpm", seed, ema: true }, io, "fd");
const fakes = await samples(n, batch, sampleCalls(steps), (first) => sampler.sample(seed, first));
report.sampleFd = featureDistance(fr, await features(crop(fakes.data, n, h, w), n), dim);
report.seconds = (Date.now() - t0) / 1000;
writeFileSync(join(dir, "fd.json"), JSON.stringify(report, null, 2) + "\n");
console.log(JSON.stringify(report));
run.opened.close(); clf.opened.close();
EOF

[[ -n ${SKIP_BUILD:-} ]] || npm run build >/dev/null

# The classifier whose features the Fréchet distances use.
if part classifier || part small || part sweep || part legacy; then
  train classifier "$STEPS_CLASSIFIER" models/classifier.ul
  evaluate classifier
fi

# 4. The convolutional model, ul_small, against ul_tiny (x-prediction, the README's main job at 4,000 steps).
if part small; then
  train ul_small "$STEPS_SMALL" models/ul_small.ul --batch "$BATCH_SMALL"
  evaluate ul_small --n 10000
  fd ul_small
  [[ -f $DOCS/ul_small/samples.png ]] || ulc sample "$RUNS/ul_small" --n 64 --steps 100 -o "$DOCS/ul_small/samples.png"
  cp "$RUNS/ul_small/fd.json" "$DOCS/ul_small/"
  train tiny-x4000 4000 models/ul_tiny.ul --batch 32
  evaluate tiny-x4000 --n 10000 --classifier "$RUNS/classifier"
  fd tiny-x4000
  cp "$RUNS/tiny-x4000/fd.json" "$DOCS/tiny-x4000/"
  [[ -f $DOCS/tiny-x4000/samples.png ]] || ulc sample "$RUNS/tiny-x4000" --n 64 --steps 100 -o "$DOCS/tiny-x4000/samples.png"
  # More seeds of both (seed 0 is the runs above): eval.json and fd.json only.
  for s in $SEEDS_SMALL_MORE; do
    for m in tiny-x4000:ul_tiny:4000:32 ul_small:ul_small:"$STEPS_SMALL":"$BATCH_SMALL"; do
      IFS=: read -r name model steps batch <<<"$m"
      run="$name-s$s"
      train "$run" "$steps" "models/$model.ul" --batch "$batch" --seed "$s"
      measured "$RUNS/$run/eval.json" "$RUNS/$run" || ulc eval "$RUNS/$run" --n 10000 >/dev/null
      fd "$run"
      mkdir -p "$DOCS/$run"
      cp "$RUNS/$run/eval.json" "$RUNS/$run/fd.json" "$DOCS/$run/"
    done
  done
fi

# 5. The loss factor c on ul_tiny (width 512, batch 32, as the README's main job), SEEDS seeds each, all at
# STEPS_C steps; then 64 samples of each c's first seed.
if part sweep; then
  for c in $CS; do
    for s in $SEEDS; do
      run="lf/c$c-s$s"
      train "$run" "$STEPS_C" models/ul_tiny.ul --batch "$BATCH_C" --set loss_factor="$c" --seed "$s"
      measured "$RUNS/$run/eval.json" "$RUNS/$run" || ulc eval "$RUNS/$run" --n 10000 >/dev/null
      fd "$run"
    done
    s0=${SEEDS%% *}
    mkdir -p "$DOCS/lf"
    [[ -f $DOCS/lf/samples-c$c.png ]] || ulc sample "$RUNS/lf/c$c-s$s0" --n 64 --steps 100 -o "$DOCS/lf/samples-c$c.png"
    cp "$RUNS/lf/c$c-s$s0/eval-reconstructions.png" "$DOCS/lf/reconstructions-c$c.png"
  done
  mkdir -p "$DOCS/lf"
  node "$RUNS/lf-table.mjs" "$RUNS/lf" > "$DOCS/lf/table.md"
  node "$RUNS/lf-plot.mjs" "$RUNS/lf" "$DOCS/lf/sweep.svg"
fi

part legacy || exit 0

# 1. ul_tiny long enough to draw garments: bits/pixel, PSNR, Fréchet distance, samples.
train tiny "$STEPS_TINY" models/ul_tiny.ul
evaluate tiny --classifier "$RUNS/classifier"
ulc sample "$RUNS/tiny" --n 64 --steps 100 -o "$DOCS/tiny/samples.png"

# 2. The loss-factor sweep, at a smaller width.
for c in $SWEEP; do
  train "c$c" "$STEPS_SWEEP" models/ul_tiny.ul --bind Width="$SWEEP_WIDTH" --set loss_factor="$c"
  evaluate "c$c" --classifier "$RUNS/classifier"
done

# The sweep's bits/pixel and decoder loss over training, one line per loss factor.
sweep_runs=()
for c in $SWEEP; do sweep_runs+=("$RUNS/c$c"); done
ulc plot "${sweep_runs[@]}" --metric bpp --metric decoder_loss --log -o "$DOCS/sweep.svg"

# 2b. The decoder's sigmoid bias b at c = 1.5: a larger b trains the decoder at lower noise levels too.
for b in $BIASES; do
  train "c1.5-b$b" "$STEPS_SWEEP" models/ul_tiny.ul --bind Width="$SWEEP_WIDTH" --set sigmoid_bias="$b"
  evaluate "c1.5-b$b" --classifier "$RUNS/classifier"
  ulc sample "$RUNS/c1.5-b$b" --n 64 --steps 100 -o "$DOCS/c1.5-b$b/samples.png"
done

# 2c. How much of the sweep's differences is noise (another seed), and a longer warm-up, both at c = 1.5.
train c1.5-seed1 "$STEPS_SWEEP" models/ul_tiny.ul --bind Width="$SWEEP_WIDTH" --seed 1
evaluate c1.5-seed1 --classifier "$RUNS/classifier"
train c1.5-w1000 "$STEPS_SWEEP" models/ul_tiny.ul --bind Width="$SWEEP_WIDTH" --set prior_warmup=1000
evaluate c1.5-w1000 --classifier "$RUNS/classifier"

# 3. VAE latents against UL latents: the same base model on each, sample quality by Fréchet distance.
train vae "$STEPS_VAE" models/vae_tiny.ul --bind Width="$SWEEP_WIDTH" --set kl_weight="$KL_WEIGHT"
evaluate vae
train base-vae "$STEPS_BASE" models/ul_tiny_base.ul --latents-from "$RUNS/vae"
evaluate base-vae --classifier "$RUNS/classifier"
train base-ul "$STEPS_BASE" models/ul_tiny_base.ul --latents-from "$RUNS/c1.5"
evaluate base-ul --classifier "$RUNS/classifier"
