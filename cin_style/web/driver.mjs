// Drives the cin-style page in headless Chromium with puppeteer-core, for the
// browser tests and `cin-style bench browser` (cin_style/web/browser.py).
// Usage: node driver.mjs JOB.json  — JOB: {chromium, node_modules, steps: [...]};
// prints {"results": [...]} with one entry per step.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const require = createRequire(path.join(job.node_modules, 'package.json'));
const puppeteer = require('puppeteer-core');
const TIMEOUT = job.timeout_ms ?? 120000;

const browser = await puppeteer.launch({
  executablePath: job.chromium,
  headless: 'shell',
  // Root in a container needs --no-sandbox; the rest keeps Chromium off the (closed) network.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', ...(job.args ?? [])],
  protocolTimeout: TIMEOUT,
});
const console_lines = [];
let page = null;

async function waitIdle(rendersBefore) {
  await page.waitForFunction((n) => {
    const s = window.cinStyle.state();
    return (s.renders > n && !s.busy && !s.pending) || s.error !== '';
  }, { timeout: TIMEOUT, polling: 50 }, rendersBefore);
  return page.evaluate(() => window.cinStyle.state());
}

const renders = () => page.evaluate(() => window.cinStyle.state().renders);

const ops = {
  async open({ url }) {
    if (page) await page.close();
    page = await browser.newPage();
    page.on('console', (message) => console_lines.push(`${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => console_lines.push(`pageerror: ${error.message}`));
    await page.setViewport({ width: 1200, height: 900 });
    await page.goto(url, { waitUntil: 'load', timeout: TIMEOUT });
    await page.waitForFunction(() => window.cinStyle !== undefined, { timeout: TIMEOUT });
    const ready = await page.evaluate(() => window.cinStyle.ready);
    return { ready, state: await page.evaluate(() => window.cinStyle.state()) };
  },
  async upload({ file }) {
    const before = await renders();
    const input = await page.$('#photo');
    await input.uploadFile(file);
    return waitIdle(before);
  },
  async slider({ id, value, wait = true }) {
    // What releasing a dragged slider does: input events while moving, change on release.
    const before = await renders();
    await page.$eval(`#${id}`, (element, v) => {
      element.value = String(v);
      element.dispatchEvent(new Event('input', { bubbles: true }));
      element.dispatchEvent(new Event('change', { bubbles: true }));
    }, value);
    return wait ? waitIdle(before) : true;
  },
  async testImage({ width, height }) {
    const before = await renders();
    await page.evaluate((w, h) => { window.cinStyle.setTestImage(w, h); }, width, height);
    return waitIdle(before);
  },
  state: () => page.evaluate(() => window.cinStyle.state()),
  // window.cinStyle.camera[fn](...args), awaited (the camera tests and bench).
  camera: ({ fn, args }) => page.evaluate((f, a) => window.cinStyle.camera[f](...(a ?? [])), fn, args),
  async click({ selector }) {
    await page.click(selector);
    return true;
  },
  async waitFor({ expression }) {
    // Until a JavaScript expression over `cam` (the camera's state) and `s` (the page's) holds.
    await page.waitForFunction(`(() => { const cam = window.cinStyle.camera.state(); const s = window.cinStyle.state();
      return (${expression}) || s.error !== ''; })()`, { timeout: TIMEOUT, polling: 50 });
    return page.evaluate(() => ({ camera: window.cinStyle.camera.state(), page: window.cinStyle.state() }));
  },
  async refuseCamera({ name, message }) {
    // What Chromium's getUserMedia rejects with when a person denies the prompt (NotAllowedError)
    // or has no camera (NotFoundError): headless Chromium shows no prompt to deny.
    await page.evaluate((n, m) => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException(m, n));
    }, name, message);
    return true;
  },
  async sleep({ ms }) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return true;
  },
  output: () => page.evaluate(() => window.cinStyle.output()),
  input: () => page.evaluate(() => window.cinStyle.input()),
  text: ({ selector }) => page.$eval(selector, (element) => (element.hidden ? '' : element.textContent)),
  bench: ({ sides, repeats }) => page.evaluate((s, r) => window.cinStyle.bench(s, r), sides, repeats),
  async screenshot({ file }) {
    await page.screenshot({ path: file, fullPage: true });
    return file;
  },
};

const results = [];
try {
  for (const step of job.steps) {
    results.push(await ops[step.op](step));
  }
} catch (error) {
  results.push({ driver_error: String(error?.message ?? error) });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ results, console: console_lines }) + '\n');
