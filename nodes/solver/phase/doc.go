// Package phase registers the classical iterative phase retrieval solvers er, hio and oss
// for operators with the magnitude-projection capability (phase_retrieval: y = |F pad(x)|).
//
// They iterate on z in the padded grid, where the support S is the window in which ZeroPad
// puts the image, and P_M z = Re F⁻¹(y·Fz/|Fz|) is the operator's magnitude projection:
//
//   - er (error reduction, Fienup, Appl. Opt. 21, 1982): z' = P_S P_M z, with P_S keeping
//     the support (clipped to the image range [-1, 1] when clip is set) and zeroing the
//     rest. Both sets are closed and the support set is convex, so ‖|F z| − y‖ never grows.
//   - hio (hybrid input-output, Fienup 1982): with p = P_M z and c = P_C p its nearest
//     point obeying the object constraint (0 outside S; inside, p clipped to [-1, 1] when
//     clip is set), z' = p where p = c and z' = z − β(p − c) elsewhere: Fienup's z − βp
//     outside the support, generalised from his positivity to the range constraint.
//   - oss (oversampling smoothness, Rodriguez, Xu, Chen, Jiang, Miao, J. Appl. Cryst. 46,
//     2013): hio whose new values outside S are smoothed by the Fourier-space Gaussian
//     W(k) = exp(−½ (|k|/α)²), k the centred frequency in pixels of the padded grid. α
//     follows the paper's sample code (its FX): 10 equal stages of the iterations, α from
//     2N down to N/5 in equal decrements (N the larger padded side). Unlike the sample
//     code, which smooths the whole array z − βp, only the outside part is smoothed (the
//     inside zeroed first), so that the object itself stays a fixed point; without that,
//     (1 − β)·x leaks across the support edge and the noise-free residual stalls near 2%.
//     The smoothing is the real matrix M_α = Re(Fᴴ diag(w) F) per axis, built inside the
//     compiled step from α, the step's scalar input. The sample code's "restart each stage
//     from its best iterate" is not implemented.
//
// clip is the real-valued object constraint chosen here: the paper's objects are
// non-negative, ours are images in [-1, 1], so the constraint is the range [-1, 1] (which
// keeps the global sign ambiguity of real objects: x and −x have the same magnitudes, as
// do x and its 180° rotation).
//
// Each solve is one run from a random start: z0 is uniform inside S and 0 outside, in
// [0, 1) by default (param start: positive, Fienup's random non-negative start), [-1, 0)
// (negative) or [-1, 1) (symmetric). Every step is odd in z, so the negative start gives
// exactly the negated run: the start picks the sign of the result's zero frequency, the
// one ambiguity a residual cannot resolve (MNIST digits, mostly −1, want negative).
// Symmetric starts leave the zero frequency's sign to chance and stagnated more often in
// tests. z0 is drawn on the host from the seed with math/rand/v2 (PCG), so State.RNG is
// nil and a run is deterministic given its seed; the pipeline's --restarts keeps the run
// with the smallest residual.
//
// The step is compiled once per problem shape and driven by solver.Loop (checkpoints,
// bit-exact resume, divergence stops, progress). Each step's estimate is Fienup's output on the
// support, X = clip(Crop(P_M z), −1, 1) (for er, the new iterate), with Distances =
// Noise.Distance(y, A(X)); the result is the last step's. NFE is 0.
//
// er alone stagnates from random starts (Fienup's observation; it is a local method), so
// it is best used from a good start or after hio.
package phase
