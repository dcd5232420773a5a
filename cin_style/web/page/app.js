// The cin-style page: a photo, one slider per style, strength and preserve-colour,
// run locally with onnxruntime-web.  Plain ES module, no build step; `cin-style web`
// writes site.json (the model's facts) and the import map that says where the
// runtime comes from.  window.cinStyle is the hook the browser tests and
// `cin-style bench browser` drive.
import {
  fitSize, jointBilateralUpsample, luminancePlane, mixStrength, normalizeWeights, preserveColor,
  grainPlanes, rgbaToPlanes, shrinkPlanes, smallSize, texturedRgba,
} from './tensor.js';
import { Camera, CameraError, download as offer, drawPlanes } from './camera.js';

const MIN_SIDE = 16;  // cin_style/infer/contract.py
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const state = {
  manifest: null, ort: null, session: null, backend: '', threads: 1,
  photo: null,       // {planes, width, height, name}: the graph's input
  weights: null,     // the blend of the last run
  stylized: null,    // the graph's raw output, float32 [3, H, W]
  renders: 0, busy: false, pending: false, lastMs: null, error: '',
};

class PageError extends Error {}
let camera = null;
let sessionQueue = Promise.resolve();

/** session.run, one call at a time (the photo and the camera share the session). */
function runSession(feeds) {
  const result = sessionQueue.then(() => state.session.run(feeds));
  sessionQueue = result.catch(() => {});
  return result;
}

function showError(error) {
  // Our own errors are meant for people; anything else is a bug: say so and keep the console trace.
  const ours = error instanceof PageError || error instanceof CameraError;
  const message = ours ? error.message : `unexpected error: ${firstLine(error)}`;
  if (!ours) console.error(error);
  state.error = message;
  $('error').textContent = message;
  $('error').hidden = false;
}

/** An event handler whose errors, thrown or rejected, are shown in the page. */
const guarded = (fn) => (...args) => Promise.resolve(fn(...args)).catch(showError);

function clearError() {
  state.error = '';
  $('error').hidden = true;
}

function firstLine(error) {
  return String(error?.message ?? error).split('\n')[0];
}

async function loadManifest() {
  const response = await fetch('site.json');
  if (!response.ok) {
    throw new PageError(`site.json: HTTP ${response.status}; serve the folder that \`cin-style web\` wrote`);
  }
  const manifest = await response.json();
  if (manifest.format !== 1) throw new PageError(`site.json has format ${manifest.format}; this page reads format 1`);
  return manifest;
}

async function chooseBackend() {
  const asked = params.get('backend');
  if (asked === 'wasm' || asked === 'webgpu') return asked;
  if (asked) throw new PageError(`?backend= must be wasm or webgpu, not "${asked}"`);
  if (!navigator.gpu) return 'wasm';
  try {
    const adapter = await navigator.gpu.requestAdapter();
    // A software (fallback) adapter is far slower than multi-threaded wasm.
    const fallback = adapter?.info?.isFallbackAdapter ?? adapter?.isFallbackAdapter ?? false;
    if (adapter && !fallback) return 'webgpu';
  } catch (_) { /* no usable GPU: wasm */ }
  return 'wasm';
}

function chooseThreads() {
  // wasm threads need SharedArrayBuffer, which needs cross-origin isolation
  // (`cin-style serve` sends the COOP/COEP headers).  Set explicitly: onnxruntime-web's
  // default is half the cores.
  if (!crossOriginIsolated) return 1;
  const cores = navigator.hardwareConcurrency || 1;
  const asked = Number.parseInt(params.get('threads') ?? '', 10);
  return asked > 0 ? Math.min(asked, cores) : cores;
}

async function loadRuntime(backend, runtime, threads) {
  const ort = await import(backend === 'webgpu' ? 'onnxruntime-web/webgpu' : 'onnxruntime-web/wasm');
  const base = new URL(runtime.base, location.href).href;
  ort.env.wasm.wasmPaths = base;
  ort.env.wasm.numThreads = threads;
  // Inference runs in onnxruntime-web's proxy worker: the page (and the camera loop) stay responsive.
  if (backend === 'wasm') ort.env.wasm.proxy = true;
  const wasmFile = runtime.wasm[backend];
  const integrity = runtime.integrity?.[wasmFile];
  if (integrity) {
    // A pinned CDN copy: fetch the binary here so its hash is checked like the scripts'.
    const response = await fetch(new URL(wasmFile, base), { integrity, mode: 'cors' });
    if (!response.ok) throw new PageError(`${wasmFile}: HTTP ${response.status} from ${base}`);
    ort.env.wasm.wasmBinary = await response.arrayBuffer();
  }
  return ort;
}

async function createSession(ort, manifest, backend) {
  let session;
  try {
    session = await ort.InferenceSession.create(manifest.graph, {
      executionProviders: [backend], graphOptimizationLevel: 'all',
    });
  } catch (error) {
    throw new PageError(`${manifest.graph}: onnxruntime-web cannot load it (${firstLine(error).slice(0, 200)})`);
  }
  const expected = manifest.baked_blend ? ['image'] : ['image', 'style_weights'];
  const inputs = [...session.inputNames].sort();
  if (inputs.join() !== [...expected].sort().join() || !session.outputNames.includes('stylized')) {
    throw new PageError(`${manifest.graph} is not a cin-style graph: it takes ${inputs.join(', ') || 'nothing'} ` +
      `and gives ${session.outputNames.join(', ') || 'nothing'} (expected ${expected.join(' + ')} → stylized)`);
  }
  return session;
}

function label(name) {
  return name.replaceAll('_', ' ');
}

function slider(id, text, value, onRelease) {
  const row = document.createElement('label');
  const input = Object.assign(document.createElement('input'),
    { id, type: 'range', min: '0', max: '1', step: '0.05', value: String(value) });
  const shown = Object.assign(document.createElement('output'), { value: String(value) });
  input.addEventListener('input', () => { shown.value = input.value; });
  input.addEventListener('change', onRelease);  // re-render when the control is released
  row.append(text, input, shown);
  return row;
}

function buildControls(manifest) {
  const box = $('styles');
  if (manifest.baked_blend) {
    box.append(`baked into the graph: ${manifest.baked_blend.replaceAll(',', ', ')}`);
    return;
  }
  manifest.style_names.forEach((name, i) => {
    box.append(slider(`style-${i}`, label(name), i === 0 ? 1 : 0, requestRender));
  });
  const strength = $('strength');
  strength.addEventListener('input', () => { strength.nextElementSibling.value = strength.value; });
}

function styleSliders() {
  return state.manifest.style_names.map((_, i) => $(`style-${i}`));
}

function showFacts(manifest) {
  const facts = $('facts');
  for (const [key, value] of Object.entries(manifest.facts ?? {})) {
    const dt = document.createElement('dt');
    dt.textContent = key;
    const dd = document.createElement('dd');
    dd.textContent = value;
    facts.append(dt, dd);
  }
  if (manifest.card) {
    const dd = document.createElement('dd');
    const link = Object.assign(document.createElement('a'), { href: manifest.card, textContent: manifest.card });
    dd.append(link);
    const dt = document.createElement('dt');
    dt.textContent = 'model card';
    facts.append(dt, dd);
  }
}

function setPhoto(rgba, width, height, name) {
  state.photo = { planes: rgbaToPlanes(rgba, width, height), width, height, name };
  const canvas = $('input');
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(rgba, width, height), 0, 0);
  return requestRender();
}

async function loadPhoto(file) {
  if (!file) return;
  if (!file.type.startsWith('image/')) {
    throw new PageError(`${file.name} is not an image (${file.type || 'unknown type'}): choose a PNG, JPEG or WebP photo`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (_) {
    throw new PageError(`${file.name}: this browser cannot decode it as an image`);
  }
  const [width, height] = fitSize(bitmap.width, bitmap.height, state.manifest.max_side);
  if (Math.min(width, height) < MIN_SIDE) {
    throw new PageError(`${file.name} is ${width}x${height} pixels at most ${state.manifest.max_side} on the ` +
      `long side; the model needs at least ${MIN_SIDE}x${MIN_SIDE}`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.imageSmoothingQuality = 'high';
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  await setPhoto(context.getImageData(0, 0, width, height).data, width, height, file.name);
}

function feedsFor(planes, width, height, weights) {
  const { Tensor } = state.ort;
  // The network sees the photo with the grain (flat regions get texture); the finish sees it as it is.
  // Copies: the proxy worker takes over (detaches) the buffers it is given.
  const input = grainPlanes(planes, width, height, Number($('grain').value));
  const feeds = { image: new Tensor('float32', input === planes ? planes.slice() : input, [1, 3, height, width]) };
  if (!state.manifest.baked_blend) {
    feeds.style_weights = new Tensor('float32', weights.slice(), [1, weights.length]);
  }
  return feeds;
}

async function render() {
  const { planes, width, height } = state.photo;
  let weights = null;
  if (!state.manifest.baked_blend) {
    weights = normalizeWeights(styleSliders().map((input) => Number(input.value)));
    if (!weights) throw new PageError('every style weight is 0: raise at least one style slider');
  }
  const scale = Number($('style-scale').value);
  const started = performance.now();
  if (scale > 1) {
    // Larger strokes: the network on the photo shrunk by `scale`, then back with the
    // photo's edges (cin_style/infer/scale.py does the same).
    const [sw, sh] = smallSize(width, height, scale);
    if (Math.min(sw, sh) < MIN_SIDE) {
      throw new PageError(`stroke size ${scale} shrinks this ${width}x${height} photo under ${MIN_SIDE} px: lower it`);
    }
    const small = shrinkPlanes(planes, width, height, sw, sh);
    const results = await runSession(feedsFor(small, sw, sh, weights));
    const guide = luminancePlane(small, sw * sh);
    state.stylized = jointBilateralUpsample(results.stylized.data, sw, sh, planes, width, height, guide);
  } else {
    const results = await runSession(feedsFor(planes, width, height, weights));
    state.stylized = Float32Array.from(results.stylized.data);
  }
  state.lastMs = performance.now() - started;
  state.styleScale = scale;
  state.weights = weights;
  state.renders += 1;
  clearError();
  finish();
  $('status').textContent = `${state.lastMs.toFixed(0)} ms per run at ${width}x${height}, stroke size ${scale} · ${backendText()}`;
}

function backendText() {
  return state.backend === 'webgpu' ? 'WebGPU'
    : `wasm, ${state.threads} thread${state.threads === 1 ? '' : 's'}` +
      (crossOriginIsolated ? '' : ' (page not cross-origin isolated: use `cin-style serve`)');
}

// Strength and preserve-colour work on the last output: no new run needed.
function finish() {
  if (!state.stylized) return;
  const { planes, width, height } = state.photo;
  drawPlanes($('output'), finishPlanes(state.stylized, planes, width, height), width, height);
  $('download').disabled = false;
}

async function requestRender() {
  if (!state.photo || !state.session) return;
  if (state.busy) {
    state.pending = true;  // one more run with the newest settings when this one ends
    return;
  }
  state.busy = true;
  try {
    do {
      state.pending = false;
      await render();
    } while (state.pending);
  } catch (error) {
    showError(error);
  } finally {
    state.busy = false;
  }
}

function download() {
  const name = `${(state.photo?.name ?? 'photo').replace(/\.[^.]*$/, '')}-stylized.png`;
  $('output').toBlob((blob) => offer(blob, name), 'image/png');
}

function wireInputs() {
  $('photo').addEventListener('change', guarded((event) => loadPhoto(event.target.files[0])));
  const drop = $('drop');
  // Dropping anywhere must not navigate away from the page.
  for (const type of ['dragover', 'drop']) document.addEventListener(type, (event) => event.preventDefault());
  drop.addEventListener('dragover', () => drop.classList.add('over'));
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', guarded((event) => {
    drop.classList.remove('over');
    return loadPhoto(event.dataTransfer.files[0]);
  }));
  $('strength').addEventListener('change', finish);
  const styleScale = $('style-scale');
  styleScale.addEventListener('input', () => { styleScale.nextElementSibling.value = styleScale.value; });
  styleScale.addEventListener('change', requestRender);  // a new run at the new scale
  const grain = $('grain');
  grain.addEventListener('input', () => { grain.nextElementSibling.value = grain.value; });
  grain.addEventListener('change', requestRender);
  $('preserve-color').addEventListener('change', finish);
  $('download').addEventListener('click', download);
}

function cameraWeights() {
  if (state.manifest.baked_blend) return null;
  const weights = normalizeWeights(styleSliders().map((input) => Number(input.value)));
  if (!weights) throw new PageError('every style weight is 0: raise at least one style slider');
  return weights;
}

function finishPlanes(stylized, planes, width, height) {
  let shown = stylized;
  if ($('preserve-color').checked) shown = preserveColor(shown, planes, width * height);
  return mixStrength(shown, planes, Number($('strength').value));
}

function wireCamera() {
  camera = new Camera({
    // The sliders as they are now: a move acts on the next frame.
    stylize: async (planes, width, height) => {
      const results = await runSession(feedsFor(planes, width, height, cameraWeights()));
      return Float32Array.from(results.stylized.data);
    },
    finish: finishPlanes,
    onError: (error) => { showError(error); cameraButtons(); },
  });
  $('camera-start').addEventListener('click', guarded(async () => {
    if (camera.running) {
      camera.stop();
    } else {
      clearError();
      await camera.start();
    }
    cameraButtons();
  }));
  $('camera-pause').addEventListener('click', () => { camera.paused = !camera.paused; cameraButtons(); });
  $('camera-snapshot').addEventListener('click', guarded(async () => offer(await camera.snapshot(), 'cin-style-camera.png')));
  $('camera-record').addEventListener('click', guarded(async () => {
    if (camera.recorder) offer(await camera.record(false), 'cin-style-camera.webm');
    else camera.record(true);
    cameraButtons();
  }));
  const smoothing = $('camera-smoothing');
  smoothing.addEventListener('input', () => { smoothing.nextElementSibling.value = smoothing.value; });
}

function cameraButtons() {
  $('camera-start').textContent = camera.running ? 'Stop camera' : 'Start camera';
  for (const id of ['camera-pause', 'camera-snapshot', 'camera-record']) $(id).disabled = !camera.running;
  $('camera-pause').textContent = camera.paused ? 'Resume' : 'Pause';
  $('camera-record').textContent = camera.recorder ? 'Stop recording' : 'Record WebM';
}

async function blobFacts(blob) {
  return { type: blob.type, size: blob.size, head: Array.from(new Uint8Array(await blob.slice(0, 8).arrayBuffer())) };
}

async function bench(sides, repeats = 5) {
  // Times exactly session.run on a textured square, uniform blend: first run at a size, then warm.
  const rows = [];
  const styles = state.manifest.style_names.length;
  const weights = new Float32Array(styles).fill(1 / styles);
  for (const side of sides) {
    const feeds = () => feedsFor(rgbaToPlanes(texturedRgba(side, side), side, side), side, side, weights);
    let started = performance.now();
    await state.session.run(feeds());
    const first = performance.now() - started;
    const warm = [];
    for (let r = 0; r < repeats; r++) {
      const input = feeds();
      started = performance.now();
      await state.session.run(input);
      warm.push(performance.now() - started);
    }
    warm.sort((a, b) => a - b);
    rows.push({ side, first_ms: first, warm_ms: warm[Math.floor(warm.length / 2)] });
  }
  return rows;
}

async function start() {
  wireInputs();
  state.manifest = await loadManifest();
  if (Number.isInteger(state.manifest.grain)) {  // cin_style/infer/grain.py's default
    $('grain').value = state.manifest.grain;
    $('grain').nextElementSibling.value = state.manifest.grain;
  }
  const manifest = state.manifest;
  $('model-line').textContent = `${manifest.title} · ${manifest.style_names.length} styles`;
  document.title = `cin-style · ${manifest.title}`;
  buildControls(manifest);
  showFacts(manifest);
  state.backend = await chooseBackend();
  state.threads = state.backend === 'wasm' ? chooseThreads() : 1;
  $('status').textContent = `loading onnxruntime-web (${backendText()}) …`;
  state.ort = await loadRuntime(state.backend, manifest.runtime, state.threads);
  state.session = await createSession(state.ort, manifest, state.backend);
  wireCamera();
  $('status').textContent = `ready (${backendText()}): choose a photo, or start the camera`;
}

const ready = start().then(() => ({ ok: true }), (error) => {
  showError(error);
  $('status').textContent = '';
  return { ok: false, error: state.error };
});

window.cinStyle = {
  ready,
  state: () => ({
    renders: state.renders, busy: state.busy, pending: state.pending, backend: state.backend,
    threads: state.threads, error: state.error, lastMs: state.lastMs, isolated: crossOriginIsolated,
    width: state.photo?.width ?? 0, height: state.photo?.height ?? 0,
    weights: state.weights ? Array.from(state.weights) : null, styleScale: state.styleScale ?? 1,
    grain: Number($('grain').value),
  }),
  output: () => Array.from(state.stylized ?? []),
  input: () => Array.from(state.photo?.planes ?? []),
  setTestImage: (width, height) => setPhoto(texturedRgba(width, height), width, height, 'textured.png'),
  bench,
  camera: {
    state: () => camera?.state() ?? null,
    // The last camera frame and its output, together (another frame may follow any moment).
    latest: () => ({ frame: Array.from(camera?.last?.planes ?? []), output: Array.from(camera?.last?.shown ?? []) }),
    snapshot: async () => blobFacts(await camera.snapshot()),
    record: async (ms) => {
      camera.record(true);
      await new Promise((resolve) => setTimeout(resolve, ms));
      return blobFacts(await camera.record(false));
    },
    pause: (paused) => { camera.paused = paused; cameraButtons(); },
  },
};
