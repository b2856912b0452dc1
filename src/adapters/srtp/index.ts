/** SRTP adapter: a key ring of werift-rtp crypto contexts keyed from the group key service. */
export { SrtpKeyRing, type SrtpKeyRingOptions, type SrtpRingEvent, type EpochStatus, type EpochState } from './keyRing.js';
export { SrtpCryptoContext, derivedKeyProblem } from './cryptoContext.js';
export { epochView, type EpochView } from './epochView.js';
export {
  RX_DROP_CAUSES,
  TX_DROP_CAUSES,
  type RxDropCause,
  type TxDropCause,
  type ProtectResult,
  type UnprotectResult,
  type SrtpCounters,
  type EpochCounters,
} from './counters.js';
export { SRTP_PROFILE_NAMES, SUITE_SPELLINGS, srtpProfile, splitMasterKey, isSrtpProfileName, type SrtpProfile, type SrtpProfileName, type SuiteSpelling } from './profile.js';
export { ReplayWindow, DEFAULT_REPLAY_WINDOW, type ReplayVerdict } from './replayWindow.js';
export { PacketIndexTracker, estimateRoc } from './packetIndex.js';
export { MKI_LENGTH, insertMki, readMki, stripMki, mkiValue } from './mki.js';
export { SsrcCollisionDetector, type SsrcCollision } from './ssrcCollision.js';
export { parseRtpHeader, isRtcp, type RtpHeaderView } from './rtpPacket.js';
export { gstKeyHex, ffmpegSrtpParams, sdesCryptoAttribute, gstSrtpCapsFields, type GstCapsKey } from './keyFormats.js';
