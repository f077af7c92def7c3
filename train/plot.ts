// Metric curves as SVG: one panel per metric with labelled axes. One run is drawn as its raw per-step values in a
// light line and a moving average over them; several runs as one moving average each, in its own colour, with a
// legend. SVG keeps the text sharp and needs no rasteriser; browsers and GitHub show it.
import { join } from "node:path";
import { writeFileAtomic } from "./checkpoint.js";
import type { MetricsRow } from "./run.js";

const PANEL_W = 420;
const PANEL_H = 220;
const MARGIN = { left: 64, right: 16, top: 28, bottom: 40 };
const LEGEND_ROW_H = 16;
/** Tableau's ten colours (matplotlib's tab10): distinguishable from each other, and for most colour-blind readers. */
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/** One run's metrics, drawn under `label`. */
export interface Series {
  readonly label: string;
  readonly rows: readonly MetricsRow[];
}

export interface PlotOptions {
  /** The panels, in this order; those that some series does not have are left out. */
  readonly metrics?: readonly string[];
  /** Logarithmic y axes (values <= 0 are drawn at the panel's smallest positive value). */
  readonly log?: boolean;
}

/** Whether every row has a finite value of `metric`: what a panel needs to draw it. */
export function hasMetric(rows: readonly MetricsRow[], metric: string): boolean {
  return rows.length > 0 && rows.every((r) => Number.isFinite(r[metric]));
}

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

/**
 * A linear axis over [lo, hi] and its ticks. A constant metric (its moving average a few ulps off the value) gets room
 * around its value: it would have no ticks, and steps finer than the ulps would never reach hi.
 */
function linearAxis(lo: number, hi: number): { range: [number, number]; ticks: number[] } {
  const pad = hi - lo <= 1e-9 * Math.max(Math.abs(lo), Math.abs(hi)) ? Math.abs(hi) * 0.1 || 1 : 0;
  const t = ticks(lo - pad, hi + pad);
  return { range: [Math.min(lo - pad, t[0]!), Math.max(hi + pad, t[t.length - 1]!)], ticks: t };
}

/**
 * A logarithmic axis over [lo, hi] (both > 0): ticks at powers of ten, and at 2x and 5x them when the axis spans fewer
 * than three decades; the range widens to the nearest tick on each side, so that it always shows at least two.
 */
function logAxis(lo: number, hi: number): { range: [number, number]; ticks: number[] } {
  const [e0, e1] = [Math.floor(Math.log10(lo)), Math.ceil(Math.log10(hi))];
  const mantissas = e1 - e0 < 3 ? [1, 2, 5] : [1];
  const candidates: number[] = [];
  for (let e = e0 - 1; e <= e1 + 1; e++) for (const m of mantissas) candidates.push(Number((m * 10 ** e).toPrecision(12)));
  let i0 = candidates.findLastIndex((c) => c <= lo * (1 + 1e-9));
  let i1 = candidates.findIndex((c) => c >= hi * (1 - 1e-9));
  if (i0 === i1) [i0, i1] = [i0 - 1, i1 + 1];
  return { range: [candidates[i0]!, candidates[i1]!], ticks: candidates.slice(i0, i1 + 1) };
}

function tickLabel(t: number, log: boolean): string {
  return log && (t < 1e-3 || t >= 1e5) ? t.toExponential() : String(t);
}

/** The smallest and largest of the values, without spreading them into arguments (runs have ~10^5 steps). */
function extent(lists: readonly (readonly number[])[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const vs of lists) for (const v of vs) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  return [lo, hi];
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

/** The stroke of the i-th of several series: past the palette's ten colours they come round again, dashed. */
function stroke(i: number): string {
  return `stroke="${PALETTE[i % PALETTE.length]}"${i >= PALETTE.length ? ` stroke-dasharray="6 3"` : ""}`;
}

function panel(series: readonly Series[], metric: string, x0: number, logScale: boolean): string {
  const single = series.length === 1;
  const raw = series.map((s) => s.rows.map((r) => r[metric]!));
  // A log axis cannot show values <= 0; they are drawn at the panel's smallest positive value (linear if there is none).
  const [smallestPositive] = extent(raw.map((vs) => vs.filter((v) => v > 0)));
  const log = logScale && smallestPositive !== Infinity;
  const floor = log ? smallestPositive : -Infinity;
  const values = raw.map((vs) => vs.map((v) => Math.max(v, floor)));
  const smooth = values.map((vs) => movingAverage(vs, Math.max(1, Math.round(vs.length / 40))));
  // The y range leaves out the first few percent of each series' steps, whose large early losses would flatten the
  // rest; it covers the widest line drawn (the raw values of one run, the moving averages of several) and, from
  // below, every moving average whole.
  const widest = single ? values : smooth;
  const tails = widest.map((vs) => vs.slice(Math.floor(vs.length * 0.03)));
  const [tailLo, hi] = extent(tails);
  const lo = Math.min(tailLo, extent(smooth)[0]);
  const steps = series.map((s) => s.rows.map((r) => r.step));
  const [s0, last] = extent(steps.map((ss) => [ss[0]!, ss[ss.length - 1]!]));
  const s1 = Math.max(last, s0 + 1);
  const w = PANEL_W - MARGIN.left - MARGIN.right, h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const axis = log ? logAxis(lo, hi) : linearAxis(lo, hi);
  const scale = log ? Math.log10 : (v: number) => v;
  const [y0, y1] = axis.range.map(scale) as [number, number];
  const px = (s: number) => x0 + MARGIN.left + ((s - s0) / (s1 - s0)) * w;
  const py = (v: number) => MARGIN.top + h - ((Math.min(Math.max(scale(v), y0), y1) - y0) / (y1 - y0 || 1)) * h;
  const line = (stepsOf: readonly number[], vs: readonly number[]) => {
    // At most ~1000 points a line: more are finer than the pixels and only make the file large.
    const stride = Math.max(1, Math.ceil(vs.length / 1000));
    return vs.flatMap((v, i) => (i % stride === 0 || i === vs.length - 1 ? [`${px(stepsOf[i]!).toFixed(1)},${py(v).toFixed(1)}`] : [])).join(" ");
  };
  const lines = single
    ? [
        `<polyline fill="none" stroke="#9ecae1" stroke-width="1" points="${line(steps[0]!, values[0]!)}"/>`,
        `<polyline fill="none" stroke="#08519c" stroke-width="2" points="${line(steps[0]!, smooth[0]!)}"/>`,
      ]
    : smooth.map((vs, i) => `<polyline fill="none" ${stroke(i)} stroke-width="2" points="${line(steps[i]!, vs)}"/>`);
  const parts = [
    `<text x="${x0 + PANEL_W / 2}" y="18" text-anchor="middle" font-weight="bold">${escape(metric)}</text>`,
    `<rect x="${x0 + MARGIN.left}" y="${MARGIN.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
    ...axis.ticks.map((t) => `<line x1="${x0 + MARGIN.left}" x2="${x0 + MARGIN.left + w}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/><text x="${x0 + MARGIN.left - 6}" y="${py(t) + 4}" text-anchor="end">${tickLabel(t, log)}</text>`),
    ...ticks(s0, s1).map((t) => `<text x="${px(t)}" y="${MARGIN.top + h + 16}" text-anchor="middle">${t}</text>`),
    `<text x="${x0 + MARGIN.left + w / 2}" y="${PANEL_H - 6}" text-anchor="middle">step</text>`,
    ...lines,
  ];
  return parts.join("\n");
}

/** A swatch and the label of each series, in rows that wrap at `width`; and the height they take. */
function legend(series: readonly Series[], width: number, y0: number): { svg: string; height: number } {
  const items: string[] = [];
  let x = 8, y = y0;
  series.forEach((s, i) => {
    // Sans-serif at 11px is about 6.5px a character: close enough to lay the items out without measuring text.
    const itemW = 28 + s.label.length * 6.5 + 16;
    if (x > 8 && x + itemW > width) [x, y] = [8, y + LEGEND_ROW_H];
    items.push(`<line x1="${x}" x2="${x + 22}" y1="${y - 4}" y2="${y - 4}" ${stroke(i)} stroke-width="3"/><text x="${x + 28}" y="${y}">${escape(s.label)}</text>`);
    x += itemW;
  });
  return { svg: items.join("\n"), height: y - y0 + LEGEND_ROW_H };
}

/**
 * The SVG of the metrics every series has, in the order of `options.metrics`. One series is drawn as each step's
 * value and a moving average, several as one moving average each with a legend of their labels.
 */
export function lossCurveSvg(series: readonly Series[], title: string, options: PlotOptions = {}): string {
  const metrics = options.metrics ?? ["loss", "bpp", "decoder_loss", "accuracy"];
  const shown = metrics.filter((m) => series.length > 0 && series.every((s) => hasMetric(s.rows, m)));
  const single = series.length === 1;
  const heading = single ? `${title}: ${series[0]!.rows.length} steps (light: each step; dark: moving average)` : `${title} (moving averages)`;
  // Wide enough for the heading too (about 6.5px a character at 12px), which for many runs is longer than the panels.
  const width = Math.max(Math.max(1, shown.length) * PANEL_W, Math.ceil(16 + heading.length * 6.5));
  const key = single ? { svg: "", height: 0 } : legend(series, width, 32);
  const body = shown.map((m, i) => panel(series, m, i * PANEL_W, options.log ?? false)).join("\n");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${PANEL_H + 20 + key.height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<g transform="translate(0, ${20 + key.height})">${body || `<text x="20" y="40">no metrics yet</text>`}</g>`,
    `<text x="8" y="14" font-size="12">${escape(heading)}</text>`,
    ...(key.svg ? [key.svg] : []),
    `</svg>`,
    "",
  ].join("\n");
}

export async function writeLossCurve(dir: string, rows: readonly MetricsRow[], title: string): Promise<void> {
  writeFileAtomic(join(dir, "loss.svg"), lossCurveSvg([{ label: title, rows }], title));
}
