export * from './frame.ts';
export { FrameDecoder, type FrameSink } from './decoder.ts';
export { Mux, type MuxOptions, type MuxSink } from './mux.ts';
export { MuxStream, type StreamHandlers } from './stream.ts';
