/**
 * Types for mdns-server 1.0.11 (CommonJS, ships none). Only what src/discovery/mdns/transport.ts
 * uses; nothing else in the code base should import 'mdns-server'.
 */
declare module 'mdns-server' {
  import type { EventEmitter } from 'node:events';
  import type { Socket, RemoteInfo } from 'node:dgram';

  namespace createMdnsServer {
    /**
     * One socket pair per entry. The library mutates these objects: it stores the sockets it
     * creates in `socketSend` / `socketRecv` (and sets them to null when an entry fails).
     */
    interface InterfaceEntry {
      name: string;
      address: string;
      family: 'IPv4' | 'IPv6';
      socketSend?: Socket | null;
      socketRecv?: Socket | null;
      listening?: boolean;
    }

    interface Options {
      /** Interface names/addresses, or entries (used as given, bypassing the library's filter). */
      interfaces?: string | string[] | InterfaceEntry[];
      /** Source port of the send sockets; 0 (default) = ephemeral. */
      srcPort?: number;
      reuseAddr?: boolean;
      /** IP_MULTICAST_LOOP on the receive socket. */
      loopback?: boolean;
      /** Multicast TTL / hop limit. */
      ttl?: number;
      /** Do not create sockets in the constructor; call initServer(). */
      noInit?: boolean;
    }

    /** What the library passes as rinfo: dgram's, plus the interface name it stamps on. */
    interface PacketInfo extends RemoteInfo {
      interface?: string;
    }

    /** Send scope: only entries whose name and family match are used. */
    interface SendScope {
      interface?: string;
      family?: string;
      port?: number;
    }

    interface Server extends EventEmitter {
      initServer(): void;
      /** `type` must be null when a scope is given without a port (the library's argument juggling). */
      query(packet: object, type: null, scope: SendScope | null, cb?: () => void): void;
      respond(packet: object, scope?: SendScope | null, cb?: () => void): void;
      destroy(cb?: () => void): void;
      getInterfaces(): InterfaceEntry[];
    }
  }

  function createMdnsServer(options?: createMdnsServer.Options): createMdnsServer.Server;
  export = createMdnsServer;
}
