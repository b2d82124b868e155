// Package sampleblock lets a sweep worker run a sample node on a block of its images only.
//
// A sweep splits a table's cells into blocks of whole batches, run by different workers
// (maybe on different machines) that share one cache folder. A worker runs the cell's
// sample node under a context from With: the node computes only the batches of the block,
// leaves each finished batch in its scratch folder (keyed by the node's cache key, so
// shared by every worker of the sweep), and stops with ErrBlockDone instead of a result.
// When every block is done, the merge runs the same node without a block: it finds all
// batches finished and assembles the result, byte for byte what one machine computes.
package sampleblock

import (
	"context"
	"errors"
)

// Range is a block of images [Lo, Hi) of a sample node's measurement.
type Range struct{ Lo, Hi int }

type key struct{}

// With returns ctx restricting sample nodes run under it to the images of r.
func With(ctx context.Context, r Range) context.Context { return context.WithValue(ctx, key{}, r) }

// From is the block of ctx, if it has one.
func From(ctx context.Context) (Range, bool) {
	r, ok := ctx.Value(key{}).(Range)
	return r, ok
}

// ErrBlockDone is how a sample node run under a block ends when the block is done but not
// every image of the node is: its batches are saved, the node has no result yet.
var ErrBlockDone = errors.New("the block's batches are done and saved; the node completes when every block is")
