// Package pipeline is the DPS vocabulary of the dag engine: the node kinds that `dpsflow
// run` wires and that a run.yaml names.
//
// Host (pipeline) nodes:
//
//	mnist, images   load ground-truth images (MNIST test digits; a PNG/JPEG folder or .npy)
//	measure         y = noise(A(x)), seeded, plus a picture of y for figures
//	sample          the compiled DPS sampler over the batch, resumable mid-run
//	metrics         PSNR, SSIM, ‖y − A(x)‖ and seconds per image, mean ± std
//	save            input/, recon/, label/ PNGs, grid.png, progress/, metrics.json
//
// Graph-level nodes describe the pieces that `sample` compiles into one step graph:
//
//	prior           the score network (the shipped MNIST model, or model_config + checkpoint)
//	operator        A, by the reference task name and parameters
//	noise           the noise model (gaussian σ or poisson rate), which is also the likelihood
//	likelihood      the guidance: vanilla, projection, mcg, ps, ps+ with its scale and rule
//	tweedie         the x̂0 estimate (clip or not)
//	update          the posterior update: DDPM or DDIM, steps, η, variance
//
// Their values are small specs (JSON), so the cache key of `sample` changes exactly when
// one of them does. Nodes that read files (prior, images) are cached by a digest of the
// files they read, so an edited checkpoint or image reruns exactly what depends on it.
package pipeline
