// Experimental: lane-select kernel for SIMD-CPU adapters.
import { openDevice } from "../dist/runtime/webgpu/device.js";
import { createStorageBuffer, uploadF32, uploadUniform, readF32 } from "../dist/runtime/webgpu/buffers.js";
const ctx = await openDevice();
const { device } = ctx;
const TM = Number(process.argv[2] ?? 8), TE = Number(process.argv[3] ?? 4), useSub = process.argv[4] === "sub";
const L = 8;
const R = [...Array(TM).keys()], E = [...Array(TE).keys()], J = [...Array(L).keys()];
const code = `
${useSub ? "enable subgroups;" : ""}
struct Dims { M: u32, N: u32, K: u32, batch: u32, sA: u32, sB: u32, sC: u32, pad: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(${L}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>${useSub ? ", @builtin(subgroup_invocation_id) sid: u32" : ""}) {
  let lane = ${useSub ? "sid" : "lid.x"};
  let M = dims.M; let N = dims.N; let K = dims.K;
  let row = wid.y * ${TM}u;
  let n0 = wid.x * ${TE * L}u;
  ${R.map(r => `let aRow${r} = min(row + ${r}u, M - 1u) * K;`).join("\n  ")}
  ${E.map(e => J.map(j => `let bc${e}_${j} = min(n0 + ${e * L + j}u, N - 1u);`).join(" ")).join("\n  ")}
  ${R.map(r => E.map(e => `var acc${r}_${e} = 0.0;`).join(" ")).join("\n  ")}
  for (var k = 0u; k < K; k++) {
    ${R.map(r => `let a${r} = A[aRow${r} + k];`).join(" ")}
    let bk = k * N;
    ${E.map(e => `var b${e} = B[bk + bc${e}_0];\n    ` + J.slice(1).map(j => `b${e} = select(b${e}, B[bk + bc${e}_${j}], lane == ${j}u);`).join(" ")).join("\n    ")}
    ${R.map(r => E.map(e => `acc${r}_${e} = fma(a${r}, b${e}, acc${r}_${e});`).join(" ")).join("\n    ")}
  }
  ${R.map(r => E.map(e => `if (row + ${r}u < M && n0 + ${e * L}u + lane < N) { C[(row + ${r}u) * N + n0 + ${e * L}u + lane] = acc${r}_${e}; }`).join("\n  ")).join("\n  ")}
}`;
const mod = device.createShaderModule({ code });
const info = await mod.getCompilationInfo(); for (const m of info.messages) console.log(m.type, m.lineNum, m.message);
const pipeline = await device.createComputePipelineAsync({ layout: "auto", compute: { module: mod, entryPoint: "main" } });
function ref(a, b, M, N, K) { const c = new Float64Array(M*N); for (let i=0;i<M;i++) for (let k=0;k<K;k++){ const x=a[i*K+k]; for (let j=0;j<N;j++) c[i*N+j]+=x*b[k*N+j]; } return c; }
async function run(M, N, K, time) {
  const a = Float32Array.from({length:M*K}, () => Math.random()-0.5), b = Float32Array.from({length:K*N}, () => Math.random()-0.5);
  const A = uploadF32(device, a), Bb = uploadF32(device, b), C = createStorageBuffer(device, M*N*4);
  const U = uploadUniform(device, Uint32Array.of(M,N,K,1,M*K,K*N,M*N,0));
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [U,A,Bb,C].map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const once = async () => { const t0 = performance.now(); const enc = device.createCommandEncoder(); const p = enc.beginComputePass(); p.setPipeline(pipeline); p.setBindGroup(0, bg); p.dispatchWorkgroups(Math.ceil(N/(TE*L)), Math.ceil(M/TM), 1); p.end(); device.queue.submit([enc.finish()]); await device.queue.onSubmittedWorkDone(); return performance.now()-t0; };
  if (!time) { await once(); const c = await readF32(device, C, M*N); const r = ref(a,b,M,N,K); let e=0; for (let i=0;i<r.length;i++) e=Math.max(e,Math.abs(r[i]-c[i])); return e; }
  await once(); const xs=[]; for (let i=0;i<5;i++) xs.push(await once()); xs.sort((x,y)=>x-y); return (2*M*N*K/xs[2]/1e6).toFixed(1);
}
console.log(`TM=${TM} TE=${TE} sub=${useSub}`, (await run(33, 70, 17, false)).toExponential(1), (await run(64,64,64,false)).toExponential(1), "GFLOP/s", await run(256,256,256,true), await run(512,512,512,true), await run(1024,1024,1024,true));
device.destroy();
