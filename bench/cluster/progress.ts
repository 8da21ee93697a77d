/** Progress lines go to stderr, so that stdout holds only the report (and --json's last line). */
export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}
