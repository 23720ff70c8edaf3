# Hash a credential with the file audit device's HMAC key (sys/audit-hash),
# so telemetry carries vault.credential.hmac: the key that finds, in Vault's
# audit log, the request that issued the credential and every use of it.
# Not root-protected; returns only the HMAC a reader of the audit log sees.
path "sys/audit-hash/file" {
  capabilities = ["update"]
}
