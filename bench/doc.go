// Package bench compares the project's hot paths with the Collector's own
// components doing the same job, in the same run: `make bench`. It is a
// module of its own so contrib stays out of the main module's dependencies.
package bench
