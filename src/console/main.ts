/**
 * The console's entry: the token form, the hash router and the poll.
 *
 *   token form ─ sessionStorage ─▶ every 2 s (while the tab is visible, one poll at a time):
 *     GET /v1/stats?window=10 + GET /v1/intentions ─▶ history ─▶ the current view's refresh
 *     (which reads what else it shows: jobs, status, autoscale, nodes)
 *   #/ overview · #/service/<name> · #/jobs · #/jobs/<job> · #/nodes · #/intentions
 */
import { ApiFailure, forgetToken, routes, saveToken, savedToken } from './api.js';
import { fill } from './dom.js';
import { History } from './history.js';
import { IntentionsView, NodesView } from './views/cluster.js';
import { JobListView, JobView } from './views/jobs.js';
import { OverviewView } from './views/overview.js';
import { ServiceView } from './views/service.js';
import type { Context, View } from './views/view.js';

const POLL_MS = 2000;
/** The window the console asks rates over: short, so the charts move. */
const WINDOW_SECONDS = 10;

const byId = (id: string): HTMLElement => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page lacks #${id}`);
  return el;
};

const login = byId('login');
const app = byId('app');
const main = byId('main');
const banner = byId('banner');
const status = byId('status');
const form = byId('login-form') as HTMLFormElement;
const tokenInput = byId('token') as HTMLInputElement;
const loginError = byId('login-error');

const history = new History();
let intentions: Context['intentions'] = [];
let view: View | undefined;
let viewRoute = '';
let timer: number | undefined;
let polling = false;

/** The view for the current hash. */
function route(): { key: string; make: () => View } {
  const parts = location.hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((p) => p !== '')
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  const [page, name] = parts;
  if (page === 'service' && name !== undefined) return { key: `service/${name}`, make: () => new ServiceView(name) };
  if (page === 'jobs' && name !== undefined) return { key: `jobs/${name}`, make: () => new JobView(name) };
  if (page === 'jobs') return { key: 'jobs', make: () => new JobListView() };
  if (page === 'nodes') return { key: 'nodes', make: () => new NodesView() };
  if (page === 'intentions') return { key: 'intentions', make: () => new IntentionsView() };
  return { key: '', make: () => new OverviewView() };
}

function showLogin(message?: string): void {
  stop();
  app.hidden = true;
  login.hidden = false;
  loginError.textContent = message ?? '';
  loginError.hidden = message === undefined;
  tokenInput.value = '';
  tokenInput.focus();
}

function showApp(): void {
  login.hidden = true;
  app.hidden = false;
  mountRoute();
  void poll();
}

function mountRoute(): void {
  const r = route();
  if (view !== undefined && r.key === viewRoute) return;
  view?.destroy();
  view = r.make();
  viewRoute = r.key;
  fill(main, view.el);
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    const target = a.getAttribute('href')?.replace(/^#\/?/, '') ?? '';
    a.classList.toggle('active', target === '' ? r.key === '' || r.key.startsWith('service/') : r.key.startsWith(target));
  }
}

function stop(): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
}

function schedule(): void {
  stop();
  timer = window.setTimeout(() => void poll(), POLL_MS);
}

/** One poll: stats and intentions, then the view's own reads. Never two at once. */
async function poll(): Promise<void> {
  if (polling || savedToken() === undefined) return;
  if (document.hidden) return schedule();
  polling = true;
  const current = view;
  try {
    const [stats, list] = await Promise.all([routes.stats(WINDOW_SECONDS), routes.intentions()]);
    history.addStats(stats);
    intentions = list.intentions;
    if (current !== undefined) await current.refresh({ stats: history.latest(), intentions, history, nowMs: Date.now() });
    banner.hidden = true;
    status.textContent = `updated ${new Date().toLocaleTimeString()} · ${stats.proxies.scraped} proxies${stats.proxies.failed > 0 ? `, ${stats.proxies.failed} silent` : ''}`;
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 401) {
      forgetToken();
      polling = false;
      showLogin('The scheduler refused the token. Give the operator token again.');
      return;
    }
    banner.hidden = false;
    banner.textContent = `Could not update: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    polling = false;
  }
  if (!app.hidden) schedule();
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = tokenInput.value.trim();
  if (token === '') return;
  saveToken(token);
  tokenInput.value = '';
  routes.jobs().then(showApp, (err: unknown) => {
    forgetToken();
    showLogin(err instanceof ApiFailure && err.status === 401 ? 'The scheduler refused this token.' : `Could not reach the scheduler: ${err instanceof Error ? err.message : String(err)}`);
  });
});

byId('logout').addEventListener('click', () => {
  forgetToken();
  view?.destroy();
  view = undefined;
  showLogin();
});

window.addEventListener('hashchange', () => {
  if (app.hidden) return;
  mountRoute();
  // Show the new page with what is known at once, then poll.
  if (!polling) {
    stop();
    void poll();
  }
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && !app.hidden && !polling) void poll();
});

if (savedToken() === undefined) showLogin();
else showApp();
