// The `ulc` command line. `main(argv, io)` parses the arguments with commander, runs a subcommand and
// returns the exit code (see EXIT in ./args.ts); it never calls process.exit, so tests run it in-process
// with captured streams. bin/ulc.js calls it with the real process.
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { EXIT, collectBinding, collectSetting, validateSourceFiles } from "./args.js";
import type { BuildCommandOptions } from "./build.js";
import type { CheckCommandOptions } from "./check.js";
import type { EvalCommandOptions } from "./eval.js";
import type { GradcheckCommandOptions } from "./gradcheck.js";
import type { PlotCommandOptions } from "./plot.js";
import type { SampleCommandOptions } from "./sample.js";
import type { TrainCommandOptions } from "./train.js";
import { processIo, type CliIo } from "./io.js";
import { packageInfo } from "./package.js";
import { CONTRACTION_PRECISIONS } from "../runtime/manifest.js";

/** The targets that train, sample and evaluate (train/run.ts, TargetChoice). */
const TARGETS = ["auto", "cpu", "cuda", "webgpu"];

/** --precision (compiler/passes/precision.ts; the default is train/run.ts's defaultPrecision). */
const PRECISION_HELP =
  "how matmuls and convolutions multiply f32, always accumulating in fp32: tf32 (operands rounded to 10 mantissa bits, as tensor cores do; the default on the cuda target), bf16 (operands rounded to bfloat16, 8 significant bits, as tensor cores' bf16 mma reads them) or fp32 (the default elsewhere)";

/** Builds the commander program; `finish` records a subcommand's exit code. */
export function buildProgram(io: CliIo, finish: (code: number) => void): Command {
  const program = new Command("ulc");
  program
    .description("Compiler for .ul model-graph files (the typed model language of Unified Latents).")
    .version(packageInfo().version, "-V, --version", "print the version of ulc")
    .helpOption("-h, --help", "show help")
    .helpCommand("help [command]", "show help for a command")
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      getOutHelpWidth: () => (io.stdout.isTTY && io.stdout.columns ? io.stdout.columns : 80),
      getErrHelpWidth: () => (io.stderr.isTTY && io.stderr.columns ? io.stderr.columns : 80),
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .showHelpAfterError("(run 'ulc --help' for usage)")
    .exitOverride();
  program.addHelpText(
    "after",
    "\nExit codes: 0 ok, 1 errors in the input, 2 usage error, 3 internal error, 4 training diverged, 5 the target device is unavailable.",
  );

  program
    .command("check")
    .summary("parse and type-check .ul files")
    .description("Parse and type-check .ul files and report every diagnostic (file:line:col, code, message).")
    .argument("<files...>", ".ul source files to check")
    .option("--json", "print { diagnostics, files } as JSON on stdout instead of text on stderr")
    .option(
      "--bind <NAME=INT>",
      "bind a generic dim or int left open on an entry, e.g. --bind B=64 (repeatable)",
      collectBinding,
    )
    .option("--color", "colour the diagnostics even when stderr is not a terminal")
    .option("--no-color", "never colour the diagnostics")
    .showHelpAfterError("(run 'ulc check --help' for usage)")
    .addHelpText(
      "after",
      "\nExamples:\n  ulc check models/ul_small.ul\n  ulc check --bind B=64 --json model.ul\n" +
        "\nExit codes: 0 no errors, 1 errors in the input, 2 usage error, 3 internal error.",
    )
    .action(async function (this: Command, paths: string[], options: CheckCommandOptions) {
      const { files, problems } = validateSourceFiles(paths);
      if (problems.length > 0) {
        this.error(problems.map((p) => `error: ${p}`).join("\n"), { exitCode: EXIT.usage, code: "ulc.badFile" });
      }
      // Loaded on use: the front end (chevrotain) takes ~0.5 s to import, which --help and usage errors skip.
      const { runCheck } = await import("./check.js");
      finish(runCheck(files, options, io));
    });

  program
    .command("build")
    .summary("compile a model: its graphs (--emit ir) or a Program (--target wgsl|cuda|cpu -o DIR)")
    .description("Check a model, bind its dims, and lower every entry to the graph IR (forward, and for train entries backward and the optimizer update); print the graphs, or fuse them into kernels and write a Program: for WGSL manifest.json and kernels/*.wgsl, for CUDA the .cu kernels, a C++ host runtime and a Makefile.")
    .argument("<file>", "the .ul file declaring the model")
    .option("--emit <what>", "ir: print the graphs; ts (with --target wgsl): write typed TypeScript bindings beside the Program", (v: string) => {
      if (v !== "ir" && v !== "ts") throw new InvalidArgumentError(`'${v}' cannot be emitted; the choices are ir and ts`);
      return v;
    })
    .option("--target <target>", "write a runnable Program to -o DIR: wgsl (WebGPU), cuda (.cu kernels, a C++ host runtime and a Makefile for nvcc) or cpu (C++ kernels, a host runtime and a Makefile for g++)", (v: string) => {
      if (v !== "wgsl" && v !== "cuda" && v !== "cpu") throw new InvalidArgumentError(`'${v}' is not a target; the choices are wgsl, cuda and cpu`);
      return v;
    })
    .option("--tile <kind>", "with --target wgsl: tile matmuls and convolutions for a gpu (default), a cpu (a software adapter such as lavapipe) or none", (v: string) => {
      if (v !== "gpu" && v !== "cpu" && v !== "none") throw new InvalidArgumentError(`'${v}' is not a tiling; the choices are gpu, cpu and none`);
      return v;
    })
    .option("--arch <sm_XX>", "with --target cuda: the GPU architecture the Makefile builds for (default sm_90, plus PTX for later GPUs)")
    .option("--precision <p>", PRECISION_HELP, choice("--precision", CONTRACTION_PRECISIONS))
    .option("--bind <NAME=INT>", "bind a generic dim, e.g. --bind B=64 (repeatable; every dim must be bound)", collectBinding)
    .option("--model <name>", "the model to build when the file declares several")
    .option("--entry <name>", "print only this entry's graph")
    .option("--stats", "also print, per entry, the op counts, fused kernels, library calls and planned memory (stderr)")
    .option("-o, --output <path>", "--emit: write to a file instead of stdout; --target: the directory to write")
    .showHelpAfterError("(run 'ulc build --help' for usage)")
    .addHelpText("after", "\nExamples:\n  ulc build models/ul_tiny.ul --emit ir --bind B=8 --entry fit\n  ulc build models/ul_small.ul --target wgsl --bind B=64 -o build/ul_small --stats\n  ulc build models/ul_small.ul --target cuda --bind B=64 -o build/ul_small_cuda && make -C build/ul_small_cuda\n  ulc build models/ul_small.ul --target cpu --bind B=8 -o build/ul_small_cpu && make -C build/ul_small_cpu\n  ulc build models/ul_tiny.ul --target wgsl --emit ts --bind B=8 -o web/model")
    .action(async function (this: Command, path: string, options: BuildCommandOptions) {
      const file = sourceFile(this, path);
      const { runBuild } = await import("./build.js");
      finish(await runBuild(file, options, io));
    });

  program
    .command("gradcheck")
    .summary("check a train entry's gradients against finite differences")
    .description(
      "Compare reverse-mode gradients of a train entry's loss with central finite differences along random directions, in float64, for every trained parameter. Prints the largest relative error per parameter; exits 1 naming the parameter and the seed on a mismatch. Points that straddle a kink of the loss (abs, maximum, relu) are retried at smaller steps, and a run no step avoids it in is named and not compared.",
    )
    .argument("<file>", "the .ul file declaring the model")
    .option("--entry <name>", "the train entry (default: the first)")
    .option("--model <name>", "the model, when the file declares several")
    .option("--runs <n>", "random directions per parameter", positiveInt("--runs"), 2)
    .option("--seed <s>", "the first run's seed (inputs, parameters, randomness, directions)", nonNegativeInt("--seed"), 0)
    .option("--bind <NAME=INT>", "bind a generic dim (dims left open default to 2)", collectBinding)
    .showHelpAfterError("(run 'ulc gradcheck --help' for usage)")
    .addHelpText("after", "\nExample:\n  ulc gradcheck models/ul_tiny.ul --runs 3 --seed 7")
    .action(async function (this: Command, path: string, options: GradcheckCommandOptions) {
      const file = sourceFile(this, path);
      const { runGradcheck } = await import("./gradcheck.js");
      finish(runGradcheck(file, options, io));
    });

  program
    .command("train")
    .summary("train a model on images (Fashion-MNIST by default), with checkpoints and exact resume")
    .description(
      "Train a model's train entry on an image data set. Writes RUN_DIR/run.json (what was asked), metrics.jsonl (every step), checkpoint.safetensors (atomically: a kill leaves the last good one), loss.svg. A NaN or Inf loss stops the run and keeps the last good checkpoint.",
    )
    .argument("<file>", "the .ul file declaring the model")
    .option("--data <data>", "fashion-mnist (Debian's dataset-fashion-mnist), a folder of IDX files or PNGs, an IDX image file, or arrays of examples: a .safetensors file with a tensor per entry input, or an .npy file for an entry with one input", "fashion-mnist")
    .option("--steps <n>", "train until this many optimizer steps in all", positiveInt("--steps"), 1000)
    .option("--batch <b>", "examples per step (binds the entry's B)", positiveInt("--batch"), 64)
    .option("--lr <x>", "the optimizer's learning rate (default: the model's)", positiveFloat("--lr"))
    .option("--seed <s>", "keys the batch order, the initial parameters and every random draw", nonNegativeInt("--seed"), 0)
    .option("--set <NAME=X>", "override a hyperparameter, e.g. --set loss_factor=2 (repeatable)", collectSetting)
    .option("--target <target>", "auto (a real GPU if there is one: CUDA, else WebGPU; the CPU otherwise), cpu, cuda, or webgpu (a GPU adapter, else software Vulkan)", choice("--target", TARGETS), "auto")
    .option("--precision <p>", `${PRECISION_HELP}; recorded in run.json, which sample, eval and --resume follow`, choice("--precision", CONTRACTION_PRECISIONS))
    .option("--out <dir>", "the run directory (default runs/MODEL)")
    .option("--resume", "continue the run in --out from its checkpoint, exactly as if it had not stopped")
    .option("--ema-decay <d>", "decay of the parameters' moving average, used for sampling and eval (warmed up: min(d, (1+step)/(10+step)))", fraction("--ema-decay"), 0.999)
    .option("--checkpoint-every <n>", "steps between checkpoints (and one at the end)", positiveInt("--checkpoint-every"), 100)
    .option("--entry <name>", "the train entry (default: the first)")
    .option("--model <name>", "the model, when the file declares several")
    .option("--bind <NAME=INT>", "bind a generic of the model, e.g. --bind Width=128 (repeatable)", collectBinding)
    .option("--latents-from <run>", "stage 2: train on the latents of this stage-1 run's training images (its encoder frozen)")
    .option("--ranks <n>", "data-parallel: run N processes under mpirun (Open MPI), each training its share of every --batch; or start ulc train with mpirun yourself", positiveInt("--ranks"))
    .showHelpAfterError("(run 'ulc train --help' for usage)")
    .addHelpText("after", "\nExamples:\n  ulc train models/ul_tiny.ul --steps 2000 --out runs/tiny\n  ulc train models/ul_tiny.ul --steps 4000 --out runs/tiny --resume\n  ulc train models/ul_tiny.ul --set loss_factor=2.1 --out runs/c2.1")
    .action(async function (this: Command, path: string, options: TrainCommandOptions) {
      const file = sourceFile(this, path);
      const given = new Set(this.options.map((o) => o.attributeName()).filter((k) => this.getOptionValueSource(k) === "cli"));
      const { runTrain } = await import("./train.js");
      finish(await runTrain(file, options, given, io, this.parent!.args.slice(this.parent!.args.indexOf("train") + 1)));
    });

  program
    .command("sample")
    .summary("sample images from a trained run into a PNG grid")
    .description("Load a run's checkpoint (its parameters' moving average unless --no-ema), sample the prior from noise to z0 and the decoder from noise to images, and write them as a PNG grid.")
    .argument("<run>", "a run directory written by ulc train")
    .option("--n <n>", "how many images", positiveInt("--n"), 64)
    .option("--steps <n>", "sampler steps for the prior and for the decoder", positiveInt("--steps"), 50)
    .option("--sampler <s>", "ddpm (ancestral) or ddim (deterministic)", choice("--sampler", ["ddpm", "ddim"]), "ddpm")
    .option("--seed <s>", "keys the starting noise and every step's noise", nonNegativeInt("--seed"), 0)
    .option("--no-ema", "use the raw parameters instead of their moving average")
    .option("--target <target>", "where to sample (default: the target the run trained on; checkpoints are the same on every target)", choice("--target", TARGETS))
    .requiredOption("-o, --output <png>", "the PNG file to write")
    .showHelpAfterError("(run 'ulc sample --help' for usage)")
    .addHelpText("after", "\nExample:\n  ulc sample runs/tiny --n 64 --steps 100 -o runs/tiny/samples.png")
    .action(async function (this: Command, dir: string, options: SampleCommandOptions) {
      const { runSample } = await import("./sample.js");
      finish(await runSample(dir, options, io));
    });

  program
    .command("eval")
    .summary("measure a trained run on the test split: bits/pixel, PSNR, Fréchet distance (or a classifier's accuracy)")
    .description(
      "Measure a run on the test split and write RUN_DIR/eval.json: held-out bits/pixel (the prior bound), reconstruction PSNR (encode, noise to z0, decoder sampling; or an autoencoder's reconstruct entry), and with --classifier the Fréchet distance between test images and samples on that classifier's features (an FID for Fashion-MNIST; our classifier, not Inception). A classifier run reports its test loss and accuracy.",
    )
    .argument("<run>", "a run directory written by ulc train")
    .option("--classifier <run>", "a trained classifier run (models/classifier.ul) for the Fréchet distance")
    .option("--n <n>", "test images for bits/pixel (or accuracy)", positiveInt("--n"), 10000)
    .option("--recon <n>", "test images to reconstruct for PSNR", positiveInt("--recon"), 256)
    .option("--fd-n <n>", "samples (and test images) for the Fréchet distance", positiveInt("--fd-n"), 1000)
    .option("--steps <n>", "sampler steps", positiveInt("--steps"), 50)
    .option("--sampler <s>", "ddpm or ddim", choice("--sampler", ["ddpm", "ddim"]), "ddpm")
    .option("--batch <b>", "examples per call", positiveInt("--batch"), 64)
    .option("--seed <s>", "keys the sampling noise", nonNegativeInt("--seed"), 0)
    .option("--no-ema", "use the raw parameters instead of their moving average")
    .option("--target <target>", "where to evaluate (default: the target the run trained on)", choice("--target", TARGETS))
    .showHelpAfterError("(run 'ulc eval --help' for usage)")
    .addHelpText("after", "\nExample:\n  ulc eval runs/tiny --classifier runs/classifier")
    .action(async function (this: Command, dir: string, options: EvalCommandOptions) {
      const { runEval } = await import("./eval.js");
      finish(await runEval(dir, options, io));
    });

  program
    .command("plot")
    .summary("draw several runs' metrics in one SVG, one panel per metric")
    .description(
      "Read the metrics.jsonl of each run directory and draw one panel per metric, with each run's moving average in its own colour, a legend of the runs, and the steps of all of them on the x axis. One run is drawn as ulc train's loss.svg: each step's value and the moving average.",
    )
    .argument("<runs...>", "run directories written by ulc train")
    .option("--metric <name>", "a metric to draw, one panel each, in this order (repeatable; default: every metric all the runs have)", metricName)
    .option("--label <text>", "the runs' names in the legend, in the runs' order: once per run or not at all (default: each directory's name)", (v: string, previous: string[] | undefined) => [...(previous ?? []), v])
    .option("--log", "logarithmic y axes, for metrics that span decades (values <= 0 are drawn at the smallest positive one)")
    .requiredOption("-o, --output <svg>", "the SVG file to write")
    .showHelpAfterError("(run 'ulc plot --help' for usage)")
    .addHelpText("after", "\nExamples:\n  ulc plot runs/exp/c1.5 runs/exp/c3 runs/exp/c6 --metric bpp --log -o sweep.svg\n  ulc plot runs/seed0 runs/seed1 --label 'seed 0' --label 'seed 1' -o seeds.svg")
    .action(async function (this: Command, dirs: string[], options: PlotCommandOptions) {
      const { runPlot } = await import("./plot.js");
      finish(runPlot(dirs, options, io));
    });

  program
    .command("lsp")
    .summary("the language server for editors: diagnostics, hover with shapes, definitions, completion")
    .description("Serve the Language Server Protocol over stdin and stdout for .ul files: diagnostics as you type (the codes and places of ulc check), hover with the dtype and shape of an expression, go to definition across imports and std, completion, document symbols. Editors start it; editor/vscode is a VS Code extension that does.")
    .option("--stdio", "talk over stdin and stdout (the only transport; accepted because clients pass it)")
    .action(async () => (await import("./lsp.js")).runLsp());

  return program;
}

/** The one .ul file a command takes, or a usage error naming what is wrong with it. */
function sourceFile(command: Command, path: string): string {
  const { files, problems } = validateSourceFiles([path]);
  if (problems.length > 0) command.error(problems.map((p) => `error: ${p}`).join("\n"), { exitCode: EXIT.usage, code: "ulc.badFile" });
  return files[0]!;
}

function positiveInt(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1) throw new InvalidArgumentError(`${flag} must be a positive integer, got '${v}'`);
    return n;
  };
}

function positiveFloat(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a positive number, got '${v}'`);
    return n;
  };
}

function fraction(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !(n >= 0 && n < 1)) throw new InvalidArgumentError(`${flag} must be a number in [0, 1), got '${v}'`);
    return n;
  };
}

function choice(flag: string, choices: readonly string[]) {
  return (v: string) => {
    if (!choices.includes(v)) throw new InvalidArgumentError(`${flag} must be one of ${choices.join(", ")}, got '${v}'`);
    return v;
  };
}

/** A repeatable --metric: a name from metrics.jsonl other than step, which is the x axis. */
function metricName(v: string, previous: string[] | undefined): string[] {
  if (v.trim() === "") throw new InvalidArgumentError("--metric needs a metric's name, such as bpp");
  if (v === "step") throw new InvalidArgumentError("step is the x axis of every panel, not a metric");
  return [...(previous ?? []), v];
}

function nonNegativeInt(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n > 0xffffffff) throw new InvalidArgumentError(`${flag} must be an integer from 0 to 4294967295, got '${v}'`);
    return n;
  };
}

/** Runs ulc with the arguments after the program name; resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end with 0; every commander complaint (unknown option or command, missing
      // argument, invalid option value, no command at all) is a usage error.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
    io.stderr.write(`ulc: internal error (this is a bug in ulc, please report it):\n${detail}\n`);
    return EXIT.internal;
  }
}
