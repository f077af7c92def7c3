// Loss curves as SVG: one panel per metric, the raw per-step values in a light line and a moving average over
// them, with labelled axes. SVG keeps the text sharp and needs no rasteriser; browsers and GitHub show it.
import { join } from "node:path";
import { writeFileAtomic } from "./checkpoint.js";
import type { MetricsRow } from "./run.js";

const PANEL_W = 420;
const PANEL_H = 220;
const MARGIN = { left: 64, right: 16, top: 28, bottom: 40 };

/** About five round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function movingAverage(values: readonly number[], window: number): number[] {
  let sum = 0;
  return values.map((v, i) => {
    sum += v - (i >= window ? values[i - window]! : 0);
    return sum / Math.min(i + 1, window);
  });
}

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

function panel(rows: readonly MetricsRow[], metric: string, x0: number): string {
  const steps = rows.map((r) => r.step);
  const values = rows.map((r) => r[metric]!);
  const smooth = movingAverage(values, Math.max(1, Math.round(values.length / 40)));
  // The y range leaves out the first few percent of steps, whose large early losses would flatten the rest.
  const tail = values.slice(Math.floor(values.length * 0.03));
  const lo = Math.min(...tail, ...smooth), hi = Math.max(...tail);
  const [s0, s1] = [steps[0]!, Math.max(steps[steps.length - 1]!, steps[0]! + 1)];
  const w = PANEL_W - MARGIN.left - MARGIN.right, h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const yTicks = ticks(lo, hi);
  const [y0, y1] = [Math.min(lo, yTicks[0]!), Math.max(hi, yTicks[yTicks.length - 1]!)];
  const px = (s: number) => x0 + MARGIN.left + ((s - s0) / (s1 - s0)) * w;
  const py = (v: number) => MARGIN.top + h - ((Math.min(Math.max(v, y0), y1) - y0) / (y1 - y0 || 1)) * h;
  // At most ~1000 points a line: more are finer than the pixels and only make the file large.
  const stride = Math.max(1, Math.ceil(values.length / 1000));
  const line = (vs: readonly number[]) => vs.flatMap((v, i) => (i % stride === 0 || i === vs.length - 1 ? [`${px(steps[i]!).toFixed(1)},${py(v).toFixed(1)}`] : [])).join(" ");
  const parts = [
    `<text x="${x0 + PANEL_W / 2}" y="18" text-anchor="middle" font-weight="bold">${escape(metric)}</text>`,
    `<rect x="${x0 + MARGIN.left}" y="${MARGIN.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
    ...yTicks.map((t) => `<line x1="${x0 + MARGIN.left}" x2="${x0 + MARGIN.left + w}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/><text x="${x0 + MARGIN.left - 6}" y="${py(t) + 4}" text-anchor="end">${t}</text>`),
    ...ticks(s0, s1).map((t) => `<text x="${px(t)}" y="${MARGIN.top + h + 16}" text-anchor="middle">${t}</text>`),
    `<text x="${x0 + MARGIN.left + w / 2}" y="${PANEL_H - 6}" text-anchor="middle">step</text>`,
    `<polyline fill="none" stroke="#9ecae1" stroke-width="1" points="${line(values)}"/>`,
    `<polyline fill="none" stroke="#08519c" stroke-width="2" points="${line(smooth)}"/>`,
  ];
  return parts.join("\n");
}

/** The SVG of the metrics that are present, in this order. */
export function lossCurveSvg(rows: readonly MetricsRow[], title: string, metrics = ["loss", "bpp", "decoder_loss", "accuracy"]): string {
  const shown = metrics.filter((m) => rows.length > 0 && rows.every((r) => Number.isFinite(r[m])));
  const width = Math.max(1, shown.length) * PANEL_W;
  const body = shown.map((m, i) => panel(rows, m, i * PANEL_W)).join("\n");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${PANEL_H + 20}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<g transform="translate(0, 20)">${body || `<text x="20" y="40">no metrics yet</text>`}</g>`,
    `<text x="8" y="14" font-size="12">${escape(title)}: ${rows.length} steps (light: each step; dark: moving average)</text>`,
    `</svg>`,
    "",
  ].join("\n");
}

export async function writeLossCurve(dir: string, rows: readonly MetricsRow[], title: string): Promise<void> {
  writeFileAtomic(join(dir, "loss.svg"), lossCurveSvg(rows, title));
}
