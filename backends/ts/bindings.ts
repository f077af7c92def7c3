// `ulc build --target wgsl --emit ts`: a typed TypeScript module for a built model, generated with ts-morph. It
// declares one class named after the model, extending the runtime's `BoundModel` (runtime/webgpu/model.ts),
// which it imports from the package (`ulc/runtime`) as an app that installed ulc resolves it:
// `static create(device)` loads the Program file beside the module, and each entry is a method whose
// parameter and result types carry the bound shapes (`Tensor<readonly [4, 1, 28, 28]>`), so a wrong shape is
// a type error in the application, not a validation error on the device. A model with the sampler's entries
// also gets `sample(n)`. Everything model-independent lives in the runtime, so the generated code is only
// signatures and the names that connect them to the manifest.
import { IndentationText, Project, QuoteKind, ts, VariableDeclarationKind, type MethodDeclarationStructure, type OptionalKind, type SourceFile } from "ts-morph";
import { BoundModel } from "../../runtime/webgpu/model.js";
import type { EntryManifest, ProgramManifest } from "../../runtime/webgpu/program.js";

/** The runtime as the generated module imports it: the package's entry (package.json "exports"). */
export const RUNTIME_MODULE = "ulc/runtime";

export interface BindingsOptions {
  /** The `.ul` file the model came from, for the header. */
  readonly source: string;
  /** The Program file's name, beside the generated module. */
  readonly programFile: string;
}

/** The file stem for a model's bindings and Program file: `UlTiny` -> `ul_tiny`. */
export function bindingsStem(model: string): string {
  return model.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2").toLowerCase();
}

/** `prior_step` -> `priorStep`. */
function camel(name: string): string {
  return name.replace(/_+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** A `.ul` name usable as a TypeScript parameter: reserved words (`new`, `class`, and in modules `let`, `await`, ...) get a trailing underscore. */
function parameterName(name: string): string {
  const kind = ts.identifierToKeywordKind(ts.factory.createIdentifier(name));
  const reserved = kind !== undefined && ((kind >= ts.SyntaxKind.FirstReservedWord && kind <= ts.SyntaxKind.LastReservedWord) || (kind >= ts.SyntaxKind.FirstFutureReservedWord && kind <= ts.SyntaxKind.LastFutureReservedWord) || kind === ts.SyntaxKind.AwaitKeyword);
  return reserved ? `${name}_` : name;
}

function propertyName(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
}

/** `f32[4, 16]`, or `f32` for a scalar: how the `.ul` source writes the type. */
function ulType(dtype: string, shape: readonly number[]): string {
  return shape.length === 0 ? dtype : `${dtype}[${shape.join(", ")}]`;
}

/** The TypeScript type of a value of this dtype and shape: a number for a scalar, else a shaped tensor. */
function tsType(dtype: string, shape: readonly (number | "number")[]): string {
  if (shape.length === 0) return "number";
  return `Tensor<readonly [${shape.join(", ")}]${dtype === "i32" ? ", Int32Array" : ""}>`;
}

/** Members an entry's method must not shadow: BoundModel's, its `session`, and the generated `sample`. */
const RESERVED_MEMBERS = new Set([...Object.getOwnPropertyNames(BoundModel.prototype), "session", "sample"]);

function methodName(entry: string): string {
  const name = camel(entry);
  return RESERVED_MEMBERS.has(name) ? `${name}Entry` : name;
}

/** Each output of an entry with its type. */
function resultsOf(entry: EntryManifest): { name: string; dtype: string; shape: readonly number[] }[] {
  const buffers = new Map(entry.buffers.map((b) => [b.id, b]));
  return entry.results.map((name) => {
    const b = buffers.get(entry.outputs.find((o) => o.name === name)!.buffer)!;
    return { name, dtype: b.dtype, shape: b.shape };
  });
}

/** `prior_step` -> `PriorStep`. */
function pascal(name: string): string {
  const c = camel(name);
  return c[0]!.toUpperCase() + c.slice(1);
}

/**
 * The result's type and the expression that builds it from the local `out` (a Map of host tensors, or of numbers
 * for train entries). A record becomes an exported interface named `<Model><Entry>Result`, declared in `file`.
 */
function resultShape(entry: EntryManifest, model: string, file: SourceFile, out: string): { type: string; value: string; ul: string } {
  const results = resultsOf(entry);
  const train = entry.kind === "train";
  const one = (r: (typeof results)[number]) => ({
    // Train entries report their metrics as numbers (Session.trainStep).
    type: train ? "number" : tsType(r.dtype, r.shape),
    value: train ? `${out}.get(${JSON.stringify(r.name)})!` : r.shape.length === 0 ? `${out}.get(${JSON.stringify(r.name)})!.data[0]!` : `this.shaped<${tsType(r.dtype, r.shape)}>(${out}.get(${JSON.stringify(r.name)}))`,
    ul: ulType(r.dtype, r.shape),
  });
  if (results.length === 1 && results[0]!.name === "result") return one(results[0]!);
  if (results.every((r, i) => r.name === `result.${i}`)) {
    const parts = results.map(one);
    return { type: `[${parts.map((p) => p.type).join(", ")}]`, value: `[${parts.map((p) => p.value).join(", ")}]`, ul: `(${parts.map((p) => p.ul).join(", ")})` };
  }
  const fields = results.map((r) => ({ key: propertyName(r.name), ...one(r) }));
  const type = `${model}${pascal(entry.name)}Result`;
  file.addInterface({
    name: type,
    isExported: true,
    docs: [`What \`${entry.name}\` returns.`],
    properties: fields.map((f) => ({ name: f.key, type: f.type, isReadonly: true, docs: f.type === "number" ? [] : [f.ul] })),
  });
  return {
    type,
    value: `{ ${fields.map((f) => `${f.key}: ${f.value}`).join(", ")} }`,
    ul: `{ ${results.map((r, i) => `${r.name}: ${fields[i]!.ul}`).join(", ")} }`,
  };
}

function entryMethod(entry: EntryManifest, model: string, file: SourceFile): OptionalKind<MethodDeclarationStructure> {
  const params = entry.inputs.map((i) => ({ name: parameterName(i.name), type: tsType(i.dtype, i.shape), ul: ulType(i.dtype, i.shape), input: i.name }));
  // The method's own names (the step parameter, the results' local) steer clear of the inputs' names.
  const taken = new Set(params.map((p) => p.name));
  const fresh = (name: string): string => (taken.has(name) ? fresh(`${name}_`) : name);
  const [step, out] = [fresh("step"), fresh("out")];
  const result = resultShape(entry, model, file, out);
  const values = `{ ${params.map((p) => (p.name === p.input ? p.name : `${propertyName(p.input)}: ${p.name}`)).join(", ")} }`;
  const signature = `\`${entry.name}(${params.map((p) => `${p.input}: ${p.ul}`).join(", ")}) -> ${result.ul}\``;
  const tags = params.map((p) => ({ tagName: "param", text: `${p.name} ${p.ul}` }));
  if (entry.kind === "train") {
    const t = entry.training!;
    return {
      name: methodName(entry.name),
      isAsync: true,
      parameters: params.map((p) => ({ name: p.name, type: p.type })),
      returnType: `Promise<${result.type}>`,
      docs: [{ description: `One optimizer step (${t.optimizer}) minimising \`${t.loss}\`; returns the metrics.\n\n${signature}`, tags }],
      statements: [`const ${out} = await this.train(${JSON.stringify(entry.name)}, ${values});`, `return ${result.value};`],
    };
  }
  return {
    name: methodName(entry.name),
    isAsync: true,
    parameters: [...params.map((p) => ({ name: p.name, type: p.type })), { name: step, type: "number", hasQuestionToken: true }],
    returnType: `Promise<${result.type}>`,
    docs: [{ description: `${signature}.`, tags: [...tags, { tagName: "param", text: `${step} keys the entry's randomness; default: the optimizer step count` }] }],
    statements: [`const ${out} = await this.run(${JSON.stringify(entry.name)}, ${values}, ${step});`, `return ${result.value};`],
  };
}

/** `sample(n)`, for a model with the entries runtime/sampler.ts drives. */
function sampleMethod(manifest: ProgramManifest): OptionalKind<MethodDeclarationStructure> | undefined {
  const has = (name: string) => manifest.entries.some((e) => e.name === name);
  const finish = manifest.entries.find((e) => e.name === "decoder_x_hat");
  if (!finish || !(has("prior_step") || has("prior_ddim_step")) || !(has("decoder_step") || has("decoder_ddim_step"))) return undefined;
  const [, ...image] = finish.inputs[0]!.shape;
  return {
    name: "sample",
    isAsync: true,
    parameters: [
      { name: "n", type: "number" },
      { name: "options", type: "SampleOptions", initializer: "{}" },
    ],
    returnType: `Promise<${tsType("f32", ["number", ...image])}>`,
    docs: [
      {
        description: `\`n\` images, f32[n, ${image.join(", ")}] in [-1, 1] (unclamped): the prior's diffusion samples z0 and the decoder's turns it into an image, in batches of ${finish.inputs[0]!.shape[0]}.`,
        tags: [{ tagName: "param", text: "options steps (default 50), sampler (default ddpm), seed of the starting noise (default 0), progress callback" }],
      },
    ],
    statements: [`return this.shaped<${tsType("f32", ["number", ...image])}>(await this.sampleImages(n, options));`],
  };
}

/** The scalars a model takes by name (hypers, optimizer arguments): an exported interface of optional numbers. */
function addScalars(file: SourceFile, name: string, doc: string, scalars: readonly { name: string; default: number }[]): string {
  file.addInterface({
    name,
    isExported: true,
    docs: [doc],
    properties: scalars.map((s) => ({ name: propertyName(s.name), type: "number", hasQuestionToken: true, isReadonly: true, docs: [`default ${s.default}`] })),
  });
  return name;
}

/** A JSON-like value as a TypeScript literal, with unquoted keys where they are identifiers. */
function literal(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(literal).join(", ")}]`;
  if (typeof value === "object" && value !== null) return `{ ${Object.entries(value).map(([k, v]) => `${propertyName(k)}: ${literal(v)}`).join(", ")} }`;
  return JSON.stringify(value);
}

export function emitBindings(manifest: ProgramManifest, options: BindingsOptions): string {
  const project = new Project({ useInMemoryFileSystem: true, manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Double } });
  const file = project.createSourceFile("bindings.ts", "");
  const name = manifest.model;
  const bound = Object.entries(manifest.bindings).map(([k, v]) => `${k}=${v}`).join(", ") || "no dims bound";
  const values = manifest.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  const optimizerArgs = new Map(manifest.entries.flatMap((e) => e.training?.args ?? []).map((a) => [a.name, a]));
  const sample = sampleMethod(manifest);

  file.addImportDeclaration({
    moduleSpecifier: RUNTIME_MODULE,
    namedImports: ["BoundModel", { name: "ModelOptions", isTypeOnly: true }, ...(sample ? [{ name: "SampleOptions", isTypeOnly: true }] : []), { name: "Tensor", isTypeOnly: true }],
  });
  file.addVariableStatement({
    declarationKind: VariableDeclarationKind.Const,
    declarations: [{ name: "PROGRAM", initializer: `new URL(${JSON.stringify(`./${options.programFile}`)}, import.meta.url)` }],
    docs: ["The Program (manifest and kernels) beside this module: bundlers see `new URL(..., import.meta.url)` and ship the file as an asset."],
  });
  const hypers = addScalars(file, `${name}Hypers`, `The hyperparameters of ${name}, each defaulting to the model's value.`, manifest.hypers);
  const optimizer = addScalars(file, `${name}Optimizer`, `The optimizer arguments of ${name}'s train entries, each defaulting to the model's value.`, [...optimizerArgs.values()]);
  const inputs = `{\n${manifest.entries.map((e) => `${propertyName(e.name)}: ${literal(Object.fromEntries(e.inputs.map((i) => [i.name, i.shape])))},`).join("\n")}\n}`;
  const cls = file.addClass({
    name,
    isExported: true,
    extends: "BoundModel",
    docs: [`Model ${name} from ${options.source}, built with ${bound}: ${values} parameters in ${manifest.params.length} tensors.`],
    properties: [
      { name: "bindings", isStatic: true, isReadonly: true, initializer: `${literal(manifest.bindings)} as const`, docs: ["The dims bound at build time."] },
      { name: "inputs", isStatic: true, isReadonly: true, initializer: `${inputs} as const`, docs: ["Each entry's input shapes, for `tensor(shape, data)`."] },
    ],
    methods: [
      {
        name: "create",
        isStatic: true,
        isAsync: true,
        parameters: [
          { name: "device", type: "GPUDevice" },
          { name: "options", type: `ModelOptions<${hypers}, ${optimizer}>`, initializer: "{}" },
        ],
        returnType: `Promise<${name}>`,
        docs: ["Loads the Program onto `device` and initialises the parameters from `options.seed`; `loadCheckpoint` replaces them."],
        statements: [`return new ${name}(await BoundModel.open(device, PROGRAM, options));`],
      },
    ],
  });
  // Added one by one: a record result declares its interface in the file as the method is made.
  cls.addMethods([...manifest.entries.map((e) => entryMethod(e, name, file)), ...(sample ? [sample] : [])]);
  file.insertStatements(0, [
    '/// <reference types="@webgpu/types" />',
    `// Generated by \`ulc build --target wgsl --emit ts\` from ${options.source} (${bound}): typed bindings of model ${name}`,
    `// for the WGSL Program in ${options.programFile}. Do not edit; rebuild instead.`,
  ]);
  file.formatText({ indentSize: 2 });
  return file.getFullText();
}
