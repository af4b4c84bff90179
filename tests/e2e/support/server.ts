// Starts a real attune-server (the binary `cargo xtask test` built) on a free port.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repoRoot = resolve(__dirname, '..', '..', '..');
export const serverBin = process.env.ATTUNE_SERVER_BIN || join(repoRoot, 'target', 'debug', 'attune-server');
export const distDir = process.env.ATTUNE_DIST || join(repoRoot, 'dist');

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => ok(port));
    });
  });
}

export interface RunningServer {
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

/** Starts attune-server and resolves once it prints the URL it listens on. */
export async function startServer(opts: { port?: number; dist?: string; dataDir?: string } = {}): Promise<RunningServer> {
  const port = opts.port ?? (await freePort());
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'attune-data-'));
  const child: ChildProcess = spawn(serverBin, ['serve'], {
    env: { ...process.env, ATTUNE_ADDR: `127.0.0.1:${port}`, ATTUNE_DIST: opts.dist ?? distDir, ATTUNE_DATA_DIR: dataDir, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr += d.toString(); });
  const url = await new Promise<string>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`attune-server did not start in 30 s: ${stderr}`)), 30_000);
    child.stdout?.on('data', (d) => {
      out += d.toString();
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`attune-server exited (${code}): ${stderr}`)); });
  });
  return {
    url,
    port,
    dataDir,
    stop: () => new Promise<void>((ok) => {
      if (child.exitCode !== null) return ok();
      child.once('exit', () => ok());
      child.kill('SIGTERM');
    }),
  };
}

/** The study key passphrase the tests give `study init` and `export`. */
export const STUDY_PASSPHRASE = 'study passphrase for tests 9';

/** Runs an administration command of the real binary on a server's data (as a study admin
 *  would, next to the running server) and returns what it printed. */
export function adminCli(server: RunningServer, args: string[]): string {
  return execFileSync(serverBin, args, {
    env: { ...process.env, ATTUNE_DATA_DIR: server.dataDir, ATTUNE_STUDY_PASSPHRASE: STUDY_PASSPHRASE, RUST_LOG: 'warn' },
    encoding: 'utf8',
  });
}

/** `study init` on a server, with the key file in a fresh temp folder; the key file's path. */
export function studyInit(server: RunningServer): string {
  const keyFile = join(mkdtempSync(join(tmpdir(), 'attune-study-')), 'study.key');
  adminCli(server, ['study', 'init', '--key-out', keyFile]);
  return keyFile;
}

/** `enrol create` as the study admin runs it: a one-time code and the study fingerprint. */
export function enrolCode(server: RunningServer, keyFile: string, fieldworker: string): { code: string; fingerprint: string } {
  const out = adminCli(server, ['enrol', 'create', '--key', keyFile, '--fieldworker', fieldworker]);
  const code = out.match(/Enrolment code:\s*(\S+)/)?.[1];
  const fingerprint = out.match(/Study fingerprint:\s*(\S+)/)?.[1];
  if (!code || !fingerprint) throw new Error(`enrol create printed: ${out}`);
  return { code, fingerprint };
}
