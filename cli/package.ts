// Where the ulc package lives on disk, whether this module runs from the TypeScript sources (tests) or from
// dist/ (the installed CLI), and its version.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

interface PackageInfo {
  readonly root: string;
  readonly version: string;
}

let cached: PackageInfo | undefined;

/** The folder holding ulc's package.json, found by walking up from this file. */
export function packageInfo(): PackageInfo {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        const json = JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown; version?: unknown };
        if (json.name === "ulc") {
          cached = { root: dir, version: typeof json.version === "string" ? json.version : "0.0.0" };
          return cached;
        }
      } catch {
        // not ours (or unreadable): keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find ulc's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}
