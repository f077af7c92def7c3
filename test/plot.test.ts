// `ulc plot` and the SVG drawing it shares with `ulc train`'s loss.svg (train/plot.ts): several runs as one moving
// average each with a legend, one run as raw values plus moving average, log axes, and every usage error. Runs are
// hand-written metrics.jsonl files in a temporary directory; nothing is trained.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { lossCurveSvg } from "../train/plot.js";
import { readMetrics, type MetricsRow } from "../train/run.js";
import { ulc } from "./support/cli.js";

interface Polyline {
  stroke: string;
  points: [number, number][];
}

interface Panel {
  metric: string;
  rect: { x: number; y: number; w: number; h: number };
  /** The y axis' tick labels (as numbers) and their heights. */
  yTicks: { value: number; y: number }[];
  lines: Polyline[];
}

/** The panels of an SVG drawn by train/plot.ts: everything from one bold panel title to the next. */
function panels(svg: string): Panel[] {
  return svg.split(`font-weight="bold">`).slice(1).map((chunk) => {
    const [x, y, w, h] = /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/.exec(chunk)!.slice(1).map(Number) as [number, number, number, number];
    return {
      metric: chunk.slice(0, chunk.indexOf("</text>")),
      rect: { x, y, w, h },
      yTicks: [...chunk.matchAll(/<text x="[\d.]+" y="([-\d.e]+)" text-anchor="end">([^<]+)<\/text>/g)].map((m) => ({ value: Number(m[2]), y: Number(m[1]) - 4 })),
      lines: [...chunk.matchAll(/<polyline fill="none" stroke="([^"]+)"[^>]*points="([^"]*)"/g)].map((m) => ({
        stroke: m[1]!,
        points: m[2]!.split(" ").map((p) => p.split(",").map(Number) as [number, number]),
      })),
    };
  });
}

/** The height a value is drawn at on a panel's linear y axis, from two of its ticks. */
function heightOf(panel: Panel, value: number): number {
  const [a, b] = [panel.yTicks[0]!, panel.yTicks[panel.yTicks.length - 1]!];
  return a.y + ((value - a.value) / (b.value - a.value)) * (b.y - a.y);
}

function inside(panel: Panel, [x, y]: [number, number]): boolean {
  const { rect } = panel;
  return x >= rect.x - 0.05 && x <= rect.x + rect.w + 0.05 && y >= rect.y - 0.05 && y <= rect.y + rect.h + 0.05;
}

const rowsOf = (n: number, f: (step: number) => Record<string, number>): MetricsRow[] => Array.from({ length: n }, (_, i) => ({ step: i + 1, ...f(i + 1) }));
/** A deterministic wobble in [-1, 1], so that the raw values are not already smooth. */
const wobble = (step: number) => Math.sin(step * 12.9898);

let dir: string;
const run = (name: string, rows: readonly MetricsRow[] | string) => {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, "metrics.jsonl"), typeof rows === "string" ? rows : rows.map((r) => JSON.stringify(r) + "\n").join(""));
  return path;
};
const out = (name: string) => join(dir, "out", name);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ulc-plot-"));
  // alpha's losses stay below 1.2; beta's, around 5, are larger than all of them, and beta runs twice as long.
  run("alpha", rowsOf(100, (s) => ({ loss: 1 + 0.1 * wobble(s), bpp: 0.5 - s / 1000 })));
  run("beta", rowsOf(200, (s) => ({ loss: 5 + 0.2 * wobble(s), bpp: 0.4 - s / 2000, decoder_loss: 2 })));
  run("loss-only", rowsOf(50, (s) => ({ loss: 3 - s / 100 })));
  run("bits", rowsOf(200, (s) => ({ bpp: 10 ** (-1 - (3 * (s - 1)) / 199), narrow: 0.03 * 0.9 ** (s / 8) })));
  run("bits-with-zero", rowsOf(200, (s) => ({ bpp: s === 150 ? 0 : 10 ** (-1.5 - (2 * (s - 1)) / 199), narrow: 0.02 })));
  run("flat", rowsOf(120, (s) => ({ loss: 0.37, bpp: 1 / s })));
  run("empty", "\n");
  mkdirSync(join(dir, "no-metrics"));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("several runs", () => {
  test("one moving average per run per panel in distinct colours, a legend, and a y range that covers every run", async () => {
    const r = await ulc(["plot", join(dir, "alpha"), join(dir, "beta"), "-o", out("two.svg")]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${out("two.svg")}: 2 runs, metrics loss, bpp\n`); // decoder_loss: alpha has none
    const svg = readFileSync(out("two.svg"), "utf8");
    expect(svg).toContain(">alpha, beta (moving averages)</text>");
    expect(svg).toMatch(/<line [^>]*stroke="#1f77b4"[^>]*\/><text [^>]*>alpha<\/text>/);
    expect(svg).toMatch(/<line [^>]*stroke="#ff7f0e"[^>]*\/><text [^>]*>beta<\/text>/);
    expect(svg).not.toContain("#9ecae1"); // no raw lines
    const ps = panels(svg);
    expect(ps.map((p) => p.metric)).toEqual(["loss", "bpp"]);
    for (const p of ps) {
      expect(p.lines.map((l) => l.stroke)).toEqual(["#1f77b4", "#ff7f0e"]);
      expect(p.lines[0]!.points).toHaveLength(100);
      expect(p.lines[1]!.points).toHaveLength(200);
      for (const l of p.lines) for (const point of l.points) expect(inside(p, point), `${p.metric}: ${point} outside ${JSON.stringify(p.rect)}`).toBe(true);
      // The x axis spans both runs' steps: beta's last step is at the right edge, alpha's halfway.
      expect(p.lines[1]!.points.at(-1)![0]).toBeCloseTo(p.rect.x + p.rect.w, 0);
      expect(p.lines[0]!.points.at(-1)![0]).toBeCloseTo(p.rect.x + (p.rect.w * 99) / 199, 0);
    }
    // beta's losses (~5) lie inside the range as well as alpha's (~1), and are drawn at their values.
    const loss = ps[0]!;
    const ticks = loss.yTicks.map((t) => t.value);
    expect(Math.max(...ticks)).toBeGreaterThanOrEqual(4.5);
    expect(Math.min(...ticks)).toBeLessThanOrEqual(1);
    // The last point of each line is the mean of the last n/40 steps (rounded).
    const lastMean = (n: number, f: (s: number) => number) => {
      const window = Math.round(n / 40);
      return Array.from({ length: window }, (_, i) => f(n - i)).reduce((a, b) => a + b) / window;
    };
    expect(loss.lines[1]!.points.at(-1)![1]).toBeCloseTo(heightOf(loss, lastMean(200, (s) => 5 + 0.2 * wobble(s))), 0);
    expect(loss.lines[0]!.points.at(-1)![1]).toBeCloseTo(heightOf(loss, lastMean(100, (s) => 1 + 0.1 * wobble(s))), 0);
  });

  test("--metric chooses the panels in order and --label names the runs", async () => {
    const r = await ulc(["plot", join(dir, "beta"), join(dir, "alpha"), "--metric", "bpp", "--metric", "loss", "--label", "big <batch>", "--label", "small", "-o", out("labels.svg")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${out("labels.svg")}: 2 runs, metrics bpp, loss\n`);
    const svg = readFileSync(out("labels.svg"), "utf8");
    expect(panels(svg).map((p) => p.metric)).toEqual(["bpp", "loss"]);
    expect(svg).toContain(">big &lt;batch>, small (moving averages)</text>");
    expect(svg).toContain(">big &lt;batch></text>");
    expect(svg).toContain(">small</text>");
  });
});

describe("one run", () => {
  const rows = rowsOf(50, (s) => ({ loss: 2 / s + 0.05 * wobble(s), bpp: 1 - s / 100, other: 3 }));

  test("is drawn as today's loss.svg: each step in a light line, the moving average in a dark one, and the same title", () => {
    const svg = lossCurveSvg([{ label: "UlTiny", rows }], "UlTiny");
    expect(svg).toContain(">UlTiny: 50 steps (light: each step; dark: moving average)</text>");
    const ps = panels(svg);
    expect(ps.map((p) => p.metric)).toEqual(["loss", "bpp"]); // the default panels that the run has
    for (const p of ps) {
      expect(p.lines.map((l) => l.stroke)).toEqual(["#9ecae1", "#08519c"]);
      for (const l of p.lines) expect(l.points).toHaveLength(50);
    }
    expect(svg).not.toContain("#1f77b4"); // no legend
  });

  test("ulc plot draws one run the same way, titled with its label", async () => {
    const dirOne = run("single", rows);
    const r = await ulc(["plot", dirOne, "-o", out("one.svg")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${out("one.svg")}: 1 run, metrics loss, bpp, other\n`);
    expect(readFileSync(out("one.svg"), "utf8")).toBe(lossCurveSvg([{ label: "single", rows: readMetrics(dirOne) }], "single", { metrics: ["loss", "bpp", "other"] }));
  });

  test("a line of more than ~1000 steps is thinned to about 1000 points, keeping the last", () => {
    const long = rowsOf(5000, (s) => ({ loss: 1 / s }));
    const [p] = panels(lossCurveSvg([{ label: "long", rows: long }], "long"));
    for (const l of p!.lines) {
      expect(l.points.length).toBeLessThanOrEqual(1001);
      expect(l.points.at(-1)![0]).toBeCloseTo(p!.rect.x + p!.rect.w, 0);
    }
  });
});

describe("--log", () => {
  test("ticks at powers of ten for a metric over three decades, with 2x and 5x over fewer; lines fall as the metric does", async () => {
    const r = await ulc(["plot", join(dir, "bits"), join(dir, "bits-with-zero"), "--log", "-o", out("log.svg")]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const svg = readFileSync(out("log.svg"), "utf8");
    expect(svg).not.toMatch(/NaN|Infinity/);
    const [bpp, narrow] = panels(svg);
    expect(bpp!.metric).toBe("bpp");
    expect(bpp!.yTicks.map((t) => t.value)).toEqual([1e-4, 1e-3, 1e-2, 1e-1]);
    expect(bpp!.yTicks.map((t) => t.y)).toEqual([...bpp!.yTicks.map((t) => t.y)].sort((a, b) => b - a)); // larger values higher up
    // Equal ratios are equal heights: the decades are evenly spaced.
    const gaps = bpp!.yTicks.slice(1).map((t, i) => bpp!.yTicks[i]!.y - t.y);
    for (const g of gaps) expect(g).toBeCloseTo(gaps[0]!, 0);
    // A falling metric is a falling line: y (downwards in SVG) never decreases while x increases.
    const falling = bpp!.lines[0]!.points;
    for (let i = 1; i < falling.length; i++) {
      expect(falling[i]![0]).toBeGreaterThan(falling[i - 1]![0]);
      expect(falling[i]![1]).toBeGreaterThanOrEqual(falling[i - 1]![1]);
    }
    // The 0 of bits-with-zero cannot be on a log axis: it is drawn at the smallest positive value, inside the panel.
    for (const l of bpp!.lines) for (const point of l.points) expect(inside(bpp!, point)).toBe(true);
    // narrow spans 0.02..0.0004, under two decades: the ticks include the 2x and 5x of powers of ten.
    const narrowTicks = narrow!.yTicks.map((t) => t.value);
    expect(narrowTicks).toContain(0.01);
    expect(narrowTicks.some((t) => /^[25]/.test(t.toExponential()))).toBe(true);
    expect(narrowTicks.every((t) => /^[125]e/.test(t.toExponential()))).toBe(true);
  });

  test("without --log the axes are linear", async () => {
    const r = await ulc(["plot", join(dir, "bits"), "--metric", "bpp", "-o", out("linear.svg")]);
    expect(r.code).toBe(0);
    const [bpp] = panels(readFileSync(out("linear.svg"), "utf8"));
    const steps = bpp!.yTicks.slice(1).map((t, i) => t.value - bpp!.yTicks[i]!.value);
    for (const s of steps) expect(s).toBeCloseTo(steps[0]!, 9);
  });
});

describe("a constant metric", () => {
  test("has a horizontal moving average at its value, alone or beside another run", async () => {
    const alone = panels(lossCurveSvg([{ label: "flat", rows: readMetrics(join(dir, "flat")) }], "flat"))[0]!;
    const r = await ulc(["plot", join(dir, "flat"), join(dir, "alpha"), "--metric", "loss", "-o", out("flat.svg")]);
    expect(r.code).toBe(0);
    const svg = readFileSync(out("flat.svg"), "utf8");
    expect(svg).not.toMatch(/NaN|Infinity/);
    const beside = panels(svg)[0]!;
    for (const [p, smooth] of [[alone, alone.lines[1]!], [beside, beside.lines[0]!]] as const) {
      expect(p.yTicks.length).toBeGreaterThanOrEqual(2);
      const ys = new Set(smooth.points.map(([, y]) => y));
      expect(ys.size).toBe(1);
      expect([...ys][0]).toBeCloseTo(heightOf(p, 0.37), 0);
      for (const point of smooth.points) expect(inside(p, point)).toBe(true);
    }
  });
});

describe("usage errors (exit 2, naming what is wrong)", () => {
  const fails = async (argv: string[], message: RegExp | string) => {
    const r = await ulc(["plot", ...argv]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(message);
  };

  test("--label given neither once per run nor not at all", async () => {
    await fails([join(dir, "alpha"), join(dir, "beta"), "--label", "a", "-o", out("x.svg")], /^ulc plot: 2 runs but 1 --label: give one --label per run/);
    await fails([join(dir, "alpha"), "--label", "a", "--label", "b", "-o", out("x.svg")], /^ulc plot: 1 run but 2 --labels/);
  });

  test("a directory that is missing, has no metrics.jsonl, or an empty one", async () => {
    const missing = join(dir, "nowhere");
    await fails([join(dir, "alpha"), missing, "-o", out("x.svg")], `ulc plot: ${missing} is not a directory`);
    await fails([join(dir, "no-metrics"), "-o", out("x.svg")], `ulc plot: ${join(dir, "no-metrics")} has no metrics.jsonl`);
    await fails([join(dir, "empty"), "-o", out("x.svg")], `ulc plot: ${join(dir, "empty", "metrics.jsonl")} is empty`);
  });

  test("a --metric some run lacks names those runs and the metrics they have", async () => {
    const r = await ulc(["plot", join(dir, "alpha"), join(dir, "loss-only"), join(dir, "beta"), "--metric", "bpp", "-o", out("x.svg")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`ulc plot: --metric bpp: ${join(dir, "loss-only")} does not have it (${join(dir, "loss-only")} has loss)\n`);
    await fails([join(dir, "loss-only"), join(dir, "flat"), "--metric", "decoder_loss", "-o", out("x.svg")], `${join(dir, "loss-only")}, ${join(dir, "flat")} do not have it`);
  });

  test("runs with no metric in common", async () => {
    await fails([join(dir, "loss-only"), join(dir, "bits"), "-o", out("x.svg")], `the runs have no metric in common (${join(dir, "loss-only")} has loss; ${join(dir, "bits")} has bpp, narrow)`);
  });

  test("no -o, and malformed --metric values", async () => {
    await fails([join(dir, "alpha")], /required option '-o, --output <svg>' not specified/);
    await fails([join(dir, "alpha"), "--metric", "step", "-o", out("x.svg")], /step is the x axis of every panel, not a metric/);
    await fails([join(dir, "alpha"), "--metric", "", "-o", out("x.svg")], /--metric needs a metric's name/);
    await fails(["-o", out("x.svg")], /missing required argument 'runs'/);
    await fails([join(dir, "alpha"), "-o", dir], `ulc plot: -o ${dir} is a directory`);
  });

  test("plot --help shows the flags and an example", async () => {
    const r = await ulc(["plot", "--help"]);
    expect(r.code).toBe(0);
    for (const flag of ["--metric <name>", "--label <text>", "--log", "-o, --output <svg>", "ulc plot runs/exp/c1.5"]) expect(r.stdout).toContain(flag);
  });
});
