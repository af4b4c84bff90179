// A WebDriver proxy in front of WebKitWebDriver (WebKitGTK's driver, the engine of Safari):
// wasm-bindgen-test-runner opens its sessions with empty capabilities, so WebKitWebDriver
// would start MiniBrowser without a microphone. Here every new session asks MiniBrowser for
// WebKit's mock capture devices (a fake microphone and camera), as the Chromium runs use
// Chromium's fake media stream. Everything else passes through unchanged.
//
//   node driver-proxy.mjs LISTEN_PORT DRIVER_PORT
import http from 'node:http';

const [listenPort, driverPort] = process.argv.slice(2).map(Number);
const MINIBROWSER = process.env.ATTUNE_MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const ARGS = ['--automation', '--enable-media-stream=true', '--enable-mock-capture-devices=true',
  '--media-playback-requires-user-gesture=false'];

function withMockMedia(body) {
  let request;
  try { request = JSON.parse(body || '{}'); } catch { return body; }
  request.capabilities ??= {};
  request.capabilities.alwaysMatch ??= {};
  request.capabilities.alwaysMatch['webkitgtk:browserOptions'] = { binary: MINIBROWSER, args: ARGS };
  delete request.desiredCapabilities;
  return JSON.stringify(request);
}

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'POST' && req.url === '/session') body = withMockMedia(body);
    const headers = { ...req.headers, host: `127.0.0.1:${driverPort}`, 'content-length': Buffer.byteLength(body) };
    const upstream = http.request({ host: '127.0.0.1', port: driverPort, path: req.url, method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', (error) => { res.writeHead(502); res.end(String(error)); });
    upstream.end(body);
  });
}).listen(listenPort, '127.0.0.1');
