// Starts a real `onemedi serve` on a random port with a fresh SQLite data dir seeded with the demo city,
// and stops it again. The binary comes from ONEMEDI_BIN or target/debug/onemedi.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.ONEMEDI_BIN || join(root, 'target', 'debug', 'onemedi');
export const PASSWORD = 'onemedi-demo';
export const email = (local) => `${local}@demo.onemedi.in`;

function env(dataDir) {
  const e = { ...process.env, ONEMEDI__SERVER__DATA_DIR: dataDir, RUST_LOG: process.env.RUST_LOG || 'warn' };
  // The embedded profile: SQLite in the data dir, in-process bus.
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'TEST_DATABASE_URL', 'TEST_REDIS_URL', 'ONEMEDI__DATABASE__URL', 'ONEMEDI__REDIS__URL']) delete e[k];
  return e;
}

export async function startServer() {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run cargo build --bin onemedi first`);
  const dataDir = mkdtempSync(join(tmpdir(), 'onemedi-browser-'));
  execFileSync(BIN, ['seed-demo', '--data-dir', dataDir], { env: env(dataDir), cwd: root, stdio: 'pipe' });
  const child = spawn(BIN, ['serve', '--bind', '127.0.0.1:0', '--data-dir', dataDir], { env: env(dataDir), cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('server did not start in 30 s:\n' + log)), 30000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`server exited with ${code}:\n${log}`)); });
  });
  return {
    base,
    dataDir,
    log: () => log,
    async stop() {
      child.removeAllListeners('exit');
      if (child.exitCode === null) {
        const gone = new Promise((ok) => child.once('exit', ok));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// A small REST client for the test's own checks and set-up.
export function client(base) {
  return async function api(path, { method = 'GET', token, body } = {}) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
    return data;
  };
}

export async function login(api, local) {
  const s = await api('/api/v1/auth/login', { method: 'POST', body: { email: email(local), password: PASSWORD } });
  return s.token;
}
