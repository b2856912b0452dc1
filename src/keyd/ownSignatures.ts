/**
 * What an agent signed recently, so that hearing its own multicast back (the subgroup
 * transport loops it to the agent's own socket) costs a SHA-256, not an Ed25519 verification
 * (~0.2 ms: the largest single cost of a join in the joins benchmark, since every join's
 * rekey is heard back once). A frame whose covered bytes and signature are exactly a pair we
 * produced is ours by construction, since Ed25519 signatures are deterministic and we made
 * that one; anything else is verified as before, so a forgery is still caught and counted.
 * Bounded: the oldest entries go first; a frame heard after its entry went is just verified.
 */
import { createHash } from 'node:crypto';

export class OwnSignatures {
  private readonly recent = new Set<string>();

  constructor(private readonly maxEntries = 4096) {}

  private static id(covered: Uint8Array, signature: Uint8Array): string {
    return createHash('sha256').update(signature).update(covered).digest('base64');
  }

  record(covered: Uint8Array, signature: Uint8Array): void {
    this.recent.add(OwnSignatures.id(covered, signature));
    while (this.recent.size > this.maxEntries) this.recent.delete(this.recent.values().next().value as string);
  }

  /** Did we sign exactly `covered`, giving exactly `signature`? */
  produced(covered: Uint8Array, signature: Uint8Array): boolean {
    return this.recent.size > 0 && this.recent.has(OwnSignatures.id(covered, signature));
  }
}
