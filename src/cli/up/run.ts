/**
 * What `weft up` does, in order:
 *
 *   decide the driver (docker when its daemon answers) and say so
 *   consul ─ [acl: policies and a Consul token per process] ─ ca ─ scheduler
 *     ─ hosts (an agent token each from the scheduler; agents, then proxies, in parallel)
 *     [─ prometheus] [─ demo: examples/demo/ deployed, split 90/10, awaited healthy]
 *   "weft is up" with what runs where and what to try next
 *   live view (view.ts) until Ctrl-C / SIGTERM / `weft down`
 *   stop: the demo's workloads first when weft up started them (awaited, purged),
 *         then every piece in reverse order (children.ts), then leftovers killed
 *
 * Each piece is a child process whose output goes to its file under
 * `<dataDir>/logs/`; the terminal shows the steps (progress.ts) and the view.
 * A piece that dies on its own is restarted (children.ts) and the view says so.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { ENV_CONSUL_HTTP_TOKEN } from '../../../base/env.js';
import { WeftError, isWeftError } from '../../../base/errors.js';
import type { Config } from '../../config/load.js';
import { parseDurationArg } from '../client/args.js';
import { resolveToken } from '../client/connection.js';
import { SchedulerClient } from '../client/scheduler-client.js';
import { colorFor } from '../client/table.js';
import { configFrom } from '../flags.js';
import { type UpTokens, aclDir, aclSummary, managementToken, managementTokenFile, setUpAcl, shippedPoliciesDir, tokenSpecs } from './acl.js';
import { type ChildSpec, ChildSet } from './children.js';
import { DEMO_JOBS, allocationIds, demoProgress, demoSpecs, deployDemo, killLeftovers, repoRoot, SOURCE_VOLUME, stopDemo } from './demo.js';
import { READY_LINE, claimUp, releaseUp, startDetached } from './detach.js';
import { buildDemoImage, decideDriver, removeContainers } from './docker.js';
import { type SimHost, hostProxyUrl, parseHostAddresses, simHosts, writeHostConfig } from './hosts.js';
import { LogFiles } from './log-files.js';
import { type UpStep, globalArgs, planUp, schedulerUrl, whatNow } from './plan.js';
import { agentProbe, consulProbe, proxyProbe, schedulerProbe } from './probes.js';
import { Progress, UP_PREFIX } from './progress.js';
import { DEFAULT_PROMETHEUS_LISTEN, findPrometheus, grafanaDir, preparePrometheus, prometheusFiles, prometheusProbe, prometheusUrl } from './prometheus.js';
import { LiveView, apiSources } from './view.js';

/** `weft up`'s flags. */
export interface UpFlags {
  driver?: string;
  hosts: string;
  demo?: boolean;
  detach?: boolean;
  background?: boolean;
  /** true, or the listen address given with it. */
  prometheus?: boolean | string;
  /** Consul ACLs on, default deny, a token per process (acl.ts). */
  acl?: boolean;
  startTimeout: string;
  stopTimeout: string;
}

/** How long the demo's workloads may take to stop at Ctrl-C before weft up goes on without them. */
const DEMO_STOP_MS = 30_000;

/**
 * The `weft` entry point children run: found by walking up from this module,
 * which lives at src/cli/up/ in the sources but at dist/ in the bundle.
 */
function weftBin(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'bin', 'weft.js');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return process.argv[1] ?? 'bin/weft.js';
}

/** Runs `weft up` until it is stopped. */
export async function runUp(flags: UpFlags, cmd: Command): Promise<void> {
  const startMs = parseDurationArg('--start-timeout', flags.startTimeout);
  const stopMs = parseDurationArg('--stop-timeout', flags.stopTimeout);
  const addresses = parseHostAddresses(flags.hosts);
  const config = configFrom(cmd, { 'agent.driver': [flags.driver, '--driver'] });
  const configFile = (cmd.optsWithGlobals() as { config?: string }).config;
  const firstRun = !existsSync(config.dataDir);
  // Decided here, before --detach forks: the background one finds the data directory made.
  const demo = flags.demo ?? firstRun;

  if (flags.detach === true && flags.background !== true) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    const args = process.argv.slice(2).filter((a) => a !== '--detach' && a !== '-d' && a !== '--demo' && a !== '--no-demo');
    const pid = await startDetached({
      dataDir: config.dataDir,
      argv: [process.argv[1] ?? weftBin(), ...args, demo ? '--demo' : '--no-demo', '--background'],
      write: (text) => process.stdout.write(text),
      // Six pieces at --start-timeout each, and the demo at three times it.
      timeoutMs: 9 * startMs,
    });
    process.stdout.write(`weft up runs in the background (pid ${pid}): \`weft top\` shows the traffic, \`weft logs up -f\` its lines, \`weft down\` stops it\n`);
    return;
  }

  const background = flags.background === true;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  claimUp(config.dataDir, background);
  const files = new LogFiles(config.dataDir);
  try {
    await new Up(config, { ...flags, demo, background, configFile, startMs, stopMs, addresses, firstRun }, files).run();
  } finally {
    releaseUp(config.dataDir);
    await files.close();
  }
}

interface UpSettings extends UpFlags {
  demo: boolean;
  background: boolean;
  configFile: string | undefined;
  startMs: number;
  stopMs: number;
  addresses: string[];
  firstRun: boolean;
}

/** One run of weft up: its pieces, its output, its stop. */
class Up {
  readonly #config: Readonly<Config>;
  readonly #s: UpSettings;
  readonly #files: LogFiles;
  readonly #tty: boolean;
  readonly #color: boolean;
  readonly #progress: Progress;
  readonly #children: ChildSet;
  readonly #hosts: SimHost[];
  #view: LiveView | undefined;
  #stopping: Promise<void> | undefined;
  #stopRequested = false;
  #client: SchedulerClient | undefined;
  #demoSubmitted = false;
  readonly #gaveUp: string[] = [];
  /** `--acl`: the management token file, then every process's token once the acl step ran. */
  #aclFile: string | undefined;
  #tokens: UpTokens | undefined;

  constructor(config: Readonly<Config>, settings: UpSettings, files: LogFiles) {
    this.#config = config;
    this.#s = settings;
    this.#files = files;
    this.#tty = !settings.background && process.stdout.isTTY === true;
    this.#color = !settings.background && colorFor(process.stdout);
    this.#progress = new Progress({ tty: this.#tty, color: this.#color, write: (t) => this.#write(t), log: (l) => files.up(l) });
    this.#children = new ChildSet((line) => this.#say(line), { childOutput: (name, line) => files.line(name, line) });
    this.#children.onGiveUp((name) => this.#gaveUp.push(name));
    this.#hosts = simHosts(config, settings.addresses);
  }

  async run(): Promise<void> {
    const config = this.#config;
    const s = this.#s;
    const onSignal = (signal: string) => () => void this.#stop(signal);
    process.once('SIGINT', onSignal('Ctrl-C'));
    process.once('SIGTERM', onSignal('SIGTERM'));

    this.#line(
      this.#tty
        ? `weft up: dev Consul${s.acl === true ? ' with ACLs' : ''}, the CA, a scheduler and ${this.#hosts.length} hosts on this machine${s.demo ? ', then the demo' : ''}; logs in ${this.#files.dir}/ (\`weft logs NAME\`)\n`
        : undefined,
    );
    const prom = this.#prometheusChoice();
    if (prom !== undefined && (await prometheusProbe(prometheusUrl(prom.listen))())) {
      // Debian's package also runs a prometheus service on 9090: ours would fail to bind, and the probe would pass.
      throw new WeftError('WEFT_ERR_UP_START', `--prometheus: a Prometheus already answers at ${prometheusUrl(prom.listen)}; give ours another address: --prometheus 127.0.0.1:9091`, {
        key: 'piece',
        value: 'prometheus',
      });
    }
    const root = repoRoot();
    if (s.demo && root === undefined) {
      throw new WeftError('WEFT_ERR_UP_START', 'the demo needs examples/demo/ beside this weft (run from a checkout), or start with --no-demo', { key: 'piece', value: 'demo' });
    }
    const policiesDir = s.acl === true ? shippedPoliciesDir() : undefined;
    if (s.acl === true && policiesDir === undefined) {
      throw new WeftError('WEFT_ERR_UP_START', '--acl: docs/acl/ (the shipped policies) is not beside this weft (run from a checkout)', { key: 'piece', value: 'acl' });
    }
    const { driver, why } = await decideDriver(config.agent.driver);
    this.#progress.note(why);
    const { caExists } = await import('../../../certs/index.js');
    const consulAnswers = await consulProbe(config.consul.address)();
    if (s.acl === true) this.#aclFile = (await managementToken(config.dataDir, !consulAnswers)).file;
    const steps = planUp(
      config,
      {
        consulAnswers,
        caExists: caExists(config.dataDir),
        schedulerAnswers: await schedulerProbe(schedulerUrl(config))(),
      },
      {
        driver,
        hosts: this.#hosts,
        configFile: s.configFile,
        ...(prom === undefined ? {} : { prometheus: { command: prom.bin, args: [] } }),
        ...(this.#aclFile === undefined ? {} : { acl: { managementTokenFile: this.#aclFile } }),
      },
    );

    try {
      await this.#startCluster(steps, policiesDir === undefined ? undefined : { policiesDir, prometheus: prom !== undefined });
      if (!this.#stopRequested) await this.#startHosts(steps, driver, root);
      const promStep = steps.find((x) => x.role === 'prometheus');
      if (!this.#stopRequested && promStep !== undefined && prom !== undefined) {
        promStep.args = preparePrometheus(config, prom.listen, prom.grafana, this.#tokens?.prometheusFile);
        await this.#daemonStep(promStep, `Prometheus on ${prometheusUrl(prom.listen)}`, prometheusProbe(prometheusUrl(prom.listen)));
      }
      if (!this.#stopRequested && s.demo && root !== undefined) await this.#startDemo(root, driver);
    } catch (err) {
      this.#progress.close();
      // Stopped while starting (Ctrl-C): the piece being awaited died of it, which is no failure.
      if (!this.#stopRequested) {
        await this.#stop('a piece failed to start', err);
        throw err;
      }
    }
    if (!this.#stopRequested) {
      const info = {
        driver,
        hosts: this.#hosts,
        startedConsul: steps[0]!.skip === undefined,
        configFile: s.configFile,
        prometheus: prom === undefined ? undefined : { url: prometheusUrl(prom.listen), configFile: prometheusFiles(config).configFile },
        acl: this.#tokens === undefined ? undefined : { dir: aclDir(config.dataDir), managementTokenFile: managementTokenFile(config.dataDir) },
        demo: s.demo ? [...DEMO_JOBS] : undefined,
        curl: s.demo ? this.#curlExample() : undefined,
      };
      for (const line of whatNow(config, info).split('\n')) this.#line(line);
      if (s.background) this.#files.up(`${READY_LINE} (pid ${process.pid}): \`weft down\` stops it`);
      this.#line('');
      this.#startView(driver);
    }
    await new Promise<void>((resolve) => {
      const wait = (): void => {
        if (this.#stopping !== undefined) void this.#stopping.then(resolve);
        else setTimeout(wait, 200);
      };
      wait();
    });
    if (this.#gaveUp.length > 0) {
      this.#say(`${UP_PREFIX}stopped; ${this.#gaveUp.join(', ')} had been given up on after repeated crashes`);
      process.exitCode = 1;
    } else {
      this.#say(`${UP_PREFIX}stopped`);
    }
  }

  /** Consul, [the ACLs,] the CA, the scheduler: each awaited before the next. */
  async #startCluster(steps: UpStep[], acl: { policiesDir: string; prometheus: boolean } | undefined): Promise<void> {
    const config = this.#config;
    for (const step of steps.filter((x) => x.role === 'consul' || x.role === 'ca' || x.role === 'scheduler')) {
      if (this.#stopRequested) return;
      if (step.role === 'ca' && acl !== undefined) await this.#aclStep(acl.policiesDir, acl.prometheus);
      if (step.skip !== undefined) {
        this.#progress.skip(step.name, step.skip);
        continue;
      }
      if (step.role === 'ca') {
        // Under --acl, `ca init` publishes the trust bundle (weft/ca/roots) with the management token: no component's policy grants it.
        await this.#progress.step('ca', 'weft ca init', async () => {
          await this.#children.runOnce(this.#spec(step, this.#consulEnv(this.#tokens?.management)), this.#s.startMs);
          return { value: undefined, summary: `created in ${config.dataDir}/ca` };
        });
      } else if (step.role === 'consul') {
        await this.#daemonStep(step, `dev Consul on ${config.consul.address}${this.#aclFile === undefined ? '' : ', ACLs on (default deny)'}`, consulProbe(config.consul.address));
      } else {
        await this.#daemonStep(step, `API on ${schedulerUrl(config)}`, schedulerProbe(schedulerUrl(config)), this.#consulEnv(this.#tokens?.scheduler));
      }
    }
    const { token, source } = resolveToken(config, {}, {});
    if (token === undefined) {
      throw new WeftError('WEFT_ERR_UP_START', `no token for the scheduler at ${schedulerUrl(config)}: weft up gives each host an agent token from it (set scheduler.token, or run it with the data directory holding scheduler/token)`, {
        key: 'piece',
        value: 'scheduler',
      });
    }
    this.#client = new SchedulerClient({ address: schedulerUrl(config), token, tokenSource: source });
  }

  /**
   * `--acl`: the shipped policies and a Consul token per process, created with
   * the management token (acl.ts), before any process that needs one starts.
   */
  async #aclStep(policiesDir: string, prometheus: boolean): Promise<void> {
    const config = this.#config;
    const file = this.#aclFile!;
    await this.#progress.step('acl', `policies from ${policiesDir}, a token per process (management token ${file})`, async () => {
      const management = await managementToken(config.dataDir, false);
      this.#tokens = await setUpAcl({ consulAddress: config.consul.address, dataDir: config.dataDir, management, nodes: this.#hosts.map((h) => h.node), prometheus, policiesDir });
      return { value: undefined, summary: aclSummary(config.dataDir, this.#tokens, tokenSpecs(this.#hosts.map((h) => h.node), prometheus).length) };
    });
  }

  /** The environment of a child that talks to Consul: under --acl, with its own token (and never another's, from weft up's own environment). */
  #consulEnv(token: string | undefined, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv | undefined {
    if (this.#tokens === undefined) return Object.keys(extra).length === 0 ? undefined : { ...process.env, ...extra };
    return { ...process.env, ...extra, [ENV_CONSUL_HTTP_TOKEN]: token ?? '' };
  }

  /** Each host's token and config file, then the agents, then the proxies (each set in parallel). */
  async #startHosts(steps: UpStep[], driver: 'docker' | 'process', root: string | undefined): Promise<void> {
    const config = this.#config;
    const client = this.#client!;
    const hostSteps = steps.filter((x) => x.role === 'agent' || x.role === 'proxy');
    const names = this.#hosts.map((h) => `${h.node} ${h.address}`).join(', ');
    await this.#progress.step('hosts', `starting ${names}`, async (c) => {
      const tokens = new Map<string, string>();
      for (const h of this.#hosts) {
        writeHostConfig(this.#hostConfig(driver, root), h, schedulerUrl(config));
        tokens.set(h.node, (await client.call('nodeToken', { params: { node: h.node } })).token);
      }
      for (const role of ['agent', 'proxy'] as const) {
        const mine = hostSteps.filter((x) => x.role === role);
        c.update(`${role === 'agent' ? 'agents' : 'proxies'} starting on ${names}`);
        const pids = await Promise.all(
          mine.map((step) => {
            const h = step.host!;
            const probe = role === 'agent' ? agentProbe(config.consul.address, h.node, this.#tokens?.management) : proxyProbe(hostProxyUrl(config, h));
            const spec = this.#spec(
              step,
              role === 'agent'
                ? this.#consulEnv(this.#tokens?.agents.get(h.node), { WEFT_TOKEN: tokens.get(h.node) ?? '' })
                : this.#consulEnv(this.#tokens?.proxies.get(h.node)),
            );
            return this.#children.startDaemon(spec, probe, this.#s.startMs);
          }),
        );
        mine.forEach((step, i) => {
          c.plain(`${step.name} is healthy (pid ${pids[i]}, ${step.host!.node} ${step.host!.address})`);
        });
      }
      return { value: undefined, summary: `${names}: agent + proxy each (${driver} driver)` };
    });
  }

  /**
   * The configuration a host's pieces read: with the repository as host volume
   * `weft-source` under docker (the demo's scripts); under --acl without any
   * Consul token (each piece gets its own in its environment).
   */
  #hostConfig(driver: 'docker' | 'process', root: string | undefined): Readonly<Config> {
    let config = this.#config;
    if (this.#tokens !== undefined) config = { ...config, consul: { address: config.consul.address } };
    if (driver !== 'docker' || root === undefined) return config;
    return { ...config, agent: { ...config.agent, hostVolumes: { ...config.agent.hostVolumes, [SOURCE_VOLUME]: root } } };
  }

  async #startDemo(root: string, driver: 'docker' | 'process'): Promise<void> {
    const client = this.#client!;
    if (driver === 'docker') await this.#demoImage(root);
    const timeoutMs = 3 * this.#s.startMs;
    await this.#progress.step('demo', `deploying ${DEMO_JOBS.join(', ')}`, async (c) => {
      const versions = await deployDemo(client, demoSpecs(root, driver, String(Date.now())));
      this.#demoSubmitted = true;
      c.plain(`demo: submitted ${DEMO_JOBS.join(', ')}; split backend v1=90 v2=10`);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const p = await demoProgress(client, versions);
        c.update(p.line);
        if (p.failed !== undefined) throw new WeftError('WEFT_ERR_UP_START', `the demo did not deploy: ${p.failed} (\`weft status ${p.failed.split(':')[0]}\` says more)`, { key: 'piece', value: 'demo' });
        if (p.healthy) break;
        if (this.#stopRequested) throw new WeftError('WEFT_ERR_UP_START', 'stopped while the demo deployed', { key: 'piece', value: 'demo' });
        if (Date.now() > deadline) throw new WeftError('WEFT_ERR_UP_START', `the demo was not healthy within ${Math.round(timeoutMs / 1000)}s (${p.line}); \`weft status\` shows why`, { key: 'piece', value: 'demo' });
        await new Promise((r) => setTimeout(r, 500));
      }
      return { value: undefined, summary: 'frontend -> backend v1/v2 split 90/10 through the mesh, backend v1 autoscaled on requests/s, loadgen ramping up and down' };
    });
  }

  /** Docker: weft's demo image (node and the demo app), built locally when missing (no registry needed). */
  async #demoImage(root: string): Promise<void> {
    await this.#progress.step('image', 'scripts/build-test-image.sh (weft-demo:latest, built with docker import)', async () => ({ value: undefined, summary: await buildDemoImage(root) }));
  }

  /** The first host's outbound port for `frontend`, for a curl through the mesh in "what now". */
  #curlExample(): { service: string; target: string; address: string; port: number } | undefined {
    for (const h of this.#hosts) {
      try {
        const doc = JSON.parse(readFileSync(join(h.dataDir, 'proxy', 'local.json'), 'utf8')) as { services: Array<{ service: string; outboundPort: number }> };
        const frontend = doc.services.find((x) => x.service === 'frontend');
        if (frontend !== undefined) return { service: 'frontend', target: 'backend', address: this.#config.proxy.outbound.bind, port: frontend.outboundPort };
      } catch {
        // not written yet
      }
    }
    return undefined;
  }

  #startView(driver: string): void {
    const client = this.#client;
    if (client === undefined) return;
    this.#view = new LiveView({
      tty: this.#tty,
      color: this.#color,
      write: (t) => this.#write(t),
      size: () => ({ columns: process.stdout.columns ?? 120, rows: process.stdout.rows ?? 40 }),
      sources: apiSources(client, { windowSeconds: 10, loadgenJob: this.#s.demo ? 'loadgen' : undefined }),
      frame: { startedAt: Date.now(), driver, hosts: this.#hosts, demo: this.#s.demo },
      log: (l) => this.#files.up(l),
    });
    this.#view.start();
  }

  /** A daemon step: started, awaited healthy, its pid on the line. */
  async #daemonStep(step: UpStep, what: string, probe: () => Promise<boolean>, env?: NodeJS.ProcessEnv): Promise<void> {
    const shown = step.command === undefined ? `weft ${step.args.join(' ')}` : [step.command, ...step.args].join(' ');
    await this.#progress.step(step.name, `starting ${shown}`, async (c) => {
      const pid = await this.#children.startDaemon(this.#spec(step, env), probe, this.#s.startMs);
      c.plain(`${step.name} is healthy (pid ${pid})`);
      return { value: undefined, summary: `${what} (pid ${pid})` };
    });
  }

  #spec(step: UpStep, env?: NodeJS.ProcessEnv): ChildSpec {
    if (step.command !== undefined) return { name: step.name, command: step.command, argv: step.args };
    const h = step.host;
    const globals = h === undefined ? globalArgs(this.#config, this.#s.configFile) : globalArgs({ ...this.#config, dataDir: h.dataDir, nodeName: h.node }, h.configFile);
    return { name: step.name, argv: [...(step.nodeArgs ?? []), weftBin(), ...globals, ...step.args], ...(env === undefined ? {} : { env }) };
  }

  #prometheusChoice(): { listen: string; bin: string; grafana: string } | undefined {
    const p = this.#s.prometheus;
    if (p === undefined || p === false) return undefined;
    const listen = p === true ? DEFAULT_PROMETHEUS_LISTEN : p;
    // Checked before anything starts: a missing binary should not cost a half-started cluster.
    const bin = findPrometheus();
    const grafana = grafanaDir();
    if (bin === undefined || grafana === undefined) {
      const what = bin === undefined ? 'no `prometheus` on PATH (apt-get install prometheus)' : 'grafana/ (the shipped configuration) is not beside this weft';
      throw new WeftError('WEFT_ERR_UP_START', `--prometheus: ${what}`, { key: 'piece', value: 'prometheus' });
    }
    return { listen, bin, grafana };
  }

  /** Stops everything once: the demo's workloads (when weft up started them), then every piece. */
  #stop(why: string, cause?: unknown): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#stopRequested = true;
    this.#stopping = (async () => {
      this.#view?.stop();
      this.#view = undefined;
      this.#progress.close();
      this.#say(`${UP_PREFIX}${why}: stopping (a second Ctrl-C kills everything at once)`);
      const hurry = new AbortController();
      const killAll = (): void => {
        hurry.abort();
        this.#children.killAll();
      };
      process.once('SIGINT', killAll);
      process.once('SIGTERM', killAll);
      let demoAllocs = new Set<string>();
      if (this.#demoSubmitted && this.#client !== undefined) {
        this.#say(`${UP_PREFIX}stopping the demo's workloads weft up started (${DEMO_JOBS.join(', ')}): the agents drain and stop them`);
        try {
          demoAllocs = await allocationIds(this.#client, DEMO_JOBS);
          const left = await stopDemo(this.#client, DEMO_JOBS, DEMO_STOP_MS, hurry.signal);
          this.#say(`${UP_PREFIX}${left.length === 0 ? 'the demo stopped' : `${left.join(', ')} still stopping after ${DEMO_STOP_MS / 1000}s: what is left is killed below`}`);
        } catch (err) {
          this.#say(`${UP_PREFIX}could not stop the demo through the scheduler (${isWeftError(err) ? err.code : (err as Error).message}): its processes are killed below`);
        }
      } else if (this.#client !== undefined && cause === undefined) {
        const jobs = await this.#client.call('listJobs').then(
          (r) => r.jobs.filter((j) => !j.stopped && j.running > 0).map((j) => j.name),
          () => [],
        );
        if (jobs.length > 0) this.#say(`${UP_PREFIX}jobs you deployed keep running (${jobs.join(', ')}); the next weft up adopts them (\`weft scale JOB 0\` first to stop them)`);
      }
      await this.#children.stopAll(this.#s.stopMs);
      if (demoAllocs.size > 0) {
        const killed = killLeftovers(this.#hosts, demoAllocs) + (this.#config.agent.driver === 'process' ? 0 : await removeContainers(demoAllocs));
        if (killed > 0) this.#say(`${UP_PREFIX}killed ${killed} demo process${killed === 1 ? '' : 'es'} that outlived the stop`);
      }
    })();
    return this.#stopping;
  }

  /** weft up's own line (supervision, stop): into the live view on a terminal, else printed; always logged. */
  #say(line: string): void {
    const text = line.startsWith(UP_PREFIX) ? line.slice(UP_PREFIX.length) : line;
    if (this.#view !== undefined) {
      this.#view.event(text);
      return;
    }
    this.#progress.note(text);
  }

  /** A line of the "weft is up" block: printed as it is, and logged. */
  #line(text: string | undefined): void {
    if (text === undefined) return;
    if (text.trim() !== '') this.#files.up(text);
    this.#write(`${text}\n`);
  }

  #write(text: string): void {
    if (!this.#s.background) process.stdout.write(text);
  }
}
