# Consul ACL policy for `weft agent` on ONE host. Replace <host> with the
# host's weft node name (nodeName / WEFT_NODE_NAME) and create one policy and
# one token per host, so a host can read only its own allocations and report
# only its own status (docs/acl/README.md shows the commands).
#
# Derived from what the agent calls (agent/allocations.ts, agent/registrar.ts,
# agent/node.ts):

# The allocations this host must run: watched recursively (agent/allocations.ts).
key_prefix "weft/allocs/<host>/" {
  policy = "read"
}

# This host's allocation status records: written on every transition, and
# deleted (check-and-set) when their allocation document is gone.
key_prefix "weft/alloc-status/<host>/" {
  policy = "write"
}

# Service registrations through the local Consul agent: weft-agent (with its
# TTL heartbeat check) and every workload, under whatever service name its
# job or container label gives it, so all names. Lists of the agent's own
# services (agent/services, for the resync) need read, which write includes.
# This is the broadest grant weft ships: a mesh instance of a service it was
# not allocated gets no traffic (callers' proxies pin the destination's mesh
# identity, which the scheduler signs only for services allocated to the
# host), but an instance registered WITHOUT weft_mesh_port is called in
# plain HTTP by every proxy (docs/security.md, "known gaps").
service_prefix "" {
  policy = "write"
}
