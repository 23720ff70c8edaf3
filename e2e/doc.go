// Package e2e holds the end-to-end test of the shipped deployment: real
// Vault, collectors from the ocb-built binary with the example configs, a
// Lightstep stand-in, and workloads sending spans.
package e2e
