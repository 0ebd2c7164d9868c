# Consul ACL policy for `weft proxy` (one per host; the policy is the same on
# every host). Derived from what the proxy calls (src/wiring/proxy-*.ts):
# read-only everywhere but its own registration.

# Its own registration: service weft-proxy (ID weft-proxy-<host>) with an HTTP
# check on /healthz, deregistered at shutdown (src/wiring/proxy-registration.ts).
service "weft-proxy" {
  policy = "write"
}

# Health watches of every destination and of the local services it fronts
# (src/wiring/proxy-routes.ts, proxy-local-services.ts). Consul filters a
# health answer by service:read AND node:read, so both are needed.
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}

# Traffic splits, one key per service (src/wiring/proxy-routes.ts).
key_prefix "weft/splits/" {
  policy = "read"
}

# Intentions: who may call whom (src/wiring/proxy-intentions.ts).
key_prefix "weft/intentions/" {
  policy = "read"
}

# Scale to zero (proxy/outbound/activation.ts, src/wiring/proxy-routes.ts):
# the services whose policy allows zero instances (read), and the activation
# request a proxy writes when it holds a request for one of them.
key_prefix "weft/zero/" {
  policy = "read"
}
key_prefix "weft/activate/" {
  policy = "write"
}
