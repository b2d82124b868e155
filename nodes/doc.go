// Package nodes holds the DPS vocabulary, one subpackage per concept:
//
//	schedule   the DDPM noise schedule (linear β, ᾱ, posterior coefficients, respacing)
//	prior      the score-model interface and an analytic Gaussian-mixture prior
//	operator   measurement operators A (inpainting, super-resolution, blurs, phase retrieval, …)
//	noise      measurement noise models: sampling y and the data-fidelity distance
//	guidance   conditioning methods: DPS (ps), ps+, MCG, projection, vanilla
//	sampler    DDPM and DDIM samplers whose whole step is one compiled graph
//
// Images are NCHW batches in [-1, 1]. Graph-level pieces are Go functions on *graph.Node;
// randomness (masks, kernels, latent codes) is drawn on the host from a seed when an
// operator is built, so a built operator is deterministic.
package nodes
