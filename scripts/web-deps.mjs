// Where the web build's tools come from: esbuild (bundling), playwright-core (tests and the
// screenshot, driving Debian's /usr/bin/chromium), chart.js (the example page's chart). They are
// devDependencies of the package and resolve from its node_modules; when they are not installed there,
// HOTPATHS_WEB_DEPS=<folder> (an `npm install --prefix <folder> …`) is tried next.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Folders that hold node_modules packages for the web build, in the order they are tried. */
export const webDepModules = [path.join(root, 'node_modules'), ...(process.env.HOTPATHS_WEB_DEPS ? [path.join(process.env.HOTPATHS_WEB_DEPS, 'node_modules')] : [])];

/** require() of a web build tool (CommonJS: esbuild, playwright-core), with a message that says how to get it. */
export function requireWebDep(name) {
  for (const dir of webDepModules) {
    if (!fs.existsSync(path.join(dir, name, 'package.json'))) continue;
    return createRequire(path.join(dir, 'noop.js'))(name);
  }
  throw new Error(`${name} is not installed: it is a devDependency of hotpaths (npm install), or set HOTPATHS_WEB_DEPS to a folder where \`npm install --prefix <folder> ${name}\` put it`);
}
