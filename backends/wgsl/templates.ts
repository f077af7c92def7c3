// Kernel skeletons are handlebars templates (backends/wgsl/templates/*.hbs), embedded into
// templates.generated.ts at build time (scripts/embed-templates.mjs). They are compiled once, on an isolated
// handlebars environment, with HTML escaping off (the output is WGSL, not HTML) and strict mode on (a name the
// view lacks is an error, not an empty string in the shader). Every template is also a partial, named without
// its extension: `{{> matmul-fmas}}` includes matmul-fmas.wgsl.hbs.
import Handlebars from "handlebars";
import { TEMPLATES } from "./templates.generated.js";

const env = Handlebars.create();
for (const [file, source] of Object.entries(TEMPLATES)) env.registerPartial(file.replace(/\..*$/, ""), source);
const compiled = new Map<string, Handlebars.TemplateDelegate>();

/** Renders the template `name` (e.g. "matmul.wgsl.hbs") with `view`. */
export function renderTemplate(name: string, view: object): string {
  let template = compiled.get(name);
  if (template === undefined) {
    const source = TEMPLATES[name];
    if (source === undefined) throw new Error(`no kernel template '${name}' (have: ${Object.keys(TEMPLATES).join(", ")})`);
    template = env.compile(source, { noEscape: true, strict: true });
    compiled.set(name, template);
  }
  return template(view);
}
