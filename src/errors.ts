/**
 * One error family for the whole service, so a caller can tell bad input from a bug.
 *
 *   IolusError
 *   ├── CodecError              bytes that do not decode (malformed, truncated, oversized, unknown version/suite)
 *   ├── ValidationError         a value that decodes but is not acceptable (config, HTTP body, CLI flag)
 *   ├── CryptoVerificationError a tag or signature that does not verify
 *   ├── ReplayError             a message already seen, or older than what the receiver holds
 *   ├── PolicyError             refused by the ACL or an entitlement
 *   ├── UsageError              an API called in a state where it cannot work
 *   └── InternalError           a bug: an invariant that should hold did not
 */
export class IolusError extends Error {
  /** Stable machine-readable code, e.g. `codec.truncated`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class CodecError extends IolusError {}
export class ValidationError extends IolusError {
  /** One line per problem, each naming the field and why. */
  readonly problems: readonly string[];
  constructor(code: string, problems: readonly string[] | string, options?: { cause?: unknown }) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(code, list.join('; '), options);
    this.problems = list;
  }
}
export class CryptoVerificationError extends IolusError {}
export class ReplayError extends IolusError {}
export class PolicyError extends IolusError {}
export class UsageError extends IolusError {}
export class InternalError extends IolusError {}
