/** gst-launch-1.0 command lines for the pipeline launcher (src/adapters/pipeline). */
export { gstSenderCommand, gstReceiverCommand, GST_ELEMENTS, GST_PATTERNS } from './pipelines.js';
