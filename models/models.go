// Package models carries the priors dpsflow ships inside its binary, so the main job runs
// on a fresh machine with nothing downloaded. Each model is a reference-format
// model_config.yaml and a safetensors checkpoint; see the README for how they were made.
package models

import _ "embed"

// MNISTConfig is models/mnist/model_config.yaml: the small ADM UNet of adm.SmallMNISTConfig.
//
//go:embed mnist/model_config.yaml
var MNISTConfig []byte

// MNISTWeights is models/mnist/model.safetensors, trained by `dpsflow train` (train.json).
//
//go:embed mnist/model.safetensors
var MNISTWeights []byte
