# The node agent identifying each workload by its pod (vaultauth
# server.kubernetes_pods): the Vault entity of the pod's service account,
# found by the alias Vault's Kubernetes auth gave it, on the mount named in
# mount_path (here the default, kubernetes). Reveals entities' names and
# metadata, nothing else: no token, no secret.
path "identity/lookup/entity" {
  capabilities = ["update"]
}
# The mount's accessor, which names its aliases. Vault guards sys/auth/*
# with sudo; read+sudo on this one path reads that mount's settings and
# cannot change them.
path "sys/auth/kubernetes" {
  capabilities = ["read", "sudo"]
}
