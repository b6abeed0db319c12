//go:build !race

package playauth

const raceDetector = false
