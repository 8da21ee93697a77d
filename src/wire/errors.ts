/**
 * The two kinds of failure of the wire layer. Malformed input is a {@link CodecError} (`BadFrame`),
 * a value for the peer to report; asking to encode an invalid value is a bug and throws an
 * {@link AssertionError}.
 *
 * The wire layer imports nothing, so these do not extend the project's error base class
 * (src/errors.ts); {@link CodecError} has its shape (a stable `code`, a message, `toJSON`), and
 * nothing tells the two apart by class.
 */

/**
 * Malformed input: truncated, oversized, trailing bytes, out-of-range fields, invalid UTF-8.
 * Always code `BadFrame`; the peer that sent it is broken or hostile, drop the frame (or the
 * connection) and report it.
 */
export class CodecError extends Error {
  override readonly name = 'CodecError';
  readonly code = 'BadFrame';

  toJSON(): { code: 'BadFrame'; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** A broken invariant of the wire layer: a bug in the caller that encodes. Never caught. */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

/** Throws CodecError `BadFrame`: the bytes are malformed. */
export function bad(message: string): never {
  throw new CodecError(message);
}

/** Throws AssertionError: asked to encode a value the layout cannot hold. */
export function bug(message: string): never {
  throw new AssertionError(`wire: ${message}`);
}
