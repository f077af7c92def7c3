// The peers the WebGPU benchmarks run beside ours, on the same adapter: one GPU object for everyone (the peers
// find it as navigator.gpu and ask it for a high-performance adapter, as we do), and TensorFlow.js on its
// WebGPU backend.
import os from "node:os";

/** Dawn's GPU, exposed the way browser libraries expect it; returns it for our own device. */
export async function shareGpu(getGpu) {
  const { gpu } = await getGpu();
  const webgpu = await import("webgpu");
  Object.assign(globalThis, webgpu.globals); // GPUBufferUsage & co., which TF.js and jax-js expect as globals
  globalThis.navigator = { gpu, userAgent: `Node.js/${process.versions.node}`, hardwareConcurrency: os.cpus().length };
  return gpu;
}

/**
 * TF.js on WebGPU (after `shareGpu`). `submitEach` sets WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE = 1, so a timed op is
 * submitted at once, as ours is.
 */
export async function tfjsWebgpu({ submitEach = false } = {}) {
  const tf = await import("@tensorflow/tfjs");
  await import("@tensorflow/tfjs-backend-webgpu");
  if (submitEach) tf.env().set("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE", 1);
  if (!(await tf.setBackend("webgpu"))) throw new Error("tf.setBackend('webgpu') failed");
  await tf.ready();
  return tf;
}
