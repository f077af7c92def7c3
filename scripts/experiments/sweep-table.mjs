// A stage-1 sweep as a markdown table: mean ± sd over seeds per setting, then every run.
// Usage: node sweep-table.mjs DIR PREFIX HEADING   (DIR holds PREFIX<x>-s<seed>/ runs with eval.json and fd.json;
// HEADING names x, e.g. "c" for the loss factor)
import { STAGE1_COLUMNS, fmt, fmtMeanSd, sweepRuns } from "./runs.mjs";

const [dir, prefix, heading] = process.argv.slice(2);
const rows = sweepRuns(dir, prefix);
const head = STAGE1_COLUMNS.map((k) => k[1]).join(" | "), rule = STAGE1_COLUMNS.map(() => "---").join(" | ");
console.log(`| ${heading} | seeds | ${head} |\n| --- | --- | ${rule} |`);
for (const x of new Set(rows.map((r) => r.x))) {
  const rs = rows.filter((r) => r.x === x);
  console.log(`| ${x} | ${rs.map((r) => r.seed).join(", ")} | ${STAGE1_COLUMNS.map(([k, , d]) => fmtMeanSd(rs.map((r) => r[k]), d)).join(" | ")} |`);
}
console.log(`\nEvery run (steps: ${[...new Set(rows.map((r) => r.step))].join(", ")}; the FD floor is test images against other test images, same count):\n`);
console.log(`| ${heading} | seed | ${head} | FD floor |\n| --- | --- | ${rule} | --- |`);
for (const r of rows) console.log(`| ${r.x} | ${r.seed} | ${STAGE1_COLUMNS.map(([k, , d]) => fmt(r[k], d)).join(" | ")} | ${r.floor.toFixed(2)} |`);
