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
#   stage2      6. UL against KL-VAE latents at a matched rate, and 7. one stage against two (needs sweep's runs)
#   channels    8. ul_small's latent channels, SEEDS per channel count
#   legacy      sections 1-3 (measured with the v-predicting decoder, which the models no longer have)
#   PARTS="small" STEPS_SMALL=7000 bash scripts/experiments.sh
# Every stage-1 run of a part is measured by fd() (Fréchet distances, reconstructions' classes); every stage-2 run
# by `ulc eval --classifier`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${STEPS_TINY:=3000}" "${STEPS_SWEEP:=2000}" "${STEPS_VAE:=2000}" "${STEPS_BASE:=2000}" "${STEPS_CLASSIFIER:=1500}"
: "${SWEEP:=1.5 3 6}" "${BIASES:=4}" "${KL_WEIGHT:=0.01}" "${SWEEP_WIDTH:=256}"
: "${PARTS:=classifier small sweep stage2 channels}"
: "${STEPS_SMALL:=7000}" "${BATCH_SMALL:=8}" "${STEPS_C:=2000}" "${BATCH_C:=32}" "${CS:=1.3 10 3 1.5 6 2.1}" "${SEEDS:=0 1 2}"
: "${FD_N:=1000}" "${SEEDS_SMALL_MORE:=1}"
# UL's loss factor : the VAE's kl_weight whose KL matches UL's rate at STEPS_C (by hand: 0.4 gave 4.9 nats against
# UL's 5.2 at c = 1.5; 0.1 gave 23.0 against 21.6 at c = 10). Stage-2 base models train STEPS_BASE steps.
: "${VAE_PAIRS:=1.5:0.4 10:0.1}" "${PRIOR_SIZE:=Width=256 Depth=3}"
: "${ZCS:=2 4 8 16 32}" "${STEPS_Z:=3000}" "${BATCH_Z:=16}"
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

# fd RUN: the classifier's label of each reconstruction against its original's, and Fréchet distances of samples
# and of reconstructions (FD_N each, 50 DDPM steps per stage) against the first FD_N test images, and between those and the next FD_N test images (the floor a perfect model would
# score at this sample size), on the classifier's features; writes RUN/fd.json. (`ulc eval` reports no
# reconstruction FD, and fails on ul_small's 32x32 images against the 28x28 classifier: this crops the centre.)
fd() {
  measured "$RUNS/$1/fd.json" "$RUNS/$1" || node scripts/experiments/fd.mjs "$RUNS/$1" "$RUNS/classifier" "$FD_N" 50
}

# sweep_run C S: the loss-factor sweep's run for C and seed S, trained and measured (stage 2 needs its latents).
sweep_run() {
  local run="lf/c$1-s$2"
  train "$run" "$STEPS_C" models/ul_tiny.ul --batch "$BATCH_C" --set loss_factor="$1" --seed "$2"
  measured "$RUNS/$run/eval.json" "$RUNS/$run" || ulc eval "$RUNS/$run" --n 10000 >/dev/null
  fd "$run"
}

# stage2 NAME STAGE1 SEED ARGS...: a base model (models/ul_tiny_base.ul) on a stage-1 run's frozen latents, and
# the Fréchet distance of its samples (base model, then the stage-1 decoder).
stage2() {
  local run="stage2/$1" from=$2 seed=$3
  shift 3
  train "$run" "$STEPS_BASE" models/ul_tiny_base.ul --latents-from "$RUNS/$from" --seed "$seed" "$@"
  measured "$RUNS/$run/eval.json" "$RUNS/$run" || ulc eval "$RUNS/$run" --classifier "$RUNS/classifier" >/dev/null
}

[[ -n ${SKIP_BUILD:-} ]] || npm run build >/dev/null

# The classifier whose features the Fréchet distances use.
if part classifier || part small || part sweep || part stage2 || part channels || part legacy; then
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
    for s in $SEEDS; do sweep_run "$c" "$s"; done
    s0=${SEEDS%% *}
    mkdir -p "$DOCS/lf"
    [[ -f $DOCS/lf/samples-c$c.png ]] || ulc sample "$RUNS/lf/c$c-s$s0" --n 64 --steps 100 -o "$DOCS/lf/samples-c$c.png"
    cp "$RUNS/lf/c$c-s$s0/eval-reconstructions.png" "$DOCS/lf/reconstructions-c$c.png"
  done
  mkdir -p "$DOCS/lf"
  node scripts/experiments/sweep-table.mjs "$RUNS/lf" c c > "$DOCS/lf/table.md"
  node scripts/experiments/sweep-plot.mjs "$RUNS/lf" c "loss factor c" "$DOCS/lf/sweep.svg"
fi

# 6. UL latents against KL-VAE latents at a matched rate: each stage-1 run gets the same stage-2 base model.
# 7. One stage against two: the jointly trained prior's samples (sweep's fd.json) against base models trained
#    afterwards on the frozen latents, one of the prior's size and the larger default.
if part stage2; then
  for pair in $VAE_PAIRS; do
    IFS=: read -r c k <<<"$pair"
    for s in $SEEDS; do
      sweep_run "$c" "$s"
      run="vae/k$k-s$s"
      train "$run" "$STEPS_C" models/vae_tiny.ul --batch "$BATCH_C" --set kl_weight="$k" --seed "$s"
      measured "$RUNS/$run/eval.json" "$RUNS/$run" || ulc eval "$RUNS/$run" --n 10000 >/dev/null
      fd "$run"
      stage2 "ul-c$c-s$s" "lf/c$c-s$s" "$s"
      stage2 "vae-k$k-s$s" "$run" "$s"
      binds=()
      for b in $PRIOR_SIZE; do binds+=(--bind "$b"); done
      stage2 "ul-c$c-s$s-prior-size" "lf/c$c-s$s" "$s" "${binds[@]}"
    done
  done
  mkdir -p "$DOCS/stage2"
  node scripts/experiments/stage2-table.mjs "$RUNS" "$VAE_PAIRS" "$SEEDS" > "$DOCS/stage2/table.md"
  for pair in $VAE_PAIRS; do
    IFS=: read -r c k <<<"$pair"
    s0=${SEEDS%% *}
    for name in "ul-c$c-s$s0" "vae-k$k-s$s0" "ul-c$c-s$s0-prior-size"; do
      cp "$RUNS/stage2/$name/eval-samples.png" "$DOCS/stage2/samples-$name.png"
    done
    cp "$RUNS/vae/k$k-s$s0/eval-reconstructions.png" "$DOCS/stage2/reconstructions-vae-k$k.png"
  done
fi

# 8. ul_small's latent channels Zc at loss factor 1.5, SEEDS each (seed-major, so that a stopped invocation leaves
# whole seeds of the sweep); 64 samples of each Zc's first seed.
if part channels; then
  for s in $SEEDS; do
    for z in $ZCS; do
      run="channels/z$z-s$s"
      train "$run" "$STEPS_Z" models/ul_small.ul --batch "$BATCH_Z" --bind Zc="$z" --seed "$s"
      measured "$RUNS/$run/eval.json" "$RUNS/$run" || ulc eval "$RUNS/$run" --n 10000 >/dev/null
      fd "$run"
    done
  done
  mkdir -p "$DOCS/channels"
  s0=${SEEDS%% *}
  for z in $ZCS; do
    [[ -f $DOCS/channels/samples-z$z.png ]] || ulc sample "$RUNS/channels/z$z-s$s0" --n 64 --steps 100 -o "$DOCS/channels/samples-z$z.png"
    cp "$RUNS/channels/z$z-s$s0/eval-reconstructions.png" "$DOCS/channels/reconstructions-z$z.png"
  done
  node scripts/experiments/sweep-table.mjs "$RUNS/channels" z "latent channels" > "$DOCS/channels/table.md"
  node scripts/experiments/sweep-plot.mjs "$RUNS/channels" z "latent channels Zc" "$DOCS/channels/sweep.svg"
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
