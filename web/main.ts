// The page: ul_tiny's generated bindings on the browser's WebGPU. It loads the built Program and a checkpoint,
// samples images with a progress bar and shows them as a grid, and trains live on Fashion-MNIST while drawing
// the loss. Query parameters point elsewhere: ?checkpoint=URL (default checkpoint.safetensors; without one the
// model keeps its initial parameters) and ?data=URL (an IDX image file, default Fashion-MNIST's training split).
import { UlTiny } from "@model/ul_tiny.js";
import { imageGrid, openDevice, tensor, WebGpuUnavailableError } from "ulc/runtime";
import { batch, fetchIdxImages, type Images } from "./data.js";

/** The decay `ulc train` folds the parameters into their moving average with. */
const EMA_DECAY = 0.999;

const query = new URLSearchParams(location.search);
const checkpointUrl = query.get("checkpoint") ?? "checkpoint.safetensors";
const dataUrl = query.get("data") ?? "data/train-images-idx3-ubyte.gz";

function element<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

function say(id: string, text: string, error = false): void {
  const p = element(id);
  p.textContent = text;
  p.classList.toggle("error", error);
}

/** Runs `task` with every button disabled (the model runs one thing at a time); a failure is shown in `statusId`. */
async function exclusive(statusId: string, task: () => Promise<void>): Promise<void> {
  const buttons = [...document.querySelectorAll("button")];
  for (const b of buttons) b.disabled = true;
  try {
    await task();
  } catch (e) {
    say(statusId, `Failed: ${(e as Error).message}`, true);
    console.error(e);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

function drawGrid(canvas: HTMLCanvasElement, images: { data: Float32Array; shape: readonly number[] }): void {
  const grid = imageGrid(images.data, images.shape);
  canvas.width = grid.width;
  canvas.height = grid.height;
  const rgba = new ImageData(grid.width, grid.height);
  for (let i = 0; i < grid.width * grid.height; i++) {
    const at = i * grid.channels;
    rgba.data.set(grid.channels === 1 ? [grid.pixels[at]!, grid.pixels[at]!, grid.pixels[at]!, 255] : [...grid.pixels.subarray(at, at + 3), 255], 4 * i);
  }
  canvas.getContext("2d")!.putImageData(rgba, 0, 0);
}

function drawCurve(canvas: HTMLCanvasElement, values: readonly number[], label: string): void {
  const ctx = canvas.getContext("2d")!;
  const { width, height } = canvas;
  const pad = { left: 56, right: 12, top: 12, bottom: 24 };
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#555";
  if (values.length === 0) return;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || Math.abs(hi) || 1;
  const x = (i: number) => pad.left + (values.length === 1 ? 0 : (i / (values.length - 1)) * (width - pad.left - pad.right));
  const y = (v: number) => pad.top + (1 - (v - lo) / span) * (height - pad.top - pad.bottom);
  ctx.fillText(hi.toPrecision(4), 4, pad.top + 4);
  ctx.fillText(lo.toPrecision(4), 4, height - pad.bottom);
  ctx.fillText(`${label}, ${values.length} step${values.length === 1 ? "" : "s"}`, pad.left, height - 6);
  ctx.strokeStyle = "#1565c0";
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
  ctx.stroke();
  for (const [i, v] of values.entries()) ctx.fillRect(x(i) - 2, y(v) - 2, 4, 4);
}

async function main(): Promise<void> {
  let device: GPUDevice;
  try {
    ({ device } = await openDevice({ label: "ulc page" }));
  } catch (e) {
    if (!(e instanceof WebGpuUnavailableError)) throw e;
    say("status", `This browser cannot run the model: it has no WebGPU (${e.message}). Try a current Chrome or Edge, or enable WebGPU in your browser's settings.`, true);
    return;
  }
  const model = await UlTiny.create(device);
  const response = await fetch(checkpointUrl);
  let origin = `no checkpoint at ${checkpointUrl}, so its initial parameters`;
  let ema = false;
  if (response.ok) {
    ({ ema } = await model.loadCheckpoint(new Uint8Array(await response.arrayBuffer())));
    origin = `the parameters of ${checkpointUrl} at step ${model.step}`;
  }
  // Like `ulc sample`: the parameters' moving average, when the checkpoint keeps one.
  model.useEma(ema);
  say("status", `${model.manifest.model} (batch ${UlTiny.bindings.B}) on WebGPU, with ${origin}${ema ? " (their moving average)" : ""}.`);
  element("sampling").hidden = false;
  element("training").hidden = false;

  const progress = element<HTMLProgressElement>("sample-progress");
  element<HTMLFormElement>("sample-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const n = Number(form.get("n"));
    const options = { steps: Number(form.get("steps")), sampler: form.get("sampler") as "ddpm" | "ddim", seed: Number(form.get("seed")) };
    void exclusive("sample-status", async () => {
      say("sample-status", `Sampling ${n} images…`);
      progress.value = 0;
      const started = performance.now();
      const images = await model.sample(n, { ...options, onProgress: (done, total) => (progress.value = done / total) });
      drawGrid(element("grid"), images);
      say("sample-status", `${n} images (${options.sampler}, ${options.steps} steps, seed ${options.seed}) in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    });
  });

  let images: Images | undefined;
  const losses: number[] = [];
  element<HTMLFormElement>("train-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const steps = Number(new FormData(event.target as HTMLFormElement).get("steps"));
    void exclusive("train-status", async () => {
      images ??= await fetchIdxImages(dataUrl).catch((e: Error) => {
        throw new Error(`no training images (${e.message}); serve Fashion-MNIST's train-images-idx3-ubyte.gz there, or give ?data=URL`);
      });
      // A train step must see the raw parameters; sampling goes back to their average, which each step updates.
      model.useEma(false);
      try {
        for (let i = 0; i < steps; i++) {
          const x = tensor(UlTiny.inputs.fit.x, batch(images, model.step, UlTiny.bindings.B));
          const { loss, bpp } = await model.fit(x);
          if (ema) await model.updateEma(EMA_DECAY);
          losses.push(loss);
          drawCurve(element("loss"), losses, "loss (nats per image)");
          say("train-status", `Step ${model.step}: loss ${loss.toFixed(2)}, ${bpp.toFixed(4)} bits per pixel (${i + 1} of ${steps}).`);
        }
      } finally {
        model.useEma(ema);
      }
    });
  });
}

main().catch((e: Error) => {
  say("status", `Failed: ${e.message}`, true);
  console.error(e);
});
