// Package notebooks holds dpsflow's Jupyter notebooks, written for its Go kernel ("Go
// (dpsflow)", see package kernel) and committed with their outputs so that the figures
// show on GitHub:
//
//	quickstart.ipynb    a DPS job through the workflow engine (sr4), its grid, metrics and
//	                    curves (PNG and interactive ECharts); an operator and a guidance
//	                    written in cells and wired into the sampler; reactive cells
//	gmm-geometry.ipynb  DPS, MCG and projection against the exact posterior of a 2-D
//	                    Gaussian mixture, with energy distances
//	tasks-grid.ipynb    every preset task on MNIST: measurement, DPS, truth; PSNR/SSIM
//	noise.ipynb         Gaussian vs Poisson measurement noise, and the Poisson likelihood
//	ablation.ipynb      the DPS step size, and the noise level (MNIST and the exact 2-D case)
//
// Open them with `dpsflow kernel install` and `jupyter lab` (or notebook); results of the
// engine are cached in $DPSFLOW_CACHE (default: the user cache folder), so re-running a
// notebook is quick. The test in this package executes every notebook with Jupyter's
// nbconvert and the kernel built from this tree, and fails on any error output or on a
// figure that is no longer produced. To refresh the committed outputs after a change:
//
//	DPSFLOW_NOTEBOOKS_OUT=/tmp/executed go test ./notebooks && cp /tmp/executed/*.ipynb notebooks/
package notebooks
