// Package vaultauditreceiver is the vaultaudit receiver: it subscribes to
// named vaultauth extensions and emits their audit events (a sender's
// credential first accepted, refusals aggregated per interval, the export
// credential changing, logins, tenants opened and closed) as OTLP log
// records, so they reach Lightstep beside the spans they explain.
package vaultauditreceiver // import "github.com/vaultlightstep/vaultlightstep/receiver/vaultauditreceiver"
