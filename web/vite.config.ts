// The page's build: `npx vite web` serves it, `npx vite build web` bundles it into web/dist. The model's
// generated bindings and Program come from `ulc build models/ul_tiny.ul --target wgsl --emit ts -o web/model`
// (ULC_WEB_MODEL points elsewhere). The dev and preview servers also serve what the page fetches from disk:
// the checkpoint of a training run (ULC_RUN, default runs/main, which `npm run main` trains) and Fashion-MNIST
// (ULC_DATA, default Debian's dataset-fashion-mnist).
import { createReadStream, existsSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, type Connect, type Plugin } from "vite";

const web = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(web);

/** Serves `/checkpoint.safetensors` and `/data/FILE` from their places on disk. */
function servedFromDisk(): Plugin {
  const run = path.resolve(repo, process.env.ULC_RUN ?? "runs/main");
  const data = process.env.ULC_DATA ?? "/usr/share/datasets/fashion-mnist";
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const file =
      url.pathname === "/checkpoint.safetensors" ? path.join(run, "checkpoint.safetensors") : url.pathname.startsWith("/data/") ? path.join(data, path.basename(url.pathname)) : undefined;
    if (file === undefined || !existsSync(file) || !statSync(file).isFile()) return next();
    res.setHeader("content-type", "application/octet-stream");
    createReadStream(file).pipe(res);
  };
  return {
    name: "ulc-served-from-disk",
    configureServer: (server) => void server.middlewares.use(middleware),
    configurePreviewServer: (server) => void server.middlewares.use(middleware),
  };
}

export default defineConfig({
  root: web,
  // One page, not a single-page app: a missing checkpoint is a 404 (the page then says it starts from the
  // initial parameters), not index.html.
  appType: "mpa",
  // The page imports the runtime as an app does, by the package's name: here, this checkout's.
  resolve: { alias: { "@model": path.resolve(repo, process.env.ULC_WEB_MODEL ?? "web/model"), "ulc/runtime": path.join(repo, "runtime/index.ts") } },
  plugins: [servedFromDisk()],
  build: { outDir: path.join(web, "dist"), emptyOutDir: true, target: "es2022" },
});
