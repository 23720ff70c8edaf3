// Package vaultidentityprocessor is the vaultidentity processor: it stamps
// telemetry with the verified Vault identity of the workload that sent it
// (from the request's auth context, as the vaultauth extension verified it)
// or of this collector (from the vaultauth extension's own login), and
// removes every vault.* attribute a sender wrote, so identity cannot be forged.
package vaultidentityprocessor // import "github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor"
