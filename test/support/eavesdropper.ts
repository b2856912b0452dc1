/**
 * The adversary of the secrecy properties: it hears every datagram on every subgroup of the
 * tree and holds a set of keys (whatever a departed member kept, or a joiner got). It applies
 * every key to everything: unwraps key updates to grow its key set (the transitive closure of
 * what it can learn) and tries to open every data payload. Tests assert what it can never open.
 */
import { unwrapKey } from '../../src/crypto/aead.js';
import { openDataUnit, unwrapDataUnit } from '../../src/protocol/dataUnit.js';
import { MessageType } from '../../src/wire/header.js';
import { leaveEntryAad } from '../../src/wire/keyUpdate.js';
import { decodeMessage, type Message } from '../../src/wire/message.js';
import type { Tree } from './tree.js';

export class Eavesdropper {
  readonly keys = new Map<string, Uint8Array>();
  readonly heard: Uint8Array[] = [];
  readonly opened: string[] = [];

  constructor(private readonly groupId: Uint8Array) {}

  /** Listens on every subgroup of the tree from now on (and to agents' unicast: it is on the path). */
  tap(tree: Tree): void {
    for (const name of tree.nodes.keys()) {
      tree.net.subscribe(`sg:${name}`, `eve:${name}:${Math.random()}`, (b) => this.hear(b));
    }
  }

  learn(key: Uint8Array | undefined): void {
    if (key) this.keys.set(Buffer.from(key).toString('hex'), new Uint8Array(key));
  }

  hear(bytes: Uint8Array): void {
    this.heard.push(bytes);
    this.process(bytes);
  }

  /** Re-applies every key to everything heard so far, until nothing new is learned. */
  closure(): void {
    for (let grew = true; grew; ) {
      const before = this.keys.size;
      for (const b of this.heard) this.process(b);
      grew = this.keys.size > before;
    }
  }

  private process(bytes: Uint8Array): void {
    let m: Message;
    try {
      m = decodeMessage(bytes);
    } catch {
      return;
    }
    for (const k of [...this.keys.values()]) this.tryKey(m, k);
  }

  private tryKey(m: Message, k: Uint8Array): void {
    try {
      switch (m.type) {
        case MessageType.JoinKeyUpdate:
          this.learn(unwrapKey(k, m.body.wrapped, m.frame.headerBytes));
          break;
        case MessageType.LeaveKeyUpdate:
          for (const e of m.body.entries) {
            try {
              this.learn(unwrapKey(k, e.wrapped, leaveEntryAad(m.frame.headerBytes, e.memberId)));
            } catch {
              /* not this entry */
            }
          }
          break;
        case MessageType.DataMethod1:
        case MessageType.DataMethod2:
        case MessageType.DataUp: {
          const unit = unwrapDataUnit(m.frame, m.body, k);
          const text = new TextDecoder().decode(openDataUnit(this.groupId, unit));
          if (!this.opened.includes(text)) this.opened.push(text);
          break;
        }
        default:
          break;
      }
    } catch {
      /* wrong key */
    }
  }
}
