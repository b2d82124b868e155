// Package plot draws dpsflow's figures: image grids of batches (measurement,
// reconstruction, ground truth, samples) as PNG, and, later, curves.
package plot
