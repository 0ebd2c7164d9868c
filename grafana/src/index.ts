/**
 * weft's Grafana dashboards, as code. `npm run gen:dashboards`
 * (scripts/gen-dashboards.ts) writes each to grafana/dashboards/<file> and
 * the panel list of grafana/README.md; test/grafana/dashboards.test.ts fails
 * while either is stale.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { health } from './health.js';
import { meshTraffic } from './mesh-traffic.js';
import { scheduler } from './scheduler.js';
import { serviceDetail } from './service-detail.js';

/** One dashboard and the file it is written to, under grafana/dashboards/. */
export interface DashboardFile {
  readonly file: string;
  readonly build: () => Dashboard;
}

/** Every dashboard, in the order grafana/README.md lists them. */
export const DASHBOARDS: readonly DashboardFile[] = [
  { file: 'mesh-traffic.json', build: meshTraffic },
  { file: 'service-detail.json', build: serviceDetail },
  { file: 'health.json', build: health },
  { file: 'scheduler.json', build: scheduler },
];
