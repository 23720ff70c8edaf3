# lightstep-reader: read the Lightstep access token, and its metadata for the
# cheap new-version check (without it, the data is read every refresh_interval).
path "secret/data/lightstep/prod" {
  capabilities = ["read"]
}
path "secret/metadata/lightstep/prod" {
  capabilities = ["read"]
}
