// Package train fits an ε-prediction diffusion model (DDPM's simple loss) with Adam, keeps an
// exponential moving average (EMA) of the weights, checkpoints and resumes, and exports the
// EMA weights under their PyTorch state-dict names.
//
// One step: x0 is a batch of training images, t ~ U{0…T−1}, ε ~ N(0, I),
// x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε with ᾱ from schedule.Default(), loss = mean (ε̂(x_t, t) − ε)².
// A model with a learned-range variance output v is trained on that ε loss only: the
// variational-bound term of improved DDPM (L_hybrid) that trains v is not implemented, so
// v stays at its initial values and such a model should be sampled with fixed variances.
//
// The learning rate warms up linearly, then stays or follows a half cosine down to a final
// rate (Config.LRAt); it is a function of the step counter, so resumes stay exact.
// Config.InitWeights warm-starts a run from another run's weights (a fresh optimizer and
// schedule; the checkpoint records Config.InitFrom, so a resume must name the same weights).
// Config.Network names a network other than the caller's default, so that a checkpoint of
// another network is refused by name.
// ImageLoss scores any model's ε-loss on held-out images with per-image (t, ε), to compare
// priors trained in different runs.
//
// Reproducibility: the batch order, t and ε of step s are drawn from a generator seeded by
// (seed, s), and each epoch's permutation from (seed, epoch), so nothing random has to be
// carried between steps. A checkpoint stores every context variable (weights, Adam moments
// and step counters, EMA weights, the initializer RNG) bit for bit, plus the running loss, so
// a run resumed from a checkpoint computes exactly what the uninterrupted run computes on a
// deterministic backend (embedded is; GPU kernels with atomic reductions are not, and then
// two uninterrupted runs differ just as much). Progress made after the last checkpoint is
// lost in a crash; Run saves one when its context is cancelled (Ctrl-C in the CLI).
//
// Where things live in the GoMLX context: the model's variables are where the model puts
// them (the root scope is handed to Forward), the EMA copy of variable (scope, name) is
// (/ema + scope, name), Adam keeps its moments under /AdamOptimizer and the step counter is
// /global_step.
package train
