// Packages the VS Code extension (editor/vscode) into a .vsix with @vscode/vsce (a devDependency of ulc). It
// works on a copy under the OS temp dir, where npm installs the extension's one dependency,
// vscode-languageclient, from the extension's lockfile: nothing is installed into the repository. Exit 3 when
// npm cannot fetch it (no registry and not in npm's cache), which is not the extension's fault.
//
//   node scripts/package-vscode.mjs [--out FILE.vsix]    (default: ulc-vscode-VERSION.vsix in this folder)
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const EXTENSION = join(ROOT, "editor", "vscode");
const VSCE = join(ROOT, "node_modules", "@vscode", "vsce", "vsce");

const manifest = JSON.parse(readFileSync(join(EXTENSION, "package.json"), "utf8"));
const outAt = process.argv.indexOf("--out");
const out = resolve(outAt >= 0 ? process.argv[outAt + 1] : `${manifest.name}-${manifest.version}.vsix`);

/** Runs a command in `cwd` with no terminal to prompt on; its status and everything it printed. */
function run(cwd, command, argv) {
  const r = spawnSync(command, argv, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_update_notifier: "false" } });
  return { status: r.status, output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

const copy = mkdtempSync(join(tmpdir(), "ulc-vscode-"));
try {
  cpSync(EXTENSION, copy, { recursive: true, filter: (p) => basename(p) !== "node_modules" && !p.endsWith(".vsix") });
  const install = run(copy, "npm", ["ci", "--omit=dev", "--prefer-offline", "--no-audit", "--no-fund"]);
  if (install.status !== 0) {
    process.stderr.write(`npm could not install the extension's dependencies:\n${install.output}`);
    process.exitCode = 3;
  } else {
    // The extension has no repository of its own and ships under ulc's licence (MIT, package.json): vsce
    // would otherwise stop and ask about both.
    const pack = run(copy, process.execPath, [VSCE, "package", "--allow-missing-repository", "--skip-license", "--out", out]);
    process.stderr.write(pack.output);
    process.exitCode = pack.status === 0 ? 0 : 1;
  }
} finally {
  rmSync(copy, { recursive: true, force: true });
}
