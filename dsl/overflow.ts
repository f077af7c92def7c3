// Recursion in the parser and the checker follows the nesting of the program; a pathological program can
// exhaust the stack. That becomes diagnostic E0203, never a crash.
export function isStackOverflow(e: unknown): boolean {
  return e instanceof RangeError && /call stack/i.test(e.message);
}
