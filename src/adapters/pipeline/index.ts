/** Pipeline launchers: GStreamer and ffmpeg senders/receivers keyed from the local agent (direct or relay mode). */
export { PipelineLauncher, type PipelineComponents, type PipelineCounters, type PipelineEvent, type PipelineState, type RestartGap, type RunCounters } from './launcher.js';
export { parsePipelineOptions, pipelineOptionsSchema, TOOLS, MODES, type PipelineOptions, type PipelineOptionsInput, type PipelineMode, type PipelineRole, type Tool } from './options.js';
export { AgentKeys, type AgentEvent, type KeyLookup, type KeyProvider } from './agentKeys.js';
export { ToolProcess, type ToolCommand, type ToolProcessOptions } from './toolProcess.js';
export { PipelineError, describeExit, describeSpawnError, diagnose, type ToolExit, type ToolName } from './errors.js';
export { FrameCounter } from './frameCounter.js';
export { MEDIA, DEFAULT_VIDEO, OUT_WIDTH, OUT_HEIGHT, PCMU_SAMPLES, framesPerSecond, type MediaKind, type MediaSpec, type VideoFormat } from './media.js';
export { freeUdpPort, udpPortBound, udpSink, waitUdpBound } from './ports.js';
export { RunBook } from './runBook.js';
export { guardedGroups, killAllTools } from './watchdog.js';
export type { ReceiverSpec, SenderSpec, SrtpKeying } from './spec.js';
