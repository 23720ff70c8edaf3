# lightstep-team-writer: a team's token writer writes new versions of its
# own team's Lightstep token only: the path is filled from the metadata
# "team" of the writer's entity, which Vault admins set, not the writer.
# It cannot read or write another team's token, nor delete versions.
path "secret/data/lightstep/teams/{{identity.entity.metadata.team}}" {
  capabilities = ["create", "update"]
}
path "secret/metadata/lightstep/teams/{{identity.entity.metadata.team}}" {
  capabilities = ["read"]
}
