/**
 * What a filter may select on each endpoint. go-bexpr derives this from the
 * Go struct an endpoint returns; these are the selectors Consul's API docs
 * list per endpoint ("Filtering" tables), with the Go field types behind
 * them. Names are matched exactly (case-sensitive), as go-bexpr matches
 * struct fields, and are the JSON keys of the dev agent's answers.
 *
 * The operators a field supports follow from its type (go-bexpr 0.1.2):
 *   string                         ==  !=  in  not in  matches  not matches
 *   int, bool                      ==  !=
 *   list of strings                in  not in  is empty  is not empty
 *   list of structs                is empty  is not empty  (and selects into the elements)
 *   map                            is empty  is not empty  in  not in (on keys)  (and selects a key)
 *   struct                         none (only selects into its fields)
 */

/** The type of a selectable field. */
export type FieldType =
  | { readonly kind: 'string' | 'int' | 'bool' }
  | { readonly kind: 'list'; readonly elem: FieldType }
  | { readonly kind: 'map'; readonly value: FieldType }
  | StructType;

/** A struct: its selectable fields by name. */
export interface StructType {
  readonly kind: 'struct';
  readonly fields: Readonly<Record<string, FieldType>>;
}

const STRING: FieldType = { kind: 'string' };
const INT: FieldType = { kind: 'int' };
const BOOL: FieldType = { kind: 'bool' };
const STRINGS: FieldType = { kind: 'list', elem: STRING };
const STRING_MAP: FieldType = { kind: 'map', value: STRING };

function struct(fields: Record<string, FieldType>): StructType {
  return { kind: 'struct', fields };
}

const MESH_GATEWAY = struct({ Mode: STRING });

/** structs.ConnectProxyConfig (a service's `Proxy`). */
const PROXY = struct({
  DestinationServiceID: STRING,
  DestinationServiceName: STRING,
  LocalServiceAddress: STRING,
  LocalServicePort: INT,
  Mode: STRING,
  TransparentProxy: struct({ OutboundListenerPort: INT }),
  MeshGateway: MESH_GATEWAY,
  Upstreams: {
    kind: 'list',
    elem: struct({
      Datacenter: STRING,
      DestinationName: STRING,
      DestinationNamespace: STRING,
      DestinationType: STRING,
      LocalBindAddress: STRING,
      LocalBindPort: INT,
      MeshGateway: MESH_GATEWAY,
    }),
  },
});

const WEIGHTS = struct({ Passing: INT, Warning: INT });
const SERVICE_TAGGED_ADDRESSES: FieldType = { kind: 'map', value: struct({ Address: STRING, Port: INT }) };

/** A node (structs.Node): /v1/catalog/nodes rows, the `Node` of a health/service entry. */
export const NODE = struct({
  Address: STRING,
  Datacenter: STRING,
  ID: STRING,
  Meta: STRING_MAP,
  Node: STRING,
  TaggedAddresses: STRING_MAP,
});

/**
 * A service on a node (structs.NodeService, api.AgentService): values of
 * /v1/agent/services and of catalog/node's `Services`, the `Service` of a
 * health/service entry.
 */
export const NODE_SERVICE = struct({
  Address: STRING,
  Connect: struct({ Native: BOOL }),
  EnableTagOverride: BOOL,
  ID: STRING,
  Kind: STRING,
  Meta: STRING_MAP,
  Port: INT,
  Proxy: PROXY,
  Service: STRING,
  TaggedAddresses: SERVICE_TAGGED_ADDRESSES,
  Tags: STRINGS,
  Weights: WEIGHTS,
});

/** A row of /v1/catalog/service/:service and /v1/catalog/services (structs.ServiceNode). */
export const SERVICE_NODE = struct({
  Address: STRING,
  Datacenter: STRING,
  ID: STRING,
  Node: STRING,
  NodeMeta: STRING_MAP,
  ServiceAddress: STRING,
  ServiceConnect: struct({ Native: BOOL }),
  ServiceEnableTagOverride: BOOL,
  ServiceID: STRING,
  ServiceKind: STRING,
  ServiceMeta: STRING_MAP,
  ServiceName: STRING,
  ServicePort: INT,
  ServiceProxy: PROXY,
  ServiceTaggedAddresses: SERVICE_TAGGED_ADDRESSES,
  ServiceTags: STRINGS,
  ServiceWeights: WEIGHTS,
  TaggedAddresses: STRING_MAP,
});

/** A health check (structs.HealthCheck): /v1/agent/checks values, health/node, health/checks, health/state. */
export const HEALTH_CHECK = struct({
  CheckID: STRING,
  Name: STRING,
  Node: STRING,
  Notes: STRING,
  Output: STRING,
  ServiceID: STRING,
  ServiceName: STRING,
  ServiceTags: STRINGS,
  Status: STRING,
});

/** An entry of /v1/health/service/:service (structs.CheckServiceNode). */
export const CHECK_SERVICE_NODE = struct({
  Node: NODE,
  Service: NODE_SERVICE,
  Checks: { kind: 'list', elem: HEALTH_CHECK },
});
