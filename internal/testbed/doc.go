// Package testbed runs the shipped deployment for real, for the tests and
// the demo (deploy/ is something else: the chart and the image): a Vault
// dev server configured from examples/vault, collectors started from the
// ocb-built binary with the example configs, a Lightstep stand-in (a
// collector with bearertokenauth), a sink that counts what arrives, and
// workloads that send spans. The end-to-end tests and `make demo` use it.
package testbed
