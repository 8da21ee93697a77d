/** The client API's logging: what it needs of a logger, and its default. */

/** Pino's logger fits. */
export interface HttpLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** JSON lines on stderr. */
export const stderrLogger: HttpLogger = {
  warn: (obj, msg) => console.warn(logLine('warn', obj, msg)),
  error: (obj, msg) => console.error(logLine('error', obj, msg)),
};

function logLine(level: string, obj: object, msg: string): string {
  return JSON.stringify({ level, time: Date.now(), msg, ...obj }, (_k, v: unknown) =>
    v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v,
  );
}
