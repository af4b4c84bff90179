// Trunk post-build step (see Trunk.toml), also runnable by hand on any built directory:
//   node xtask/pwa/postbuild.mjs [--console] DIR
// With --console (console/Trunk.toml) the build is the researcher console, served at
// /console/: step 2 is skipped (the console has no service worker, it is online by design).
// 1. Moves Trunk's inline start-up <script> into a hashed file, so the Content-Security-Policy
//    can forbid inline scripts.
// 2. Writes sw.js: the service worker with the list of every built file to precache and a
//    version derived from their contents (a new build with any change is a new version).
// 3. Writes a brotli (.br) and a gzip (.gz) copy beside each text and wasm file; the server
//    sends them to browsers that accept them (the wasm goes from about 1.5 MB to 0.45 MB).
import { createHash } from 'node:crypto';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import { readFileSync, writeFileSync, readdirSync, statSync, rmSync, existsSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const isConsole = args.includes('--console');
const base = isConsole ? '/console/' : '/';
const dir = args.find((a) => !a.startsWith('--')) || process.env.TRUNK_STAGING_DIR;
if (!dir) { console.error('postbuild: give the built directory (or run from trunk)'); process.exit(2); }
const here = dirname(fileURLToPath(import.meta.url));
const sha256 = (data) => createHash('sha256').update(data).digest('hex');

// 1. External boot script.
const indexPath = join(dir, 'index.html');
let html = readFileSync(indexPath, 'utf8');
const inline = /<script type="module">([\s\S]*?)<\/script>/;
const match = html.match(inline);
if (match) {
  for (const f of readdirSync(dir)) if (/^boot-[0-9a-f]{16}\.js$/.test(f)) rmSync(join(dir, f));
  const body = match[1].trim() + '\n';
  const name = `boot-${sha256(body).slice(0, 16)}.js`;
  writeFileSync(join(dir, name), body);
  html = html.replace(inline, `<script type="module" src="${base}${name}"></script>`);
  writeFileSync(indexPath, html);
}
if (/<script(?![^>]*\bsrc=)[^>]*>/.test(html)) {
  console.error('postbuild: index.html still has an inline script; the CSP would block it');
  process.exit(1);
}

// 2. Service worker (the tablets' app only).
const files = [];
const walk = (d) => {
  for (const name of readdirSync(d).sort()) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else files.push(p);
  }
};
walk(dir);
const compressed = /\.(br|gz)$/;
const assets = files
  .map((p) => '/' + relative(dir, p).split('\\').join('/'))
  .filter((u) => u !== '/sw.js' && !u.endsWith('.map') && !compressed.test(u));
if (!isConsole) writeServiceWorker();
function writeServiceWorker() {
  const hash = createHash('sha256');
  for (const u of assets) { hash.update(u); hash.update(readFileSync(join(dir, u.slice(1)))); }
  const version = hash.digest('hex').slice(0, 12);
  const template = readFileSync(join(here, '..', '..', 'src', 'service_worker.js'), 'utf8');
  const sw = template
    .replace("'__ATTUNE_VERSION__'", JSON.stringify(version))
    .replace('__ATTUNE_ASSETS__', JSON.stringify(['/', ...assets], null, 2));
  writeFileSync(join(dir, 'sw.js'), sw);
  console.log(`postbuild: sw.js version ${version}, ${assets.length} files precached`);
}

// 3. Precompressed copies (rewritten on every run, so a changed file never keeps a stale one).
const compressible = /\.(html|js|mjs|css|wasm|webmanifest|json|svg)$/;
let saved = 0;
for (const p of files) if (compressed.test(p) && !existsSync(p.replace(compressed, ''))) rmSync(p);
for (const u of isConsole ? assets : ['/sw.js', ...assets]) {
  if (!compressible.test(u)) continue;
  const path = join(dir, u.slice(1));
  const data = readFileSync(path);
  const br = brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length } });
  writeFileSync(path + '.br', br);
  writeFileSync(path + '.gz', gzipSync(data, { level: 9 }));
  saved += data.length - br.length;
}
console.log(`postbuild: brotli and gzip copies written (${(saved / 1024).toFixed(0)} KB fewer to send with brotli)`);
