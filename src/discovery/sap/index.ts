/**
 * SAP (RFC 2974) with SDP (RFC 8866) public descriptions of Iolus groups: the directory's
 * sd-style announcements on an administratively scoped group, and a listener's session cache.
 * Descriptions carry names, agent URLs and certificate fingerprints, never keys.
 */
export { encodeSapPacket, decodeSapPacket, SDP_MIME, SAP_RECOMMENDED_MAX, type SapPacket } from './packet.js';
export { formatGroupDescription, originLine, parseSdp, readGroupDescription, sdpFingerprint, type AgentDescription, type GroupDescription, type SdpSession } from './sdp.js';
export { baseIntervalMs, nextTransmission, sessionTimeoutMs, RFC_MIN_INTERVAL_MS } from './interval.js';
export { SapAnnouncer, type SapSender, type SapAnnouncerInit, type SapAnnouncerStats } from './announcer.js';
export { SapListener, type HeardSession, type SapEvent } from './listener.js';
export { openSapSender, openSapReceiver, type SapSocketOptions, type SapReceiver } from './socket.js';
