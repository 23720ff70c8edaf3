// Command vaultlightstep rotates the Lightstep access token that gateways
// read from Vault KV v2, and says when the old token may be deactivated:
// once every collector sends the new one. Build it with `make vaultlightstep`
// (bin/vaultlightstep). The runbook is docs/rotation.md.
//
// # rotate
//
//	vaultlightstep rotate --path secret/data/lightstep/prod --token-file new-token.txt \
//	    --collectors http://gw1:8888/metrics,http://gw2:8888/metrics
//
//	vaultlightstep rotate --path secret/data/lightstep/prod --token-env NEW_LS_TOKEN \
//	    --collectors-dns gateway.otel.svc:8888 --expect-version 6 --timeout 15m
//
//	pass show lightstep/new | vaultlightstep rotate --path secret/data/lightstep/prod \
//	    --collectors-dns gateway.otel.svc:8888
//
// In order, it:
//
//  1. reads the new token from --token-file, or the environment variable
//     named by --token-env, or stdin (piped: it refuses a terminal). It is
//     never a flag value, which anyone could read in ps;
//  2. logs in to Vault ($VAULT_ADDR or --vault-addr; $VAULT_NAMESPACE and
//     the VAULT_* TLS variables as Vault's CLI reads them) with $VAULT_TOKEN,
//     --vault-token-file, or AppRole (--approle-role-id-file and
//     --approle-secret-id-file, mount --approle-mount); an AppRole login's
//     token is revoked at the end;
//  3. scrapes every collector once and prints what they send now ("before:"),
//     so a wrong --extension or --tenant shows before anything is written;
//  4. reads the secret's current_version from KV v2 metadata (with
//     --expect-version N it refuses, exit 3, unless that is N: "the secret
//     changed since you last looked");
//  5. writes a new version with check-and-set on that version, keeping the
//     other keys of the current version: through KV v2 PATCH when the login
//     may patch (Vault merges; the old token is never read), else by reading
//     the current version and writing it back with the new key. A login that
//     may do neither (the shipped lightstep-token-writer policy: create and
//     update only) writes the key alone and says so on stderr. A concurrent
//     rotation makes the check-and-set fail: it says so and exits 3, having
//     written nothing. Beside the token the version holds who rotated
//     (rotated_by_entity_id: this login's Vault entity) and why
//     (rotation_reason: --reason), and the command prints the write's Vault
//     request id, the id of its entry in Vault's audit log;
//  6. scrapes every collector every --interval (default 2s) for
//     otelcol_vaultauth_secret_version{extension=<--extension>,tenant=<--tenant>},
//     printing progress when it changes ("2/3 collectors send version 7:
//     http://gw3:8888/metrics still on 6"), until each sends the new version
//     (or a newer one).
//
// Then it prints exactly
//
//	all N collectors send version V: the old token can be deactivated
//
// and exits 0. After --timeout (default 10m) it exits 4 instead, naming
// every collector that lags with the version it sends or why its scrape
// failed: do not deactivate the old token then.
//
// --collectors lists metrics URLs (a scheme and /metrics are added when left
// out); --collectors-dns lists host:port names whose A and AAAA records are
// the collectors, resolved again at every round (a gateway that goes away
// sends nothing; one that starts reads the newest version). Both may be given.
//
// --path may hold {tenant}, filled from --tenant: for a multi-tenant gateway
// reading secret/data/lightstep/{tenant}, rotate tenant T with
// --path 'secret/data/lightstep/{tenant}' --tenant T; the command then waits
// for the series with tenant="T". Without --tenant it waits for the
// single-secret series (tenant="" or no tenant label).
//
// # wait
//
//	vaultlightstep wait --version 7 --collectors-dns gateway.otel.svc:8888
//
// waits as step 6 does, without Vault: after a rotate that timed out (once
// the lagging gateway is fixed), or after a rotation made another way.
//
// # explain
//
//	vaultlightstep explain --entity 5f3c...                      (a span's vault.entity.id)
//	vaultlightstep explain --audit-log /var/log/vault_audit.log --credential-hmac hmac-sha256:...
//	vaultlightstep explain --audit-log /var/log/vault_audit.log --version 7 --path secret/data/lightstep/prod
//
// answers "who granted that token?". --entity prints the entity's grant
// chain from Vault (log in as for rotate): its aliases (auth mount, and the
// AppRole role, userpass user, Kubernetes role or token role behind each),
// its groups, every policy its tokens get and from where, and which of them
// grant read on identity/oidc/token/<--role>, read on --path and update on
// sys/audit-hash/file. --credential-hmac (a span's vault.credential.hmac)
// finds the audit log entry that issued the credential: request id, time,
// remote address, entity, display name and policies. --version finds the
// entry that wrote that version of --path, and reads the reason and rotator
// written with it (when a Vault login is given and may read the secret; the
// token itself is never printed). docs/audit.md is the auditor's guide.
//
// # Exit status
//
//	0  every collector sends the new version: the old token can be deactivated
//	1  failed before writing (token input, Vault login, read or write error)
//	2  usage error
//	3  nothing written: the secret is not at --expect-version, or another
//	   rotation wrote first (check-and-set)
//	4  written, but not every collector sends it (timeout or interrupted)
//
// Neither the Lightstep token nor the Vault token is ever printed or logged;
// errors name paths, hosts and files only.
package main
