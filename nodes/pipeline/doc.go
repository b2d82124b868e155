// Package pipeline is the DPS vocabulary of the dag engine: the node kinds that `dpsflow
// run` and `dpsflow table` wire and that a run.yaml or table.yaml names.
//
// Host (pipeline) nodes:
//
//	mnist, images   load ground-truth images (MNIST test digits; a PNG/JPEG folder or .npy)
//	measure         y = noise(A(x)), seeded, plus a picture of y for figures
//	sample          a solver over the batch (restarts, checkpoints), resumable mid-run
//	metrics         PSNR, SSIM, ‖y − A(x)‖ and seconds per image, mean ± std
//	save            input/, recon/, label/ PNGs, grid.png, progress/, metrics.json
//	lpips           LPIPS v0.1 per image (nodes/metrics/lpips, the user's weight files)
//	features        an image set's features: the shipped MNIST classifier's (and its classes)
//	                or Inception's (nodes/metrics/mnistnet, nodes/metrics/inception)
//	fd              set metrics of two feature sets: FD, KID ± std, classifier accuracy
//
// Tables (TableSpec, PlanTable, RunTable): a table spec file lists tasks × solvers, the
// images and the metrics; PlanTable makes it one DAG — each task's measurement once, each
// solver that can take the task on it (the others are listed as skipped, with the reason),
// per-cell metrics and features, and FD against the truths' features — and the table is
// written as table.md, table.csv, table.json and a grid per task. Node ids are
// KIND/TASK/LABEL; a cell computes exactly what `dpsflow run` does for the same settings,
// and shares its cache entries. ScoreFolders scores two folders of images the same way
// (`dpsflow score`).
//
// Spec nodes describe what `sample` runs:
//
//	prior           the score network (the shipped MNIST model, or model_config + checkpoint)
//	operator        A, by the reference task name and parameters; each image's random parts
//	                (mask, box, kernel, latent code) are drawn from (seed, image index)
//	noise           the noise model (gaussian σ or poisson rate), which is also the likelihood
//	solver          a named solver of nodes/solver (`dpsflow solvers`) with its params
//
// or, instead of solver, the pieces of a DPS step that `sample` compiles into one graph:
//
//	likelihood      the guidance: vanilla, projection, mcg, ps, ps+ with its scale and rule
//	tweedie         the x̂0 estimate (clip or not)
//	update          the posterior update: DDPM or DDIM, steps, η, variance
//
// Their values are small specs (JSON), so the cache key of `sample` changes exactly when
// one of them does; every kind's key also holds the code version of the packages it runs
// (internal/codever), so a fix in nodes/operator or nodes/sampler reruns what it touches.
// Nodes that read files (prior, images, lpips, features) are cached by a digest of the
// files they read, so an edited checkpoint or image reruns exactly what depends on it.
package pipeline
