// Package deploy runs the shipped deployment for real: a Vault dev server
// configured from examples/vault, collectors started from the ocb-built
// binary with the example configs, a Lightstep stand-in (a collector with
// bearertokenauth), a sink that counts what arrives, and workloads that send
// spans. The end-to-end test and `make demo` both use it.
package deploy
