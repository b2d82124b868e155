// Package codever gives each package of this module a code version, so that cache keys
// can see code changes: a kind registered with
//
//	CodeVersion: codever.Of("nodes/sampler", "nodes/operator")
//
// gets a new dag cache key whenever the code of those packages, or of any in-module
// package they import directly or indirectly, changes.
//
// The versions live in versions.txt (embedded): one line per non-test package of the
// module (generated code such as kernel/symbols included) with its path relative to the
// module root, an integer version, a hash of its code and its in-module imports. The
// hash covers the package's non-_test .go files, sorted by name, as tokens (comments,
// blank lines, layout, import order and optional trailing commas and semicolons drop out,
// so doc edits and gofmt do not count; //go: directives other than //go:generate do), and the bytes of the
// files it //go:embeds (weights, YAML presets). versions.txt itself is left out of its own
// package's hash.
//
// After changing code, regenerate the table from the module root with
//
//	go run ./internal/codever/gen
//
// (or go generate ./internal/codever): it recomputes every hash and import list, bumps
// the version of each package whose hash changed, and rewrites versions.txt atomically.
// TestVersionsCurrent fails, naming the packages, when that was forgotten.
package codever

//go:generate go run ./gen
