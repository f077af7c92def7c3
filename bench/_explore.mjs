import { openDevice } from "../dist/runtime/webgpu/device.js";
import { matmulF32, prepareMatmul } from "../dist/runtime/webgpu/matmul.js";
import { createStorageBuffer, uploadF32 } from "../dist/runtime/webgpu/buffers.js";
const gpu = await openDevice();
const { device } = gpu;
console.log(gpu.adapterInfo.name);
function ref(a, b, M, N, K) { const c = new Float64Array(M*N); for (let i=0;i<M;i++) for (let k=0;k<K;k++){ const x=a[i*K+k]; for (let j=0;j<N;j++) c[i*N+j]+=x*b[k*N+j]; } return c; }
const tiles = JSON.parse(process.argv[2] ?? "null");
const check = async (tile, M, N, K) => {
  const a = Float32Array.from({length:M*K}, () => Math.random()-0.5), b = Float32Array.from({length:K*N}, () => Math.random()-0.5);
  const c = await matmulF32(device, a, b, {M,N,K}, tile);
  const r = ref(a,b,M,N,K); let err=0; for (let i=0;i<r.length;i++) err=Math.max(err, Math.abs(r[i]-c[i]));
  return err;
};
for (const tile of tiles) {
  const errs = [];
  for (const [M,N,K] of [[1,1,1],[7,33,5],[33,7,257],[64,64,64],[65,68,12],[5,8,8]]) errs.push((await check(tile,M,N,K)).toExponential(1));
  const times = [];
  for (const s of [256, 512, 1024]) {
    const data = new Float32Array(s*s).fill(0.5);
    const bufs = { a: uploadF32(device, data), b: uploadF32(device, data), c: createStorageBuffer(device, s*s*4) };
    const mm = await prepareMatmul(device, {M:s,N:s,K:s}, bufs, tile);
    const once = async () => { const t0 = performance.now(); mm.submit(); await device.queue.onSubmittedWorkDone(); return performance.now()-t0; };
    await once();
    const xs = []; for (let i=0;i<(s>=1024?3:5);i++) xs.push(await once()); xs.sort((a,b)=>a-b);
    times.push(`${s}: ${(2*s**3/xs[xs.length>>1]/1e6).toFixed(1)}`);
  }
  console.log(JSON.stringify(tile), errs.join(" "), "GFLOP/s", times.join("  "));
}
device.destroy();
