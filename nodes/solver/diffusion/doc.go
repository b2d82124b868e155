// Package diffusion is what the diffusion solvers (ddrm, pigdm, diffpir, daps, reddiff) share:
// the steps/respacing params and the respaced schedule, the prior's Tweedie estimate at a
// step, per-step coefficient tables read inside the graph, the Gaussian noise level a
// solver models, and Prepare — a solver.Run whose step is one compiled graph built from a
// Spec, driven by solver.Loop (seeded, resumable bit for bit, checked for divergence).
//
// A Spec says how to start (x_T ~ N(0, I) by default) and how to take step k (k counts up
// from 0 to Steps−1; tables indexed by k hold each solver's own schedule in loop order). The
// step's random draws come from the loop's RNG state, so a run is reproducible for a seed.
package diffusion
