# lightstep-token-writer: whoever rotates the Lightstep token writes new KV v2
# versions; it cannot delete or destroy old ones, nor read other secrets.
path "secret/data/lightstep/prod" {
  capabilities = ["create", "update"]
}
path "secret/metadata/lightstep/prod" {
  capabilities = ["read"]
}
