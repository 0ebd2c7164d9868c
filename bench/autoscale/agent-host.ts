/**
 * The instances' host of bench/autoscale: weft's HostAgent (what `weft
 * agent` runs) in its own process, with the process or the Docker driver,
 * registering its instances with the h3 proxy's inbound port. As the
 * integration tests' simulated hosts (test/integration/scheduler-cluster.ts):
 * no CSR signer (the bench gave h3's proxy its identities) and no supervised
 * proxy (the bench runs it); everything else is the agent's defaults.
 *
 * Tells its parent it is ready (and where its /metrics is) over IPC. On SIGTERM, SIGINT or the parent's
 * death (IPC disconnect) it removes every task it started, deregisters its
 * node and exits: the processes and containers never outlive the bench.
 *
 * Env: BENCH_CONSUL, BENCH_DATA_DIR, BENCH_DRIVER (process|docker),
 * BENCH_NODE, BENCH_ADDRESS, BENCH_MESH_PORT, BENCH_SCHEDULER_URL,
 * BENCH_AGENT_TOKEN (`weft node token`'s token for BENCH_NODE).
 */
import { AGENT_LABELS } from '../../agent/driver.js';
import { createLogger } from '../../base/log.js';
import { loadConfig } from '../../src/config/load.js';
import { HostAgent } from '../../src/wiring/agent-process.js';

const env = process.env;
const node = env['BENCH_NODE'] ?? 'h3';
const config = loadConfig({
  env: {},
  flags: {
    dataDir: env['BENCH_DATA_DIR']!,
    nodeName: node,
    'consul.address': env['BENCH_CONSUL']!,
    'agent.driver': env['BENCH_DRIVER'] ?? 'process',
    'agent.address': env['BENCH_ADDRESS']!,
    'agent.cpu': 8000,
    'agent.memory': 8192,
    'agent.superviseProxy': false,
    'agent.metrics.port': 0,
    'proxy.inbound.port': Number(env['BENCH_MESH_PORT']),
    'log.level': 'info',
    'log.format': 'json',
    // The scheduler for secrets and its signing keys, with this host's agent token.
    'client.address': env['BENCH_SCHEDULER_URL'],
    'client.token': env['BENCH_AGENT_TOKEN'],
  },
});
const logger = createLogger({ level: 'info', format: 'json', name: 'agent' });
// Only this host's tasks: a Docker daemon may be shared with tests running at the same time.
const own = `${AGENT_LABELS.host}=${node}`;
const agent = await HostAgent.start({ config, logger, signer: null, labelFilter: own });
const m = agent.metrics?.address;
process.send?.({ ready: true, metricsUrl: m === undefined ? undefined : `http://${m.host}:${m.port}/metrics` });

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= (async () => {
    const limit = setTimeout(() => process.exit(1), 20_000);
    for (const task of await agent.driver.list({ all: true, label: own }).catch(() => [])) await agent.driver.remove(task.id, { force: true }).catch(() => {});
    await agent.close({ deregisterNode: true }).catch(() => {});
    clearTimeout(limit);
    process.exit(0);
  })();
  return stopping;
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
process.once('disconnect', () => void stop());
