//go:build !race

// Package racedetect tells tests whether they run under the race detector.
package racedetect

// Enabled reports whether the race detector is on.
const Enabled = false
