/**
 * The host agent's parts: drivers, registration by label, allocations, identities, heartbeat, proxy supervision. The process is assembled in src/wiring/agent-process.ts.
 *
 * The public surface of agent/: other modules and the application import only
 * this file (test/structure/layers.test.ts enforces it); everything else in
 * the folder is internal.
 */
export { AllocRunner } from './allocations.js';
export { parseAllocation } from './alloc-spec.js';
export type { Driver } from './driver.js';
export { DockerDriver } from './drivers/docker.js';
export { ProcessDriver } from './drivers/process.js';
export { IdentityManager } from './identities.js';
export type { CsrSigner } from './identities.js';
export { NodeHeartbeat } from './node.js';
export { ProxySupervisor } from './proxy-supervisor.js';
export { Registrar } from './registrar.js';
export { apiSecretSource } from './scheduler-secrets.js';
export type { SecretSource } from './scheduler-secrets.js';
export type { SchedulerEndpoint } from './scheduler-http.js';
export { schedulerSigner } from './scheduler-signer.js';
export { localKeySetPath, proxyKeySetPath, SigningKeys } from './signing-keys.js';
