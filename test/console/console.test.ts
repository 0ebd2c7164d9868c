/**
 * The web console in a real browser against a real mesh with traffic:
 *
 *   dev Consul (in-process)              registrations, KV (jobs, splits, intentions)
 *   weft scheduler (in-process)          API + /ui on a free port, autoscaler (scrape source)
 *   h3 (127.0.0.3): weft agent (in-process, process driver) running job `backend`:
 *                   group v1 (autoscaled on rps, 1..3) and group v2 (1), split 90/10
 *   weft proxy on h2 (127.0.0.2, the caller `frontend`) and on h3 (child processes)
 *   a bounded load generator calling backend through h2's outbound port as frontend
 *   Debian's Chromium driven by playwright-core (no browser download)
 *
 * What a person sees: the token form (a wrong token refused), the topology
 * edge frontend -> backend with a rate, the service page (versions against
 * the split, instances, charts), a scaling decision with its reason, a deny
 * marked on the edge, and an intention description full of HTML shown as
 * text. Screenshots go to .tap/console-screenshots/.
 */
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { CONSOLE_CSP } from '../../src/wiring/scheduler-console.js';
import { startScheduler } from '../../src/wiring/scheduler-process.js';
import { captureLogger } from '../agent/helpers.js';
import { makeCa } from '../certs/fixtures.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { makeHost, startProxy, writeLocal } from '../integration/proxy-hosts.js';
import { api, DEMO_APP, schedulerDataDir, startSimAgent, TOKEN } from '../integration/scheduler-cluster.js';

const ROOT = join(import.meta.dirname, '../..');
const SHOTS = join(ROOT, '.tap', 'console-screenshots');
const CHROMIUM = '/usr/bin/chromium';
/** The load generator stops by itself after this long, whatever happens to the test. */
const LOAD_LIMIT_MS = 120_000;

const consul = await startTestConsul(t);
const ca = makeCa();
const h2 = await makeHost(t, ca, 'h2', '127.0.0.2', ['frontend']);
const h3 = await makeHost(t, ca, 'h3', '127.0.0.3', ['backend']);
const outboundPort = await freePort(h2.address);
await writeLocal(h2, [{ service: 'frontend', outboundPort }]);

// The scheduler, in-process (the autoscaler without its warm-up), configured as the cluster tests' children are.
const sched = await schedulerDataDir(t, consul);
const port = await freePort();
const { logger, lines } = captureLogger();
const scheduler = await startScheduler({
  config: loadConfig({ env: {}, file: sched.configFile, flags: { dataDir: sched.dataDir, nodeName: 'sched', 'scheduler.port': port } }),
  logger,
  autoscale: { warmupMs: 0 },
});
t.teardown(() => scheduler.close());
const url = `http://127.0.0.1:${port}`;
// h3's agent: the process driver, its instances reached through h3's proxy.
await startSimAgent(t, consul, h3.node, h3.address, () => url, { meshPort: h3.inboundPort });
await Promise.all([startProxy(t, h2, consul.address), startProxy(t, h3, consul.address)]);

/** One group of `backend`: the demo app as version `version`. */
function group(version: string, more: Record<string, unknown>) {
  return {
    name: version,
    count: 1,
    ...more,
    tasks: [
      {
        name: 'app',
        driver: 'process',
        command: process.execPath,
        args: [DEMO_APP],
        port: 0,
        resources: { cpu: 100, memory: 64 },
        env: { SERVICE: 'backend', DRAIN_MS: '200' },
        labels: { 'weft.service': 'backend', 'weft.version': version },
        check: { http: '/health', interval: '1s', timeout: '500ms' },
      },
    ],
  };
}

const submitted = await api(url, 'POST', '/v1/jobs', {
  spec: {
    name: 'backend',
    update: { minHealthyTime: '1s', healthDeadline: '30s' },
    groups: [group('v1', { autoscale: { min: 1, max: 3, metrics: [{ rps: 4 }], interval: '1s' } }), group('v2', {})],
  },
});
if (submitted.status !== 200) throw new Error(`submit: ${submitted.text}`);
const split = await api(url, 'PUT', '/v1/splits/backend', { weights: { v1: 9, v2: 1 } });
if (split.status !== 200) throw new Error(`split: ${split.text}`);

/** Calls backend through h2's outbound port as frontend, 2 at a time, until stopped or LOAD_LIMIT_MS. */
function startLoad(): { stop(): Promise<void>; answered: () => number } {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 2 });
  let answered = 0;
  let running = true;
  const limit = setTimeout(() => {
    running = false;
  }, LOAD_LIMIT_MS);
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.request({ host: h2.address, port: outboundPort, path: '/', headers: { host: 'backend' }, agent: keepAlive, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => {
          answered++;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve());
      req.end();
    });
  const loops = [0, 1].map(async () => {
    while (running) await Promise.all([one(), new Promise((r) => setTimeout(r, 60))]);
  });
  return {
    answered: () => answered,
    async stop() {
      running = false;
      clearTimeout(limit);
      await Promise.all(loops);
      keepAlive.destroy();
    },
  };
}
const load = startLoad();
t.teardown(() => load.stop());

mkdirSync(SHOTS, { recursive: true });
const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
t.teardown(() => browser.close());
const page: Page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
/** What the browser reported: errors and CSP violations fail the test. */
const complaints: string[] = [];
page.on('console', (m) => {
  if (m.type() === 'error') complaints.push(m.text());
});
page.on('pageerror', (err) => complaints.push(String(err)));
const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const logTail = () =>
  lines
    .slice(-15)
    .map((l) => String(l['msg']))
    .join(' | ');

t.test('/ui is public, strict and served by weft; the API still wants the token', async (t) => {
  const redirect = await fetch(`${url}/ui`, { redirect: 'manual' });
  t.equal(redirect.status, 308);
  t.equal(redirect.headers.get('location'), '/ui/');
  const index = await fetch(`${url}/ui/`);
  t.equal(index.status, 200);
  t.equal(index.headers.get('content-security-policy'), CONSOLE_CSP);
  t.match(CONSOLE_CSP, /script-src 'self'; style-src 'self'/, 'no inline script, no inline style element');
  t.equal(index.headers.get('x-content-type-options'), 'nosniff');
  const html = await index.text();
  t.match(html, /<script src="app\.js" defer><\/script>/);
  t.notMatch(html, /<script>|<style|https?:\/\//, 'no inline script or style, nothing from another origin');
  const js = await fetch(`${url}/ui/app.js`, { headers: { 'accept-encoding': 'gzip' } });
  t.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  t.equal(js.headers.get('content-encoding'), 'gzip', 'compressed when the browser asks');
  t.ok((await js.text()).includes('u-legend'), 'uPlot is inside the bundle: no CDN');
  const missing = await api(url, 'GET', '/ui/nope.js', undefined, null);
  t.equal(missing.status, 404);
  t.match(missing.body, { code: 'WEFT_ERR_API_NOT_FOUND' });
  t.equal((await api(url, 'GET', '/v1/stats', undefined, null)).status, 401, 'the data is behind the token');
  t.equal((await api(url, 'GET', '/uix', undefined, null)).status, 401, 'only /ui itself is public');
  for (const path of ['/ui/../v1/stats', '/ui/%2e%2e/v1/stats', '/ui/..%2fv1%2fstats', '/ui//v1/stats']) {
    const r = await api(url, 'GET', path, undefined, null);
    t.not(r.status, 200, `${path} reaches no data (${r.status})`);
    t.notOk('services' in r.body, `${path}: no stats in the answer`);
  }
});

t.test('the token form: a wrong token is refused, the right one opens the console', async (t) => {
  await page.goto(`${url}/ui`);
  const input = page.getByLabel('Operator token');
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  await shot('01-token-form');
  await input.fill('not-the-token');
  await page.getByRole('button', { name: 'Open the console' }).click();
  await page.getByText('The scheduler refused this token.').waitFor({ timeout: 10_000 });
  t.pass('a wrong token is refused in the page');
  t.match(complaints, [/status of 401/], 'the one error the browser reports: the refused token');
  complaints.length = 0;
  await input.fill(TOKEN);
  await page.getByRole('button', { name: 'Open the console' }).click();
  await page.getByRole('heading', { name: 'Topology' }).waitFor({ timeout: 10_000 });
  t.notMatch(page.url(), new RegExp(TOKEN), 'the token is not in the URL');
  t.equal(await page.evaluate(() => sessionStorage.getItem('weft.token')), TOKEN, 'kept for the session');
  t.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
});

t.test('the topology shows the edge frontend -> backend with its rate', async (t) => {
  const edge = page.locator('svg.topology g.edge[data-source="frontend"][data-destination="backend"]');
  const label = await eventually(
    async () => {
      const text = (await edge.textContent({ timeout: 1000 })) ?? '';
      const rate = Number(/([\d.]+) rps/.exec(text)?.[1] ?? 0);
      return rate > 0 ? text : undefined;
    },
    40_000,
    `a rate on the edge frontend -> backend (load answered ${load.answered()}; scheduler: ${logTail()})`,
    500,
  );
  t.match(label, /[\d.]+ rps[\d.]+% ok · p99 [\d.]+ ms/, `the edge reads "${label}"`);
  t.ok(await page.locator('svg.topology g.node[data-service="backend"]').isVisible(), 'backend is a node');
  t.ok(await page.locator('svg.topology g.node[data-service="frontend"]').isVisible(), 'frontend, the caller, is a node');
  await page.getByRole('cell', { name: 'backend' }).waitFor();
  await shot('02-overview');
});

t.test('the service page: versions against the split, instances with health, charts, and a scaling decision with its reason', async (t) => {
  await page.locator('svg.topology a[href="#/service/backend"]').click();
  await page.getByRole('heading', { name: 'Versions' }).waitFor();
  const versions = page.locator('section:has(h3:text-is("Versions")) tbody tr');
  await eventually(async () => (await versions.count()) === 2, 20_000, 'two versions');
  t.match(await versions.nth(0).textContent(), /^v1.*90%/, 'v1 with its split weight, 90%');
  t.match(await versions.nth(1).textContent(), /^v2.*10%/, 'v2 with 10%');
  // Newest first: by the time the page is open the autoscaler may have taken a second step (2 -> 3), so look for
  // the first step among all the decisions shown, not only the top one.
  const decisions = page.locator('.autoscale .decision');
  const text = await eventually(
    async () => {
      const all = await decisions.allTextContents().catch(() => [] as string[]);
      return all.find((d) => /1 → [23]/.test(d));
    },
    45_000,
    `a scale-up decision on the page (scheduler: ${logTail()})`,
    500,
  );
  t.match(text, /1 → [23] *applied *rps [\d.]+\/instance over target 4/, `the decision and its reason: "${text}"`);
  t.match(await page.locator('.autoscale').first().textContent(), /Autoscaling backend\/v1 \(service backend\)/);
  t.ok((await page.locator('.chart canvas').count()) >= 3, 'the charts are drawn');
  const instances = page.locator('section:has(h3:text-is("Instances")) tbody tr');
  await eventually(async () => (await instances.count()) >= 2, 20_000, 'the instances');
  t.match(await instances.first().textContent(), /h3-.*passing/, 'an instance with its host and health');
  // Two more polls (the status line names each one's time), so the charts have lines to show in the screenshot.
  for (let i = 0; i < 2; i++) {
    const before = await page.locator('#status').textContent();
    await eventually(async () => (await page.locator('#status').textContent()) !== before, 10_000, 'the next poll');
  }
  await shot('03-service');
});

t.test('a deny shows up as denied on the edge', async (t) => {
  const put = await api(url, 'PUT', '/v1/intentions/frontend/backend', { action: 'deny', description: 'freeze <img src=x onerror="window.__pwned=1"> & <b>bold</b>' });
  t.equal(put.status, 200, put.text);
  await page.getByRole('link', { name: 'Overview' }).click();
  const edge = page.locator('svg.topology g.edge.denied[data-source="frontend"][data-destination="backend"]');
  await edge.waitFor({ timeout: 20_000 });
  const text = await eventually(
    async () => {
      const x = (await edge.textContent({ timeout: 1000 })) ?? '';
      return /denied [\d.]+\/s/.test(x) && !/denied 0\.00\/s/.test(x) ? x : undefined;
    },
    20_000,
    'refusals counted on the edge',
    500,
  );
  t.match(text, /denied [\d.]+\/s/, `the edge reads "${text}"`);
  await shot('04-denied');
});

t.test('intentions, jobs and nodes pages; text from the API is shown as text, never run', async (t) => {
  await page.getByRole('link', { name: 'Intentions' }).click();
  const cell = page.getByRole('cell', { name: /freeze <img/ });
  await cell.waitFor({ timeout: 10_000 });
  t.equal(await cell.textContent(), 'freeze <img src=x onerror="window.__pwned=1"> & <b>bold</b>', 'the description, character for character');
  t.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'nothing in it ran');
  t.equal(await page.locator('main img, main b').count(), 0, 'no element made from it');
  await shot('05-intentions');

  await page.getByRole('link', { name: 'Jobs' }).click();
  await page.getByRole('link', { name: 'backend' }).click();
  await page.getByRole('heading', { name: 'Events' }).waitFor();
  await eventually(async () => (await page.locator('.events li', { hasText: 'autoscaled' }).count()) > 0, 15_000, 'the autoscaled event');
  t.ok(await page.locator('section:has(h3:text-is("Allocations")) tbody tr').count(), 'allocations listed');
  await shot('06-job');

  await page.getByRole('link', { name: 'Nodes' }).click();
  const node = page.getByRole('row', { name: /h3 .*ready/ });
  await node.waitFor({ timeout: 10_000 });
  t.match(await node.textContent(), /127\.0\.0\.3/);
  await shot('07-nodes');
});

t.test('the browser reported no error and no Content-Security-Policy violation', async (t) => {
  t.strictSame(complaints, []);
});
