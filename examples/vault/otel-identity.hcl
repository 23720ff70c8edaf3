# otel-identity: a collector (agent or sidecar) proves its Vault identity to a
# gateway with an identity token, and reads its own entity's name to stamp it.
path "identity/oidc/token/otel-agent" {
  capabilities = ["read"]
}
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
