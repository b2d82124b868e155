// Package mnistnet carries the weights of the shipped MNIST classifier (model.safetensors,
// made by `dpsflow train-classifier --out models/mnistnet`, recipe in train.json); the
// network itself is nodes/metrics/mnistnet. A package of its own, not part of package
// models, so that retraining the classifier leaves the priors' code version — and every
// cached diffusion run — as it is.
package mnistnet

import _ "embed"

// Weights is model.safetensors.
//
//go:embed model.safetensors
var Weights []byte
