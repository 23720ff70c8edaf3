//go:build race

package racedetect

// Enabled reports whether the race detector is on: under it sync.Pool drops
// a quarter of what is put back, so allocation counts are not the product's.
const Enabled = true
