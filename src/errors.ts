/**
 * The one base class of operating errors (not leader, overloaded, bad request, bad frame...):
 * values with a stable `code` that callers branch on, serializable across threads and the wire
 * (`toJSON`). A broken invariant is not one of these: it is an assertion failure.
 */
export class CodedError<C extends string = string> extends Error {
  constructor(
    readonly code: C,
    message: string,
  ) {
    super(message);
  }

  toJSON(): { code: C; message: string } {
    return { code: this.code, message: this.message };
  }
}
