# Consul ACL policy for `weft scheduler` (every instance of the cluster uses
# it). The scheduler is the one component that may tell hosts what to run:
# it alone writes weft/allocs/. Derived from src/wiring/scheduler-*.ts and
# discovery/lock.ts.

# Jobs, their versions and status records (scheduler-store.ts, scheduler-routes-jobs.ts,
# scheduler-status.ts); a purged job's versions are deleted recursively.
key_prefix "weft/jobs/" {
  policy = "write"
}
key_prefix "weft/job-versions/" {
  policy = "write"
}
key_prefix "weft/job-status/" {
  policy = "write"
}

# The autoscaler's per-group history, written by the leader in its fenced
# transactions and deleted with a purged job (scheduler-autoscaler.ts); and
# activation requests for services scaled to zero, which the leader watches
# and deletes once acted on.
key_prefix "weft/autoscale/" {
  policy = "write"
}
key_prefix "weft/activate/" {
  policy = "write"
}
# The services whose autoscale policy allows zero instances, kept by the
# leader for the proxies' hold queues (base/contracts/activation.ts).
key_prefix "weft/zero/" {
  policy = "write"
}

# Node drain flags (PUT /v1/nodes/<node>/drain).
key_prefix "weft/drain/" {
  policy = "write"
}

# Allocations for every host (the control loop's fenced transactions), and the
# hosts' status reports: read to reconcile, deleted for lost hosts and stopped
# allocations.
key_prefix "weft/allocs/" {
  policy = "write"
}
key_prefix "weft/alloc-status/" {
  policy = "write"
}

# Mesh configuration the API writes: splits and intentions.
key_prefix "weft/splits/" {
  policy = "write"
}
key_prefix "weft/intentions/" {
  policy = "write"
}

# Secrets, sealed with AES-256-GCM under a key only the scheduler holds: KV
# never sees a value in clear (scheduler/secrets/).
key_prefix "weft/secrets/" {
  policy = "write"
}

# Leader election: a session lock on weft/leader, and a check-session on it
# in front of every control-loop transaction (discovery/lock.ts, kv.ts).
key "weft/leader" {
  policy = "write"
}

# The lock's session is created on the node of the Consul agent the scheduler
# talks to (its name is not known here): write on every node's sessions.
# Narrow it to `session "<consul node>"` when you know the names.
session_prefix "" {
  policy = "write"
}

# Its own registration (weft-scheduler, with an HTTP check on /v1/health).
service "weft-scheduler" {
  policy = "write"
}

# Health watches of weft-agent (the hosts) and of every service jobs run.
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
