/** ffmpeg command lines and SDP for the pipeline launcher (src/adapters/pipeline). */
export { ffmpegSenderCommand, ffmpegReceiverCommand, receiverSdp, FFMPEG_PATTERNS } from './commands.js';
