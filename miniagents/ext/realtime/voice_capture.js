// The voice page's capture: an AudioWorklet processor that takes the microphone at the
// audio context's rate (the browser's own: the page makes the context in the user's press
// of the button, before it knows the session's rate), converts it to the session's
// (``processorOptions.rate``, by linear interpolation), and gathers it into chunks of 2,048
// 16-bit samples (4,096 bytes, the app's MICROPHONE_CHUNK_BYTES), posting each to the page,
// which sends it to the app.
"use strict";

const CHUNK_SAMPLES = 2048;

class VoiceCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.chunk = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
    // the context's samples a sample sent takes (1: the rates are one, each sample sent as is)
    this.step = sampleRate / options.processorOptions.rate;
    // where the next sample sent lies, in the block's samples (-1: the previous block's last)
    this.at = 0;
    this.last = 0;
  }

  process(inputs) {
    const samples = inputs[0]?.[0];  // (the first channel; none while no input is connected)
    if (samples) {
      for (; this.at <= samples.length - 1; this.at += this.step) {
        const whole = Math.floor(this.at), part = this.at - whole;
        const before = whole < 0 ? this.last : samples[whole];
        const value = part === 0 ? before : before + (samples[whole + 1] - before) * part;
        this.add(value);
      }
      this.at -= samples.length;
      this.last = samples[samples.length - 1];
    }
    return true;  // (kept alive while the page's capture is)
  }

  // one sample (-1 to 1) added to the chunk, which is posted once full
  add(value) {
    this.chunk[this.filled++] = Math.max(-1, Math.min(1, value)) * 0x7fff;
    if (this.filled === CHUNK_SAMPLES) {
      this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
      this.chunk = new Int16Array(CHUNK_SAMPLES);
      this.filled = 0;
    }
  }
}

registerProcessor("miniagents-voice-capture", VoiceCapture);
