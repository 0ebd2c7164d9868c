/** `weft up`'s plan: which pieces start, with which arguments, and what is skipped and why. */
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { globalArgs, planUp, whatNow } from '../../src/cli/up/plan.js';

const config = loadConfig({ env: {}, flags: { dataDir: '/tmp/w', nodeName: 'n1', 'consul.address': 'http://127.0.0.1:8600' } });

t.test('a bare machine gets every piece, in order', async (t) => {
  const steps = planUp(config, { consulAnswers: false, caExists: false, schedulerAnswers: false }, { driver: 'process' });
  t.strictSame(
    steps.map((s) => [s.name, s.kind, s.args.join(' '), s.skip]),
    [
      ['consul', 'daemon', 'dev-consul --bind 127.0.0.1 --port 8600', undefined],
      ['ca', 'once', 'ca init', undefined],
      ['scheduler', 'daemon', 'scheduler', undefined],
      ['agent', 'daemon', 'agent --no-proxy --driver process', undefined],
      ['proxy', 'daemon', 'proxy', undefined],
    ],
  );
});

t.test('what already runs is skipped with a reason', async (t) => {
  const steps = planUp(config, { consulAnswers: true, caExists: true, schedulerAnswers: true });
  t.strictSame(
    steps.filter((s) => s.skip !== undefined).map((s) => [s.name, s.skip]),
    [
      ['consul', 'Consul already answers at http://127.0.0.1:8600'],
      ['ca', 'a CA exists in /tmp/w/ca'],
      ['scheduler', 'a scheduler already answers at http://127.0.0.1:7400'],
    ],
  );
  t.strictSame(steps.find((s) => s.name === 'agent')!.args, ['agent', '--no-proxy'], 'no --driver: the configured one');
});

t.test('children get the same configuration', async (t) => {
  t.strictSame(globalArgs(config, { configFile: 'w.yaml' }, 'json'), [
    '--config',
    'w.yaml',
    '--data-dir',
    '/tmp/w',
    '--consul',
    'http://127.0.0.1:8600',
    '--node',
    'n1',
    '--datacenter',
    'dc1',
    '--log-level',
    'info',
    '--log-format',
    'json',
  ]);
});

t.test('"what now" names the commands, the outbound port and where config lives', async (t) => {
  const text = whatNow(config, { driver: 'process', startedConsul: true });
  t.match(text, 'WEFT_DATA_DIR=/tmp/w ./scripts/weft deploy examples/hello.yaml');
  t.match(text, "curl -H 'Host: hello' http://127.0.0.1:15101/");
  t.match(text, 'grafana/prometheus-http-sd.yml');
  t.notMatch(text, 'uses the process driver');
  t.match(whatNow(config, { driver: 'docker', startedConsul: false }), 'start with `weft up --driver process`');
});
