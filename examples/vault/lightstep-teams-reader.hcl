# lightstep-teams-reader: a multi-team gateway reads every team's Lightstep
# token, and its metadata for the cheap new-version check.
path "secret/data/lightstep/teams/*" {
  capabilities = ["read"]
}
path "secret/metadata/lightstep/teams/*" {
  capabilities = ["read"]
}
