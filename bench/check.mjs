#!/usr/bin/env node
// Times `ulc check` on a model: the whole command as a user runs it (a spawned `node bin/ulc.js check FILE`,
// Node start-up included) and the in-process front end (`checkFiles` from dist/, warm). Run after
// `npm run build`:
//
//   npm run bench:check                       # print the table
//   npm run bench:check -- --write            # also update the `ulc check` section of docs/benchmarks.md
//   npm run bench:check -- --file models/ul_tiny.ul --runs 30
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { machine as describeMachine, writeSection } from "./docs.mjs";
import { dirname, join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DOC = join(ROOT, "docs", "benchmarks.md");

function usage(message) {
  process.stderr.write(`bench/check.mjs: ${message}\nusage: node bench/check.mjs [--write] [--file FILE.ul] [--runs N]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { write: false, file: "models/ul_small.ul", runs: 15, inProcessRuns: 20 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--write") opts.write = true;
    else if (a === "--file") opts.file = argv[++i] ?? usage("--file needs a path");
    else if (a === "--runs") {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 10) usage("--runs needs an integer of at least 10");
      opts.runs = n;
    } else usage(`unknown argument '${a}'`);
  }
  return opts;
}

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const rank = (q) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return { runs: s.length, min: s[0], median: rank(0.5), p90: rank(0.9) };
}

function timeSpawn(args, runs, warmup) {
  const once = () => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8" });
    const ms = performance.now() - t0;
    if (r.status !== 0) {
      process.stderr.write(`bench/check.mjs: \`node ${args.join(" ")}\` exited ${r.status}:\n${r.stderr}${r.error ?? ""}\n`);
      process.exit(1);
    }
    return ms;
  };
  for (let i = 0; i < warmup; i++) once();
  return Array.from({ length: runs }, once);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const file = relative(ROOT, join(ROOT, opts.file)) || opts.file;
  const distCheck = join(ROOT, "dist", "dsl", "check.js");
  const distCli = join(ROOT, "dist", "cli", "main.js");
  for (const p of [distCheck, distCli]) if (!existsSync(p)) usage(`${relative(ROOT, p)} is missing: run \`npm run build\` first`);
  if (!existsSync(join(ROOT, file))) usage(`${file} not found`);

  // 1. Node start-up alone, for scale: what any CLI pays before doing anything.
  const node = stats(timeSpawn(["-e", ""], opts.runs, 2));
  // 2. The real command, end to end.
  const cli = stats(timeSpawn([join("bin", "ulc.js"), "check", file], opts.runs, 2));

  // 3. In process: the first call (cold: module caches, parser construction) and warm calls.
  const { checkFiles } = await import(pathToFileURL(distCheck).href);
  const checkOptions = { bindings: {} };
  const path = join(ROOT, file);
  const timeOnce = () => {
    const t0 = performance.now();
    const r = checkFiles([path], checkOptions);
    const ms = performance.now() - t0;
    if (r.diagnostics.length > 0) {
      process.stderr.write(`bench/check.mjs: ${file} has ${r.diagnostics.length} diagnostics; benchmark a clean model\n`);
      process.exit(1);
    }
    return ms;
  };
  const cold = timeOnce();
  for (let i = 0; i < 5; i++) timeOnce();
  const warm = stats(Array.from({ length: opts.inProcessRuns }, timeOnce));

  const f = (x) => x.toFixed(x < 10 ? 2 : 1);
  const rows = [
    [`\`node bin/ulc.js check ${file}\` (spawned)`, cli],
    ["`node -e ''` (Node start-up alone, for scale)", node],
    [`\`checkFiles\` in process, warm`, warm],
  ];
  const table = [
    "| measurement | runs | min ms | median ms | p90 ms |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...rows.map(([name, s]) => `| ${name} | ${s.runs} | ${f(s.min)} | ${f(s.median)} | ${f(s.p90)} |`),
    `| \`checkFiles\` in process, first call (cold) | 1 | ${f(cold)} | | |`,
  ].join("\n");

  const machine = describeMachine();
  const lines = readFileSync(join(ROOT, file), "utf8").trimEnd().split("\n").length;
  process.stdout.write(`ulc check on ${file} (${lines} lines)\nmachine: ${machine}\n\n${table}\n`);

  if (opts.write) {
    writeSection(DOC, "check", [
      "## `ulc check`",
      "",
      `Model: \`${file}\` (${lines} lines, with the standard-library files it imports). ` +
        `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}.`,
      "",
      table,
      "",
      "The spawned command includes Node's start-up and module loading; the difference from `node -e ''` is " +
        "ulc's own cost. Reproduce: `npm run build && npm run bench:check -- --write`.",
    ]);
    process.stdout.write(`\nwrote ${relative(ROOT, DOC)}\n`);
  }
}


await main();
