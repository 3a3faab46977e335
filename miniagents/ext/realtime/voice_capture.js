// The voice page's capture: an AudioWorklet processor that gathers the microphone's
// 128-sample blocks into chunks of 2,048 16-bit samples (4,096 bytes, the app's
// MICROPHONE_CHUNK_BYTES) and posts each to the page, which sends it to the app.
"use strict";

const CHUNK_SAMPLES = 2048;

class VoiceCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunk = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
  }

  process(inputs) {
    const samples = inputs[0]?.[0];  // (the first channel; none while no input is connected)
    if (samples) {
      for (let i = 0; i < samples.length; i++) {
        this.chunk[this.filled++] = Math.max(-1, Math.min(1, samples[i])) * 0x7fff;
        if (this.filled === CHUNK_SAMPLES) {
          this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
          this.chunk = new Int16Array(CHUNK_SAMPLES);
          this.filled = 0;
        }
      }
    }
    return true;  // (kept alive while the page's capture is)
  }
}

registerProcessor("miniagents-voice-capture", VoiceCapture);
