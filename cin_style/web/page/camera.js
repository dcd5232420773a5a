// Camera mode: the webcam stylized live.  One frame is in flight at a time; frames that
// arrive while the network runs are dropped, never queued, so memory and latency stay
// bounded.  The network itself runs in onnxruntime-web's proxy worker (app.js), so the
// page stays responsive.  No DOM outside the ids below; app.js passes the network in.
import { fitSize, rgbaToPlanes, planesToRgba } from './tensor.js';

const $ = (id) => document.getElementById(id);

export class CameraError extends Error {}

/** Why getUserMedia failed, in words a person can act on. */
export function cameraProblem(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'camera permission was denied: allow the camera for this page in the browser and start again';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'no camera found: connect one and start again';
    case 'NotReadableError':
    case 'AbortError':
      return 'the camera could not be opened (another program may be using it)';
    default:
      return `the camera could not be started (${error?.name ?? 'error'}: ${error?.message ?? error})`;
  }
}

export class Camera {
  /**
   * stylize(planes, width, height) -> Promise<Float32Array [3, H, W]>: the network on one frame
   * with the current sliders; finish(stylized, planes, width, height): strength and colour.
   */
  constructor({ stylize, finish, onError }) {
    Object.assign(this, { stylize, finish, onError });
    this.video = $('camera-video');
    this.canvas = $('camera-output');
    this.stream = null;
    this.running = false;
    this.paused = false;
    this.recorder = null;
    this.reset();
  }

  reset() {
    Object.assign(this, {
      presented: 0, processed: 0, lastMs: null, fps: 0, started: 0, previous: null, last: null,
      flickerSum: 0, flickerCount: 0,
    });
  }

  async start() {
    if (this.running) return;
    if (!window.isSecureContext) {
      throw new CameraError('the camera needs a secure page: open it over https:// or http://localhost ' +
        '(`cin-style serve` serves localhost)');
    }
    if (!navigator.mediaDevices?.getUserMedia) throw new CameraError('this browser gives pages no camera access');
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
    } catch (error) {
      throw new CameraError(cameraProblem(error));
    }
    this.video.srcObject = this.stream;
    await this.video.play();
    this.reset();
    this.running = true;
    this.started = performance.now();
    this.countFrames();
    this.loop().catch((error) => { this.stop(); this.onError(error); });
  }

  stop() {
    this.running = false;
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
  }

  countFrames() {
    // Frames the camera delivered: what the dropped share is measured against.
    const next = () => (this.video.requestVideoFrameCallback
      ? this.video.requestVideoFrameCallback(tick) : requestAnimationFrame(tick));
    const tick = () => {
      if (!this.running) return;
      this.presented += 1;
      next();
    };
    next();
  }

  size() {
    const side = Number($('camera-size').value);
    return fitSize(this.video.videoWidth, this.video.videoHeight, side);
  }

  grab(width, height) {
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    context.drawImage(this.video, 0, 0, width, height);
    return rgbaToPlanes(context.getImageData(0, 0, width, height).data, width, height);
  }

  async loop() {
    while (this.running) {
      if (this.paused || this.video.readyState < 2) {
        await new Promise((resolve) => setTimeout(resolve, 30));
        continue;
      }
      const [width, height] = this.size();
      const planes = this.grab(width, height);  // the newest frame; those before it are dropped
      const started = performance.now();
      let stylized = await this.stylize(planes, width, height);
      const smoothing = Number($('camera-smoothing').value);
      if (smoothing > 0 && this.previous?.length === stylized.length) {
        // An exponential blend of outputs (measured in `cin-style bench browser --camera`).
        for (let k = 0; k < stylized.length; k++) stylized[k] = smoothing * this.previous[k] + (1 - smoothing) * stylized[k];
      }
      this.previous = stylized;
      this.lastMs = performance.now() - started;
      this.processed += 1;
      const shown = this.finish(stylized, planes, width, height);
      if (this.last?.shown.length === shown.length) {
        // Flicker: the mean change between successive outputs (a still scene should show none).
        let change = 0;
        for (let k = 0; k < shown.length; k++) change += Math.abs(shown[k] - this.last.shown[k]);
        this.flickerSum += change / shown.length;
        this.flickerCount += 1;
      }
      this.last = { planes, shown, width, height };
      drawPlanes(this.canvas, shown, width, height);
      const seconds = (performance.now() - this.started) / 1000;
      this.fps = this.processed / Math.max(seconds, 1e-3);
      $('camera-status').textContent = `${this.fps.toFixed(1)} frames/s · ${this.lastMs.toFixed(0)} ms/frame · ` +
        `${width}x${height} · ${(100 * this.droppedShare()).toFixed(0)} % of camera frames dropped`;
      await new Promise((resolve) => setTimeout(resolve, 0));  // let the page handle its events
    }
  }

  droppedShare() {
    return this.presented > 0 ? Math.max(0, 1 - this.processed / this.presented) : 0;
  }

  snapshot() {
    return new Promise((resolve) => this.canvas.toBlob(resolve, 'image/png'));
  }

  record(start) {
    if (start) {
      if (!window.MediaRecorder) throw new CameraError('this browser cannot record video (no MediaRecorder)');
      const chunks = [];
      this.recorder = new MediaRecorder(this.canvas.captureStream(30), { mimeType: 'video/webm' });
      this.recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
      this.recorded = new Promise((resolve) => {
        this.recorder.onstop = () => resolve(new Blob(chunks, { type: 'video/webm' }));
      });
      this.recorder.start(250);
      return null;
    }
    const recorder = this.recorder;
    this.recorder = null;
    recorder?.stop();
    return this.recorded;
  }

  state() {
    return {
      running: this.running, paused: this.paused, presented: this.presented, processed: this.processed,
      fps: this.fps, lastMs: this.lastMs, dropped: this.droppedShare(), recording: this.recorder !== null,
      width: this.last?.width ?? 0, height: this.last?.height ?? 0,
      flicker: this.flickerCount ? this.flickerSum / this.flickerCount : null,
    };
  }
}

/** Planes [3, H, W] in [0, 1] onto a canvas of their size (the photo's output and the camera's). */
export function drawPlanes(canvas, planes, width, height) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(planesToRgba(planes, width, height), width, height), 0, 0);
}

/** Hands a blob to the person as a download. */
export function download(blob, name) {
  const link = Object.assign(document.createElement('a'), { href: URL.createObjectURL(blob), download: name });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}
