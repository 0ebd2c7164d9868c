/**
 * The ?filter language (go-bexpr 0.1.2, as Consul ships it), pure: the
 * parser's trees, the evaluator on a fixed catalog in Consul's JSON shapes,
 * and go-bexpr's error messages for bad expressions.
 */
import t from 'tap';
import {
  CHECK_SERVICE_NODE,
  createFilter,
  FilterError,
  formatExpression,
  HEALTH_CHECK,
  MAX_NESTING,
  NODE,
  NODE_SERVICE,
  parseFilter,
  requestFilter,
  SERVICE_NODE,
  type StructType,
} from '../../../discovery/dev-agent/filter/index.js';
import { goQuote, goUnquote, parseGoBool, parseGoInt } from '../../../discovery/dev-agent/filter/go.js';
import { tokenize } from '../../../discovery/dev-agent/filter/lexer.js';
import { compileGoRegexp, RegexpError } from '../../../discovery/dev-agent/filter/regexp.js';
import { ConsulHttpError } from '../../../discovery/dev-agent/http-error.js';

// The fixed catalog: services as /v1/agent/services answers them (NODE_SERVICE).
const SERVICES = [
  {
    ID: 'web-1',
    Service: 'web',
    Tags: ['prod', 'v2'],
    Meta: { version: '1.2.3', weft_version: '0.1.0' },
    Port: 8080,
    Address: '10.0.0.1',
    TaggedAddresses: { lan: { Address: '10.0.0.1', Port: 8080 } },
    Weights: { Passing: 10, Warning: 1 },
    EnableTagOverride: false,
    Datacenter: 'dc1',
  },
  {
    ID: 'web-2',
    Service: 'web',
    Tags: ['canary'],
    Meta: { version: '1.3.0-rc1' },
    Port: 8081,
    Address: '10.0.0.2',
    Weights: { Passing: 1, Warning: 1 },
    EnableTagOverride: true,
    Datacenter: 'dc1',
  },
  { ID: 'db-1', Service: 'db', Tags: [], Meta: {}, Port: 5432, Address: '', Weights: { Passing: 1, Warning: 1 }, EnableTagOverride: false },
  {
    Kind: 'connect-proxy',
    ID: 'proxy-1',
    Service: 'web-sidecar-proxy',
    Tags: ['mesh'],
    Meta: { 'weft.io/role': 'sidecar' },
    Port: 21000,
    Address: '',
    Weights: { Passing: 1, Warning: 1 },
    EnableTagOverride: false,
    Proxy: { DestinationServiceName: 'web', Upstreams: [{ DestinationName: 'db', LocalBindPort: 9191 }] },
  },
];

const node = (name: string, rack: string) => ({ ID: '', Node: name, Address: '127.0.0.1', Datacenter: 'dc1', TaggedAddresses: {}, Meta: { rack } });
const check = (nodeName: string, id: string, status: string, serviceId = '', tags: string[] = []) => ({
  Node: nodeName,
  CheckID: id,
  Name: id,
  Status: status,
  Notes: '',
  Output: '',
  ServiceID: serviceId,
  ServiceName: serviceId === '' ? '' : 'web',
  ServiceTags: tags,
});

// /v1/health/service entries (CHECK_SERVICE_NODE).
const ENTRIES = [
  { Node: node('n1', 'a'), Service: SERVICES[0], Checks: [check('n1', 'serfHealth', 'passing'), check('n1', 'service:web-1', 'passing', 'web-1', ['prod', 'v2'])] },
  { Node: node('n2', 'b'), Service: SERVICES[1], Checks: [check('n2', 'serfHealth', 'passing'), check('n2', 'service:web-2', 'critical', 'web-2', ['canary'])] },
  { Node: node('n1', 'a'), Service: SERVICES[2], Checks: [] },
];

// /v1/catalog/service rows (SERVICE_NODE).
const ROWS = [
  { ID: '', Node: 'n1', Address: '127.0.0.1', Datacenter: 'dc1', TaggedAddresses: { lan: '127.0.0.1' }, NodeMeta: { rack: 'a' }, ServiceID: 'web-1', ServiceName: 'web', ServiceTags: ['prod'], ServiceMeta: { version: '1.2.3' }, ServicePort: 8080, ServiceWeights: { Passing: 1, Warning: 1 } },
  { ID: '', Node: 'n2', Address: '127.0.0.2', Datacenter: 'dc1', TaggedAddresses: {}, NodeMeta: {}, ServiceID: 'web-2', ServiceName: 'web', ServiceTags: [], ServiceMeta: {}, ServicePort: 8081, ServiceWeights: { Passing: 1, Warning: 1 } },
];

function ids(expression: string): string[] {
  const keep = createFilter(expression, NODE_SERVICE);
  return SERVICES.filter((s) => keep(s)).map((s) => s.ID);
}

function entryIds(expression: string): string[] {
  const keep = createFilter(expression, CHECK_SERVICE_NODE);
  return ENTRIES.filter((e) => keep(e)).map((e) => e.Service!.ID);
}

function errorOf(expression: string, schema: StructType = NODE_SERVICE): string {
  try {
    createFilter(expression, schema);
  } catch (err) {
    if (err instanceof FilterError) return err.message;
    throw err;
  }
  return '(no error)';
}

t.test('parser: trees, precedence and the spellings go-bexpr accepts', async (t) => {
  const cases: Array<[string, string]> = [
    ['Service == web', '(Service Equal "web")'],
    ['Service=="web"', '(Service Equal "web")'],
    ['Service != `web`', '(Service Not Equal "web")'],
    ['Port == 8080', '(Port Equal "8080")'],
    ['Port == -1.5', '(Port Equal "-1.5")'],
    ['Meta.version == v1_2.x', '(Meta.version Equal "v1_2.x")'],
    ['Meta["weft.io/role"] == x', '(Meta.weft.io/role Equal "x")'],
    ['Meta[ "a b" ].c == 1', '(Meta.a b.c Equal "1")'],
    ['"prod" in Tags', '(Tags In "prod")'],
    ['prod in Tags', '(Tags In "prod")'],
    ['Tags contains "prod"', '(Tags In "prod")'],
    ['"prod" not in Tags', '(Tags Not In "prod")'],
    ['Tags not contains prod', '(Tags Not In "prod")'],
    ['Tags is empty', '(Tags Is Empty)'],
    ['Tags is not empty', '(Tags Is Not Empty)'],
    ['Service matches "^w"', '(Service Matches "^w")'],
    ['Service not matches `\\d`', '(Service Not Matches "\\\\d")'],
    ['a == 1 and b == 2 or c == 3', '(((a Equal "1") and (b Equal "2")) or (c Equal "3"))'],
    ['a == 1 or b == 2 and c == 3', '((a Equal "1") or ((b Equal "2") and (c Equal "3")))'],
    ['(a == 1 or b == 2) and c == 3', '(((a Equal "1") or (b Equal "2")) and (c Equal "3"))'],
    ['a == 1 and not b == 2 or c == 3', '(((a Equal "1") and (not (b Equal "2"))) or (c Equal "3"))'],
    ['not (a == 1 and b == 2)', '(not ((a Equal "1") and (b Equal "2")))'],
    ['not not a == 1', '(a Equal "1")'],
    ['not not not a == 1', '(not (a Equal "1"))'],
    ['a == 1 and b == 2 and c == 3 and d == 4', '((a Equal "1") and (b Equal "2") and (c Equal "3") and (d Equal "4"))'],
    ['a == 1 and (b == 2 and c == 3)', '((a Equal "1") and (b Equal "2") and (c Equal "3"))'],
    ['((((a == 1))))', '(a Equal "1")'],
    ['  a == 1\n\tand\r\nb is empty  ', '((a Equal "1") and (b Is Empty))'],
    // Keywords are only keywords where the grammar expects one.
    ['not == 1', '(not Equal "1")'],
    ['and == or', '(and Equal "or")'],
    ['Service == not', '(Service Equal "not")'],
    ['notes == 1', '(notes Equal "1")'],
    ['x in in', '(in In "x")'],
    // Go string escapes in "...", none in `...`.
    ['a == "tab\\there"', '(a Equal "tab\\there")'],
    ['a == "\\x41\\u00e9\\101"', '(a Equal "AéA")'],
    ['a == `raw\\n`', '(a Equal "raw\\\\n")'],
  ];
  for (const [input, want] of cases) t.equal(formatExpression(parseFilter(input)), want, input);
});

t.test('parser: nesting up to the limit parses, deeper is refused', async (t) => {
  const deep = (n: number) => `${'('.repeat(n)}a == 1${')'.repeat(n)}`;
  t.equal(formatExpression(parseFilter(deep(MAX_NESTING))), '(a Equal "1")');
  t.match(errorOf(deep(MAX_NESTING + 1)), /nested more than 100 levels deep/);
  t.match(errorOf(`${'not '.repeat(MAX_NESTING + 1)}a == 1`), /nested more than 100 levels deep/);
  // A long flat chain is a list, not a deep tree.
  const chain = Array.from({ length: 2000 }, (_, i) => `Port != ${i}`).join(' and ');
  t.same(ids(chain), ['web-1', 'web-2', 'db-1', 'proxy-1']);
  // Unbalanced groups are re-read from a cache, not exponentially.
  t.match(errorOf(`${'('.repeat(60)}Service == web`), /Unmatched parentheses/);
});

t.test('lexer: tokens, whitespace and malformed literals carried to the parser', async (t) => {
  const toks = tokenize('a.b["c"] != -1.5 `x`');
  t.strictSame(
    toks.map((k) => [k.kind, k.text, k.spaceBefore]),
    [
      ['ident', 'a', false],
      ['punct', '.', false],
      ['ident', 'b', false],
      ['punct', '[', false],
      ['string', '"c"', false],
      ['punct', ']', false],
      ['punct', '!=', true],
      ['number', '-1.5', true],
      ['string', '`x`', true],
      ['eof', '', false],
    ],
  );
  t.match(tokenize('"abc')[0], { kind: 'string', problem: { message: 'Unterminated string literal', at: 4 } });
  t.match(tokenize('12x')[0], { kind: 'number', text: '12', problem: { message: 'Invalid number literal', at: 2 } });
  t.match(tokenize('"\\q"')[0], { kind: 'string', problem: { message: 'invalid syntax', at: 0 } });
  t.equal(tokenize('1)')[0]!.problem, undefined, 'a number may run into ")"');
});

t.test('evaluator: services (agent/services, catalog/node, node-services)', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['Service == web', ['web-1', 'web-2']],
    ['Service == "web"', ['web-1', 'web-2']],
    ['Service != web', ['db-1', 'proxy-1']],
    ['ID == "web-1"', ['web-1']],
    ['Service == "we\\x62"', ['web-1', 'web-2']],
    ['"eb" in Service', ['web-1', 'web-2', 'proxy-1']],
    ['Service contains "sidecar"', ['proxy-1']],
    ['Service not contains "web"', ['db-1']],
    // Meta: keys are map keys; a missing key follows go-bexpr 0.1.2.
    ['Meta.version == "1.2.3"', ['web-1']],
    ['Meta["version"] == `1.2.3`', ['web-1']],
    ['Meta["weft.io/role"] == sidecar', ['proxy-1']],
    ['Meta.version != "1.2.3"', ['web-2', 'db-1', 'proxy-1']],
    ['"1.2" in Meta.version', ['web-1']],
    ['"1.2" not in Meta.version', ['web-2', 'db-1', 'proxy-1']],
    ['Meta.version matches "^1\\\\.3"', ['web-2', 'db-1', 'proxy-1']],
    ['Meta.version not matches "^1\\\\.3"', ['web-1', 'db-1', 'proxy-1']],
    ['"version" in Meta and Meta.version matches "^1\\\\.3"', ['web-2']],
    ['"version" in Meta', ['web-1', 'web-2']],
    ['Meta contains version', ['web-1', 'web-2']],
    ['"version" not in Meta', ['db-1', 'proxy-1']],
    ['Meta is empty', ['db-1']],
    ['Meta is not empty', ['web-1', 'web-2', 'proxy-1']],
    ['Meta.weft_version == "0.1.0"', ['web-1']],
    // Tags: a list of strings.
    ['prod in Tags', ['web-1']],
    ['Tags contains canary', ['web-2']],
    ['Tags not contains prod', ['web-2', 'db-1', 'proxy-1']],
    ['"pro" in Tags', []],
    ['Tags is empty', ['db-1']],
    ['Tags is not empty', ['web-1', 'web-2', 'proxy-1']],
    // Numbers and booleans are converted like strconv.ParseInt(s, 0, 64) / ParseBool.
    ['Port == 8080', ['web-1']],
    ['Port == "8080"', ['web-1']],
    ['Port == "0x1F90"', ['web-1']],
    ['Port == "8_080"', ['web-1']],
    ['Port != 8080', ['web-2', 'db-1', 'proxy-1']],
    ['Weights.Passing == 10', ['web-1']],
    ['EnableTagOverride == true', ['web-2']],
    ['EnableTagOverride == T', ['web-2']],
    ['EnableTagOverride != 1', ['web-1', 'db-1', 'proxy-1']],
    // Nested structs, maps of structs, and fields the JSON leaves out (Go zero values).
    ['TaggedAddresses.lan.Address == "10.0.0.1"', ['web-1']],
    ['lan in TaggedAddresses', ['web-1']],
    ['TaggedAddresses.wan.Port == 0', []],
    ['TaggedAddresses.wan.Port != 0', ['web-1', 'web-2', 'db-1', 'proxy-1']],
    ['TaggedAddresses is empty', ['web-2', 'db-1', 'proxy-1']],
    ['Kind == "connect-proxy"', ['proxy-1']],
    ['Kind == ""', ['web-1', 'web-2', 'db-1']],
    ['Connect.Native == false', ['web-1', 'web-2', 'db-1', 'proxy-1']],
    ['Proxy.DestinationServiceName == web', ['proxy-1']],
    ['Proxy.Upstreams.DestinationName == db', ['proxy-1']],
    ['Proxy.Upstreams.LocalBindPort == 9191', ['proxy-1']],
    ['Proxy.Upstreams is empty', ['web-1', 'web-2', 'db-1']],
    ['Proxy.MeshGateway.Mode == ""', ['web-1', 'web-2', 'db-1', 'proxy-1']],
    // Regular expressions (RE2 spellings), unanchored like Go's MatchString.
    ['Address matches "^10\\\\.0\\\\.0\\\\.[12]$"', ['web-1', 'web-2']],
    ['Address not matches "^10\\\\."', ['db-1', 'proxy-1']],
    ['ID matches "(?i)^WEB-"', ['web-1', 'web-2']],
    ['ID matches "[[:digit:]]$"', ['web-1', 'web-2', 'db-1', 'proxy-1']],
    ['ID matches `\\Aweb`', ['web-1', 'web-2']],
    ['Service matches "eb"', ['web-1', 'web-2', 'proxy-1']],
    ['Service matches "(?P<name>db)"', ['db-1']],
    // Precedence and negation.
    ['Service == db or Service == web and Port == 8081', ['web-2', 'db-1']],
    ['(Service == db or Service == web) and Port == 8081', ['web-2']],
    ['not Service == web and Tags is empty', ['db-1']],
    ['not (Service == web and Port == 8080)', ['web-2', 'db-1', 'proxy-1']],
    ['not not Service == db', ['db-1']],
    ['Service == web and (prod in Tags or canary in Tags) and not EnableTagOverride == true', ['web-1']],
    ['Service == web\n\tand Port == 8080', ['web-1']],
  ];
  for (const [expression, want] of cases) t.strictSame(ids(expression), want, expression);
});

t.test('evaluator: health/service entries select into Node, Service and every check (any check)', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['Checks.Status == critical', ['web-2']],
    ['Checks.Status == passing', ['web-1', 'web-2']],
    // Through a list, every operator asks "does some element match": a negation does not mean "none".
    ['Checks.Status != passing', ['web-2']],
    ['not Checks.Status != passing', ['web-1', 'db-1']],
    ['Checks.Status != critical', ['web-1', 'web-2']],
    ['Checks is empty', ['db-1']],
    ['Checks is not empty', ['web-1', 'web-2']],
    ['Checks.CheckID == serfHealth', ['web-1', 'web-2']],
    ['Checks.ServiceTags contains canary', ['web-2']],
    ['Checks.ServiceTags is empty', ['web-1', 'web-2']],
    ['Node.Node == n2', ['web-2']],
    ['Node.Meta.rack == a', ['web-1', 'db-1']],
    ['Node.Meta.zone == a', []],
    ['Service.Service == web', ['web-1', 'web-2']],
    ['Service.Tags contains prod', ['web-1']],
    ['Service.Meta.version == "1.2.3" and Checks.Status == passing', ['web-1']],
    ['Service.Port == 5432 or Checks.Status == critical', ['web-2', 'db-1']],
  ];
  for (const [expression, want] of cases) t.strictSame(entryIds(expression), want, expression);
});

t.test('evaluator: catalog rows, nodes and checks', async (t) => {
  const rows = (e: string) => ROWS.filter((r) => createFilter(e, SERVICE_NODE)(r)).map((r) => r.ServiceID);
  t.strictSame(rows('ServiceMeta.version == "1.2.3"'), ['web-1']);
  t.strictSame(rows('NodeMeta.rack == a'), ['web-1']);
  t.strictSame(rows('ServiceTags is empty'), ['web-2']);
  t.strictSame(rows('Node == n2 and ServicePort == 8081'), ['web-2']);
  t.strictSame(rows('TaggedAddresses.lan == "127.0.0.1"'), ['web-1']);
  t.strictSame(rows('ServiceProxy.Upstreams is empty'), ['web-1', 'web-2']);
  const nodes = ENTRIES.map((e) => e.Node);
  t.strictSame(
    nodes.filter((n) => createFilter('Meta.rack == b', NODE)(n)).map((n) => n.Node),
    ['n2'],
  );
  const checks = ENTRIES.flatMap((e) => e.Checks);
  t.strictSame(
    checks.filter((c) => createFilter('Status != passing or ServiceName matches "^$"', HEALTH_CHECK)(c)).map((c) => c.CheckID),
    ['serfHealth', 'serfHealth', 'service:web-2'],
  );
});

t.test('bad expressions answer go-bexpr\'s messages', async (t) => {
  const cases: Array<[string, string, StructType?]> = [
    // Syntax errors, pigeon's format: line:col (byte offset).
    ['foo', '1:4 (3): no match found, expected: "!=", ".", "==", "[", [ \\t\\r\\n] or [a-zA-Z0-9_]'],
    ['Node==host-name', '1:11 (10): no match found, expected: ".", "[", [ \\t\\r\\n], [a-zA-Z0-9_] or EOF'],
    ['Address == 10.10.10.10', '1:17 (16): rule "number": Invalid number literal'],
    ['Port == 0x1f90', '1:10 (9): rule "number": Invalid number literal'],
    ['Service == "web', '1:16 (15): rule "string": Unterminated string literal'],
    ['Service == `web', '1:16 (15): rule "string": Unterminated string literal'],
    ['Service == "a\\qb"', '1:12 (11): rule "string": invalid syntax'],
    ['Meta[version] == 1', '1:6 (5): rule "index": Invalid index'],
    ['Meta["version" == 1', '1:16 (15): rule "index": Unclosed index expression'],
    ['(Service == web', '1:16 (15): rule "grouping": Unmatched parentheses'],
    ['"web" in 42', '1:10 (9): rule "match": Invalid selector'],
    ['Service == web and', '1:19 (18): no match found, expected: [ \\t\\r\\n]'],
    ['Service == "web"and Port == 1', '1:17 (16): no match found, expected: [ \\t\\r\\n] or EOF'],
    ['Service = web', '1:9 (8): no match found, expected: "!=", "==", "contains", "in", "is", "matches", "not" or [ \\t\\r\\n]'],
    // A bare value is a selector: after a '.' comes an identifier, so a version needs quotes.
    ['Meta.version == v1.2', '1:20 (19): no match found, expected: [a-zA-Z]'],
    ['Service == web)', '1:15 (14): no match found, expected: ".", "[", [ \\t\\r\\n], [a-zA-Z0-9_] or EOF'],
    ['not(Service == web)', '1:4 (3): no match found, expected: "!=", ".", "==", "[", [ \\t\\r\\n] or [a-zA-Z0-9_]'],
    ['Tags isempty', '1:8 (7): no match found, expected: [ \\t\\r\\n]'],
    ['Service ==\n  ', '2:3 (13): no match found, expected: "-", "0", "\\"", "`", [ \\t\\r\\n], [1-9] or [a-zA-Z]'],
    ['Service == "é" x', '1:16 (16): no match found, expected: "and", "or", [ \\t\\r\\n] or EOF'],
    // Checked against the endpoint's fields.
    ['Foo == 1', 'Selector "Foo" is not valid'],
    ['service == web', 'Selector "service" is not valid'],
    ['Meta.version.major == 1', 'Selector "Meta.version.major" is not valid'],
    ['Tags.x == 1', 'Selector "Tags.x" is not valid'],
    ['Weights.Critical == 1', 'Selector "Weights.Critical" is not valid'],
    ['CreateIndex == 1', 'Selector "CreateIndex" is not valid'],
    ['Checks.Bogus == 1', 'Selector "Checks.Bogus" is not valid', CHECK_SERVICE_NODE],
    ['Service == web and Bogus is empty', 'Selector "Bogus" is not valid'],
    ['Port matches "8"', 'Invalid match operator "Matches" for selector "Port"'],
    ['"8" in Port', 'Invalid match operator "In" for selector "Port"'],
    ['Tags == prod', 'Invalid match operator "Equal" for selector "Tags"'],
    ['Service is empty', 'Invalid match operator "Is Empty" for selector "Service"'],
    ['Meta == x', 'Invalid match operator "Equal" for selector "Meta"'],
    ['Meta.version is empty', 'Invalid match operator "Is Empty" for selector "Meta.version"'],
    ['Proxy == x', 'Invalid match operator "Equal" for selector "Proxy"'],
    ['Checks contains x', 'Invalid match operator "In" for selector "Checks"', CHECK_SERVICE_NODE],
    ['Port == abc', 'Failed to coerce value "abc" for selector "Port": strconv.ParseInt: parsing "abc": invalid syntax'],
    ['Port == "99999999999999999999"', 'Failed to coerce value "99999999999999999999" for selector "Port": strconv.ParseInt: parsing "99999999999999999999": value out of range'],
    ['Port == 1.5', 'Failed to coerce value "1.5" for selector "Port": strconv.ParseInt: parsing "1.5": invalid syntax'],
    ['Port == "08"', 'Failed to coerce value "08" for selector "Port": strconv.ParseInt: parsing "08": invalid syntax'],
    ['EnableTagOverride == yes', 'Failed to coerce value "yes" for selector "EnableTagOverride": strconv.ParseBool: parsing "yes": invalid syntax'],
    ['Service matches "("', 'Failed to compile regular expression "(": error parsing regexp: missing closing ): `(`'],
    ['Service matches "(?=w)"', 'Failed to compile regular expression "(?=w)": error parsing regexp: invalid or unsupported Perl syntax: `(?=`'],
    ['Service matches "(a)\\\\1"', 'Failed to compile regular expression "(a)\\\\1": error parsing regexp: invalid escape sequence: `\\1`'],
  ];
  for (const [expression, want, schema] of cases) t.equal(errorOf(expression, schema), want, expression);
});

t.test('requestFilter: Consul\'s prefix and 400; an absent or empty filter does not filter', async (t) => {
  const req = (filter: string | string[] | undefined) => ({ query: { filter } }) as never;
  t.equal(requestFilter(req(undefined), NODE_SERVICE), undefined);
  t.equal(requestFilter(req(''), NODE_SERVICE), undefined);
  t.equal(typeof requestFilter(req('Service == web'), NODE_SERVICE), 'function');
  t.equal(typeof requestFilter(req(['Service == web', 'junk (']), NODE_SERVICE), 'function', 'the first ?filter counts');
  t.throws(
    () => requestFilter(req('Bogus == 1'), NODE_SERVICE),
    new ConsulHttpError(400, 'Failed to create boolean expression evaluator: Selector "Bogus" is not valid'),
  );
  t.throws(() => requestFilter(req('  '), NODE_SERVICE), { status: 400, message: /^Failed to create boolean expression evaluator: 1:3 \(2\): no match found/ });
});

t.test('Go helpers: quoting, unquoting, ParseInt, ParseBool', async (t) => {
  t.equal(goQuote('a"b\\c\n\x01é\u2028'), '"a\\"b\\\\c\\n\\x01é\\u2028"');
  t.equal(goUnquote('"a\\tb"'), 'a\tb');
  t.equal(goUnquote('"\\xc3\\xa9"'), 'é', '\\x escapes are bytes');
  t.equal(goUnquote('"\\U0001F600"'), '😀');
  for (const bad of ['"\\\'"', '"a\nb"', '"\\400"', '"\\ud800"', '"\\x4"', '"\\"']) t.equal(goUnquote(bad), undefined, bad);
  const ints: Array<[string, bigint | string]> = [
    ['42', 42n],
    ['-42', -42n],
    ['+7', 7n],
    ['0', 0n],
    ['0x2A', 42n],
    ['0o52', 42n],
    ['052', 42n],
    ['0b101010', 42n],
    ['1_000', 1000n],
    ['9223372036854775807', 9223372036854775807n],
    ['-9223372036854775808', -9223372036854775808n],
    ['9223372036854775808', 'value out of range'],
    ['_1', 'invalid syntax'],
    ['1__0', 'invalid syntax'],
    ['0x', 'invalid syntax'],
    ['', 'invalid syntax'],
    ['1e3', 'invalid syntax'],
  ];
  for (const [input, want] of ints) {
    const got = parseGoInt(input);
    if (typeof want === 'bigint') t.strictSame(got, { value: want }, input);
    else t.match(got, { error: new RegExp(`${want}$`) }, input);
  }
  t.strictSame(parseGoBool('True'), { value: true });
  t.strictSame(parseGoBool('0'), { value: false });
  t.strictSame(parseGoBool('no'), { error: 'strconv.ParseBool: parsing "no": invalid syntax' });
});

t.test('RE2 patterns run as JavaScript RegExps', async (t) => {
  t.ok(compileGoRegexp('(?i)abc').test('xABCx'));
  t.ok(compileGoRegexp('(?s)a.b').test('a\nb'));
  t.notOk(compileGoRegexp('a.b').test('a\nb'));
  t.ok(compileGoRegexp('x\\z').test('ax'));
  t.notOk(compileGoRegexp('x\\z').test('x\n'));
  t.ok(compileGoRegexp('\\Qa.b\\E').test('a.b'));
  t.notOk(compileGoRegexp('\\Qa.b\\E').test('axb'));
  t.ok(compileGoRegexp('[]a]').test(']'));
  t.ok(compileGoRegexp('^[[:alpha:]_]+$').test('ab_C'));
  t.ok(compileGoRegexp('^(?:a|b)c$').test('bc'));
  t.throws(() => compileGoRegexp('(?<!a)b'), RegexpError);
  // Valid RE2 without a faithful JavaScript spelling is refused, not run with another meaning.
  for (const p of ['(?U)a+', '\\pL', 'a(?i)b', '(?i:a)b', '[[:^alpha:]]']) {
    t.throws(() => compileGoRegexp(p), { name: 'RegexpError', message: /is valid RE2 but the weft dev agent cannot run it/ }, p);
  }
});
