// Package admm registers two ADMM solvers for
//
//	min_x ½‖A x − y‖² + R(x),
//
// split as x = z with scaled dual u (Boyd et al. 2011, §3.1.1):
//
//		x ← argmin ½‖A x − y‖² + (ρ/2)‖x − (z − u)‖²   (the operator's data-prox, else CG)
//		z ← prox_{R/ρ}(x + u)
//		u ← u + x − z
//
//	  - admm-tv: R = λ·TV, isotropic total variation with forward differences and Neumann
//	    boundary (as scikit-image), per channel; the z-step is Chambolle's (2004) projection
//	    algorithm with a fixed number of inner iterations, transcribed from scikit-image's
//	    denoise_tv_chambolle (ProxTV).
//	  - pnp-admm: plug-and-play ADMM (Venkatakrishnan et al. 2013): the z-step is a
//	    denoiser at noise level σ (the sigma param), by default the diffusion prior's
//	    Tweedie estimate; PnP wraps any Go denoiser as a solver. The convention: the denoiser
//	    stands for prox_{R/ρ} with R = ρσ²·(−log p), so ρσ² plays the role of the noise
//	    variance of y.
//
// The data step uses the operator's data-prox (operator.DataProxer) when it has one, and
// otherwise cg_iters conjugate-gradient steps (operator.ProxDataCG) when it has an adjoint;
// other operators are refused before any work. Both solvers are deterministic (no RNG):
// they start from x = z = the data step from zero, argmin ½‖Ax − y‖² + (ρ/2)‖x‖² (a
// regularised A⁺y, bounded for ill-conditioned blurs), with u = 0. The state is X = x and Aux = [z, u]; each ADMM iteration
// is one compiled graph run by solver.Loop (checkpoints, bit-exact resume, divergence
// stops). The result is x (the data-step iterate; x = z at convergence).
package admm
