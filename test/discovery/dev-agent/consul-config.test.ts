/**
 * Consul's agent configuration for the dev agent, in-process: files and
 * directories merged in order, JSON and HCL, Consul's key spellings, unknown
 * keys warned about, errors that name the file and the key, flag precedence,
 * the script check policy for file-defined checks, and reload.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Consul from 'consul';
import t from 'tap';
import {
  type DevConsulPlan,
  type DevConsulReload,
  resolveDevConsulConfig,
  startDevConsul,
  type WeftDevConsulSettings,
} from '../../../discovery/dev-agent/index.js';
import type { TeardownHost } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';

const WEFT: WeftDevConsulSettings = {
  nodeName: 'weft-host',
  datacenter: 'dc1',
  dataDir: '/var/lib/weft/dev-consul',
  bind: '127.0.0.1',
  port: 8500,
  fromFlags: {},
};

async function dir(t: TeardownHost): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'weft-consul-config-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

async function file(d: string, name: string, content: unknown): Promise<string> {
  const path = join(d, name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

t.test('a directory is read in lexical order: later keys win, maps merge, services and checks add up', async (t) => {
  const d = await dir(t);
  await file(d, '10-base.json', {
    node_name: 'first',
    datacenter: 'east',
    node_meta: { rack: 'r1', zone: 'a' },
    services: [{ name: 'web', port: 80 }],
  });
  await file(d, '20-more.json', { node_name: 'second', node_meta: { zone: 'b' }, service: { name: 'api', port: 81 }, check: { id: 'mem', name: 'mem', ttl: '30s' } });
  await file(d, 'README.md', 'not a config file');
  const plan = await resolveDevConsulConfig(['-config-dir', d], WEFT);
  t.equal(plan.settings.nodeName, 'second');
  t.equal(plan.settings.datacenter, 'east');
  t.strictSame(plan.settings.nodeMeta, { rack: 'r1', zone: 'b' });
  t.strictSame(
    plan.settings.definitions.services.map((s) => [s.body['Name'], s.body['Port']]),
    [
      ['web', 80],
      ['api', 81],
    ],
  );
  t.strictSame(plan.settings.definitions.checks[0]?.body, { CheckID: 'mem', Name: 'mem', TTL: '30s' });
  t.strictSame(plan.origins, [`config file ${join(d, '10-base.json')}`, `config file ${join(d, '20-more.json')}`], 'README.md is skipped');
  t.equal(plan.settings.dataDir, WEFT.dataDir, 'no data_dir anywhere: weft\'s');
  t.strictSame(plan.warnings, []);
});

t.test('service and check keys in any of Consul\'s spellings become the API fields', async (t) => {
  const d = await dir(t);
  const f = await file(d, 'svc.json', {
    service: {
      Name: 'web',
      ID: 'web-1',
      tags: ['v1'],
      enable_tag_override: true,
      Meta: { Version: '1' },
      weights: { passing: 3, Warning: 1 },
      tagged_addresses: { lan: { address: '10.0.0.1', port: 80 } },
      checks: [
        { CheckID: 'web-http', HTTP: 'http://127.0.0.1:80/', interval: '10s', TLSSkipVerify: true, header: { 'X-Probe': ['1'] } },
        { script_args: ['true'], interval: '5s', DeregisterCriticalServiceAfter: '1m' },
      ],
    },
  });
  const plan = await resolveDevConsulConfig(['-config-file', f, '-enable-local-script-checks'], WEFT);
  t.strictSame(plan.settings.definitions.services[0]?.body, {
    Name: 'web',
    ID: 'web-1',
    Tags: ['v1'],
    EnableTagOverride: true,
    Meta: { Version: '1' },
    Weights: { Passing: 3, Warning: 1 },
    TaggedAddresses: { lan: { Address: '10.0.0.1', Port: 80 } },
    Checks: [
      { CheckID: 'web-http', HTTP: 'http://127.0.0.1:80/', Interval: '10s', TLSSkipVerify: true, Header: { 'X-Probe': ['1'] } },
      { Args: ['true'], Interval: '5s', DeregisterCriticalServiceAfter: '1m' },
    ],
  });
  t.equal(plan.settings.enableLocalScriptChecks, true);
});

t.test('keys the dev agent does not honour are named in one warning per file', async (t) => {
  const d = await dir(t);
  const f = await file(d, 'agent.json', {
    ui_config: { enabled: true },
    retry_join: ['10.0.0.2'],
    ports: { http: 8501, dns: 8600 },
    service: { name: 'web', connect: { sidecar_service: {} } },
  });
  const plan = await resolveDevConsulConfig(['-config-file', f], WEFT);
  t.strictSame(plan.warnings, [`config file ${f}: ignored keys the dev agent does not honour: ui_config, retry_join, ports.dns, service.connect`]);
  t.equal(plan.settings.port, 8501);
});

t.test('errors name the file and the key, with code WEFT_ERR_DEV_CONSUL_CONFIG', async (t) => {
  const d = await dir(t);
  const cases: Array<[name: string, content: unknown, message: RegExp, key?: string]> = [
    ['type.json', { ports: { http: '8500' } }, /type\.json: ports\.http: must be integer \(got "8500"\)/, 'ports.http'],
    ['svc.json', { services: [{ name: 'web' }, { name: 'api', port: -1 }] }, /svc\.json: services\[1\]\.port: must be >= 0 \(got -1\)/, 'services[1].port'],
    ['meta.json', { service: { name: 'web', meta: { v: 1 } } }, /meta\.json: service\.meta\.v: must be string \(got 1\)/, 'service.meta.v'],
    ['bad.json', '{"node_name": ', /bad\.json: not valid JSON/],
    ['list.json', '[1, 2]', /list\.json: must hold one object/],
    ['acl.json', { acl: { enabled: true, default_policy: 'block' } }, /acl\.json: acl\.default_policy: /, 'acl.default_policy'],
    ['noname.json', { services: [{ port: 80 }] }, /noname\.json: services\[0\]\.name: Missing service name/, 'services[0].name'],
    ['check.json', { check: { name: 'x', http: 'http://x/' } }, /check\.json: check: Invalid check: Interval must be > 0/, 'check'],
    ['docker.json', { check: { name: 'x', docker_container_id: 'abc', args: ['true'], interval: '1s' } }, /docker\.json: check: Invalid check: DockerContainerID checks are not supported/],
    [
      'script.json',
      { service: { name: 'web', check: { args: ['true'], interval: '1s' } } },
      /script\.json: service\.check: Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true/,
      'service.check',
    ],
    ['client.json', { client_addr: '127.0.0.1 10.0.0.1' }, /client\.json: client_addr: give one address/],
  ];
  for (const [name, content, message, key] of cases) {
    const f = await file(d, name, content);
    await t.rejects(resolveDevConsulConfig(['-config-file', f], WEFT), { code: 'WEFT_ERR_DEV_CONSUL_CONFIG', message, ...(key === undefined ? {} : { key }) }, name);
  }
  await t.rejects(resolveDevConsulConfig(['-config-file', join(d, 'missing.json')], WEFT), { code: 'WEFT_ERR_DEV_CONSUL_CONFIG', message: /missing\.json: cannot read it/ });
  await t.rejects(resolveDevConsulConfig(['-config-file', await file(d, 'agent.conf', '{}')], WEFT), { message: /unknown format/ });
  t.ok(await resolveDevConsulConfig(['-config-file', join(d, 'agent.conf'), '-config-format', 'json'], WEFT), '-config-format reads any name');
});

t.test('script checks from files run with enable_local_script_checks or enable_script_checks, from a file or a flag', async (t) => {
  const d = await dir(t);
  const svc = await file(d, 'svc.json', { service: { name: 'web', check: { args: ['true'], interval: '1s' } } });
  for (const extra of [['-enable-local-script-checks'], ['-enable-script-checks'], ['-config-file', await file(d, 'on.json', { enable_local_script_checks: true })]]) {
    const plan = await resolveDevConsulConfig(['-config-file', svc, ...extra], WEFT);
    t.equal(plan.settings.definitions.services.length, 1, extra.join(' '));
  }
  await t.rejects(resolveDevConsulConfig(['-config-file', svc, '-enable-script-checks=false'], WEFT), { code: 'WEFT_ERR_DEV_CONSUL_CONFIG' });
});

t.test('HCL files and -hcl fragments: blocks are objects, services and checks stay lists', async (t) => {
  const d = await dir(t);
  const f = await file(
    d,
    'agent.hcl',
    `node_name = "hcl-node"
ports {
  http = 8600
}
enable_local_script_checks = true
service {
  name = "web"
  port = 80
  meta {
    version = "2"
  }
  check {
    args     = ["sh", "-c", "exit 0"]
    interval = "10s"
  }
}
checks = [
  { id = "mem", name = "mem", ttl = "30s" },
]
`,
  );
  const plan = await resolveDevConsulConfig(['-config-file', f, '-hcl', 'datacenter = "hcl-dc"'], WEFT);
  t.equal(plan.settings.nodeName, 'hcl-node');
  t.equal(plan.settings.datacenter, 'hcl-dc', '-hcl applies after the files');
  t.equal(plan.settings.port, 8600);
  t.strictSame(plan.settings.definitions.services[0]?.body, {
    Name: 'web',
    Port: 80,
    Meta: { version: '2' },
    Checks: [{ Args: ['sh', '-c', 'exit 0'], Interval: '10s' }],
  });
  t.strictSame(plan.settings.definitions.checks[0]?.body, { CheckID: 'mem', Name: 'mem', TTL: '30s' });
  await t.rejects(resolveDevConsulConfig(['-config-file', await file(d, 'bad.hcl', 'node_name = \n')], WEFT), {
    code: 'WEFT_ERR_DEV_CONSUL_CONFIG',
    message: /bad\.hcl: not valid HCL/,
  });
  await t.rejects(resolveDevConsulConfig(['-config-file', await file(d, 'acl.hcl', 'acl {\n  enabled = true\n  default_policy = "block"\n}\n')], WEFT), {
    code: 'WEFT_ERR_DEV_CONSUL_CONFIG',
    key: 'acl.default_policy',
  });
});

t.test('flags: Consul flags and weft flags beat files, files beat weft defaults, a disagreement is an error', async (t) => {
  const d = await dir(t);
  const f = await file(d, 'a.json', { node_name: 'file-node', datacenter: 'file-dc', ports: { http: 8600 }, client_addr: '0.0.0.0', data_dir: '/srv/consul' });
  const fromFile = await resolveDevConsulConfig(['-config-file', f], WEFT);
  t.match(fromFile.settings, { nodeName: 'file-node', datacenter: 'file-dc', port: 8600, bind: '0.0.0.0', dataDir: '/srv/consul' });

  const consulFlags = await resolveDevConsulConfig(
    ['-config-file', f, '-node', 'flag-node', '-datacenter=flag-dc', '-client', '127.0.0.2', '-http-port', '9000', '-data-dir', '/tmp/x', '-bind', '10.1.2.3'],
    WEFT,
  );
  t.match(consulFlags.settings, { nodeName: 'flag-node', datacenter: 'flag-dc', bind: '127.0.0.2', port: 9000, dataDir: '/tmp/x', advertise: '10.1.2.3' });

  const weftFlags = await resolveDevConsulConfig(['-config-file', f], { ...WEFT, nodeName: 'weft-flag', port: 7000, fromFlags: { nodeName: true, port: true } });
  t.match(weftFlags.settings, { nodeName: 'weft-flag', port: 7000, datacenter: 'file-dc' });

  await t.rejects(resolveDevConsulConfig(['-node', 'a'], { ...WEFT, nodeName: 'b', fromFlags: { nodeName: true } }), {
    code: 'WEFT_ERR_ARGUMENT_INVALID',
    message: /-node "a" and --node "b" both set the node name/,
  });
  t.ok(await resolveDevConsulConfig(['-node', 'b'], { ...WEFT, nodeName: 'b', fromFlags: { nodeName: true } }), 'the same value twice is fine');
});

t.test('flags: -dev, the accepted no-ops, the unhonoured ones, and malformed ones', async (t) => {
  const dev = await resolveDevConsulConfig(['-dev', '-server', '-bootstrap', '-bootstrap-expect=1', '-ui', '-retry-join', '10.0.0.1', '-encrypt=abc'], WEFT);
  t.equal(dev.dev, true);
  t.equal(dev.settings.dataDir, undefined, '-dev: no data directory (the CLI uses a temporary one)');
  t.strictSame(dev.warnings, ['ignored Consul flags the dev agent cannot honour (one node, no gossip, no UI): -ui, -retry-join, -encrypt']);
  t.equal((await resolveDevConsulConfig(['-dev', '-data-dir', '/keep'], WEFT)).settings.dataDir, '/keep', '-dev with a directory keeps state there');
  t.equal((await resolveDevConsulConfig(['-dev=false'], WEFT)).dev, false);
  t.match(await resolveDevConsulConfig(['-log-level', 'ERR', '-log-json', '-pid-file', '/run/c.pid', '-node-meta', 'rack:r1', '-node-meta=zone:a:b'], WEFT), {
    logLevel: 'error',
    logJson: true,
    pidFile: '/run/c.pid',
    settings: { nodeMeta: { rack: 'r1', zone: 'a:b' } },
  });
  t.match((await resolveDevConsulConfig(['-server=false', '-bootstrap-expect', '3'], WEFT)).warnings, [/server = false ignored/, /bootstrap_expect = 3 ignored/]);
  const bad: Array<[string[], RegExp]> = [
    [['-node'], /-node: flag needs an argument/],
    [['-dev=maybe'], /-dev: must be true or false/],
    [['-http-port', 'http'], /-http-port: must be a whole number/],
    [['-config-format', 'yaml'], /-config-format: must be json or hcl/],
    [['--prot', '1'], /--prot: unknown option/],
    [['stray'], /stray: unexpected argument/],
    [['-client', '{{ GetPrivateIP }}'], /flag -client: give one address/],
  ];
  for (const [args, message] of bad) await t.rejects(resolveDevConsulConfig(args, WEFT), { code: 'WEFT_ERR_ARGUMENT_INVALID', message }, args.join(' '));
});

t.test('the agent registers file definitions before it listens, and drops them when they leave the files', async (t) => {
  const d = await dir(t);
  const dataDir = join(d, 'state');
  const f = join(d, 'agent.json');
  await file(d, 'agent.json', {
    enable_local_script_checks: true,
    services: [{ name: 'web', port: 80, check: { args: ['sh', '-c', 'echo up'], interval: '100ms' } }, { name: 'old', port: 81 }],
    checks: [{ id: 'web-ttl', name: 'web ttl', service_id: 'web', ttl: '30s' }],
  });
  const base = { bind: '127.0.0.1', port: 0, dataDir, nodeName: 'n1', datacenter: 'dc1', checkIntervalMin: 10 };
  const start = async (plan: DevConsulPlan) => {
    const agent = await startDevConsul({ ...base, ...flagsOf(plan), definitions: plan.settings.definitions });
    const consul = new Consul({ host: '127.0.0.1', port: agent.port });
    return { agent, consul };
  };
  const one = await start(await resolveDevConsulConfig(['-config-file', f], WEFT));
  t.strictSame(Object.keys(await one.consul.agent.service.list()).sort(), ['old', 'web']);
  const passing = await eventually(async () => {
    const c = ((await one.consul.agent.checks()) as Record<string, { Status: string; Output: string }>)['service:web'];
    return c?.Status === 'passing' ? c : undefined;
  }, 5000, 'the file script check to pass');
  t.equal(passing.Output, 'up\n');
  t.equal(((await one.consul.agent.checks()) as Record<string, { ServiceID: string }>)['web-ttl']?.ServiceID, 'web');
  one.consul.destroy();
  await one.agent.close();

  await file(d, 'agent.json', { services: [{ name: 'web', port: 8080 }] });
  const two = await start(await resolveDevConsulConfig(['-config-file', f], WEFT));
  t.teardown(async () => {
    two.consul.destroy();
    await two.agent.close();
  });
  const services = (await two.consul.agent.service.list()) as Record<string, { Port: number }>;
  t.strictSame(Object.keys(services), ['web'], '"old" left the catalog with the file');
  t.equal(services['web']?.Port, 8080);
  t.strictSame(Object.keys((await two.consul.agent.checks()) as object), [], 'its checks went with the definitions');

  // A check on a service nobody defines: the agent refuses it, and the start fails naming it.
  await file(d, 'agent.json', { checks: [{ name: 'orphan', service_id: 'nope', ttl: '10s' }] });
  await t.rejects(
    startDevConsul({ ...base, dataDir: join(d, 'other'), definitions: (await resolveDevConsulConfig(['-config-file', f], WEFT)).settings.definitions }),
    { code: 'WEFT_ERR_DEV_CONSUL_CONFIG', message: `config file ${f}: checks[0]: ServiceID "nope" does not exist` },
  );
});

t.test('reload re-reads the files: services, checks and node Meta change; a bad file changes nothing', async (t) => {
  const d = await dir(t);
  const f = await file(d, 'agent.json', { node_meta: { v: '1' }, services: [{ name: 'web', port: 80 }] });
  const plan = await resolveDevConsulConfig(['-config-file', f], WEFT);
  const warnings: string[] = [];
  const reload = async (): Promise<DevConsulReload> => {
    const next = await plan.reload();
    warnings.push(...next.warnings);
    return { nodeMeta: next.nodeMeta, definitions: next.definitions };
  };
  const agent = await startDevConsul({
    bind: '127.0.0.1',
    port: 0,
    dataDir: join(d, 'state'),
    nodeName: 'n1',
    datacenter: 'dc1',
    definitions: plan.settings.definitions,
    ...(plan.settings.nodeMeta === undefined ? {} : { nodeMeta: plan.settings.nodeMeta }),
    reload,
  });
  const consul = new Consul({ host: '127.0.0.1', port: agent.port });
  t.teardown(async () => {
    consul.destroy();
    await agent.close();
  });
  const putReload = () => fetch(`http://${agent.address}/v1/agent/reload`, { method: 'PUT' });

  await file(d, 'agent.json', { node_meta: { v: '2' }, node_name: 'renamed', services: [{ name: 'api', port: 81 }] });
  t.equal((await putReload()).status, 200);
  t.strictSame(Object.keys(await consul.agent.service.list()), ['api']);
  t.match(await consul.catalog.node.services('n1'), { Node: { Meta: { v: '2' } } });
  t.match(warnings, [/reload: node_name changed in the config; that takes a restart/]);

  await file(d, 'agent.json', { services: [{ name: 'api', port: 'eighty' }] });
  const failed = await putReload();
  t.equal(failed.status, 500);
  t.match(await failed.text(), /services\[0\]\.port: must be integer/);
  t.strictSame(Object.keys(await consul.agent.service.list()), ['api'], 'the bad file changed nothing');
});

function flagsOf(plan: DevConsulPlan): { enableScriptChecks?: boolean; enableLocalScriptChecks?: boolean } {
  const s = plan.settings;
  return {
    ...(s.enableScriptChecks === undefined ? {} : { enableScriptChecks: s.enableScriptChecks }),
    ...(s.enableLocalScriptChecks === undefined ? {} : { enableLocalScriptChecks: s.enableLocalScriptChecks }),
  };
}
