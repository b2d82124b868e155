// Package metrics scores reconstructions on the host: PSNR, SSIM, the measurement
// residual ‖y − A(x)‖₂, and the mean ± standard deviation that summarises a metric over a
// batch or a sweep.
//
// Images are float32 slices in [-1, 1], one image in CHW order (so dataRange is 2 for
// them). Arithmetic is done in float64.
//
//	PSNR      10·log10(dataRange² / MSE); +Inf for identical images.
//	SSIM      Wang et al. (2004) structural similarity, identical to scikit-image's
//	          structural_similarity(truth, est, gaussian_weights=True, sigma=1.5,
//	          use_sample_covariance=False, data_range=dataRange, channel_axis=0)
//	          computed in float64 (pass float64 arrays to skimage to compare).
//	Residual  the plain L2 norm of y − A(x) (not squared, not averaged).
//	MeanStd   mean and population standard deviation (divides by n, not n−1).
//
// The learned metrics have their own packages: lpips (LPIPS v0.1 from the user's AlexNet,
// VGG or SqueezeNet weights), fid (Fréchet distance and KID of feature sets), inception
// (pytorch-fid's Inception features from its weight file) and mnistnet (the shipped MNIST
// classifier: features for FD/KID on a bare machine, and class accuracy).
package metrics
