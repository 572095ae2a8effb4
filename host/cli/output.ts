// Where the CLI's output goes: results on stdout (text lines, raw bytes with
// backpressure, or exactly one JSON document with --json), messages and the
// progress line on stderr, and the one-line error report with its exit code.
import { once } from "node:events";
import { DeviceError, MbedlinkError } from "../src/index.js";
import { UsageError } from "./args.js";
import type { Progress } from "./progress.js";

/** Exit codes: 0 success, 1 failure (device, file, invalid signature, failed check), 2 usage error. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure the CLI explains in its own words (exit 1 unless told otherwise). */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode = EXIT_FAILURE,
  ) {
    super(message);
  }
}

export class Output {
  constructor(
    readonly json: boolean,
    readonly progress: Progress,
    private readonly stdout: NodeJS.WriteStream = process.stdout,
    private readonly stderr: NodeJS.WriteStream = process.stderr,
  ) {}

  /** A line of human output on stdout (nothing in --json mode). */
  line(text: string): void {
    if (this.json) return;
    this.progress.clear();
    this.stdout.write(`${text}\n`);
  }

  /** The --json document (the only thing written to stdout in that mode). */
  document(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A message on stderr, e.g. one failed file among several. */
  warn(text: string): void {
    this.progress.clear();
    this.stderr.write(`mbedlink: ${oneLine(text)}\n`);
  }

  /** Whether stdout is a terminal (raw bytes are refused there). */
  get stdoutIsTerminal(): boolean {
    return this.stdout.isTTY === true;
  }

  /** Writes bytes to stdout, waiting while the pipe is full. */
  async write(data: Uint8Array | string): Promise<void> {
    this.progress.clear();
    if (!this.stdout.write(data)) await once(this.stdout, "drain");
  }
}

export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

/** Device statuses whose name adds to the device's message. */
const NAMED_KINDS = new Set([
  "unsupported_algorithm",
  "crypto_error",
  "storage_error",
  "storage_full",
  "out_of_memory",
  "too_large",
  "too_many_handles",
  "internal_error",
  "not_exportable",
]);

/** The one line printed for an error, and the exit code. */
export function describeError(e: unknown, command: string | undefined): { message: string; exitCode: number } {
  if (e instanceof UsageError) {
    const cmd = e.command ?? command;
    return { message: `${e.message} (see: mbedlink ${cmd ? `${cmd} ` : ""}--help)`, exitCode: EXIT_USAGE };
  }
  if (e instanceof CliError) return { message: e.message, exitCode: e.exitCode };
  if (e instanceof DeviceError) {
    // The device's own message says what was wrong ("slot 3 is empty"); some kinds need naming too.
    const kind = e.statusName.replace(/_/g, " ");
    return { message: NAMED_KINDS.has(e.statusName) ? `${kind}: ${e.message}` : e.message, exitCode: EXIT_FAILURE };
  }
  if (e instanceof MbedlinkError) return { message: e.message, exitCode: EXIT_FAILURE };
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === "string" && typeof err.path === "string") {
    return { message: `${err.path}: ${errnoText(err)}`, exitCode: EXIT_FAILURE };
  }
  return { message: err instanceof Error ? err.message : String(e), exitCode: EXIT_FAILURE };
}

/** "No such file or directory" for ENOENT, as coreutils says it. */
export function errnoText(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ENOENT":
      return "No such file or directory";
    case "EACCES":
      return "Permission denied";
    case "EISDIR":
      return "Is a directory";
    case "ENOTDIR":
      return "Not a directory";
    default:
      return err.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "");
  }
}
