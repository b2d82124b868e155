// Package fid computes set metrics on feature vectors (one row per image, e.g. the 2048-d
// Inception pool3 features of nodes/metrics/inception): the Fréchet distance between the
// Gaussians fitted to two sets (FID when the features are Inception's) and the kernel
// distance KID. Everything is computed on the host in float64 with gonum. The values are in
// the units of squared feature values (FID and KID are customarily reported as they are;
// KID is often quoted ×10³ in papers, which is left to the caller).
//
//	Stats   mean μ and unbiased covariance Σ (divides by n − 1), as numpy.cov and
//	        pytorch-fid's calculate_activation_statistics.
//	FD      ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1 Σ2)^{1/2}, pytorch-fid's
//	        calculate_frechet_distance. The trace of the square root is computed without
//	        forming the non-symmetric Σ1Σ2: with Σ1 = LLᵀ and Σ2 = MMᵀ, the eigenvalues of
//	        Σ1Σ2 are the squared singular values of MᵀL (padded with zeros), so
//	        tr (Σ1Σ2)^{1/2} = tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2} = Σ σi(MᵀL), the nuclear norm.
//	        L and M come from Cholesky factorisations with diagonal pivoting (LAPACK
//	        dpstrf) stopped at dpstrf's default tolerance d·ε·max Σii, which gives exact-rank
//	        factors for the singular covariances of sets smaller than the feature dimension.
//	        Unlike scipy.linalg.sqrtm of Σ1Σ2, this stays real and accurate to rounding in
//	        that case too (sqrtm loses about half the digits there), so it needs no eps
//	        offset; it costs two Cholesky factorisations, one product and one values-only
//	        SVD (10–15 s for d = 2048 on two busy cores). A negative total, which can only
//	        come from rounding, is returned as 0.
//	KID     torch-fidelity's kernel inception distance: the unbiased estimator of MMD² with
//	        the polynomial kernel k(x, y) = (x·y/d + 1)³,
//	          MMD² = Σ_{i≠j} (k(xi,xj) + k(yi,yj)) / (m(m−1)) − 2 Σ_{i,j} k(xi,yj) / m²,
//	        on Subsets pairs of subsets of size m = min(SubsetSize, n_a, n_b), each drawn
//	        without replacement; the mean and the population standard deviation (divides by
//	        the number of subsets, as numpy.std) over the subsets are returned. torch-fidelity
//	        refuses sets smaller than the subset size; here the subset size shrinks to the
//	        smaller set instead. The draws come from math/rand/v2's PCG seeded with
//	        (Seed, 0), so a seed reproduces a value exactly (but not torch-fidelity's
//	        NumPy draws). The unbiased estimate can be negative. Sets of up to a few thousand
//	        vectors get their whole kernel matrices computed once and indexed per subset
//	        (100 subsets of 1000 from 1500 × 2048 features: about 8 s on two busy cores).
package fid
