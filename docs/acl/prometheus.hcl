# Consul ACL policy for Prometheus (consul_sd_configs, or weft's HTTP SD at
# /v1/weft/prometheus-sd on the dev agent): read the catalog, nothing else,
# and write nothing.

# Service lists and health entries: Consul filters them by service:read and
# node:read.
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}

# consul_sd asks /v1/agent/self for the datacenter when its config names none.
agent_prefix "" {
  policy = "read"
}
