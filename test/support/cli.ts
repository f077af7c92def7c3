// Running the `ulc` command line in-process, with its output captured.
import type { CliIo } from "../../cli/io.js";
import { main } from "../../cli/main.js";

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function ulc(argv: string[], opts: { tty?: boolean; env?: Record<string, string> } = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: opts.tty ?? false },
    stderr: { write: (s: string) => (stderr += s), isTTY: opts.tty ?? false },
    env: opts.env ?? {},
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}
