#!/usr/bin/env node
// The `ulc` command: runs the compiled CLI (dist/cli/main.js, made by `npm run build`).
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    `ulc: the compiled CLI is missing (${fileURLToPath(entry)}).\n` +
      `Run \`npm run build\` in ${dirname(fileURLToPath(new URL("../package.json", import.meta.url)))} first.\n`,
  );
  process.exit(3);
}
const { main } = await import(entry.href);
// exitCode rather than process.exit(): lets a large --json output drain into a pipe before Node exits.
process.exitCode = await main(process.argv.slice(2));
