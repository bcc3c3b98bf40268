// Headless Chromium for the browser test (tests/web.test.ts) and the screenshot
// (scripts/web-screenshot.mjs): Debian's /usr/bin/chromium driven by playwright-core, WebGPU on
// SwiftShader (Chromium's CPU Vulkan) and no background network traffic; plus a small static server
// on 127.0.0.1 (a secure context, which navigator.gpu needs) on a free port.
import fs from 'node:fs';
import http from 'node:http';
import { requireWebDep } from './web-deps.mjs';

export const CHROMIUM = process.env.HOTPATHS_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--disable-gpu-sandbox',
  // no traffic of its own: updates, sync, metrics, safe browsing, translation, default apps
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-default-apps',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  '--metrics-recording-only',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  '--disable-breakpad',
  '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
  '--safebrowsing-disable-auto-update',
  '--password-store=basic',
  '--use-mock-keychain',
];

/** Why the browser cannot run here, or undefined when it can. */
export function browserMissing() {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is missing (apt-get install chromium; scripts/setup-system.sh does it)`;
  try {
    requireWebDep('playwright-core');
  } catch (e) {
    return e.message;
  }
  return undefined;
}

export async function launchChromium() {
  const { chromium } = requireWebDep('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json', '.css': 'text/css', '.png': 'image/png' };

/**
 * Serves `files` ({ '/path': absolute file or { body, type } }) on 127.0.0.1 at a free port; anything
 * else is a 404. Returns { origin, close }.
 */
export async function serveFiles(files) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const f = files[url.pathname];
    if (!f) {
      res.writeHead(404).end('not found');
      return;
    }
    const body = typeof f === 'string' ? fs.readFileSync(f) : f.body;
    const type = typeof f === 'string' ? TYPES[f.slice(f.lastIndexOf('.'))] ?? 'application/octet-stream' : f.type;
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}
