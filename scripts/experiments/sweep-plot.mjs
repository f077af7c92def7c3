// A stage-1 sweep as an SVG: one panel per metric against the swept setting (log axis), each seed a grey dot,
// mean ± sd a red bar.
// Usage: node sweep-plot.mjs DIR PREFIX XLABEL OUT.svg   (runs as for sweep-table.mjs)
import { writeFileSync } from "node:fs";
import { meanSd, sweepRuns } from "./runs.mjs";

const [dir, prefix, xlabel, out] = process.argv.slice(2);
const rows = sweepRuns(dir, prefix);
const panels = [["bpp", "bits/pixel (held out)"], ["psnr", "PSNR (dB, 256 images)"], ["racc", "reconstructions in their original's class (%)"],
  ["rfd", "reconstruction FD"], ["sfd", "sample FD"]];
const W = 300, H = 220, M = { l: 55, r: 15, t: 28, b: 36 };
const xs = [...new Set(rows.map((r) => r.x))];
const lx0 = Math.log(Math.min(...xs) / 1.1), lx1 = Math.log(Math.max(...xs) * 1.1);
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W * panels.length}" height="${H}" font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n`;
panels.forEach(([k, title], p) => {
  const ox = p * W, vals = rows.map((r) => r[k]);
  let y0 = Math.min(...vals), y1 = Math.max(...vals);
  const pad = (y1 - y0) * 0.1 || 1;
  y0 -= pad;
  y1 += pad;
  const X = (x) => ox + M.l + ((Math.log(x) - lx0) / (lx1 - lx0)) * (W - M.l - M.r);
  const Y = (v) => M.t + (1 - (v - y0) / (y1 - y0)) * (H - M.t - M.b);
  svg += `<text x="${ox + W / 2}" y="16" text-anchor="middle">${title}</text>\n`;
  svg += `<line x1="${ox + M.l}" y1="${H - M.b}" x2="${ox + W - M.r}" y2="${H - M.b}" stroke="black"/><line x1="${ox + M.l}" y1="${M.t}" x2="${ox + M.l}" y2="${H - M.b}" stroke="black"/>\n`;
  for (const x of xs) svg += `<text x="${X(x)}" y="${H - M.b + 14}" text-anchor="middle">${x}</text>\n`;
  svg += `<text x="${ox + W / 2}" y="${H - 4}" text-anchor="middle">${xlabel}</text>\n`;
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    svg += `<text x="${ox + M.l - 4}" y="${Y(v) + 4}" text-anchor="end">${k === "bpp" ? v.toFixed(4) : v.toFixed(1)}</text>\n`;
  }
  const means = [];
  for (const x of xs) {
    const seeds = rows.filter((r) => r.x === x).map((r) => r[k]);
    const [m, sd] = meanSd(seeds).map((v) => (Number.isNaN(v) ? 0 : v));
    means.push([X(x), Y(m)]);
    for (const v of seeds) svg += `<circle cx="${X(x) + 6}" cy="${Y(v)}" r="2" fill="#999"/>\n`;
    svg += `<line x1="${X(x)}" y1="${Y(m - sd)}" x2="${X(x)}" y2="${Y(m + sd)}" stroke="#c33" stroke-width="2"/><circle cx="${X(x)}" cy="${Y(m)}" r="3.5" fill="#c33"/>\n`;
  }
  svg += `<polyline points="${means.map((q) => q.join(",")).join(" ")}" fill="none" stroke="#c33" stroke-opacity="0.5"/>\n`;
});
writeFileSync(out, svg + "</svg>\n");
