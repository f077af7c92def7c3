#!/usr/bin/env bash
# The experiments of docs/results.md, end to end: every run, evaluation and picture. Each step skips what an
# earlier invocation finished (a run's checkpoint at its final step, an eval.json), so a stopped invocation
# resumes where it was. Step counts are environment variables, so a quicker pass is possible:
#   STEPS_TINY=3000 STEPS_SWEEP=2000 STEPS_VAE=2000 STEPS_BASE=2000 STEPS_CLASSIFIER=1500 bash scripts/experiments.sh
# Runs go to runs/exp/ (not committed); pictures and eval.json files are copied to docs/results/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${STEPS_TINY:=3000}" "${STEPS_SWEEP:=2000}" "${STEPS_VAE:=2000}" "${STEPS_BASE:=2000}" "${STEPS_CLASSIFIER:=1500}"
: "${SWEEP:=1.5 3 6}" "${BIASES:=4}" "${KL_WEIGHT:=0.01}" "${SWEEP_WIDTH:=256}"
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
  [[ -f $RUNS/$run/eval.json ]] || ulc eval "$RUNS/$run" "$@"
  mkdir -p "$DOCS/$run"
  cp "$RUNS/$run/eval.json" "$RUNS/$run/loss.svg" "$DOCS/$run/"
  for f in eval-reconstructions.png eval-samples.png; do [[ -f $RUNS/$run/$f ]] && cp "$RUNS/$run/$f" "$DOCS/$run/"; done
  return 0
}

npm run build >/dev/null

# The classifier whose features the Fréchet distances use.
train classifier "$STEPS_CLASSIFIER" models/classifier.ul
evaluate classifier

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
